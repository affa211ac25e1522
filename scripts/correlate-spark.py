#!/usr/bin/env python3
"""Campaigns across sensors on Spark: `scanwatch correlate` at cluster scale.

    spark-submit scripts/correlate-spark.py -o OUT [--scanwatch PATH]
        [--partitions N] [--config FILE] [--since T] [--until T]
        [--sensor-of DIR=NAME ...] DIR ...

Each DIR is the `-w` folder of `scanwatch run` (local path, or any URI
Spark reads, for Parquet trees). Its flow rows are read (Parquet through
Spark with Hive partitions; Arrow IPC files by the executors with pyarrow),
given their sensor (the `sensor=` level, else --sensor-of's NAME or the
folder's name, as `scanwatch correlate` names it), repartitioned by a hash of the
originator address (`id.orig_h`), sorted by time inside each partition, and
each partition is handed as Arrow batches (`mapInArrow`) to one
`scanwatch correlate --stdin` process, which runs the same detector over
it and answers with its campaigns. The campaigns are joined with the
sensors' own detections (`flagged_by`, `below_threshold_everywhere`) and
written as Parquet under OUT/campaigns/.

Why this gives the single-box answer: the detector keeps its state per
source address (contacts, windows, TRW, scan records), and a campaign is
one source's record, so every attempt it counts is one of that source's
flow rows; with all rows of one originator in one partition (in attempt
order: `scanwatch correlate --stdin` sorts them as the single-box run
does), each partition's detector sees, for each of its sources, exactly
the sequence the single box sees. What does not partition this way is the
distributed-scan tracker (many sources toward one target, keyed by target):
`scanwatch correlate` does not report distributed scans, on one box or here.
Caps: each process holds the attempts of its partition (80 bytes
each) plus the detector's caps; raise --partitions for more data.

The scanwatch binary: --scanwatch PATH (default $SCANWATCH_BIN or
`scanwatch` on PATH). When PATH exists on the driver it is shipped to the
executors with SparkContext.addFile (as `spark-submit --files` would);
otherwise each executor runs PATH as installed there.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from pyspark import SparkFiles
from pyspark.sql import SparkSession, functions as F

FLOW_DDL = ("ts timestamp, id struct<orig_h:string, orig_p:int, resp_h:string, resp_p:int>, "
            "proto string, duration double, resp_pkts long, history string, flow_id long, "
            "sensor string")

PER_SENSOR = ("struct<sensor:string, probes:long, first_seen:timestamp, "
              "last_seen:timestamp, open:array<string>>")

CAMPAIGN_DDL = ("campaign string, scanner string, kind string, proto string, technique string, "
                "detector string, direction string, first_seen timestamp, last_seen timestamp, "
                "detected timestamp, dst_count long, port_count long, probes long, answered long, "
                "rejected long, unanswered long, ports array<int>, open array<string>, "
                "sensors array<string>, per_sensor array<" + PER_SENSOR + ">, "
                "flagged_by array<string>, below_threshold_everywhere boolean")

_TS = pa.timestamp("us", "UTC")
_STRS = pa.list_(pa.string())
# CAMPAIGN_DDL as Arrow: what the mapInArrow function hands back to Spark
# (the campaigns table of `scanwatch correlate`, every field nullable).
CAMPAIGN_ARROW = pa.schema(
    [(n, pa.string()) for n in ("campaign", "scanner", "kind", "proto", "technique",
                                "detector", "direction")]
    + [(n, _TS) for n in ("first_seen", "last_seen", "detected")]
    + [(n, pa.int64()) for n in ("dst_count", "port_count", "probes", "answered", "rejected",
                                 "unanswered")]
    + [("ports", pa.list_(pa.int32())), ("open", _STRS), ("sensors", _STRS),
       ("per_sensor", pa.list_(pa.struct([("sensor", pa.string()), ("probes", pa.int64()),
                                          ("first_seen", _TS), ("last_seen", _TS),
                                          ("open", _STRS)]))),
       ("flagged_by", _STRS), ("below_threshold_everywhere", pa.bool_())])

COLUMNS = [c.split(" ")[0] for c in
           ["campaign", "scanner", "kind", "proto", "technique", "detector", "direction",
            "first_seen", "last_seen", "detected", "dst_count", "port_count", "probes",
            "answered", "rejected", "unanswered", "ports", "open", "sensors", "per_sensor",
            "flagged_by", "below_threshold_everywhere"]]


def sensor_name(d, given):
    """The name `scanwatch correlate` gives a folder without a sensor level."""
    if given:
        return given
    return os.path.basename(os.path.realpath(d).rstrip("/")) or "unnamed"


def files_under(root, ext):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [os.path.join(dirpath, f) for f in sorted(filenames)
                if f.endswith(ext) and not f.startswith(".")]
    return out


def sensor_of_path(path, table_root, default):
    rel = os.path.relpath(path, table_root).split(os.sep)
    if rel and rel[0].startswith("sensor="):
        return rel[0][len("sensor="):]
    return default


def arrow_flows_reader(rows):
    """mapInArrow over (path, sensor) rows: each executor reads its Arrow
    IPC part files with pyarrow, as the flow rows Spark would."""
    for b in rows:
        for path, sensor in zip(b.column("path").to_pylist(), b.column("sensor").to_pylist()):
            t = ipc.open_file(path).read_all()
            ident = t.column("id").combine_chunks()
            idt = pa.StructArray.from_arrays(
                [ident.field("orig_h"), ident.field("orig_p").cast(pa.int32()),
                 ident.field("resp_h"), ident.field("resp_p").cast(pa.int32())],
                names=["orig_h", "orig_p", "resp_h", "resp_p"])
            out = pa.table({
                "ts": t.column("ts").cast(pa.timestamp("us", "UTC")),
                "id": idt,
                "proto": t.column("proto"),
                "duration": t.column("duration"),
                "resp_pkts": t.column("resp_pkts").cast(pa.int64()),
                "history": t.column("history"),
                # The same 64 bits, signed: Spark has no unsigned types.
                "flow_id": pc.cast(t.column("flow_id"), pa.int64(), safe=False),
                "sensor": pa.array([sensor] * t.num_rows, pa.string()),
            })
            yield from out.to_batches()


def read_flows(spark, dirs):
    """All sensors' flow rows as one DataFrame of FLOW_DDL."""
    frames = []
    arrow_parts = []
    for d, given in dirs:
        root = os.path.join(d, "flows")
        default = sensor_name(d, given)
        parquet = files_under(root, ".parquet") if os.path.isdir(root) else None
        arrows = files_under(root, ".arrow") if os.path.isdir(root) else []
        if parquet is None or parquet:
            # Parquet (or a URI the driver cannot list): Spark reads it,
            # with the Hive levels as columns.
            df = spark.read.option("basePath", root).parquet(root)
            if "sensor" not in df.columns:
                df = df.withColumn("sensor", F.lit(default))
            fid = F.col("flow_id").cast("decimal(20,0)")
            df = df.select(
                "ts",
                F.struct(F.col("id.orig_h").alias("orig_h"),
                         F.col("id.orig_p").cast("int").alias("orig_p"),
                         F.col("id.resp_h").alias("resp_h"),
                         F.col("id.resp_p").cast("int").alias("resp_p")).alias("id"),
                "proto", "duration", F.col("resp_pkts").cast("long").alias("resp_pkts"),
                "history",
                # Parquet's UINT64 comes back as decimal(20,0): the same 64
                # bits, signed.
                F.when(fid >= F.lit(str(2 ** 63)).cast("decimal(20,0)"),
                       fid - F.lit(str(2 ** 64)).cast("decimal(21,0)")).otherwise(fid)
                .cast("long").alias("flow_id"),
                F.col("sensor").cast("string").alias("sensor"))
            frames.append(df)
        elif arrows:
            arrow_parts += [(p, sensor_of_path(p, root, default)) for p in arrows]
        else:
            raise SystemExit(f"{d}: no flow files under {root}")
    if arrow_parts:
        paths = spark.createDataFrame(arrow_parts, "path string, sensor string")
        paths = paths.repartition(min(len(arrow_parts), 64))
        frames.append(paths.mapInArrow(arrow_flows_reader, FLOW_DDL))
    df = frames[0]
    for f in frames[1:]:
        df = df.unionByName(f)
    return df


