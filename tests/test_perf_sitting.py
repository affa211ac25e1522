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


def table_rows(text):
    """{file: [files-table cells, bench-table cells]} of perf-table's output."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in ("bulk", "scans", "flood"):
            rows.setdefault(cells[0], []).append(cells)
    return rows


def test_the_readme_figures_are_the_tables_of_the_sittings_raw_lines():
    p = table(SITTING)
    assert p.returncode == 0, p.stderr
    rows = table_rows(p.stdout)
    files, bench = {k: v[0] for k, v in rows.items()}, {k: v[1] for k, v in rows.items()}
    # The medians of the raw lines, and the ratios computed from them.
    assert files["bulk"][1:4] == ["7,990,400", "1.550 s (CPU 1.54 s)", "1.695 s (CPU 3.10 s)"]
    assert files["scans"][2:5] == ["0.465 s (CPU 0.46 s)", "1.735 s (CPU 3.28 s)", "2.370 s (CPU 4.33 s)"]
    assert [files[f][5] for f in ("bulk", "scans", "flood")] == ["0.91×", "0.27×", "0.29×"]
    assert [files[f][6] for f in ("bulk", "scans", "flood")] == ["0.76×", "0.20×", "0.15×"]
    flood = re.search(r"scans file's \(`new`\): ([\d.]+×)", p.stdout).group(1)
    assert flood == "0.90×"
    assert "flood packet rate over the scans file's (`old`): 0.64×" in p.stdout
    assert bench["bulk"] == ["bulk", "20.87 Mpps", "4.86 Mpps", "4.83 Mpps", "4.96 Mpps"]
    assert bench["scans"][2:] == ["1.85 Mpps", "1.93 Mpps", "1.88 Mpps"]
    assert bench["flood"][2:] == ["1.21 Mpps", "1.53 Mpps", "1.50 Mpps"]
    # The README's section says what the tables say.
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("### Where it stands (sitting of 2026-12-02, 06:04–06:13 UTC)", 1)[1]
    section = section.split("\n### ", 1)[0]
    for f in ("bulk", "scans"):
        assert f"| **{files[f][5]}** (before: {files[f][6]}) |" in section, f
    assert f"its packet rate **{flood}** the scans file's (before: 0.64×)" in section
    for f in ("bulk", "scans", "flood"):
        assert f"| {f} | " in section
        row = next(l for l in section.splitlines() if l.startswith(f"| {f} | ") and "Mpps" in l)
        assert row.endswith(" | ".join(bench[f][2:]) + " |"), (row, bench[f])


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


def test_a_command_that_fails_is_not_timed(tmp_path):
    flip = tmp_path / "flip"
    # `some` fails every other run; `segv` dies from a signal (GNU time's
    # %x says 0 for that: the status checked is time's own, 128 + 11).
    p = subprocess.run([os.path.join(SCRIPTS, "alternate.sh"), "2", "ok=true", "broken=exit 3",
                        "segv=kill -SEGV $$",
                        f"some=if [ -e {flip} ]; then rm {flip}; else touch {flip}; exit 2; fi"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert re.search(r"^ok\s+wall min [\d.]+ med [\d.]+\s+cpu .*\(2 runs\)$", p.stdout, re.M)
    assert re.search(r"^broken\s+every run failed, 2 FAILED \(exit 3,3\), left out$", p.stdout, re.M)
    assert re.search(r"^segv\s+every run failed, 2 FAILED \(exit 139,139\), left out$", p.stdout, re.M)
    assert re.search(r"^some\s+wall min .*\(1 runs, 1 FAILED \(exit 2\), left out\)$", p.stdout, re.M)


def sitting(tmp_path, binary, captures, timeout):
    """Runs scripts/perf-sitting.sh 2 from `tmp_path` with `binary` on
    `captures` ({name: file of pcaps/}, copied to REF/name.pcap); returns
    the process and its raw-lines file. Needs tcpdump (CI: scripts/deps.sh)."""
    if shutil.which("tcpdump") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tcpdump missing (scripts/deps.sh installs it)")
        pytest.skip("tcpdump missing: the sitting not checked")
    ref = tmp_path / "ref"
    ref.mkdir()
    for name, f in captures.items():
        shutil.copy(os.path.join(ROOT, "pcaps", f), ref / f"{name}.pcap")
    raw = tmp_path / "raw.txt"
    env = dict(os.environ, SCANWATCH=str(binary), REF=str(ref), RAW=str(raw),
               FILES=" ".join(captures))
    env.pop("LIVE", None)
    env.pop("OLD", None)
    # Run from another folder: the paths given are the caller's.
    p = subprocess.run([os.path.join(SCRIPTS, "perf-sitting.sh"), "2"], capture_output=True,
                       text=True, timeout=timeout, env=env, cwd=str(tmp_path))
    return p, raw


def test_a_sitting_whose_runs_fail_says_so_and_prints_no_ratio(tmp_path):
    fake = tmp_path / "scanwatch"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && { echo 'scanwatch 0 (broken)'; exit 0; }\n"
                    "echo 'scanwatch: cannot write' >&2\nexit 1\n")
    fake.chmod(0o755)
    p, raw = sitting(tmp_path, fake, {"scans": "nmap_syn_vertical_1-1000.pcap"}, 120)
    assert p.returncode != 0
    assert "the sitting stopped (exit 1)" in p.stderr
    assert f"raw lines: {raw}" in p.stdout
    assert re.search(r"^new\s+every run failed, 2 FAILED \(exit 1,1\)", raw.read_text(), re.M)
    assert "lacks the new medians of scans" in p.stderr
    assert "×" not in p.stdout


def test_a_sitting_runs_end_to_end_on_small_captures(tmp_path):
    src = {
        "bulk": "benign_web_and_dns_client.pcap",
        "scans": "nmap_syn_vertical_1-1000.pcap",
        "flood": "masscan_syn_vertical_1-500.pcap",
    }
    p, raw = sitting(tmp_path, BIN, src, 300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert f"raw lines: {raw}" in p.stdout
    text = raw.read_text(encoding="utf-8")
    for name in src:
        assert f"## files {name}" in text and f"## bench {name}" in text
    # Each file's packet count in the table is its own, counted here from
    # its record headers.
    for name, f in src.items():
        n = pcap_records(os.path.join(ROOT, "pcaps", f))
        row = table_rows(p.stdout)[name][0]
        assert row[1] == f"{n:,}", (row, n)
        times = [float(c.split(" s ")[0]) for c in row[2:4]]
        # A median under 0.1 s (these captures take tcpdump a few ms) gets
        # no ratio: GNU time's 10 ms steps would make it up.
        if min(times) < 0.1:
            assert row[4] == "n/a (a median under 0.1 s)", row
        else:
            assert row[4] == f"{times[0] / times[1]:.2f}×", row
    assert re.search(r"flood packet rate over the scans file's \(`new`\): ([\d.]+×|n/a)", p.stdout)
