-- The campaign view: scanners seen by more than one sensor, and when each
-- sensor saw them.
SELECT d.scanner,
       d.sensor,
       MIN(d.ts_first) AS first_seen,
       MAX(d.ts_last) AS last_seen,
       COUNT(*) AS scans,
       SUM(d.probes) AS probes
FROM detections d
JOIN (SELECT scanner
      FROM detections
      GROUP BY scanner
      HAVING COUNT(DISTINCT sensor) > 1) c ON d.scanner = c.scanner
GROUP BY d.scanner, d.sensor
ORDER BY d.scanner, first_seen, d.sensor
