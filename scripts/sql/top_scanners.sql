-- Top scanners: how much they probed, what they found, where and when.
-- Needs the views `detections` and `flows` over the Parquet tree (the
-- README shows them for DuckDB, Spark and Trino). Portable SQL: runs
-- unchanged in DuckDB, Spark SQL and Trino.
SELECT scanner,
       COUNT(*) AS scans,
       SUM(probes) AS probes,
       SUM(answered) AS answered,
       MAX(dst_count) AS max_targets,
       MAX(port_count) AS max_ports,
       MIN(ts_first) AS first_seen,
       MAX(ts_last) AS last_seen,
       COUNT(DISTINCT sensor) AS sensors
FROM detections
GROUP BY scanner
ORDER BY probes DESC, scanner
LIMIT 20
