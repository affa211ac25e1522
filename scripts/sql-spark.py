#!/usr/bin/env python3
"""Runs the report's SQL files (scripts/sql/*.sql) unchanged in Spark SQL
over a scanwatch Parquet tree, local or on a cluster:

    spark-submit scripts/sql-spark.py TREE [--json]        # TREE: -w folder, or s3a://…

It registers `flows` and `detections` as views with Hive partitioning
(sensor=, date=, hour=), with a text `sensor` column (`default` for a tree
written without --sensor, as scripts/swviews.py does for DuckDB), and prints
each query's rows (as JSON lines with --json: {"query": name, "row": {...}}).
A tree written with --no-flows has no `flows` view; the files that need it
are then skipped, each with a line on stderr.

Spark SQL has no standard `CROSS JOIN UNNEST(list) AS t(x)`: it is run as
`CROSS JOIN LATERAL explode(list) AS t(x)`, the one rewrite made here.
"""

import glob
import json
import os
import re
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def main():
    tree = sys.argv[1]
    as_json = "--json" in sys.argv[2:]
    spark = (SparkSession.builder.appName("scanwatch-sql")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    have = set()
    for t in ("flows", "detections"):
        path = f"{tree.rstrip('/')}/{t}"
        if "://" not in path and not os.path.isdir(path):
            continue
        df = spark.read.option("basePath", path).parquet(path)
        if "sensor" in df.columns:
            df = df.withColumn("sensor", F.col("sensor").cast("string"))
        else:
            df = df.withColumn("sensor", F.lit("default"))
        df.createOrReplaceTempView(t)
        have.add(t)
    sql_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql")
    for f in sorted(glob.glob(os.path.join(sql_dir, "*.sql"))):
        name = os.path.basename(f)
        with open(f) as fh:
            text = fh.read()
        if "flows" not in have and re.search(r"\bFROM flows\b", text):
            print(f"sql-spark.py: {name}: no flows table under {tree}; not run", file=sys.stderr)
            continue
        text = re.sub(r"CROSS JOIN UNNEST\(", "CROSS JOIN LATERAL explode(", text, flags=re.I)
        rows = spark.sql(text).collect()
        for r in rows:
            if as_json:
                print(json.dumps({"query": name, "row": r.asDict()}, default=str))
            else:
                print(name, r)
    spark.stop()


if __name__ == "__main__":
    main()
