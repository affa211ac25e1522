-- Scans over time: per hour of first probe, per scanner and kind.
SELECT date_trunc('hour', ts_first) AS hour_start,
       scanner,
       kind,
       COUNT(*) AS scans,
       SUM(probes) AS probes
FROM detections
GROUP BY date_trunc('hour', ts_first), scanner, kind
ORDER BY hour_start, scanner, kind
