"""`--flows-format table,zeek-json`: DIR/conn.log holds Zeek's JSON conn.log
lines of the same flows as the flows table, row for row. Read here with
pandas (`read_json(lines=True)`) and with plain per-line field access as
`zeek-cut` does. Run from scripts/test.sh (SCANWATCH names the binary)."""

import glob
import json
import os
import subprocess

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from conftest import ROOT

BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
OWN = sorted(glob.glob(os.path.join(ROOT, "pcaps", "*.pcap")))


def run(pcap, out, fmt):
    p = subprocess.run([BIN, "run", "-q", "-r", pcap, "-w", str(out), "--flows-format", fmt],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("pcap", OWN, ids=os.path.basename)
def test_zeek_conn_lines_match_the_flows_table_row_for_row(pcap, tmp_path):
    run(pcap, tmp_path, "table,zeek-json")
    parts = glob.glob(str(tmp_path / "flows" / "**" / "*.arrow"), recursive=True)
    flows = pa.concat_tables([ipc.open_file(f).read_all() for f in parts]).to_pylist()
    conn = pd.read_json(tmp_path / "conn.log", lines=True, dtype={"uid": str})
    assert len(conn) == len(flows) > 0
    by_uid = {r["uid"]: r for r in conn.to_dict("records")}
    assert len(by_uid) == len(flows)
    for f in flows:
        z = by_uid[f["uid"]]
        assert z["id.orig_h"] == f["id"]["orig_h"] and z["id.resp_h"] == f["id"]["resp_h"]
        assert z["id.orig_p"] == f["id"]["orig_p"] and z["id.resp_p"] == f["id"]["resp_p"]
        assert z["proto"] == f["proto"] and z["conn_state"] == f["conn_state"]
        assert z["orig_pkts"] == f["orig_pkts"] and z["resp_pkts"] == f["resp_pkts"]
        assert z["flow_id"] == f["flow_id"] and z["community_id"] == f["community_id"]
        assert abs(z["ts"] - f["ts"].timestamp()) < 1e-6
        hist = z.get("history")
        assert (f["history"] or None) == (None if pd.isna(hist) else hist)
        if f["orig_pkts"] + f["resp_pkts"] > 1:
            assert z["orig_bytes"] == f["orig_bytes"] and z["resp_bytes"] == f["resp_bytes"]
            assert abs(z["duration"] - f["duration"]) < 1e-6
        else:
            # Zeek leaves these unset for a one-packet connection.
            assert pd.isna(z["duration"]) and pd.isna(z["orig_bytes"])


def test_zeek_cut_style_access_and_zeek_only_output(tmp_path):
    pcap = os.path.join(ROOT, "pcaps", "nmap_syn_block_20hosts_8ports.pcap")
    run(pcap, tmp_path, "zeek-json")
    # zeek-json alone: conn.log, no flows table; detections as always.
    assert not glob.glob(str(tmp_path / "flows" / "**" / "*.arrow"), recursive=True)
    assert glob.glob(str(tmp_path / "detections" / "**" / "*.arrow"), recursive=True)
    cut = []
    with open(tmp_path / "conn.log") as f:
        for line in f:
            r = json.loads(line)
            cut.append((r["id.orig_h"], r["id.resp_p"], r["conn_state"]))
    assert {c[0] for c in cut} == {"198.18.0.2"}
    assert {c[1] for c in cut} == {21, 22, 23, 25, 80, 443, 445, 8080}
    assert {c[2] for c in cut} <= {"S0", "SF", "REJ", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH", "S1",
                                   "S2", "S3"}
