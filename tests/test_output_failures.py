"""Output failures on real file systems: a small tmpfs that fills up, and an
output folder deleted while scanwatch writes to it. Needs root (mount).

A full disk degrades the run (flow rows dropped and counted, alerts kept
whole, writing resumed when there is room); a removed output folder stops
it with one line and a non-zero exit. Every file under its final name
stays complete.
"""

import glob
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pyarrow.ipc as ipc
import pytest

import eve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))


@pytest.fixture(scope="module")
def capture():
    """A 200k-flow synthetic capture (scanwatch gen), made once."""
    d = tempfile.mkdtemp(prefix="scanwatch-outfail-")
    path = os.path.join(d, "mix.pcap")
    subprocess.run([BIN, "gen", "-o", path, "--flows", "200000", "--seed", "7"],
                   check=True, capture_output=True, timeout=300)
    yield path
    shutil.rmtree(d, ignore_errors=True)


def finals(out):
    return glob.glob(os.path.join(out, "**", "part-*.arrow"), recursive=True)


def pcap_records(path):
    """A pcap file's records (without its 24-byte global header)."""
    with open(path, "rb") as f:
        return f.read()[24:]


def test_full_disk_degrades_alerts_keep_coming_and_writing_resumes(capture, tmp_path):
    """The disk fills during a run: the run goes on, a scan that starts
    after the disk is full is still alerted (whole lines), the flow rows
    that could not be written are counted, and after space is freed new
    parts appear and read with pyarrow."""
    if os.geteuid() != 0:
        pytest.fail("needs root to mount a tmpfs")
    scan = os.path.join(ROOT, "pcaps", "nmap_syn_vertical_1-1000.pcap")
    # The scan, and a second benign capture, after the first capture in
    # packet time (gen starts at 1790000000 and lasts about 5 minutes).
    shifted = str(tmp_path / "scan.pcap")
    first_scan_ts = int(subprocess.run(["tcpdump", "-r", scan, "-c", "1", "-tt", "-n"], capture_output=True,
                                       text=True, timeout=30).stdout.split()[0].split(".")[0])
    subprocess.run(["editcap", "-F", "pcap", "-t", str(1790001000 - first_scan_ts), scan, shifted],
                   check=True, timeout=60)
    # A little traffic after the scan moves the packet clock past it (a
    # pipe is read as a file: packets wait in the reorder window until
    # later ones come), then more after the space comes back.
    nudge, later = str(tmp_path / "nudge.pcap"), str(tmp_path / "later.pcap")
    for path, flows, start in ((nudge, "200", "1790001300"), (later, "20000", "1790001600")):
        subprocess.run([BIN, "gen", "-o", path, "--flows", flows, "--seed", "8", "--start", start,
                        "--profile", "benign"], check=True, capture_output=True, timeout=300)
    head = open(capture, "rb").read()
    mnt = tempfile.mkdtemp(prefix="scanwatch-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt], check=True, timeout=30)
    out = os.path.join(mnt, "out")
    alerts = os.path.join(out, "alerts.jsonl")
    # Space that an operator frees later.
    filler = os.path.join(mnt, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * (6 << 20))
    p = subprocess.Popen([BIN, "run", "-r", "-", "-w", out, "--reorder-window", "300", "--stats-every", "1"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = ""
    try:
        # 1. 200k flows, far more than 16 MiB of parts: the disk fills.
        p.stdin.write(head)
        p.stdin.flush()
        time.sleep(3)
        # 2. A scan starts after the disk is full: its alerts still come.
        p.stdin.write(pcap_records(shifted) + pcap_records(nudge))
        p.stdin.flush()
        deadline = time.time() + 30
        seen = []
        while time.time() < deadline and not seen:
            time.sleep(0.5)
            if os.path.exists(alerts):
                seen = [a for a in eve.check_file(alerts) if a["src_ip"] == "198.18.0.2"]
        assert seen and eve.scan(seen[0])["phase"] == "start", "no alert for the scan after the disk filled"
        # 3. Space is freed (an operator removes a file): writing resumes
        # (the free space is looked at every 5 s; stats.jsonl says when),
        # new parts appear.
        os.remove(filler)
        deadline = time.time() + 30
        paused = True
        while time.time() < deadline and paused:
            time.sleep(1)
            with open(os.path.join(out, "stats.jsonl")) as f:
                paused = json.loads(f.read().splitlines()[-1])["flows_paused"]
        assert not paused, "flows still paused 30 s after space was freed"
        p.stdin.write(pcap_records(later))
        p.stdin.close()
        err = p.stderr.read().decode()
        assert p.wait(timeout=300) == 0, err
    finally:
        if p.poll() is None:
            p.kill()
        if not err:
            err = p.stderr.read().decode()
        try:
            assert "panicked" not in err
            assert "disk full" in err, err
            summary = [l for l in err.splitlines() if "disk full during the run" in l]
            assert summary, err
            dropped = int(summary[0].split(": ")[2].split()[0])
            assert dropped > 10_000, summary[0]
            assert "room again" in err, err
            # New parts after the space came back, whole, with the later
            # capture's flows (packet time 1790001600 on).
            parts = glob.glob(os.path.join(out, "flows", "**", "part-*.arrow"), recursive=True)
            assert parts, err
            late = 0
            for f in parts:
                t = ipc.open_file(f).read_all()
                late += sum(1 for ts in t["ts"].to_pylist() if ts.timestamp() >= 1790001600)
            assert late > 10_000, late
            assert not glob.glob(os.path.join(out, "**", "*.tmp"), recursive=True)
            # Every alert line whole and valid, the scan's end among them.
            events = eve.check_file(alerts)
            assert any(a["src_ip"] == "198.18.0.2" and eve.scan(a)["phase"] == "end" for a in events)
            stats = [json.loads(l) for l in open(os.path.join(out, "stats.jsonl"))]
            assert stats[-1]["disk_full_dropped"]["flow_rows"] == dropped
        finally:
            subprocess.run(["umount", mnt], timeout=30)
            os.rmdir(mnt)


def test_output_folder_deleted_while_writing(capture):
    out = tempfile.mkdtemp(prefix="scanwatch-vanish-")
    # Feed the capture through stdin slowly enough to remove the folder
    # while scanwatch is still reading.
    p = subprocess.Popen([BIN, "run", "-q", "-r", "-", "-w", out, "--max-part-rows", "20000"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    data = open(capture, "rb").read()
    half = len(data) // 2

    def feed():
        try:
            p.stdin.write(data[:half])
            p.stdin.flush()
            time.sleep(1.5)
            p.stdin.write(data[half:])
            p.stdin.close()
        except BrokenPipeError:
            pass

    t = threading.Thread(target=feed)
    t.start()
    time.sleep(1.0)
    shutil.rmtree(out)
    t.join(timeout=60)
    p.wait(timeout=120)
    err = p.stderr.read().decode()
    assert p.returncode != 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and out in lines[0] and "No such file or directory" in lines[0], err
    assert "panicked" not in err