def read_flagged(spark, dirs):
    """(scanner, flagged_by) of the sensors' own detections tables, as
    `scanwatch correlate` reads them (any kind but distributed)."""
    rows = []
    frames = []
    for d, given in dirs:
        root = os.path.join(d, "detections")
        default = sensor_name(d, given)
        if not os.path.isdir(os.path.join(d, "flows")):
            # A URI the driver cannot list (s3a://, hdfs://): Spark reads it.
            df = spark.read.option("basePath", root).parquet(root)
            if "sensor" not in df.columns:
                df = df.withColumn("sensor", F.lit(default))
            frames.append(df.where(F.col("kind") != "distributed")
                          .select("scanner", F.col("sensor").cast("string")))
            continue
        if not os.path.isdir(root):
            print(f"correlate-spark: {d}: no detections/ folder: no scanner counts as flagged "
                  "by its sensors", file=sys.stderr)
            continue
        for p in files_under(root, ".parquet") + files_under(root, ".arrow"):
            if p.endswith(".parquet"):
                t = pq.read_table(p, columns=["scanner", "kind"])
            else:
                t = ipc.open_file(p).read_all().select(["scanner", "kind"])
            s = sensor_of_path(p, root, default)
            rows += [(sc, s) for sc, k in zip(t.column("scanner").to_pylist(),
                                               t.column("kind").to_pylist())
                     if k != "distributed"]
    df = spark.createDataFrame(rows, "scanner string, sensor string")
    for f in frames:
        df = df.unionByName(f)
    return df.groupBy("scanner").agg(F.sort_array(F.collect_set("sensor")).alias("flagged_by"))


