"""Output tests with real clients: pyarrow reads the Arrow files, dpkt counts
the IP packets of each capture independently of scanwatch, jq reads the
alerts. Run from the repository root after `cargo build --release`:

    python3 -m pytest -q tests/test_output.py
"""

import csv
import glob
import json
import os
import shutil
import subprocess
import tempfile

import dpkt
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
import eve
from conftest import require_shared, shared_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
PCAPS = sorted(glob.glob(os.path.join(ROOT, "pcaps", "*.pcap")))
ZEEK_STATES = {"S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH"}

FLOW_FIELDS = [
    ("ts", pa.timestamp("us", tz="UTC")),
    ("uid", pa.string()),
    ("id", None),
    ("proto", pa.string()),
    ("duration", pa.float64()),
    ("orig_pkts", pa.uint64()),
    ("orig_bytes", pa.uint64()),
    ("resp_pkts", pa.uint64()),
    ("resp_bytes", pa.uint64()),
    ("conn_state", pa.string()),
    ("history", pa.string()),
    ("community_id", pa.string()),
    ("vlan", pa.uint16()),
    ("flow_id", pa.uint64()),
]
DETECTION_FIELDS = [
    "ts_first", "ts_last", "ts_detected", "scanner", "kind", "proto", "detector",
    "dst_count", "port_count", "probes", "answered", "rejected", "unanswered",
    "ports", "targets", "open", "detection_id", "direction",
    "technique", "tool", "tool_evidence", "rate_pps", "order", "port_set", "campaign_id",
    "sources",
]


def ip_packets(path):
    """IPv4/IPv6 packets in a capture, by dpkt (Ethernet, VLAN, raw, SLL)."""
    n = 0
    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        link = reader.datalink()
        for _, buf in reader:
            if link == dpkt.pcap.DLT_EN10MB:
                if len(buf) < 14:
                    continue
                et = int.from_bytes(buf[12:14], "big")
                off = 14
                while et in (0x8100, 0x88A8) and len(buf) >= off + 4:
                    et = int.from_bytes(buf[off + 2:off + 4], "big")
                    off += 4
                n += et in (0x0800, 0x86DD)
            elif link in (dpkt.pcap.DLT_RAW, 101):
                n += bool(buf) and buf[0] >> 4 in (4, 6)
            elif link == dpkt.pcap.DLT_LINUX_SLL:
                n += int.from_bytes(buf[14:16], "big") in (0x0800, 0x86DD)
    return n


