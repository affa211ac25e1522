"""Bounded memory under attack: a spoofed-source SYN flood from
`scanwatch gen --profile flood` (2 million sources, 4.8 million packets) with
a real vertical scan hidden in it. scanwatch, given a memory budget, stays
under it, counts what it evicted, and still finds the scan and nothing else.
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import eve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
BUDGET_MIB = 512


def wait4_bounded(pid, timeout):
    """wait4 with a time bound: the child is killed past `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got, status, usage = os.wait4(pid, os.WNOHANG)
        if got == pid:
            return got, status, usage
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.wait4(pid, 0)
            pytest.fail(f"scanwatch run did not end within {timeout} s")
        time.sleep(0.05)


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
        # The peak RSS of this one child, from the kernel (wait4's rusage),
        # not the largest of all children so far (gen ran before it).
        with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
            child = subprocess.Popen([BIN, "run", "-r", flood, "-w", out, "--max-memory", str(BUDGET_MIB)],
                                     stdout=so, stderr=se, text=True)
            pid, status, usage = wait4_bounded(child.pid, 600)
            so.seek(0)
            se.seek(0)
            stdout, stderr = so.read(), se.read()
        assert os.waitstatus_to_exitcode(status) == 0, stderr
        peak_kib = usage.ru_maxrss
        # Lower bound: the flood fills the flow table to its cap at this
        # budget (1.25 M flows, README "caps"); a peak under 100 MiB cannot
        # be this process's.
        assert peak_kib > 100 * 1024, peak_kib
        peak_mib = peak_kib / 1024
        print(f"\nflood: peak RSS {peak_mib:.0f} MiB against a budget of {BUDGET_MIB} MiB")
        with open(os.path.join(ROOT, "target", "flood-memory.json"), "w") as f:
            json.dump({"peak_rss_mib": peak_mib, "budget_mib": BUDGET_MIB, "summary": stderr}, f, indent=1)
        assert peak_mib < BUDGET_MIB, stderr
        caps = [l for l in stderr.splitlines() if "caps reached" in l]
        assert caps, stderr
        sources_evicted = int(caps[0].split(" flows and ")[1].split()[0])
        assert sources_evicted > 1_000_000, caps[0]
        found = [l for l in stdout.splitlines() if " scan: " in l]
        assert len(found) == 1 and found[0].startswith(f"{scanner} vertical tcp scan"), stdout
        alerts = eve.check_file(os.path.join(out, "alerts.jsonl"))
        assert {a["src_ip"] for a in alerts} == {scanner}
    finally:
        shutil.rmtree(out, ignore_errors=True)
