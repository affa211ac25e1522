"""The packet clock on captures with timestamp faults, made from the
project's own captures by scripts/timefaults.py: small local disorder is put
back in order, a lone packet a year ahead, a zero timestamp or the largest
time pcapng can hold is left out, counted and named (input and packet
number), and a real gap moves the clock. Each faulty capture must give
exactly the flows, detections and alerts of the clean capture it stands for.
"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import pyarrow.ipc as ipc
import pytest

import eve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
SCRIPTS = os.path.join(ROOT, "scripts")
sys.path.insert(0, SCRIPTS)
import timefaults  # noqa: E402

SRC = os.path.join(ROOT, "pcaps", "nmap_syn_vertical_1-1000.pcap")
YEAR_US = 365 * 86400 * 1_000_000


def run(path, out, *extra):
    p = subprocess.run([BIN, "run", "-q", "-r", path, "-w", out, *extra],
                       capture_output=True, text=True, timeout=120)
    return p


def rows(out):
    """Every flow and detection row and every alert line, sorted."""
    res = {}
    for table in ("flows", "detections"):
        r = []
        for f in glob.glob(os.path.join(out, table, "**", "*.arrow"), recursive=True):
            part = os.path.relpath(os.path.dirname(f), out)
            for row in ipc.open_file(f).read_all().to_pylist():
                r.append(part + " " + json.dumps(row, default=str, sort_keys=True))
        res[table] = sorted(r)
    with open(os.path.join(out, "alerts.jsonl")) as f:
        text = f.read()
    eve.check_lines(text, out)
    res["alerts"] = sorted(text.splitlines())
    return res


def variant(tmp, name, pkts, link, snap, ng=False):
    path = os.path.join(tmp, name)
    (timefaults.write_pcapng if ng else timefaults.write_pcap)(path, link, snap, pkts)
    return path


@pytest.fixture(scope="module")
def clean():
    link, snap, pkts = timefaults.read_pcap(SRC)
    assert len(pkts) > 1000
    return link, snap, pkts


def same_as(tmp, faulty, reference, *extra):
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    pa_, pb = run(faulty, a, *extra), run(reference, b, *extra)
    assert pb.returncode == 0, pb.stderr
    ra, rb = rows(a), rows(b)
    assert len(rb["flows"]) > 1000 and rb["detections"], "the reference has a scan"
    for k in ("flows", "detections", "alerts"):
        assert ra[k] == rb[k], f"{k} differ"
    return pa_


def test_a_packet_a_year_ahead_is_left_out_and_named(clean):
    link, snap, pkts = clean
    with tempfile.TemporaryDirectory() as tmp:
        bad = [list(p) for p in pkts]
        bad[500][0] += YEAR_US
        faulty = variant(tmp, "future.pcap", bad, link, snap)
        ref = variant(tmp, "ref.pcap", pkts[:500] + pkts[501:], link, snap)
        p = same_as(tmp, faulty, ref)
        assert p.returncode == 0, p.stderr
        assert "1 ahead" in p.stderr and "packet 501" in p.stderr, p.stderr
        # Nothing a year ahead was written.
        assert not glob.glob(os.path.join(tmp, "a", "flows", "date=2027-*"))


def test_a_zero_timestamp_is_out_of_range(clean):
    link, snap, pkts = clean
    with tempfile.TemporaryDirectory() as tmp:
        bad = [list(p) for p in pkts]
        bad[700][0] = 0
        faulty = variant(tmp, "zero.pcap", bad, link, snap)
        ref = variant(tmp, "ref.pcap", pkts[:700] + pkts[701:], link, snap)
        p = same_as(tmp, faulty, ref)
        assert "1 out of range" in p.stderr and "packet 701" in p.stderr, p.stderr


def test_the_largest_pcapng_time_costs_nothing_and_is_reported(clean):
    link, snap, pkts = clean
    with tempfile.TemporaryDirectory() as tmp:
        bad = [list(p) for p in pkts]
        bad[500][0] = timefaults.HUGE_US
        faulty = variant(tmp, "huge.pcapng", bad, link, snap, ng=True)
        ref = variant(tmp, "ref.pcapng", pkts[:500] + pkts[501:], link, snap, ng=True)
        t0 = time.monotonic()
        p = run(faulty, os.path.join(tmp, "x"))
        took = time.monotonic() - t0
        assert p.returncode == 0, p.stderr
        assert "1 out of range" in p.stderr and "packet 501" in p.stderr, p.stderr
        # Bounded by the subprocess timeout above; the figure is for the log.
        print(f"run with the largest pcapng time: {took:.2f} s")
        same_as(tmp, faulty, ref)


@pytest.mark.parametrize("window_ms", [None, "300"])
def test_small_disorder_is_put_back_in_order(clean, window_ms):
    link, snap, pkts = clean
    with tempfile.TemporaryDirectory() as tmp:
        import random
        rnd = random.Random(7)
        bad = [list(p) for p in pkts]
        for p in bad[1:-1]:
            p[0] += rnd.randint(-50_000, 50_000)  # ±50 ms, order in the file kept
        faulty = variant(tmp, "disorder.pcap", bad, link, snap)
        ordered = sorted(bad, key=lambda p: p[0])  # stable: equal times keep file order
        assert ordered != bad, "the file is really out of order"
        ref = variant(tmp, "sorted.pcap", ordered, link, snap)
        extra = [] if window_ms is None else ["--reorder-window", window_ms]
        p = same_as(tmp, faulty, ref, *extra)
        assert "left out" not in p.stderr, p.stderr


def test_a_gap_of_hours_moves_the_clock_and_the_partitions(clean):
    link, snap, pkts = clean
    with tempfile.TemporaryDirectory() as tmp:
        gap = [list(p) for p in pkts]
        for p in gap[1200:]:
            p[0] += 5 * 3600 * 1_000_000
        path = variant(tmp, "gap.pcap", gap, link, snap)
        out = os.path.join(tmp, "o")
        p = run(path, out)
        assert p.returncode == 0 and "left out" not in p.stderr, p.stderr
        hours = {os.path.basename(d) for d in glob.glob(os.path.join(out, "flows", "*", "hour=*"))}
        assert len(hours) >= 2, hours
        r = rows(out)
        assert sum(1 for x in r["flows"]) >= 1000


def test_each_kind_of_outlier_is_counted(clean):
    link, snap, pkts = clean
    with tempfile.TemporaryDirectory() as tmp:
        bad = [list(p) for p in pkts]
        bad[100][0] = 0
        bad[900][0] += YEAR_US
        late = list(bad[1500])
        late[0] -= 10 * 1_000_000  # 10 s behind
        bad[1500] = late
        path = variant(tmp, "mixed.pcap", bad, link, snap)
        p = run(path, os.path.join(tmp, "o"), "--reorder-window", "300")
        assert "3 packets left out" in p.stderr, p.stderr
        assert "1 late" in p.stderr and "1 ahead" in p.stderr and "1 out of range" in p.stderr
