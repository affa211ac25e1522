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
# Paths the caller gives are taken from the caller's folder; the defaults
# from the checkout's.
here=$PWD
repo=$(cd "$(dirname "$0")/.." && pwd)
abs() { case $1 in /*) echo "$1" ;; *) echo "$2/$1" ;; esac; }
rounds=${1:-12}
[[ $rounds =~ ^[0-9]+$ ]] && (( rounds >= 1 && rounds <= 100 )) || { echo "perf-sitting.sh: ROUNDS must be 1..100" >&2; exit 2; }
if [ -n "${SCANWATCH:-}" ]; then SW=$(abs "$SCANWATCH" "$here"); else SW=$repo/target/release/scanwatch; fi
if [ -n "${REF:-}" ]; then REF=$(abs "$REF" "$here"); else REF=$repo/target/reference; fi
OLD=${OLD:+$(abs "$OLD" "$here")}
read -r -a files <<< "${FILES:-bulk scans flood}"
[ -x "$SW" ] || { echo "perf-sitting.sh: no scanwatch binary at $SW (cargo build --release, or set SCANWATCH)" >&2; exit 1; }
[ -z "$OLD" ] || [ -x "$OLD" ] || { echo "perf-sitting.sh: OLD=$OLD is not an executable" >&2; exit 1; }
command -v tcpdump >/dev/null || { echo "perf-sitting.sh: needs tcpdump (apt-get install -y tcpdump)" >&2; exit 1; }
(( ${#files[@]} > 0 )) || { echo "perf-sitting.sh: FILES names no file" >&2; exit 2; }
for f in "${files[@]}"; do
  [[ $f =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "perf-sitting.sh: FILES: '$f' is not a plain file name (REF/NAME.pcap)" >&2; exit 2; }
  [ -s "$REF/$f.pcap" ] || { echo "perf-sitting.sh: no $REF/$f.pcap: see scripts/make-reference.sh, and for flood: scanwatch gen --profile flood --flood-sources 1000000 --seed 1 -o $REF/flood.pcap" >&2; exit 1; }
done
if [ -n "${RAW:-}" ]; then RAW=$(abs "$RAW" "$here"); else RAW=$(mktemp /tmp/perf-sitting.XXXXXX.txt); fi
# Each run's outputs go to a folder of this sitting's own, emptied before
# every run by alternate.sh.
work=$(mktemp -d /tmp/perf-sitting-out.XXXXXX)
trap 'rm -rf "$work"' EXIT
export ALT_OUT=$work/out
cd "$repo"
q() { printf '%q' "$1"; }

load() { cut -d' ' -f1-3 /proc/loadavg; }
{
  echo "== sitting $(date -u '+%F %H:%M') UTC, $rounds rounds, load average $(load)"
  echo "== scanwatch: $("$SW" --version)${OLD:+; old: $("$OLD" --version)}"
  for f in "${files[@]}"; do
    echo "## files $f"
    pcap=$(q "$REF/$f.pcap")
    specs=("tcpdump=tcpdump -r $pcap -w /dev/null"
           "new=$(q "$SW") run -q -r $pcap -w $(q "$ALT_OUT")")
    [ -n "$OLD" ] && specs+=("old=$(q "$OLD") run -q -r $pcap -w $(q "$ALT_OUT")")
    # (set -e does not hold inside a pipeline left of `||`: each step
    # stops the sitting itself.)
    scripts/alternate.sh "$rounds" "${specs[@]}" || exit $?
  done
  echo "== files end $(date -u +%H:%M) UTC, load average $(load)"
  for f in "${files[@]}"; do
    echo "## bench $f ($(date -u +%H:%M) UTC, load average $(load))"
    "$SW" bench -r "$REF/$f.pcap" --threads-list 1,2,4 2>&1 || exit $?
  done
  echo "== bench end $(date -u +%H:%M) UTC, load average $(load)"
  if [ "${LIVE:-0}" = 1 ]; then
    echo "## live"
    SCANWATCH=$SW timeout 3600 scripts/live-bench.sh 2>&1 || echo "live bench failed: exit $?"
    echo "== live end $(date -u +%H:%M) UTC, load average $(load)"
  fi
} | tee "$RAW" || status=$?
status=${status:-0}
echo
if [ "$status" != 0 ]; then
  echo "perf-sitting.sh: the sitting stopped (exit $status): see the raw lines; the tables below hold what it measured, if anything" >&2
fi
python3 scripts/perf-table.py "$RAW" || status=$?
echo "raw lines: $RAW"
exit "$status"
