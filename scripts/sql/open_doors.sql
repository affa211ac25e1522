-- Open doors: every (target, port) that answered a detected scanner, from
-- the detections' own `open` lists (the detector's record of the probes
-- that were answered: TCP SYN-ACK, a UDP reply, an echo reply), so they
-- agree with the detections and alerts, and a scanner's other, benign
-- traffic never counts. ICMP doors are a bare address (port NULL); IPv6
-- doors are written `[addr]:port`. The first thing to check after a scan.
-- Standard UNNEST (DuckDB, Trino, PostgreSQL); Spark SQL has no UNNEST, so
-- scripts/sql-spark.py runs it as `CROSS JOIN LATERAL explode(…)`, the one
-- rewrite it makes.
SELECT scanner,
       target,
       port,
       proto,
       sensor,
       COUNT(DISTINCT detection_id) AS records,
       MIN(ts_first) AS first_seen
FROM (SELECT d.scanner AS scanner,
             replace(replace(CASE WHEN d.proto IN ('tcp', 'udp')
                                  THEN regexp_extract(o.door, '^(.*):[0-9]+$', 1)
                                  ELSE o.door END, '[', ''), ']', '') AS target,
             CASE WHEN d.proto IN ('tcp', 'udp')
                  THEN CAST(regexp_extract(o.door, ':([0-9]+)$', 1) AS INTEGER) END AS port,
             d.proto AS proto,
             d.sensor AS sensor,
             d.detection_id AS detection_id,
             d.ts_first AS ts_first
      FROM detections d
      CROSS JOIN UNNEST(d.open) AS o(door)) x
GROUP BY scanner, target, port, proto, sensor
ORDER BY scanner, target, port, proto, sensor
