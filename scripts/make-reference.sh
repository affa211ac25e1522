#!/usr/bin/env bash
# Builds the two reference captures of the Performance section from the
# corpus in ../shared/pcaps, by repeating captures with addresses remapped
# (tcprewrite --seed=N) and times shifted (editcap -t), merged by time
# (mergecap):
#   bulk.pcap  — 400 copies of the benign and mixed captures (~8 M packets)
#   scans.pcap — 150 copies of the scan captures recorded for the corpus
#                (the non-public ones: ~3.3 M packets)
# Needs Debian's tcpreplay and wireshark-common. Usage:
#   scripts/make-reference.sh [CORPUS] [OUTDIR]
set -euo pipefail
CORPUS=${1:-../shared/pcaps}
OUT=${2:-target/reference}
BULK_COPIES=${BULK_COPIES:-400}
SCAN_COPIES=${SCAN_COPIES:-150}
for t in tcprewrite editcap mergecap; do
  command -v $t >/dev/null || { echo "need $t: apt-get install -y tcpreplay wireshark-common" >&2; exit 1; }
done
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Classic pcap copies of the inputs (tcprewrite reads pcap only).
prep() {
  local f=$1 base
  base=$(basename "$f"); base=${base%.pcap*}
  editcap -F pcap "$f" "$WORK/$base.pcap" >/dev/null 2>&1
  echo "$WORK/$base.pcap"
}
bulk_in=(); scan_in=()
for f in "$CORPUS"/benign_*.pcap "$CORPUS"/mixed_*.pcap; do bulk_in+=("$(prep "$f")"); done
for f in "$CORPUS"/*.pcap*; do
  case $(basename "$f") in benign_*|mixed_*|pub_*) continue ;; esac
  scan_in+=("$(prep "$f")")
done

# make NAME COPIES SPACING_SECONDS INPUTS...: each copy remapped with its own
# seed and shifted by copy*SPACING, then all merged by time.
make() {
  local name=$1 copies=$2 spacing=$3; shift 3
  if [ -s "$OUT/$name.pcap" ]; then echo "$OUT/$name.pcap exists"; return; fi
  local parts=() i f j=0
  for i in $(seq 1 "$copies"); do
    for f in "$@"; do
      j=$((j + 1))
      tcprewrite --seed="$i" --infile="$f" --outfile="$WORK/r.pcap" 2>/dev/null
      editcap -t $((i * spacing)) "$WORK/r.pcap" "$WORK/p$j.pcap" >/dev/null 2>&1
      parts+=("$WORK/p$j.pcap")
    done
    # Merge in groups to keep the number of open files small.
    if [ ${#parts[@]} -ge 200 ]; then
      mergecap -F pcap -w "$WORK/g$i.pcap" "${parts[@]}"; rm -f "${parts[@]}"; parts=("$WORK/g$i.pcap")
    fi
  done
  mergecap -F pcap -w "$OUT/$name.pcap" "${parts[@]}"
  rm -f "${parts[@]}"
  echo "$OUT/$name.pcap: $(capinfos -c -M "$OUT/$name.pcap" 2>/dev/null | awk '/Number of packets/ {print $NF}') packets"
}
make bulk "$BULK_COPIES" 20 "${bulk_in[@]}"
make scans "$SCAN_COPIES" 20 "${scan_in[@]}"
