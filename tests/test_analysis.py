"""The analyst's side with real clients: Parquet and Arrow trees read by
pyarrow, polars and DuckDB with Hive partitioning; the SQL files of
scripts/sql/ run in DuckDB; scripts/report.py makes its page and plots; the
STIX bundle of `scanwatch share` validates with the stix2 library and keeps
the scanned side out unless asked.

Two sensors over the project's own captures: `east` and `west` each read
some of pcaps/, written once as Parquet and once as Arrow IPC (then
converted with `scanwatch convert`).
"""

import csv
import glob
import json
import os
import shutil
import subprocess
import tempfile

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
import stix2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
PY = os.path.join(ROOT, "target", "pyenv", "bin", "python")
P = lambda n: os.path.join(ROOT, "pcaps", n)  # noqa: E731
SENSORS = {
    "east": ["nmap_syn_vertical_1-1000.pcap", "masscan_syn_vertical_1-500.pcap",
             "hping3_udp_horizontal_p161.pcap", "benign_web_and_dns_client.pcap"],
    "west": ["nmap_syn_block_20hosts_8ports.pcap", "nmap_icmp_pingsweep.pcap",
             "nmap_fin_vertical_top200.pcap"],
}


def run(*args, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=300, **kw)
    assert p.returncode == 0, f"{args}: {p.stderr}"
    return p


@pytest.fixture(scope="module")
def trees():
    d = tempfile.mkdtemp(prefix="scanwatch-analysis-")
    pq_dir, ar_dir, cv_dir = (os.path.join(d, x) for x in ("parquet", "arrow", "converted"))
    for sensor, files in SENSORS.items():
        reads = [a for f in files for a in ("-r", P(f))]
        run(BIN, "run", "-q", *reads, "-w", pq_dir, "--sensor", sensor, "--format", "parquet")
        run(BIN, "run", "-q", *reads, "-w", ar_dir, "--sensor", sensor)
    run(BIN, "convert", ar_dir, cv_dir)
    yield {"dir": d, "parquet": pq_dir, "arrow": ar_dir, "converted": cv_dir}
    shutil.rmtree(d, ignore_errors=True)


def scanners_in_truth(files):
    with open(os.path.join(ROOT, "pcaps", "truth.csv")) as f:
        return {r["scanner_ip"] for r in csv.DictReader(f)
                if r["pcap"] in files and r["scan_type"] in ("horizontal", "vertical", "block")}


@pytest.mark.parametrize("table", ["flows", "detections"])
def test_polars_duckdb_pyarrow_agree_on_row_counts(trees, table):
    arrow_rows = ds.dataset(os.path.join(trees["arrow"], table), format="ipc",
                            partitioning="hive").count_rows()
    assert arrow_rows > 0
    for tree in ("parquet", "converted"):
        root = os.path.join(trees[tree], table)
        glob_ = os.path.join(root, "**", "*.parquet")
        pa_rows = ds.dataset(root, format="parquet", partitioning="hive").count_rows()
        pl_df = pl.scan_parquet(glob_, hive_partitioning=True).collect()
        dd = duckdb.connect().execute(f"SELECT count(*), count(DISTINCT sensor) FROM "
                                      f"read_parquet('{glob_}', hive_partitioning = true)").fetchone()
        assert pa_rows == pl_df.height == dd[0] == arrow_rows, (tree, table)
        assert dd[1] == 2 and set(pl_df["sensor"].unique().to_list()) == {"east", "west"}
    # The schema version is in the file metadata of every Parquet file.
    for f in glob.glob(os.path.join(trees["parquet"], table, "**", "*.parquet"), recursive=True):
        import pyarrow.parquet as pq
        md = pq.ParquetFile(f).metadata.metadata
        assert md[b"scanwatch.schema_version"] == b"3" and md[b"scanwatch.table"] == table.encode()


