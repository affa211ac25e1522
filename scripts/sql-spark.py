#!/usr/bin/env python3
"""Runs the report's SQL files (scripts/sql/*.sql) unchanged in Spark SQL
over a scanwatch Parquet tree, local or on a cluster:

    spark-submit scripts/sql-spark.py TREE [--json]        # TREE: -w folder, or s3a://…

It registers `flows` and `detections` as views with Hive partitioning
(sensor=, date=, hour=) and prints each query's rows (as JSON lines with
--json: {"query": name, "row": {...}}).
"""

import glob
import json
import os
import sys

from pyspark.sql import SparkSession


def main():
    tree = sys.argv[1]
    as_json = "--json" in sys.argv[2:]
    spark = (SparkSession.builder.appName("scanwatch-sql")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    for t in ("flows", "detections"):
        path = f"{tree.rstrip('/')}/{t}"
        spark.read.option("basePath", path).parquet(path).createOrReplaceTempView(t)
    sql_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql")
    for f in sorted(glob.glob(os.path.join(sql_dir, "*.sql"))):
        name = os.path.basename(f)
        with open(f) as fh:
            rows = spark.sql(fh.read()).collect()
        for r in rows:
            if as_json:
                print(json.dumps({"query": name, "row": r.asDict()}, default=str))
            else:
                print(name, r)
    spark.stop()


if __name__ == "__main__":
    main()
