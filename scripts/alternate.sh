#!/usr/bin/env bash
# Times commands alternately, N rounds, and prints each one's wall and CPU
# seconds (min and median). Alternating within one sitting is how the
# README's ratios were measured: on a shared machine the same command varies
# by 20% from minute to minute, so only runs made side by side compare.
#
#   scripts/alternate.sh 11 \
#     "tcpdump=tcpdump -r target/reference/scans.pcap -w /dev/null" \
#     "scanwatch=target/release/scanwatch run -r target/reference/scans.pcap -w /tmp/alt-out"
#
# Each command runs with its output folder removed first: /tmp/alt-out, or
# ALT_OUT (the commands name it themselves). A run that exits non-zero (an
# error, a signal, or the 600 s timeout) is not timed: it is
# left out of the medians and named in its command's line, and the script
# exits 1, so a broken build never shows up as a fast one. The
# order turns by one each round (round r starts with command r mod k), so
# every command runs in every position equally often when ROUNDS is a
# multiple of the number of commands. On this kind of machine position
# matters: one binary run twice per round in a fixed order (tcpdump, A, B)
# was 8% slower in wall and CPU time as B, right after another scanwatch
# run, than as A, right after tcpdump (bulk file, 8 rounds, 2026-12-01
# 15:52 UTC). The sittings before that used a fixed order, which favoured
# the command listed right after tcpdump.
set -euo pipefail
n=${1:?usage: alternate.sh ROUNDS LABEL=COMMAND...}
shift
(( n >= 1 && n <= 100 )) || { echo "alternate.sh: ROUNDS must be 1..100" >&2; exit 2; }
out=${ALT_OUT:-/tmp/alt-out}
t=$(mktemp)
trap 'rm -f "$t"' EXIT
specs=("$@")
k=${#specs[@]}
for r in $(seq 0 $((n - 1))); do
  for j in $(seq 0 $((k - 1))); do
    spec=${specs[$(((r + j) % k))]}
    label=${spec%%=*}
    cmd=${spec#*=}
    rm -rf "$out"
    # The exit status is time's own: the command's, or 128 + the signal
    # that ended it (time's %x says 0 for a command killed by a signal).
    rc=0
    /usr/bin/time -f "$label %e %U %S" -o "$t" timeout 600 bash -c "$cmd" >/dev/null 2>&1 || rc=$?
    echo "$(tail -n 1 "$t") $rc"
  done
done | python3 -c '
import sys, collections, statistics
d = collections.defaultdict(list)
failed = collections.defaultdict(list)
for line in sys.stdin:
    k, w, u, s, x = line.split()
    if x != "0":
        failed[k].append(x)
        continue
    d[k].append((float(w), float(u) + float(s)))
for k in list(d) + [k for k in failed if k not in d]:
    v = d.get(k, [])
    bad = failed.get(k, [])
    codes = ",".join(bad)
    note = f", {len(bad)} FAILED (exit {codes}), left out" if bad else ""
    if not v:
        print(f"{k:14s} every run failed{note}")
        continue
    w = [a for a, _ in v]
    c = [b for _, b in v]
    print(f"{k:14s} wall min {min(w):.3f} med {statistics.median(w):.3f}   "
          f"cpu min {min(c):.2f} med {statistics.median(c):.2f}   ({len(v)} runs{note})")
if failed:
    print("alternate.sh: a command failed; its times are left out (run it alone to see why)", file=sys.stderr)
    sys.exit(1)
'
