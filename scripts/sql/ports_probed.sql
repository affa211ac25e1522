-- Ports and services probed by the detected scanners, from the flows they
-- made (one flow per probe).
SELECT f.id.resp_p AS port,
       f.proto AS proto,
       COUNT(*) AS probes,
       COUNT(DISTINCT f.id.orig_h) AS scanners,
       COUNT(DISTINCT f.id.resp_h) AS targets
FROM flows f
JOIN (SELECT DISTINCT scanner FROM detections) s ON f.id.orig_h = s.scanner
WHERE f.proto IN ('tcp', 'udp')
GROUP BY f.id.resp_p, f.proto
ORDER BY probes DESC, port, proto
LIMIT 25
