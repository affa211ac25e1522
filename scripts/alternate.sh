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
# Each command runs with its output folder /tmp/alt-out removed first.
set -euo pipefail
n=${1:?usage: alternate.sh ROUNDS LABEL=COMMAND...}
shift
(( n >= 1 && n <= 100 )) || { echo "alternate.sh: ROUNDS must be 1..100" >&2; exit 2; }
t=$(mktemp)
trap 'rm -f "$t"' EXIT
for _ in $(seq "$n"); do
  for spec in "$@"; do
    label=${spec%%=*}
    cmd=${spec#*=}
    rm -rf /tmp/alt-out
    /usr/bin/time -f "$label %e %U %S" -o "$t" timeout 600 bash -c "$cmd" >/dev/null 2>&1 || true
    tail -n 1 "$t"
  done
done | python3 -c '
import sys, collections, statistics
d = collections.defaultdict(list)
for line in sys.stdin:
    k, w, u, s = line.split()
    d[k].append((float(w), float(u) + float(s)))
for k, v in d.items():
    w = [a for a, _ in v]
    c = [b for _, b in v]
    print(f"{k:14s} wall min {min(w):.3f} med {statistics.median(w):.3f}   "
          f"cpu min {min(c):.2f} med {statistics.median(c):.2f}   ({len(v)} runs)")
'
