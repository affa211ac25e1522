#!/usr/bin/env python3
"""The Performance section's tables, from the raw lines of one sitting of
scripts/perf-sitting.sh: each file's medians against tcpdump's (wall, with
CPU seconds), the flood file's packet rate over the scans file's, and
`scanwatch bench`'s rates at 1, 2 and 4 worker threads.

    scripts/perf-table.py RAW

A figure the raw lines do not hold is never printed as zero: the script
names what is missing on stderr and exits 1 (a sitting cut short, or a
`scanwatch bench` whose output changed).
"""

import re
import sys

TARGET = {"bulk": "≥ 0.9×", "scans": "≥ 0.5×", "flood": "rate ≥ the scans rate"}
ORDER = ("bulk", "scans", "flood")


def parse(lines):
    """(medians, cpu, packets, bench) keyed by (file, program) or file or
    (file, "read"|"x1"|"x2"|"x4")."""
    med, cpu, pkts, bench = {}, {}, {}, {}
    section = None
    for line in lines:
        m = re.match(r"## (files|bench) (\w+)", line)
        if m:
            section = m.groups()
            continue
        if line.startswith("## ") or line.startswith("== "):
            section = None
            continue
        if section and section[0] == "files":
            m = re.match(r"(\S+)\s+wall min [\d.]+ med ([\d.]+)\s+cpu min [\d.]+ med ([\d.]+)", line)
            if m:
                med[(section[1], m.group(1))] = float(m.group(2))
                cpu[(section[1], m.group(1))] = float(m.group(3))
        elif section and section[0] == "bench":
            m = re.match(r"plain read\s+(\d+) packets.*?: (\d+) packets/s", line)
            if m:
                pkts[section[1]] = int(m.group(1))
                bench[(section[1], "read")] = int(m.group(2))
            m = re.match(r"pipeline x(\d+)\s+\d+ packets, [\d.]+ s: (\d+) packets/s", line)
            if m:
                bench[(section[1], "x" + m.group(1))] = int(m.group(2))
    return med, cpu, pkts, bench


def ratio(a, b):
    """a / b as `0.91×`; `n/a` when either side took less than the timer's
    10 ms (GNU time prints 0.00): a ratio of zeros is no measurement."""
    if a <= 0 or b <= 0:
        return "n/a (a median under 10 ms)"
    return f"{a / b:.2f}×"


def tables(med, cpu, pkts, bench):
    """The tables as lines, and what is missing for them."""
    out, missing = [], []
    files = [f for f in ORDER if any(k[0] == f for k in med)]
    files += sorted({k[0] for k in med} - set(files))
    if not files:
        return out, ["any file's medians (no '## files F' section with tcpdump and new lines)"]
    progs = [p for p in ("new", "old") if any((f, p) in med for f in files)]
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
               + " | ".join(f"`{p}` × tcpdump" for p in progs) + " | target |")
    out.append("|---" * (4 + 2 * len(progs)) + "|")
    for f in files:
        t = med[(f, "tcpdump")]
        cells = [f"{med[(f, p)]:.3f} s (CPU {cpu[(f, p)]:.2f} s)" for p in progs]
        ratios = [ratio(t, med[(f, p)]) for p in progs]
        out.append(f"| {f} | {pkts[f]:,} | {t:.3f} s (CPU {cpu[(f, 'tcpdump')]:.2f} s) | "
                   + " | ".join(cells) + " | " + " | ".join(ratios)
                   + f" | {TARGET.get(f, '')} |")
    out.append("")
    if "flood" in files and "scans" in files:
        for p in progs:
            # (flood packets / flood time) / (scans packets / scans time)
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
    out, missing = tables(*parse(lines))
    if missing:
        print(f"perf-table.py: {sys.argv[1]} lacks " + "; ".join(missing), file=sys.stderr)
        return 1
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
