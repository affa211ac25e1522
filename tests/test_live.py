"""Live capture with real parts: two network namespaces joined by a veth pair,
scanwatch capturing on one end, Debian's nmap scanning from the other.

Needs root (namespaces, raw sockets), iproute2, nmap and tcpreplay (which
replays a generated capture over the veth for the --capture-threads
comparison); CI runs as root and installs them. Every namespace is removed whatever happens, every process and
wait is bounded in time. Prints the measured alert latency (pytest -s shows
it; it is also written to target/live-latency.json).
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pyarrow.ipc as ipc
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))

NET = "10.231.0"
SENSOR_ADDR = f"{NET}.1"
TARGETS = [f"{NET}.{i}" for i in range(1, 31)]  # 30 hosts on the sensor side
SCANNER = f"{NET}.100"   # vertical scans come from here
SWEEPER = f"{NET}.101"   # horizontal ones from here
OPEN_PORT = 80


def facts(a):
    """The scan's own facts in an alert line (EVE `alert.context.scan`):
    the one place that knows where they are."""
    return a["alert"]["context"]["scan"]


def sh(*args, timeout=30, check=True):
    return subprocess.run(list(args), check=check, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def lab():
    """Namespace A (sensor and targets, veth va) and B (scanner, veth vb)."""
    if os.geteuid() != 0:
        pytest.fail("the live tests need root (network namespaces, raw capture)")
    for tool in ("ip", "nmap"):
        if shutil.which(tool) is None:
            pytest.fail(f"the live tests need {tool}: run scripts/deps.sh")
    tag = f"{os.getpid() % 100000}"
    a, b = f"swa{tag}", f"swb{tag}"
    va, vb = f"va{tag}", f"vb{tag}"
    server = None
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        sh("ip", "link", "set", va, "netns", a)
        sh("ip", "link", "set", vb, "netns", b)
        for t in TARGETS:
            sh("ip", "-n", a, "addr", "add", f"{t}/24", "dev", va)
        sh("ip", "-n", b, "addr", "add", f"{SCANNER}/24", "dev", vb)
        sh("ip", "-n", b, "addr", "add", f"{SWEEPER}/24", "dev", vb)
        for ns, dev in ((a, va), (b, vb)):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        # One open door: a TCP listener on the sensor's first address.
        server = subprocess.Popen(
            ["ip", "netns", "exec", a, "python3", "-c",
             "import socket,time\n"
             "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             f"s.bind(('{SENSOR_ADDR}', {OPEN_PORT})); s.listen(64)\n"
             "t=time.time()\n"
             "while time.time()-t<120: time.sleep(0.5)\n"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Let the link settle (IPv6 DAD, ARP) so the scan is not racing it.
        time.sleep(1.0)
        out = tempfile.mkdtemp(prefix="scanwatch-live-")
        os.chmod(out, 0o777)
        yield {"a": a, "b": b, "va": va, "vb": vb, "out": out}
    finally:
        if server is not None:
            server.kill()
            server.wait(timeout=10)
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL, timeout=30)


def start_sensor(lab, *extra):
    p = subprocess.Popen(
        ["ip", "netns", "exec", lab["a"], BIN, "run", "-i", lab["va"], "-w", lab["out"],
         "--stats-every", "1", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait until the interface is open: the first stats line says so.
    deadline = time.time() + 10
    stats = os.path.join(lab["out"], "stats.jsonl")
    while time.time() < deadline:
        if os.path.exists(stats) and os.path.getsize(stats) > 0:
            return p
        if p.poll() is not None:
            pytest.fail(f"scanwatch exited early: {p.stderr.read()}")
        time.sleep(0.05)
    p.kill()
    pytest.fail("scanwatch did not start capturing within 10 s")


def nmap(lab, *args, src=SCANNER):
    """A bounded nmap run from the scanner's namespace."""
    return sh("ip", "netns", "exec", lab["b"], "nmap", "-n", "-Pn", "-sS", "--max-retries", "1",
              "--host-timeout", "30s", "-S", src, "-e", lab["vb"], *args, timeout=90)


def stop(p, sig=signal.SIGTERM, timeout=10):
    p.send_signal(sig)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate(timeout=10)
        pytest.fail(f"scanwatch did not exit within {timeout} s of {sig!r}")
    return p.returncode, out, err