def views(con, tree):
    for t in ("flows", "detections"):
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet("
                    f"'{os.path.join(tree, t, '**', '*.parquet')}', hive_partitioning = true)")


def sql(con, name):
    with open(os.path.join(ROOT, "scripts", "sql", name)) as f:
        cur = con.execute(f.read())
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def test_sql_files_run_in_duckdb_and_find_the_scanners(trees):
    con = duckdb.connect()
    views(con, trees["parquet"])
    want = scanners_in_truth(set(SENSORS["east"]) | set(SENSORS["west"]))
    top = sql(con, "top_scanners.sql")
    assert {r["scanner"] for r in top} == want, top
    over = sql(con, "scans_over_time.sql")
    assert {r["scanner"] for r in over} == want and all(r["probes"] > 0 for r in over)
    ports = sql(con, "ports_probed.sql")
    assert ports and ports[0]["probes"] >= ports[-1]["probes"]
    assert (161, "udp") in {(r["port"], r["proto"]) for r in ports}     # the UDP sweep
    doors = sql(con, "open_doors.sql")
    # The block scan found open services (pcaps/truth.csv: 20 hosts, 8 ports, most open).
    assert any(r["sensor"] == "west" and r["port"] in (21, 22, 80, 443) for r in doors), doors
    camp = sql(con, "campaign.sql")
    # Most of the project's captures share one scanner address (198.18.0.2):
    # both sensors saw it, so it is a campaign; each row is one sensor's view.
    assert {r["scanner"] for r in camp} == {"198.18.0.2"}, camp
    assert {r["sensor"] for r in camp} == {"east", "west"}
    assert all(r["first_seen"] <= r["last_seen"] and r["probes"] > 0 for r in camp)
    # The same answers from the Arrow tree converted to Parquet.
    con2 = duckdb.connect()
    views(con2, trees["converted"])
    assert sql(con2, "top_scanners.sql") == top


def test_report_page_and_plots(trees):
    out = os.path.join(trees["dir"], "report")
    run(PY, os.path.join(ROOT, "scripts", "report.py"), trees["parquet"], "-o", out)
    page = open(os.path.join(out, "report.html")).read()
    for name in ("open_doors", "scans_over_time", "top_scanners", "ports_probed", "campaign"):
        png = os.path.join(out, f"{name}.png")
        with open(png, "rb") as f:
            data = f.read()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000, name
        import matplotlib.image as mpimg
        px = mpimg.imread(png)
        assert px.std() > 0.01, f"{name}.png is blank"
        assert f'alt="{name}.png"' in page, name      # embedded: the page stands alone
    assert "Campaign" in page and "198.18.0.2" in page
    # Arrow output works as input too.
    run(PY, os.path.join(ROOT, "scripts", "report.py"), trees["arrow"], "-o", out + "-arrow")


def all_targets(tree):
    t = ds.dataset(os.path.join(tree, "detections"), format="parquet", partitioning="hive").to_table()
    return {x for lst in t.column("targets").to_pylist() for x in lst}


def strict_stix(path):
    """stix2-validator --strict and stix2.parse without custom content."""
    v = subprocess.run([os.path.join(ROOT, "target", "pyenv", "bin", "stix2_validator"), "--strict", path],
                       capture_output=True, text=True, timeout=300)
    assert v.returncode == 0 and "STIX JSON: Valid" in v.stdout, v.stdout + v.stderr
    text = open(path).read()
    return stix2.parse(text, allow_custom=False), text


def sighting_targets(text):
    objs = json.loads(text)["objects"]
    ext = [o["id"] for o in objs if o["type"] == "extension-definition"][0]
    return {t for o in objs if o["type"] == "sighting" for t in o["extensions"][ext].get("targets", [])}


