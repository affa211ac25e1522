"""`scripts/correlate-spark.py` (PySpark, local[2]) gives the campaigns
`scanwatch correlate` gives on one box, row for row and column for column,
on captures the project makes: `scanwatch gen --split 5` of the campaign
profile (one scanner below every sensor's threshold; Arrow trees with a
sensor level) and of the mixed profile (eight scans, some flagged by a
sensor alone; Parquet trees without a sensor level, one renamed with
--sensor-of)."""

import datetime
import os
import shutil
import subprocess

import pyarrow.parquet as pq
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
PY = os.path.join(ROOT, "target", "pyenv", "bin", "python")


def run(*args, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kw)
    assert p.returncode == 0, f"{args}: {p.stderr[-4000:]}"
    return p


def norm(v):
    """A value as a comparable, hashable form (dicts by key, lists kept in
    order, times as ISO text)."""
    if isinstance(v, dict):
        return tuple(sorted((k, norm(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(norm(x) for x in v)
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).isoformat()
    return v


def rows(path):
    t = pq.read_table(path)
    return t.column_names, sorted(norm(r) for r in t.to_pylist())


@pytest.fixture(scope="module")
def sensors(tmp_path_factory):
    d = tmp_path_factory.mktemp("correlate")
    dirs = []
    # Campaign profile: Arrow trees with a sensor level (s0..s4).
    run(BIN, "gen", "--profile", "campaign", "--split", "5", "--flows", "3000", "--seed", "5",
        "-o", d / "c.pcap")
    for k in range(5):
        w = d / f"s{k}"
        run(BIN, "run", "-r", d / f"c.s{k}.pcap", "-w", w, "--sensor", f"s{k}")
        dirs.append(str(w))
    # Mixed profile: Parquet trees without a sensor level (t0..t4).
    run(BIN, "gen", "--profile", "mixed", "--split", "5", "--flows", "3000", "--seed", "6",
        "-o", d / "m.pcap")
    for k in range(5):
        w = d / f"arrow-t{k}"
        run(BIN, "run", "-r", d / f"m.s{k}.pcap", "-w", w)
        run(BIN, "convert", w, d / f"t{k}")
        shutil.rmtree(w)
        dirs.append(str(d / f"t{k}"))
    return d, dirs


def both(d, dirs, extra, name):
    """The campaigns of the single box and of Spark (local[2], 4
    partitions) on the same folders with the same options."""
    run(BIN, "correlate", *dirs, *extra, "-o", d / f"one-{name}", "--format", "parquet")
    p = run(PY, os.path.join(ROOT, "scripts", "correlate-spark.py"), "--master", "local[2]",
            "--scanwatch", BIN, "--partitions", "4", *extra, "-o", d / f"spark-{name}", *dirs)
    cols1, one = rows(d / f"one-{name}" / "campaigns" / "part-00000.parquet")
    cols2, spark = rows(str(d / f"spark-{name}" / "campaigns"))
    return cols1, one, cols2, spark, p


def test_spark_campaigns_are_the_single_box_campaigns(sensors):
    if shutil.which("java") is None:
        pytest.fail("Spark needs Java: apt-get install -y default-jre-headless")
    d, dirs = sensors
    rename = ["--sensor-of", f"{dirs[-1]}=edge"]
    cols1, one, cols2, spark, p = both(d, dirs, rename, "default")
    assert cols1 == cols2
    assert len(one) >= 2, one
    assert spark == one
    # The data is what the comparison needs: the below-threshold scanner
    # across the five s-sensors, and some campaign a sensor flagged alone.
    byname = [dict(r) for r in one]
    below = [r for r in byname if r["below_threshold_everywhere"]]
    assert [r["scanner"] for r in below if r["scanner"] == "198.51.100.77"] == ["198.51.100.77"]
    camp = next(r for r in below if r["scanner"] == "198.51.100.77")
    assert camp["sensors"] == ("s0", "s1", "s2", "s3", "s4")
    assert any(r["flagged_by"] for r in byname)
    assert any("edge" in r["sensors"] for r in byname)
    # Four partitions: several correlate processes ran.
    assert p.stderr.count("scanwatch correlate:") >= 2, p.stderr[-3000:]

    # A config file reaches the executors' processes (shipped with
    # addFile): thresholds that change the answer, the same on both sides.
    cfg = d / "strict.toml"
    cfg.write_text("[detect]\ntrw = false\n\n[[detect.windows]]\nseconds = 300\n"
                   "horizontal = 60\nvertical = 60\n")
    cols1, strict, cols2, spark, _ = both(d, dirs, rename + ["--config", str(cfg)], "strict")
    assert cols1 == cols2 and spark == strict
    assert 0 < len(strict) < len(one)
    assert "198.51.100.77" not in {dict(r)["scanner"] for r in strict}


def test_stdin_mode_gives_the_campaigns_of_the_folders(sensors):
    """`scanwatch correlate --stdin --detections DIR…` over the same rows as
    one Arrow IPC stream (with a sensor column, in no particular order)
    gives the table the folders give."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.ipc as ipc
    d, dirs = sensors
    tables = []
    for w in dirs:
        name = os.path.basename(w)
        fmt = "parquet" if name.startswith("t") else "ipc"
        t = ds.dataset(os.path.join(w, "flows"), format=fmt, partitioning="hive").to_table()
        if "sensor" not in t.column_names:
            t = t.append_column("sensor", pa.array([name] * t.num_rows, pa.string()))
        cols = ["ts", "id", "proto", "duration", "resp_pkts", "history", "flow_id", "sensor"]
        tables.append(t.select(cols).cast(pa.schema([t.schema.field(c) for c in cols[:-1]]
                                                    + [pa.field("sensor", pa.string())])))
    t = pa.concat_tables(tables)
    # Rows in reverse order: the answer must not depend on it.
    t = t.take(pa.array(range(t.num_rows - 1, -1, -1)))
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, t.schema) as w:
        w.write_table(t, max_chunksize=4096)
    p = subprocess.run([BIN, "correlate", "--stdin", "--detections", *dirs],
                       input=sink.getvalue().to_pybytes(), capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    got = ipc.open_stream(pa.py_buffer(p.stdout)).read_all()
    assert got.schema.metadata[b"scanwatch.table"] == b"campaigns"
    run(BIN, "correlate", *dirs, "-o", d / "files", "--format", "parquet")
    cols, want = rows(d / "files" / "campaigns" / "part-00000.parquet")
    assert got.column_names == cols
    assert sorted(norm(r) for r in got.to_pylist()) == want
    assert len(want) >= 2
