"""Alerts as EVE `alert` events: every line scanwatch writes for the project's
own captures and the shared corpus validates against Suricata's EVE schema
and stays under 8 KiB; the direction follows `--home-net`, in the alerts and
in the detections table alike. Run from scripts/test.sh (SCANWATCH names the
binary)."""

import glob
import os
import subprocess

import pyarrow.ipc as ipc
import pytest

import eve
from conftest import ROOT, require_shared, shared_params

BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
OWN = sorted(glob.glob(os.path.join(ROOT, "pcaps", "*.pcap")))
BLOCK = os.path.join(ROOT, "pcaps", "nmap_syn_block_20hosts_8ports.pcap")


def run(pcap, out, *extra):
    p = subprocess.run([BIN, "run", "-q", "-r", pcap, "-w", str(out), *extra],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return eve.check_file(os.path.join(out, "alerts.jsonl"))


def detections(out):
    rows = []
    for f in glob.glob(os.path.join(out, "detections", "**", "*.arrow"), recursive=True):
        rows += ipc.open_file(f).read_all().to_pylist()
    return rows


@pytest.mark.parametrize("pcap", OWN, ids=os.path.basename)
def test_every_alert_of_the_own_captures_is_a_valid_eve_alert(pcap, tmp_path):
    events = run(pcap, tmp_path)
    dets = {d["detection_id"]: d for d in detections(tmp_path)}
    assert {eve.scan(e)["id"] for e in events} == set(dets)
    for e in events:
        d = dets[eve.scan(e)["id"]]
        assert e["direction"] == d["direction"]
        assert e["alert"]["severity"] in (1, 2, 3)
        # Recorded between namespaces in 198.18.0.0/15 (outside the default
        # home network: external), or on loopback (ours scanning ours).
        assert e["direction"] == ("internal" if e["src_ip"].startswith("127.") else "external"), e


@pytest.mark.parametrize("pcap", shared_params("*.pcap*"))
def test_every_alert_of_the_shared_corpus_is_a_valid_eve_alert(pcap, tmp_path):
    if pcap is None:
        require_shared("EVE alerts of the shared corpus")
    run(pcap, tmp_path)


@pytest.mark.parametrize("home,want,severity", [
    # 198.18.0.2 scans 20 hosts of 198.19.2.0/24 (pcaps/truth.csv); six
    # ports answer on every host: an alert that lists an open door has
    # severity 1 whatever the direction.
    ("198.19.0.0/16", "inbound", 1),
    ("198.18.0.0/16", "outbound", 1),
    ("198.18.0.0/15", "internal", 1),
    ("10.0.0.0/8", "external", 1),
])
def test_direction_follows_the_home_network(home, want, severity, tmp_path):
    events = run(BLOCK, tmp_path, "--home-net", home, "--sensor", "edge-1")
    assert events
    for e in events:
        assert e["direction"] == want and e["host"] == "edge-1"
        assert e["alert"]["metadata"]["scan_direction"] == [want]
        assert f"scanwatch {want} TCP " in e["alert"]["signature"]
        digit = ["inbound", "outbound", "internal", "external"].index(want) + 1
        assert e["alert"]["signature_id"] // 1000 == 9100 + digit
    # Severity follows the doors: 1 once one is open.
    assert {e["alert"]["severity"] for e in events if eve.scan(e)["open_count"]} == {severity}
    assert [d["direction"] for d in detections(tmp_path)] == [want]


def test_a_bad_home_net_is_one_clear_error(tmp_path):
    p = subprocess.run([BIN, "run", "-q", "-r", BLOCK, "-w", str(tmp_path / "o"), "--home-net", "10.0.0.0/33"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "home_net" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


@pytest.mark.parametrize("home,own", [("198.19.0.0/16", False), ("198.18.0.0/15", True)])
def test_share_leaves_out_our_own_scanners_unless_asked(home, own, tmp_path):
    run(BLOCK, tmp_path / "o", "--home-net", home)

    def share(*extra):
        p = subprocess.run([BIN, "share", str(tmp_path / "o"), "--format", "csv", *extra],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return [l.split(",")[0] for l in p.stdout.splitlines()[1:]], p.stderr

    scanners, err = share()
    assert scanners == ([] if own else ["198.18.0.2"]), err
    assert f"{1 if own else 0} scans by our own hosts left out" in err
    scanners, _ = share("--own-scanners")
    assert scanners == ["198.18.0.2"]