def alerts(out):
    path = os.path.join(out, "alerts.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def final_parts(out, table):
    return sorted(glob.glob(os.path.join(out, table, "date=*", "hour=*", "part-*.arrow")))


def read_rows(paths):
    rows = []
    for p in paths:
        rows.extend(ipc.open_file(p).read_all().to_pylist())
    return rows


def epoch(ts):
    # EVE timestamps: 2026-11-25T11:20:28.819050+0000
    from datetime import datetime
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def test_live_scans_alert_within_seconds_then_clean_shutdown(lab):
    out = lab["out"]
    p = start_sensor(lab, "--user", "nobody")
    # Privileges are gone once the interface is open.
    with open(f"/proc/{p.pid}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == ["65534"] * 4, uids

    t0 = time.time()
    nmap(lab, "-p", "1-300", SENSOR_ADDR)                        # vertical, one open port
    nmap(lab, "-p", "22", f"{NET}.1-30", src=SWEEPER)            # horizontal
    want = {SCANNER: "vertical", SWEEPER: "horizontal"}
    seen = {}
    deadline = time.time() + 10
    while time.time() < deadline and set(seen) != set(want):
        for a in alerts(out):
            if a["src_ip"] in want and a["src_ip"] not in seen:
                seen[a["src_ip"]] = (a, time.time())
        time.sleep(0.01)
    assert set(seen) == set(want), f"alerts seen: {alerts(out)}"
    for src, (a, _) in seen.items():
        assert facts(a)["phase"] == "start" and facts(a)["kind"] == want[src], a
        assert a["proto"] == "TCP"
    assert facts(seen[SCANNER][0])["open"] == [f"{SENSOR_ADDR}:{OPEN_PORT}"]

    # Latency: from the scan's first probe (kernel timestamp, the clock of
    # time.time()) to the alert line being readable in alerts.jsonl. The
    # polling adds at most ~10 ms.
    latency = {}
    for src, (al, seen_at) in seen.items():
        first_probe = epoch(facts(al)["first_seen"])
        assert first_probe >= t0 - 1
        latency[want[src]] = {
            "probes_at_alert": facts(al)["probes"],
            "first_probe_to_detection_packet_time_s": epoch(facts(al)["detected"]) - first_probe,
            "first_probe_to_alert_readable_s": seen_at - first_probe,
        }
    print("\nlive alert latency:", json.dumps(latency, indent=1))
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    with open(os.path.join(ROOT, "target", "live-latency.json"), "w") as f:
        json.dump(latency, f, indent=1)
    for kind, l in latency.items():
        assert l["first_probe_to_alert_readable_s"] < 5.0, (kind, l)

    rc, stdout, stderr = stop(p, signal.SIGTERM)
    assert rc == 0, stderr
    assert not glob.glob(os.path.join(out, "**", "*.tmp"), recursive=True)

    flows = read_rows(final_parts(out, "flows"))
    tcp = [r for r in flows if r["proto"] == "tcp"]
    vert = {r["id"]["resp_p"] for r in tcp if r["id"]["orig_h"] == SCANNER}
    horiz = {r["id"]["resp_h"] for r in tcp if r["id"]["orig_h"] == SWEEPER}
    assert vert == set(range(1, 301)), len(vert)         # every probe is a flow
    assert horiz == set(TARGETS), len(horiz)
    answered = [r for r in tcp if r["id"]["orig_h"] == SCANNER and r["id"]["resp_p"] == OPEN_PORT]
    assert answered and all(r["history"].startswith("Sh") for r in answered), answered

    dets = {(d["scanner"], d["kind"], d["proto"]): d for d in read_rows(final_parts(out, "detections"))}
    assert set(dets) == {(SCANNER, "vertical", "tcp"), (SWEEPER, "horizontal", "tcp")}, set(dets)
    v, h = dets[(SCANNER, "vertical", "tcp")], dets[(SWEEPER, "horizontal", "tcp")]
    assert (v["dst_count"], v["port_count"], v["answered"]) == (1, 300, 1), v
    assert v["open"] == [f"{SENSOR_ADDR}:{OPEN_PORT}"]
    assert (h["dst_count"], h["port_count"], h["ports"]) == (30, 1, [22]), h
    assert h["open"] == [] and h["rejected"] == 30

    with open(os.path.join(out, "stats.jsonl")) as f:
        stats = [json.loads(line) for line in f]
    assert stats[-1]["kind"] == "exit"
    assert stats[-1]["received"] >= 2 * (300 + 30)
    assert stats[-1]["detections"] == 2
    assert all(s["queue_drops"] == 0 and s["kernel_dropped"] == 0 for s in stats)


def test_sighup_starts_new_files(lab):
    out = lab["out"]
    p = start_sensor(lab)
    nmap(lab, "-p", "1-100", SENSOR_ADDR)
    # Flows end at the RST, linger 2 s of packet time, then wait at most 1 s
    # on their worker before the writer has them.
    time.sleep(4.0)
    p.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline and not final_parts(out, "flows"):
        time.sleep(0.05)
    first = final_parts(out, "flows")
    assert len(first) == 1, first
    nmap(lab, "-p", "101-200", SENSOR_ADDR)
    time.sleep(4.0)
    rc, _, stderr = stop(p)
    assert rc == 0, stderr
    parts = final_parts(out, "flows")
    assert len(parts) >= 2 and parts[0] == first[0], parts
    before = [r for r in read_rows(first) if r["id"]["orig_h"] == SCANNER]
    after = [r for r in read_rows(parts[1:]) if r["id"]["orig_h"] == SCANNER]
    assert {r["id"]["resp_p"] for r in before} == set(range(1, 101))
    assert {r["id"]["resp_p"] for r in after} == set(range(101, 201))


def test_kill_9_leaves_every_final_file_readable(lab):
    out = lab["out"]
    p = start_sensor(lab)
    nmap(lab, "-p", "1-150", SENSOR_ADDR)
    time.sleep(4.0)
    p.send_signal(signal.SIGHUP)       # completes the first part
    deadline = time.time() + 5
    while time.time() < deadline and not final_parts(out, "flows"):
        time.sleep(0.05)
    nmap(lab, "-p", "151-300", SENSOR_ADDR)
    time.sleep(2.5)                    # the second part is open, mid-write
    p.kill()
    p.communicate(timeout=10)
    assert p.returncode == -signal.SIGKILL
    parts = final_parts(out, "flows")
    assert parts, os.listdir(out)
    rows = read_rows(parts)            # every final file is complete
    ports = {r["id"]["resp_p"] for r in rows if r["id"]["orig_h"] == SCANNER}
    assert set(range(1, 151)) <= ports
    # What was lost is at most the open part, still under its temporary name.
    for t in glob.glob(os.path.join(out, "**", "*.tmp"), recursive=True):
        assert t.endswith(".arrow.tmp")
    # Alerts are whole lines: each one parses.
    assert any(a["src_ip"] == SCANNER for a in alerts(out))


def test_two_interfaces_at_once(lab):
    """-i twice: the veth and the namespace's loopback, a scan on each."""
    out = lab["out"]
    p = subprocess.Popen(
        ["ip", "netns", "exec", lab["a"], BIN, "run", "-i", lab["va"], "-i", "lo", "-w", out,
         "--stats-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stats = os.path.join(out, "stats.jsonl")
    deadline = time.time() + 10
    while time.time() < deadline and not (os.path.exists(stats) and os.path.getsize(stats) > 0):
        time.sleep(0.05)
    nmap(lab, "-p", "1-100", SENSOR_ADDR)                                  # over the veth
    sh("ip", "netns", "exec", lab["a"], "nmap", "-n", "-Pn", "-sS", "--max-retries", "1",
       "--host-timeout", "30s", "-p", "1-100", "127.0.0.9", timeout=90)    # on loopback
    deadline = time.time() + 10
    srcs = set()
    while time.time() < deadline and not {SCANNER, "127.0.0.1"} <= srcs:
        srcs = {a["src_ip"] for a in alerts(out)}
        time.sleep(0.05)
    rc, _, err = stop(p)
    assert rc == 0, err
    assert {SCANNER, "127.0.0.1"} <= srcs, alerts(out)
    dets = read_rows(final_parts(out, "detections"))
    got = {(d["scanner"], d["kind"], d["port_count"]) for d in dets}
    assert {(SCANNER, "vertical", 100), ("127.0.0.1", "vertical", 100)} <= got, got


def wait_alert(out, pred, seconds):
    """The first alert (and when it became readable) matching `pred`,
    polled for at most `seconds`; (None, None) if none came."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        for a in alerts(out):
            if pred(a):
                return a, time.time()
        time.sleep(0.01)
    return None, None


def test_live_events_as_they_happen_open_door_kind_change_direction(lab):
    """Told as it happens, with times from the first probe: the start; an
    open door opened mid-scan, alerted within 1 s of its SYN-ACK; a scan
    turning from vertical into block; direction inbound for a scanner
    outside --home-net, internal for one inside."""
    import eve

    out = lab["out"]
    home = f"{NET}.0/27"                 # the targets (.1-.30) and .31
    inside = f"{NET}.31"                 # a scanner of ours
    victim = f"{NET}.2"                  # no listener until mid-scan
    door = 280
    sh("ip", "-n", lab["b"], "addr", "add", f"{inside}/24", "dev", lab["vb"])
    p = start_sensor(lab, "--home-net", home)
    listener = scan_proc = None
    try:
        # Inbound: a slow sequential vertical scan of `victim` (50 probes/s,
        # so port 280 comes ~5.6 s after port 1).
        scan_proc = subprocess.Popen(
            ["ip", "netns", "exec", lab["b"], "nmap", "-n", "-Pn", "-sS", "-r",
             "--max-retries", "1", "--max-rate", "50", "--host-timeout", "60s",
             "-S", SCANNER, "-e", lab["vb"], "-p", "1-300", victim],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start, start_seen = wait_alert(
            out, lambda a: a["src_ip"] == SCANNER and facts(a)["phase"] == "start", 5)
        assert start is not None, f"no start alert within 5 s: {alerts(out)}"
        # The door opens after the start.
        listener = subprocess.Popen(
            ["ip", "netns", "exec", lab["a"], "python3", "-c",
             "import socket,sys,time\n"
             "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             f"s.bind(('{victim}', {door})); s.listen(8)\n"
             "print('ready', flush=True)\n"
             "t=time.time()\n"
             "while time.time()-t<60: time.sleep(0.5)\n"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert listener.stdout.readline().strip() == "ready"
        opened_at = time.time()
        first_probe = epoch(facts(start)["first_seen"])
        assert start["direction"] == "inbound", start
        assert facts(start)["kind"] == "vertical" and start["dest_ip"] == victim, start
        assert f"{victim}:{door}" not in facts(start)["open"]

        od, od_seen = wait_alert(
            out, lambda a: a["src_ip"] == SCANNER and facts(a)["phase"] == "open_door", 20)
        assert od is not None, f"no open_door alert: {alerts(out)}"
        syn_ack = epoch(od["timestamp"])     # the event's time: the answer's
        assert syn_ack >= opened_at - 0.05, (syn_ack, opened_at)
        assert facts(od)["new_open"] == [f"{victim}:{door}"], od
        assert (od["dest_ip"], od["dest_port"], od["direction"]) == (victim, door, "inbound"), od
        assert od["alert"]["severity"] == 1, od
        open_door_delay = od_seen - syn_ack
        assert open_door_delay < 1.0, f"open_door {open_door_delay:.3f} s after its SYN-ACK"
        scan_proc.wait(timeout=90)

        # Internal: one of ours scans 10 hosts × 100 ports, host by host:
        # vertical on the first, block at the tenth.
        for i in range(11, 21):
            nmap(lab, "-r", "-p", "1-100", f"{NET}.{i}", src=inside)
        kc, kc_seen = wait_alert(
            out, lambda a: a["src_ip"] == inside and facts(a)["phase"] == "kind_change", 5)
        assert kc is not None, f"no kind_change alert: {alerts(out)}"
        assert (facts(kc)["previous_kind"], facts(kc)["kind"]) == ("vertical", "block"), kc
        assert kc["direction"] == "internal" and kc["dest_ip"] == f"{NET}.20", kc
        inside_start = [a for a in alerts(out)
                        if a["src_ip"] == inside and facts(a)["phase"] == "start"]
        assert [facts(a)["kind"] for a in inside_start] == ["vertical"], inside_start
        assert inside_start[0]["direction"] == "internal"
        kc_first = epoch(facts(kc)["first_seen"])
    finally:
        for proc in (scan_proc, listener):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    rc, _, err = stop(p)
    assert rc == 0, err
    every = eve.check_file(os.path.join(out, "alerts.jsonl"))   # EVE schema, 8 KiB
    ends = {a["src_ip"]: a for a in every if facts(a)["phase"] == "end"}
    assert f"{victim}:{door}" in facts(ends[SCANNER])["open"]
    # The open_door alert points at the probe's flow.
    flows = read_rows(final_parts(out, "flows"))
    probe = [r for r in flows if r["id"]["orig_h"] == SCANNER and r["id"]["resp_p"] == door]
    assert [r["flow_id"] for r in probe] == [od["flow_id"]], probe
    timings = {
        "start_alert_readable_after_first_probe_s": start_seen - first_probe,
        "open_door_alert_readable_after_syn_ack_s": open_door_delay,
        "open_door_syn_ack_after_first_probe_s": syn_ack - first_probe,
        "kind_change_after_first_probe_packet_time_s": epoch(kc["timestamp"]) - kc_first,
        "kind_change_alert_readable_after_first_probe_s": kc_seen - kc_first,
    }
    print("\nlive event timings:", json.dumps(timings, indent=1))


def replay_run(lab, pcap, capture_threads, pps):
    """scanwatch on va with `capture_threads`, `pcap` replayed into vb by
    tcpreplay at a constant `pps`; returns (flows, detections, exit stats)."""
    out = os.path.join(lab["out"], f"ct{capture_threads}")
    os.makedirs(out)
    os.chmod(out, 0o777)
    # Only the replayed traffic: not the lab's own addresses, not IPv6
    # neighbour chatter (link timing, not replayable).
    p = subprocess.Popen(
        ["ip", "netns", "exec", lab["a"], BIN, "run", "-i", lab["va"], "-w", out,
         "--stats-every", "1", "--capture-threads", str(capture_threads),
         "ip", "and", "not", "net", f"{NET}.0/24"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stats = os.path.join(out, "stats.jsonl")
    deadline = time.time() + 10
    while time.time() < deadline and not (os.path.exists(stats) and os.path.getsize(stats) > 0):
        if p.poll() is not None:
            pytest.fail(f"scanwatch exited early: {p.stderr.read()}")
        time.sleep(0.05)
    r = sh("ip", "netns", "exec", lab["b"], "tcpreplay", "-q", f"--pps={pps}", "-i", lab["vb"],
           pcap, timeout=120)
    assert "Failed packets:          0" in r.stdout or "Failed packets: 0" in " ".join(r.stdout.split()), r.stdout
    time.sleep(1.0)   # the ring's last block (the kernel's block timeout is 100 ms)
    rc, _, err = stop(p)
    assert rc == 0, err
    with open(stats) as f:
        last = [json.loads(line) for line in f if line.strip()][-1]
    assert last["kind"] == "exit", last
    return read_rows(final_parts(out, "flows")), read_rows(final_parts(out, "detections")), last, err


# What a flow or detection row is apart from wall-clock times and ids.
FLOW_SKIP = {"ts", "uid", "duration", "flow_id"}
DET_SKIP = {"ts_first", "ts_last", "ts_detected", "detection_id", "campaign_id", "rate_pps"}


def canon(rows, skip):
    return sorted(json.dumps({k: v for k, v in r.items() if k not in skip}, sort_keys=True,
                             default=str) for r in rows)


def test_two_capture_threads_same_flows_and_detections_as_one(lab):
    """--capture-threads 2 (PACKET_FANOUT) against 1 on the same traffic: a
    capture `scanwatch gen` makes (benign mix and eight scans), replayed by
    tcpreplay at a constant rate with no drops, once per setting."""
    if shutil.which("tcpreplay") is None:
        pytest.fail("the live tests need tcpreplay: run scripts/deps.sh")
    pcap = os.path.join(lab["out"], "mixed.pcap")
    sh(BIN, "gen", "--out", pcap, "--flows", "300", "--rate", "100", "--active", "50",
       "--seed", "3")
    want_packets = 6976   # what gen writes with these settings (all IPv4)
    runs = {}
    for ct in (1, 2):
        flows, dets, last, err = replay_run(lab, pcap, ct, pps=2500)
        # Lossless, or the comparison means nothing.
        assert (last["kernel_dropped"], last["if_dropped"], last["queue_drops"]) == (0, 0, 0), last
        assert last["received"] == want_packets, (ct, last, err)
        # The replay starts after the group is complete: nothing left out.
        assert last["skipped_at_start"] == 0, last
        runs[ct] = (flows, dets)
        if ct > 1:
            # The kernel did spread the traffic: every thread had a share.
            line = next(l for l in err.splitlines() if "per capture thread" in l)
            each = [int(x) for x in line.rsplit(":", 1)[1].split(",")]
            assert len(each) == ct and sum(each) == want_packets, line
            assert min(each) > want_packets // (4 * ct), line
    (f1, d1), (f2, d2) = runs[1], runs[2]
    assert len(f1) > 2000 and len(d1) >= 8, (len(f1), len(d1))
    assert canon(f2, FLOW_SKIP) == canon(f1, FLOW_SKIP)
    assert canon(d2, DET_SKIP) == canon(d1, DET_SKIP)
    assert {d["scanner"] for d in d1} >= {f"203.0.113.{i}" for i in range(1, 9)}
