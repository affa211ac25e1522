#!/usr/bin/env bash
# One sitting of the Performance section's measurements, in the order the
# README reports them, and the table it gives:
#   1. scanwatch against `tcpdump -r F -w /dev/null` on the reference files
#      (scripts/alternate.sh: ROUNDS rounds, the order turning each round;
#      with OLD, a second scanwatch binary alternates too);
#   2. `scanwatch bench --threads-list 1,2,4` on each file;
#   3. with LIVE=1 (root), scripts/live-bench.sh on its veth.
# Then it prints, from the medians, each file's ratio to tcpdump, the flood
# file's packet rate over the scans file's, and the bench rates, against
# the targets of issue 18 (bulk >= 0.9x, scans >= 0.5x, flood >= the scans
# rate), with each program's median CPU seconds beside its median wall
# time. Wall times on a shared machine move by 20% from minute to minute:
# only figures of one sitting compare.
#
#   scripts/perf-sitting.sh [ROUNDS]            # ROUNDS 1..100, default 12
#   OLD=/tmp/scanwatch-main scripts/perf-sitting.sh 12
#
# Environment: SCANWATCH (default target/release/scanwatch), OLD, REF
# (folder of bulk.pcap, scans.pcap and flood.pcap; default target/reference,
# made by scripts/make-reference.sh and `scanwatch gen --profile flood
# --flood-sources 1000000 --seed 1 -o REF/flood.pcap`), FILES (default
# "bulk scans flood"), LIVE (1: also the live bench), RAW (file for the raw
# lines; default a new file under /tmp, named at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-12}
(( rounds >= 1 && rounds <= 100 )) || { echo "perf-sitting.sh: ROUNDS must be 1..100" >&2; exit 2; }
SW=${SCANWATCH:-target/release/scanwatch}
REF=${REF:-target/reference}
FILES=${FILES:-bulk scans flood}
RAW=${RAW:-$(mktemp /tmp/perf-sitting.XXXXXX.txt)}
[ -x "$SW" ] || { echo "perf-sitting.sh: no scanwatch binary at $SW (cargo build --release, or set SCANWATCH)" >&2; exit 1; }
[ -z "${OLD:-}" ] || [ -x "$OLD" ] || { echo "perf-sitting.sh: OLD=$OLD is not an executable" >&2; exit 1; }
command -v tcpdump >/dev/null || { echo "perf-sitting.sh: needs tcpdump (apt-get install -y tcpdump)" >&2; exit 1; }
for f in $FILES; do
  [ -s "$REF/$f.pcap" ] || { echo "perf-sitting.sh: no $REF/$f.pcap: see scripts/make-reference.sh, and for flood: scanwatch gen --profile flood --flood-sources 1000000 --seed 1 -o $REF/flood.pcap" >&2; exit 1; }
done

load() { cut -d' ' -f1-3 /proc/loadavg; }
{
  echo "== sitting $(date -u '+%F %H:%M') UTC, $rounds rounds, load average $(load)"
  echo "== scanwatch: $("$SW" --version)${OLD:+; old: $("$OLD" --version)}"
  for f in $FILES; do
    echo "## files $f"
    specs=("tcpdump=tcpdump -r $REF/$f.pcap -w /dev/null"
           "new=$SW run -q -r $REF/$f.pcap -w /tmp/alt-out")
    [ -n "${OLD:-}" ] && specs+=("old=$OLD run -q -r $REF/$f.pcap -w /tmp/alt-out")
    scripts/alternate.sh "$rounds" "${specs[@]}"
  done
  echo "== files end $(date -u +%H:%M) UTC, load average $(load)"
  for f in $FILES; do
    echo "## bench $f ($(date -u +%H:%M) UTC, load average $(load))"
    "$SW" bench -r "$REF/$f.pcap" --threads-list 1,2,4 2>&1
  done
  echo "== bench end $(date -u +%H:%M) UTC, load average $(load)"
  if [ "${LIVE:-0}" = 1 ]; then
    echo "## live"
    SCANWATCH=$SW timeout 3600 scripts/live-bench.sh 2>&1 || echo "live bench failed: exit $?"
    echo "== live end $(date -u +%H:%M) UTC, load average $(load)"
  fi
} | tee "$RAW"

echo
status=0
python3 scripts/perf-table.py "$RAW" || status=$?
echo "raw lines: $RAW"
exit "$status"
