#!/usr/bin/env bash
# Sets everything up and runs scanwatch on a bundled capture of a real nmap
# block scan, printing what it found.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --locked
rm -rf scanwatch-out
./target/release/scanwatch run -r pcaps/nmap_syn_block_20hosts_8ports.pcap -r pcaps/nmap_fin_vertical_top200.pcap -w scanwatch-out
echo
echo "Arrow files:"; find scanwatch-out -name '*.arrow' | sort
echo "Alerts (jq):"; jq -c '{timestamp, src_ip, direction, sid: .alert.signature_id, phase: .alert.context.scan.phase, kind: .alert.context.scan.kind, open: .alert.context.scan.open_count}' scanwatch-out/alerts.jsonl
