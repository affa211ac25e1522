#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/) for a bounded time each, on the stable
# toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z sanitizer flags
# to stable rustc (AddressSanitizer + libFuzzer's coverage).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60)
#
# Seed corpora come from pcaps/ (whole files for the capture readers, single
# packets for the decoder). A crash input is copied to
# fuzz/regressions/<target>/, where `cargo test` replays it for ever after
# (crates/pipeline/tests/fuzz_regressions.rs, through the targets' own bodies
# in fuzz/bodies), and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
export RUSTC_BOOTSTRAP=1
CORPUS=target/fuzz-corpus
mkdir -p "$CORPUS/decode" "$CORPUS/capture_file"
# Whole captures (the broken ones too) seed the file readers.
cp pcaps/*.pcap pcaps/broken/*.pcap* "$CORPUS/capture_file/" 2>/dev/null || true
# The first packets of each capture seed the decoder: a link-type selector
# byte (1 = Ethernet in the target's table, 0 here means index 0) + bytes.
python3 - "$CORPUS/decode" pcaps/*.pcap <<'PY'
import os, struct, sys, hashlib
out, files = sys.argv[1], sys.argv[2:]
link_index = {1: 0, 101: 1, 228: 2, 229: 3, 113: 4, 276: 5, 0: 6, 108: 7}
for path in files:
    data = open(path, "rb").read()
    if len(data) < 24:
        continue
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    link = struct.unpack(endian + "I", data[20:24])[0]
    sel = bytes([link_index.get(link, 0)])
    off, n = 24, 0
    while off + 16 <= len(data) and n < 40:
        caplen = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        n += 1
        name = hashlib.sha1(sel + pkt).hexdigest()
        with open(os.path.join(out, name), "wb") as f:
            f.write(sel + pkt)
PY
cargo fuzz build -O
status=0
for t in decode capture_file; do
  mkdir -p "fuzz/artifacts/$t"
  echo "fuzzing $t for ${SECS}s"
  if ! cargo fuzz run -O "$t" "$CORPUS/$t" -- -max_total_time="$SECS" -max_len=300000 \
       -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>"target/fuzz-$t.log"; then
    status=1
    tail -40 "target/fuzz-$t.log" >&2
  fi
  grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "target/fuzz-$t.log" | tail -1 || true
  for crash in fuzz/artifacts/"$t"/*; do
    [ -e "$crash" ] || continue
    mkdir -p "fuzz/regressions/$t"
    cp "$crash" "fuzz/regressions/$t/"
    echo "crash input kept as fuzz/regressions/$t/$(basename "$crash")" >&2
    status=1
  done
done
exit $status