def test_stix_bundle_validates_and_keeps_the_scanned_side_out(trees):
    targets = all_targets(trees["parquet"])
    assert len(targets) > 20
    out = os.path.join(trees["dir"], "share.json")
    run(BIN, "share", trees["parquet"], "-o", out)
    bundle, text = strict_stix(out)
    objs = bundle.objects
    inds = [o for o in objs if o.type == "indicator"]
    sights = [o for o in objs if o.type == "sighting"]
    scanners = scanners_in_truth(set(SENSORS["east"]) | set(SENSORS["west"]))
    assert {o.pattern.split("src_ref.value = '")[1].split("'")[0] for o in inds} == scanners
    assert {(o.sighting_of_ref, len(o.where_sighted_refs)) for o in sights}
    assert all(o.count >= 1 and o.first_seen <= o.last_seen for o in sights)
    det = ds.dataset(os.path.join(trees["parquet"], "detections"), format="parquet",
                     partitioning="hive").to_table()
    pairs = set(zip(det.column("scanner").to_pylist(), det.column("sensor").to_pylist()))
    assert len(sights) == len(pairs)             # one per scanner and sensor that saw it
    assert not any(t in text for t in targets), "a scanned address leaked"

    # Pseudonyms (Crypto-PAn, key from a file): no clear target, but the
    # same number of distinct ones, prefix-preserving and stable for a key.
    key = os.path.join(trees["dir"], "cryptopan.key")
    with open(key, "w") as f:
        f.write("ab" * 32 + "\n")
    os.chmod(key, 0o600)
    run(BIN, "share", trees["parquet"], "-o", out, "--targets", "pseudonym", "--key-file", key)
    _, text = strict_stix(out)
    assert not any(t in text for t in targets)
    pseud = sighting_targets(text)
    assert len(pseud) == len(targets)
    # Our targets share 198.19.x.0/16 (all of them): so must the pseudonyms.
    assert len({p.rsplit(".", 2)[0] for p in pseud}) == len({t.rsplit(".", 2)[0] for t in targets})
    run(BIN, "share", trees["parquet"], "-o", out + ".2.json", "--targets", "pseudonym", "--key-file", key)
    _, text2 = strict_stix(out + ".2.json")
    assert sighting_targets(text2) == pseud and text2 == text

    # CSV for the simplest consumers.
    p = run(BIN, "share", trees["parquet"], "--format", "csv")
    rows = list(csv.DictReader(p.stdout.splitlines()))
    assert {r["scanner"] for r in rows} == scanners and {r["sensor"] for r in rows} == {"east", "west"}
    assert not any(t in p.stdout for t in targets)


def test_the_same_sql_files_run_unchanged_in_spark(trees):
    """Spark SQL (PySpark from PyPI, local mode, the machine's Java) over the
    same Parquet tree gives the same answers as DuckDB."""
    if shutil.which("java") is None:
        pytest.fail("Spark needs Java: apt-get install -y default-jre-headless")
    p = subprocess.run([PY, os.path.join(ROOT, "scripts", "sql-spark.py"), trees["parquet"], "--json"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    spark = {}
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            o = json.loads(line)
            spark.setdefault(o["query"], []).append(o["row"])
    con = duckdb.connect()
    views(con, trees["parquet"])
    keys = {
        "top_scanners.sql": ("scanner", "scans", "probes", "answered", "sensors"),
        "scans_over_time.sql": ("scanner", "kind", "scans", "probes"),
        "ports_probed.sql": ("port", "proto", "probes", "scanners", "targets"),
        "open_doors.sql": ("scanner", "target", "port", "proto", "sensor", "answers"),
        "campaign.sql": ("scanner", "sensor", "scans", "probes"),
    }
    for name, cols in keys.items():
        norm = lambda rows: sorted(tuple(str(int(float(r[c]))) if isinstance(r[c], (int, float)) or  # noqa: E731
                                         str(r[c]).replace(".", "", 1).isdigit() else str(r[c])
                                         for c in cols) for r in rows)
        duck = sql(con, name)
        assert duck, name
        assert norm(spark.get(name, [])) == norm(duck), name
