#!/usr/bin/env python3
"""The Performance section's tables, from the raw lines of one sitting of
scripts/perf-sitting.sh: each file's medians against tcpdump's (wall, with
CPU seconds), the flood file's packet rate over the scans file's, and
`scanwatch bench`'s rates at 1, 2 and 4 worker threads.

    scripts/perf-table.py RAW

It prints the files table (medians of wall and CPU time, each scanwatch
binary's speed against tcpdump's: tcpdump's time over scanwatch's), the
flood's packet rate over the scans file's, and the bench table; not the
live bench, whose own table ends its raw lines. A figure the raw lines do
not hold is never printed as zero: the script names what is missing on
stderr and exits 1 (a sitting cut short, or a `scanwatch bench` whose
output changed). A median under 0.1 s gets no ratio (`n/a`): GNU time
counts in 10 ms steps.
"""

import re
import sys

TARGET = {"bulk": "≥ 0.9×", "scans": "≥ 0.5×", "flood": "rate ≥ the scans rate"}
ORDER = ("bulk", "scans", "flood")


def parse(lines):
    """(medians, cpu, packets, bench, sections seen twice, programs named,
    files named): the first four keyed by (file, program), file, or (file,
    "read"|"x1"|"x2"|"x4")."""
    med, cpu, pkts, bench = {}, {}, {}, {}
    section, seen, twice = None, set(), []
    progs_seen, files_seen = set(), set()
    for line in lines:
        m = re.match(r"## (files|bench) (\S+)", line)
        if m:
            section = m.groups()
            if section in seen:
                twice.append(f"'## {section[0]} {section[1]}'")
            seen.add(section)
            continue
        if line.startswith("## ") or line.startswith("== "):
            section = None
            continue
        if section and section[0] == "files":
            m = re.match(r"(\S+)\s+wall min [\d.]+ med ([\d.]+)\s+cpu min [\d.]+ med ([\d.]+)", line)
            if m:
                med[(section[1], m.group(1))] = float(m.group(2))
                cpu[(section[1], m.group(1))] = float(m.group(3))
            m = re.match(r"(\S+)\s+every run failed", line)
            if m:
                progs_seen.add(m.group(1))
                files_seen.add(section[1])
        elif section and section[0] == "bench":
            m = re.match(r"plain read\s+(\d+) packets.*?: (\d+) packets/s", line)
            if m:
                pkts[section[1]] = int(m.group(1))
                bench[(section[1], "read")] = int(m.group(2))
            m = re.match(r"pipeline x(\d+)\s+\d+ packets, [\d.]+ s: (\d+) packets/s", line)
            if m:
                bench[(section[1], "x" + m.group(1))] = int(m.group(2))
    progs_seen |= {k[1] for k in med}
    files_seen |= {k[0] for k in med}
    return med, cpu, pkts, bench, twice, progs_seen, files_seen


# Medians shorter than this are not turned into ratios: GNU time counts in
# 10 ms steps, so below 0.1 s the rounding alone moves a ratio by 10%.
SHORTEST = 0.1


def ratio(a, b):
    """a / b as `0.91×`."""
    return f"{a / b:.2f}×"


def tables(med, cpu, pkts, bench, twice=(), progs_seen=(), files_seen=()):
    """The tables as lines, and what is missing for them. Every program
    and file the raw lines name is in them, or named as missing: one whose
    every run failed does not just drop out of the table."""
    out, missing = [], []
    if twice:
        return out, ["one section each (" + ", ".join(twice) + " twice: two sittings in one file?)"]
    names = set(files_seen) | {k[0] for k in med}
    files = [f for f in ORDER if f in names] + sorted(names - set(ORDER))
    if not files:
        return out, ["any file's medians (no '## files F' section with tcpdump and new lines)"]
    progs = ["new"] + (["old"] if "old" in set(progs_seen) | {k[1] for k in med} else [])
    for f in files:
        for p in ["tcpdump"] + progs:
            if (f, p) not in med:
                missing.append(f"the {p} medians of {f}")
        if f not in pkts:
            missing.append(f"the packet count of {f} (its bench's plain read)")
        for k in ("read", "x1", "x2", "x4"):
            if (f, k) not in bench:
                missing.append(f"the bench rate {k} of {f}")
    if missing:
        return out, missing
    out.append("| file | packets | tcpdump | "
               + " | ".join(f"scanwatch `{p}`" for p in progs) + " | "
               + " | ".join(f"`{p}` speed ÷ tcpdump's" for p in progs) + " | target |")
    out.append("|---" * (4 + 2 * len(progs)) + "|")
    for f in files:
        t = med[(f, "tcpdump")]
        cells = [f"{med[(f, p)]:.3f} s (CPU {cpu[(f, p)]:.2f} s)" for p in progs]
        short = min([t] + [med[(f, p)] for p in progs]) < SHORTEST
        ratios = [f"n/a (a median under {SHORTEST} s)" if short else ratio(t, med[(f, p)])
                  for p in progs]
        out.append(f"| {f} | {pkts[f]:,} | {t:.3f} s (CPU {cpu[(f, 'tcpdump')]:.2f} s) | "
                   + " | ".join(cells) + " | " + " | ".join(ratios)
                   + f" | {TARGET.get(f, '')} |")
    out.append("")
    if "flood" in files and "scans" in files:
        for p in progs:
            # (flood packets / flood time) / (scans packets / scans time)
            if min(med[("scans", p)], med[("flood", p)]) < SHORTEST:
                r = f"n/a (a median under {SHORTEST} s)"
            else:
                r = ratio(pkts["flood"] * med[("scans", p)], pkts["scans"] * med[("flood", p)])
            out.append(f"flood packet rate over the scans file's (`{p}`): {r} (target ≥ 1×)")
        out.append("")
    out.append("| file | plain read | ×1 | ×2 | ×4 |")
    out.append("|---|---|---|---|---|")
    for f in files:
        cells = [f"{bench[(f, k)] / 1e6:.2f} Mpps" for k in ("read", "x1", "x2", "x4")]
        out.append(f"| {f} | " + " | ".join(cells) + " |")
    return out, missing


def main():
    if len(sys.argv) != 2:
        print("usage: perf-table.py RAW", file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1], encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        print(f"perf-table.py: {e}", file=sys.stderr)
        return 1
    med, cpu, pkts, bench, twice, progs_seen, files_seen = parse(lines)
    out, missing = tables(med, cpu, pkts, bench, twice, progs_seen, files_seen)
    if missing:
        print(f"perf-table.py: {sys.argv[1]} lacks " + "; ".join(missing), file=sys.stderr)
        return 1
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