def run(pcap, out):
    r = subprocess.run([BIN, "run", "-q", "-r", pcap, "-w", out], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r


def read_table(out, table):
    files = sorted(glob.glob(os.path.join(out, table, "date=*", "hour=*", "part-*.arrow")))
    assert not glob.glob(os.path.join(out, table, "**", "*.tmp"), recursive=True)
    tables = []
    for f in files:
        with pa.memory_map(f) as src:
            tables.append(ipc.open_file(src).read_all())
    return tables


@pytest.fixture(scope="module")
def outdir():
    d = tempfile.mkdtemp(prefix="scanwatch-pytest-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("pcap", [pytest.param(p, id=os.path.basename(p)) for p in PCAPS]
                         + shared_params("*.pcap*"))
def test_flows_schema_values_and_packet_conservation(pcap, outdir):
    if pcap is None:
        require_shared("flows schema and packet conservation over the shared captures")
    out = os.path.join(outdir, os.path.basename(pcap))
    run(pcap, out)
    tables = read_table(out, "flows")
    assert tables, "no flows written"
    for t in tables:
        assert [f.name for f in t.schema] == [n for n, _ in FLOW_FIELDS]
        for name, typ in FLOW_FIELDS:
            if typ is not None:
                assert t.schema.field(name).type == typ, name
        assert t.schema.field("id").type == pa.struct(
            [
                pa.field("orig_h", pa.string(), nullable=False),
                pa.field("orig_p", pa.uint16(), nullable=False),
                pa.field("resp_h", pa.string(), nullable=False),
                pa.field("resp_p", pa.uint16(), nullable=False),
            ]
        )
        meta = {k.decode(): v.decode() for k, v in t.schema.metadata.items()}
        assert meta["scanwatch.table"] == "flows" and meta["scanwatch.schema_version"] == "3"
    t = pa.concat_tables(tables)
    states = set(t["conn_state"].to_pylist())
    assert states <= ZEEK_STATES, states
    flow_packets = sum(t["orig_pkts"].to_pylist()) + sum(t["resp_pkts"].to_pylist())
    assert flow_packets == ip_packets(pcap)
    assert all(c.startswith("1:") and len(c) == 30 for c in t["community_id"].to_pylist())
    assert all(u.startswith("C") for u in t["uid"].to_pylist())
    assert min(t["duration"].to_pylist()) >= 0


def test_detections_with_pyarrow_and_alerts_with_jq(outdir):
    pcap = os.path.join(ROOT, "pcaps", "nmap_syn_block_20hosts_8ports.pcap")
    out = os.path.join(outdir, "block")
    run(pcap, out)
    t = pa.concat_tables(read_table(out, "detections"))
    assert t.schema.names == DETECTION_FIELDS
    assert t.schema.field("ports").type == pa.list_(pa.field("item", pa.uint16(), nullable=False))
    rows = [r for r in t.to_pylist() if r["scanner"] == "198.18.0.2" and r["proto"] == "tcp"]
    assert len(rows) == 1
    d = rows[0]
    assert d["kind"] == "block"
    assert d["dst_count"] == 20 and d["port_count"] == 8
    assert d["answered"] + d["rejected"] + d["unanswered"] == d["probes"]
    # 21, 22, 25, 80, 443 and 8080 listen on every target; 23 and 445 do not.
    open_ports = {int(o.rsplit(":", 1)[1]) for o in d["open"]}
    assert open_ports == {21, 22, 25, 80, 443, 8080}
    assert len(d["open"]) == 20 * 6
    assert d["ts_first"] <= d["ts_detected"] <= d["ts_last"]

    alerts = os.path.join(out, "alerts.jsonl")
    jq = subprocess.run(
        ["jq", "-r", 'select(.event_type=="alert") | [.src_ip, .alert.context.scan.phase, .alert.context.scan.kind] | @tsv', alerts],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    phases = [l.split("\t") for l in jq if l]
    assert phases[0] == ["198.18.0.2", "start", phases[0][2]]
    assert phases[-1] == ["198.18.0.2", "end", "block"]
    assert len(phases) < 12, "alerts escalate, never one per probe"
    for ev in eve.check_file(alerts):
        assert {"timestamp", "flow_id", "event_type", "src_ip", "dest_ip", "proto", "direction", "host",
                "alert"} <= ev.keys()


def broken_kept():
    """Broken captures of which something is read, with the IP packets read
    (they go into flows), from pcaps/broken/expect.csv: the one table of
    their expected behaviour."""
    with open(os.path.join(ROOT, "pcaps", "broken", "expect.csv")) as f:
        return {r["file"]: int(r["ip"]) for r in csv.DictReader(f) if r["ip"]}


BROKEN_KEPT = broken_kept()


@pytest.mark.parametrize("name", sorted(BROKEN_KEPT))
def test_broken_file_keeps_what_came_before_readable_by_pyarrow(name, tmp_path):
    p = subprocess.run([BIN, "run", "-q", "-r", os.path.join(ROOT, "pcaps", "broken", name),
                        "-w", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode in (0, 1), p.stderr
    assert BROKEN_KEPT  # the table was read
    parts = glob.glob(str(tmp_path / "flows" / "**" / "*.arrow"), recursive=True)
    assert len(parts) == 1 and not glob.glob(str(tmp_path / "**" / "*.tmp"), recursive=True)
    t = ipc.open_file(parts[0]).read_all()
    assert sum(t.column("orig_pkts").to_pylist()) + sum(t.column("resp_pkts").to_pylist()) == BROKEN_KEPT[name]
