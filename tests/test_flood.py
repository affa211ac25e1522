"""Bounded memory under attack: a spoofed-source SYN flood from
`scanwatch gen --profile flood` (2 million sources, 4.8 million packets) with
a real vertical scan hidden in it. scanwatch, given a memory budget, stays
under it, counts what it evicted, and still finds the scan and nothing else.
"""

import csv
import json
import os
import resource
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
BUDGET_MIB = 512


@pytest.fixture(scope="module")
def flood():
    d = tempfile.mkdtemp(prefix="scanwatch-flood-")
    path = os.path.join(d, "flood.pcap")
    subprocess.run([BIN, "gen", "--profile", "flood", "-o", path, "--seed", "3"],
                   check=True, capture_output=True, timeout=300)
    yield path
    shutil.rmtree(d, ignore_errors=True)


def test_spoofed_flood_stays_under_the_memory_budget_and_the_scan_is_found(flood):
    with open(flood + ".truth.csv") as f:
        truth = [r for r in csv.DictReader(f) if r["scan_type"] != "none"]
    assert len(truth) == 1
    scanner = truth[0]["scanner_ip"]
    out = tempfile.mkdtemp(prefix="scanwatch-flood-out-")
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        p = subprocess.run([BIN, "run", "-r", flood, "-w", out, "--max-memory", str(BUDGET_MIB)],
                           capture_output=True, text=True, timeout=600)
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        assert p.returncode == 0, p.stderr
        # ru_maxrss of the children is the largest one: scanwatch run, unless
        # gen was larger (it streams, so it is not).
        assert peak_kib >= before
        peak_mib = peak_kib / 1024
        print(f"\nflood: peak RSS {peak_mib:.0f} MiB against a budget of {BUDGET_MIB} MiB")
        with open(os.path.join(ROOT, "target", "flood-memory.json"), "w") as f:
            json.dump({"peak_rss_mib": peak_mib, "budget_mib": BUDGET_MIB, "summary": p.stderr}, f, indent=1)
        assert peak_mib < BUDGET_MIB, p.stderr
        caps = [l for l in p.stderr.splitlines() if "caps reached" in l]
        assert caps, p.stderr
        sources_evicted = int(caps[0].split(" flows and ")[1].split()[0])
        assert sources_evicted > 1_000_000, caps[0]
        found = [l for l in p.stdout.splitlines() if " scan: " in l]
        assert len(found) == 1 and found[0].startswith(f"{scanner} vertical tcp scan"), p.stdout
    finally:
        shutil.rmtree(out, ignore_errors=True)