def correlate_partition(binary, extra):
    """The mapInArrow function: one `scanwatch correlate --stdin` per
    partition, fed the partition's batches as an Arrow IPC stream."""
    def run(batches):
        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            return
        exe = binary
        shipped = os.path.basename(binary)
        try:
            local = SparkFiles.get(shipped)
            if os.path.isfile(local):
                os.chmod(local, 0o755)
                exe = local
        except Exception:  # noqa: BLE001 (no SparkFiles: run as installed)
            pass
        args = list(extra)
        if "--config" in args:
            # The copy addFile shipped, where there is one.
            i = args.index("--config") + 1
            try:
                local = SparkFiles.get(os.path.basename(args[i]))
                if os.path.isfile(local):
                    args[i] = local
            except Exception:  # noqa: BLE001
                pass
        # The batches are streamed to the process as they come (it reads
        # a batch at a time and answers only at the end of its input, so
        # nothing waits on a full pipe), its answer and stderr read after.
        with tempfile.TemporaryFile() as err:
            p = subprocess.Popen([exe, "correlate", "--stdin", *args], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=err)
            try:
                with ipc.new_stream(p.stdin, first.schema) as w:
                    w.write_batch(first)
                    for b in batches:
                        w.write_batch(b)
                p.stdin.close()
            except BrokenPipeError:
                pass  # it stopped reading: its exit status and stderr say why
            out = p.stdout.read()
            code = p.wait()
            err.seek(0)
            msg = err.read().decode(errors="replace")
        if code != 0:
            raise RuntimeError(f"scanwatch correlate --stdin failed ({code}): {msg[-2000:]}")
        sys.stderr.write(msg)
        t = ipc.open_stream(pa.py_buffer(out)).read_all()
        yield from t.cast(CAMPAIGN_ARROW).to_batches()

    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", metavar="DIR")
    ap.add_argument("--sensor-of", action="append", default=[], metavar="DIR=NAME")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--scanwatch", default=os.environ.get("SCANWATCH_BIN", "scanwatch"))
    ap.add_argument("--partitions", type=int, default=0,
                    help="partitions by originator hash (default: Spark's default parallelism)")
    ap.add_argument("--config")
    ap.add_argument("--since")
    ap.add_argument("--until")
    ap.add_argument("--master", help="e.g. local[2] when run without spark-submit")
    a = ap.parse_args(argv)

    if (a.master or "").startswith("local"):
        # Local workers run this Python (with pyarrow), not the system's.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    b = SparkSession.builder.appName("scanwatch-correlate")
    if a.master:
        b = b.master(a.master)
    spark = (b.config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC")
             # Microsecond timestamps, as scanwatch writes (not INT96).
             .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    binary = a.scanwatch
    if os.path.isfile(binary):
        binary = os.path.abspath(binary)
        spark.sparkContext.addFile(binary)
    elif shutil.which(binary) is None and (a.master or "").startswith("local"):
        raise SystemExit(f"{binary}: no scanwatch binary (give --scanwatch PATH)")
    extra = []
    if a.config:
        # Shipped to the executors; each uses its copy (see correlate_partition).
        spark.sparkContext.addFile(os.path.abspath(a.config))
        extra += ["--config", os.path.abspath(a.config)]
    for flag in ("since", "until"):
        if getattr(a, flag):
            extra += [f"--{flag}", getattr(a, flag)]

    names = {}
    for s in a.sensor_of:
        d, _, name = s.rpartition("=")
        if not d or not name:
            raise SystemExit(f"--sensor-of {s!r}: expected DIR=NAME")
        names[os.path.realpath(d)] = name
    dirs = [(d, names.get(os.path.realpath(d))) for d in a.dirs]
    flows = read_flows(spark, dirs)
    n = a.partitions or spark.sparkContext.defaultParallelism
    # Every row of one originator in one partition, in time order there.
    parts = flows.repartition(n, F.col("id.orig_h")).sortWithinPartitions("ts", "id.orig_h")
    found = parts.mapInArrow(correlate_partition(binary, extra), CAMPAIGN_DDL)
    flagged = read_flagged(spark, dirs)
    camp = (found.drop("flagged_by", "below_threshold_everywhere")
            .join(flagged, on="scanner", how="left")
            .withColumn("flagged_by", F.coalesce(F.col("flagged_by"), F.array().cast("array<string>")))
            .withColumn("below_threshold_everywhere", F.size("flagged_by") == 0)
            .select(*COLUMNS))
    out = os.path.join(a.out, "campaigns")
    # One file, in the single box's order (a sort within the one partition:
    # no sampling job that would run the detectors twice).
    (camp.coalesce(1).sortWithinPartitions("first_seen", "campaign")
     .write.mode("overwrite").parquet(out))
    print(f"correlate-spark: {spark.read.parquet(out).count()} campaigns -> {out}", file=sys.stderr)
    spark.stop()


if __name__ == "__main__":
    main()
