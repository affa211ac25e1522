"""The performance harness: scripts/perf-sitting.sh runs one sitting and
scripts/perf-table.py turns its raw lines into the README's tables. The
table maker is checked on a real sitting's committed raw lines (the
figures the README gives must come out of them), must refuse a sitting cut
short rather than print zeros, and the whole sitting must run end to end on
small captures. scripts/alternate.sh must not time a command that failed.
"""

import os
import re
import shutil
import struct
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
SCRIPTS = os.path.join(ROOT, "scripts")
SITTING = os.path.join(ROOT, "docs", "sitting-2026-12-02-tenth.txt")


def table(path):
    return subprocess.run(["python3", os.path.join(SCRIPTS, "perf-table.py"), path],
                          capture_output=True, text=True, timeout=60)


def pcap_records(path):
    """Records in a classic pcap file, counted from its record headers."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    off, n = 24, 0
    while off + 16 <= len(data):
        incl = struct.unpack(end + "I", data[off + 8:off + 12])[0]
        off += 16 + incl
        n += 1
    assert off == len(data), f"{path}: a cut record"
    return n


def test_the_readme_figures_come_out_of_the_sittings_raw_lines():
    p = table(SITTING)
    assert p.returncode == 0, p.stderr
    rows = {}
    for line in p.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0] in ("bulk", "scans", "flood"):
            rows.setdefault(cells[0], []).append(cells)
    files, bench = {k: v[0] for k, v in rows.items()}, {k: v[1] for k, v in rows.items()}
    # The medians of the raw lines, and the ratios the README states.
    assert files["bulk"][1:3] == ["7,990,400", "1.550 s (CPU 1.54 s)"]
    assert files["bulk"][3] == "1.695 s (CPU 3.10 s)"
    assert [files[f][5] for f in ("bulk", "scans", "flood")] == ["0.91×", "0.27×", "0.29×"]
    assert [files[f][6] for f in ("bulk", "scans", "flood")] == ["0.76×", "0.20×", "0.15×"]
    assert "flood packet rate over the scans file's (`new`): 0.90×" in p.stdout
    assert "flood packet rate over the scans file's (`old`): 0.64×" in p.stdout
    assert bench["bulk"] == ["bulk", "20.87 Mpps", "4.86 Mpps", "4.83 Mpps", "4.96 Mpps"]
    assert bench["flood"][2:] == ["1.21 Mpps", "1.53 Mpps", "1.50 Mpps"]


def test_a_sitting_cut_short_is_refused_not_printed_as_zeros(tmp_path):
    lines = open(SITTING, encoding="utf-8").read().splitlines()
    # Cut where the scans file's bench starts: its rates and the flood's
    # are missing, and the flood's packet rate cannot be computed.
    cut = next(i for i, l in enumerate(lines) if l.startswith("## bench scans"))
    short = tmp_path / "short.txt"
    short.write_text("\n".join(lines[:cut]) + "\n", encoding="utf-8")
    p = table(str(short))
    assert p.returncode == 1
    assert p.stdout == ""
    assert "the packet count of scans" in p.stderr
    assert "the bench rate x4 of flood" in p.stderr
    assert "bulk" not in p.stderr.split("lacks", 1)[1]


def test_a_command_that_fails_is_not_timed():
    p = subprocess.run([os.path.join(SCRIPTS, "alternate.sh"), "2", "ok=true", "broken=exit 3"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert re.search(r"^ok\s+wall min [\d.]+ med [\d.]+\s+cpu .*\(2 runs\)$", p.stdout, re.M)
    assert re.search(r"^broken\s+every run failed, 2 FAILED \(exit 3,3\), left out$", p.stdout, re.M)


def test_a_sitting_runs_end_to_end_on_small_captures(tmp_path):
    if shutil.which("tcpdump") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tcpdump missing (scripts/deps.sh installs it)")
        pytest.skip("tcpdump missing: the sitting not checked")
    ref = tmp_path / "ref"
    ref.mkdir()
    src = {
        "bulk": "benign_web_and_dns_client.pcap",
        "scans": "nmap_syn_vertical_1-1000.pcap",
        "flood": "masscan_syn_vertical_1-500.pcap",
    }
    for name, f in src.items():
        shutil.copy(os.path.join(ROOT, "pcaps", f), ref / f"{name}.pcap")
    raw = tmp_path / "raw.txt"
    env = dict(os.environ, SCANWATCH=BIN, REF=str(ref), RAW=str(raw))
    env.pop("LIVE", None)
    env.pop("OLD", None)
    p = subprocess.run([os.path.join(SCRIPTS, "perf-sitting.sh"), "2"], capture_output=True,
                       text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert f"raw lines: {raw}" in p.stdout
    text = raw.read_text(encoding="utf-8")
    for name in src:
        assert f"## files {name}" in text and f"## bench {name}" in text
    # Each file's packet count in the table is its own, counted here from
    # its record headers.
    for name, f in src.items():
        n = pcap_records(os.path.join(ROOT, "pcaps", f))
        # These captures take tcpdump under the timer's 10 ms: no ratio of
        # zeros, "n/a" instead (or a ratio, on a machine slow enough).
        assert re.search(rf"^\| {name} \| {n:,} \| [\d.]+ s \(CPU [\d.]+ s\) \| [\d.]+ s .*"
                         rf"\| ([1-9][\d.]*×|0\.0*[1-9]\d*×|n/a \(a median under 10 ms\)) \|",
                         p.stdout, re.M), (name, n, p.stdout)
    assert re.search(r"flood packet rate over the scans file's \(`new`\): ([\d.]+×|n/a)", p.stdout)
    assert "0.00×" not in p.stdout
