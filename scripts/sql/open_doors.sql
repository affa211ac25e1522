-- Open doors: the probed services that answered a detected scanner (TCP:
-- the target sent a SYN-ACK, Zeek history 'h'; UDP: it sent a reply with
-- payload). The first thing to check after a scan.
SELECT f.id.orig_h AS scanner,
       f.id.resp_h AS target,
       f.id.resp_p AS port,
       f.proto AS proto,
       f.sensor AS sensor,
       COUNT(*) AS answers,
       MIN(f.ts) AS first_answer
FROM flows f
JOIN (SELECT DISTINCT scanner FROM detections) s ON f.id.orig_h = s.scanner
WHERE (f.proto = 'tcp' AND f.history LIKE '%h%')
   OR (f.proto = 'udp' AND f.resp_bytes > 0)
GROUP BY f.id.orig_h, f.id.resp_h, f.id.resp_p, f.proto, f.sensor
ORDER BY scanner, target, port, proto, sensor
