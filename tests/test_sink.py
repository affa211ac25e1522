"""The sink's parts as the binary writes them, read by pyarrow: the Arrow IPC
and the Parquet tree of one capture hold the same rows, their packets add
up to dpkt's independent count of the capture's IP packets, no `.tmp` is
left, and every alert line is JSON with Suricata's field names. Run from
the repository root after `cargo build --profile ci`:

    SCANWATCH=target/ci/scanwatch python3 -m pytest -q tests/test_sink.py
"""

import glob
import json
import os
import subprocess

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import eve
from test_output import ip_packets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
CAPTURES = ["nmap_syn_block_20hosts_8ports.pcap", "hping3_udp_horizontal_p161.pcap",
            "benign_web_and_dns_client.pcap"]


def write(pcap, out, fmt):
    p = subprocess.run([BIN, "run", "-q", "-r", pcap, "-w", str(out), "--format", fmt],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert not glob.glob(os.path.join(str(out), "**", "*.tmp"), recursive=True)


def read(out, table, fmt):
    parts = sorted(glob.glob(os.path.join(str(out), table, "date=*", "hour=*", f"part-*.{fmt}")))
    if fmt == "arrow":
        tables = [ipc.open_file(f).read_all() for f in parts]
    else:
        tables = [pq.read_table(f) for f in parts]
    return parts, (pa.concat_tables(tables) if tables else None)


def rows(t, key):
    return sorted(t.to_pylist(), key=lambda r: r[key]) if t is not None else []


@pytest.mark.parametrize("name", CAPTURES)
def test_arrow_and_parquet_parts_hold_the_same_rows_and_dpkts_packets(name, tmp_path):
    pcap = os.path.join(ROOT, "pcaps", name)
    write(pcap, tmp_path / "a", "arrow")
    write(pcap, tmp_path / "p", "parquet")
    fa_parts, fa = read(tmp_path / "a", "flows", "arrow")
    fp_parts, fp = read(tmp_path / "p", "flows", "parquet")
    assert fa_parts and len(fa_parts) == len(fp_parts)
    assert fa.schema.names == fp.schema.names
    assert rows(fa, "uid") == rows(fp, "uid")
    # Every IP packet of the capture, by dpkt's count, is in exactly one flow.
    want = ip_packets(pcap)
    assert want > 0
    for t in (fa, fp):
        assert sum(t["orig_pkts"].to_pylist()) + sum(t["resp_pkts"].to_pylist()) == want
    _, da = read(tmp_path / "a", "detections", "arrow")
    _, dp = read(tmp_path / "p", "detections", "parquet")
    assert rows(da, "detection_id") == rows(dp, "detection_id")
    assert (da is None) == name.startswith("benign")


def test_alert_lines_are_eve_alerts_valid_against_suricatas_schema(tmp_path):
    pcap = os.path.join(ROOT, "pcaps", "nmap_syn_block_20hosts_8ports.pcap")
    write(pcap, tmp_path, "arrow")
    events = eve.check_file(tmp_path / "alerts.jsonl")
    assert events
    _, det = read(tmp_path, "detections", "arrow")
    ids = set(det["detection_id"].to_pylist())
    for ev in events:
        assert ev["event_type"] == "alert" and ev["proto"] == "TCP"
        assert ev["src_ip"] == "198.18.0.2"
        assert ev["timestamp"].endswith("+0000") and len(ev["timestamp"]) == 31
        assert ev["alert"]["gid"] == 1 and 9_100_000 < ev["alert"]["signature_id"] < 9_105_000
        s = eve.scan(ev)
        assert s["id"] in ids
        assert s["phase"] in ("start", "update", "kind_change", "open_door", "end")
        assert s["answered"] + s["rejected"] + s["unanswered"] == s["probes"]
    assert eve.scan(events[-1])["phase"] == "end"
