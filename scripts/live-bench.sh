#!/usr/bin/env bash
# Live capture benchmark: the highest packet rate at which each capture tool
# loses nothing, for scanwatch (1 and 2 capture threads), `tcpdump -w
# /dev/null` and Suricata 7 in af-packet mode (flow records only, no rules).
#
#   scripts/live-bench.sh            # two namespaces joined by a veth (default)
#   scripts/live-bench.sh IFACE      # a real interface: listen only (see below)
#
# Veth mode (run as root): namespace "gen" (198.18.0.2/24) and namespace
# "sensor" (198.18.0.1/24) joined by a veth pair, no default route, nothing
# else in them. tcpreplay replays PACKETS packets of a reference capture
# (scripts/make-reference.sh's bulk.pcap; a small copy is made under
# target/reference-small if there is none) from "gen" at each rate of RATES
# (packets/s, then `topspeed`), TRIES times each; the sensor tool runs on the
# other end. A rate is lossless when every try had zero kernel drops
# (PACKET_STATISTICS: tcpdump's "dropped by kernel", Suricata's
# capture.kernel_drops, scanwatch's kernel_dropped), zero interface drops,
# zero queue drops (scanwatch's queue_drops) and every packet sent was
# received, and tcpreplay reached the rate (95% of it) in every try: on a
# small machine a busy capture tool can take the sender's CPU, and a rate
# never offered is not one handled ("sender-bound"). A tool stops climbing
# at its first lossy or sender-bound rate. Every tool gets the
# same kernel ring (BUFFER_MIB, small on purpose: a run lasts many times
# what the ring holds, so the figure is the sustained rate, not the ring).
#
# Real interface (IFACE given): no namespaces are made and nothing is sent;
# each tool listens on IFACE for LISTEN_SECS seconds while you send traffic
# from another machine (for example tcpreplay --pps=N on a traffic
# generator); the table then shows what each tool received and dropped.
#
# Environment: SCANWATCH (binary; default target/release/scanwatch, else
# target/ci/scanwatch), REF (capture to replay, looped as needed), PACKETS
# (300000), RATES ("50000 100000 200000 300000 400000 500000 600000 800000
# topspeed"), TRIES (3), BUFFER_MIB (8), TOOLS
# ("scanwatch-1 scanwatch-2 tcpdump suricata"), LISTEN_SECS (30).
# Suricata comes from bookworm-backports and is installed on demand (not a CI
# dependency). Bounded: every run has a timeout, everything is cleaned up.
set -euo pipefail
cd "$(dirname "$0")/.."
IFACE=${1:-}
PACKETS=${PACKETS:-300000}
RATES=${RATES:-"50000 100000 200000 300000 400000 500000 600000 800000 topspeed"}
TRIES=${TRIES:-3}
BUFFER_MIB=${BUFFER_MIB:-8}
TOOLS=${TOOLS:-"scanwatch-1 scanwatch-2 tcpdump suricata"}
LISTEN_SECS=${LISTEN_SECS:-30}
SW=${SCANWATCH:-}
if [ -z "$SW" ]; then
  for c in target/release/scanwatch target/ci/scanwatch; do [ -x "$c" ] && { SW=$c; break; }; done
fi
[ -x "${SW:-}" ] || { echo "no scanwatch binary: cargo build --release (or set SCANWATCH)" >&2; exit 1; }
SW=$(readlink -f "$SW")
[ "$(id -u)" -eq 0 ] || { echo "live-bench needs root (namespaces, raw capture)" >&2; exit 1; }
for t in tcpdump tcpreplay ip; do
  command -v $t >/dev/null || { echo "need $t: scripts/deps.sh" >&2; exit 1; }
done
case " $TOOLS " in *" suricata "*)
  if ! command -v suricata >/dev/null; then
    echo "installing Suricata 7 from bookworm-backports ..." >&2
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list
    timeout 300 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends -t bookworm-backports suricata >/dev/null
  fi ;;
esac

WORK=$(mktemp -d /tmp/live-bench.XXXXXX)
TAG=$$
NS_S=lbs$TAG NS_G=lbg$TAG V_S=lbs$TAG V_G=lbg$TAG
TOOLPID=
cleanup() {
  if [ -n "$TOOLPID" ]; then kill -KILL "$TOOLPID" 2>/dev/null || true; fi
  if [ -z "$IFACE" ]; then
    ip netns del "$NS_S" 2>/dev/null || true
    ip netns del "$NS_G" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "$IFACE" ]; then
  REF=${REF:-target/reference/bulk.pcap}
  if [ ! -s "$REF" ]; then
    REF=target/reference-small/bulk.pcap
    [ -s "$REF" ] || BULK_COPIES=10 SCAN_COPIES=5 scripts/make-reference.sh ../shared/pcaps target/reference-small >&2
  fi
  REF=$(readlink -f "$REF")
  ip netns add "$NS_S"; ip netns add "$NS_G"
  ip link add "$V_S" type veth peer name "$V_G"
  ip link set "$V_S" netns "$NS_S"; ip link set "$V_G" netns "$NS_G"
  ip -n "$NS_S" addr add 198.18.0.1/24 dev "$V_S"
  ip -n "$NS_G" addr add 198.18.0.2/24 dev "$V_G"
  for p in "$NS_S:$V_S" "$NS_G:$V_G"; do
    ip -n "${p%%:*}" link set "${p#*:}" up; ip -n "${p%%:*}" link set lo up
  done
  # No IPv6 chatter (DAD, router solicitations) on the measured link.
  for p in "$NS_S:$V_S" "$NS_G:$V_G"; do
    ip netns exec "${p%%:*}" sysctl -qw "net.ipv6.conf.${p#*:}.disable_ipv6=1"
  done
  CAP_IF=$V_S
  IN_NS=(ip netns exec "$NS_S")
else
  CAP_IF=$IFACE
  IN_NS=()
fi

# wait_for FILE PATTERN SECONDS: until FILE holds PATTERN.
wait_for() {
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$TOOLPID" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

suricata_yaml() {
  cat > "$WORK/suricata.yaml" <<EOF
%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "[10.0.0.0/8,172.16.0.0/12,192.168.0.0/16]"
    EXTERNAL_NET: "!\$HOME_NET"
  port-groups: {}
default-log-dir: $1
runmode: workers
stats:
  enabled: yes
  interval: 1
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - flow
logging:
  default-log-level: notice
  outputs:
    - file:
        enabled: yes
        level: perf
        filename: suricata.log
af-packet:
  - interface: $CAP_IF
    threads: auto
    cluster-id: $((TAG % 60000 + 1))
    cluster-type: cluster_flow
    defrag: yes
    use-mmap: yes
    tpacket-v3: yes
    block-size: 1048576
    ring-size: $((BUFFER_MIB * 512))
EOF
}

# start TOOL DIR: starts the tool capturing on CAP_IF, sets TOOLPID, waits
# until it is reading.
start() {
  local tool=$1 dir=$2
  case $tool in
    scanwatch-*)
      "${IN_NS[@]}" "$SW" run -i "$CAP_IF" -w "$dir" --capture-threads "${tool#scanwatch-}" \
        -B "$BUFFER_MIB" --stats-every 1 --quiet >"$dir/out" 2>"$dir/err" &
      TOOLPID=$!
      wait_for "$dir/stats.jsonl" event_type 15 ;;
    tcpdump)
      "${IN_NS[@]}" tcpdump -n -i "$CAP_IF" -B $((BUFFER_MIB * 1024)) -w /dev/null 2>"$dir/err" &
      TOOLPID=$!
      wait_for "$dir/err" "listening on" 15 ;;
    suricata)
      suricata_yaml "$dir"
      "${IN_NS[@]}" suricata -c "$WORK/suricata.yaml" --af-packet="$CAP_IF" -S /dev/null \
        -k none --runmode workers >"$dir/out" 2>"$dir/err" &
      TOOLPID=$!
      wait_for "$dir/suricata.log" "Engine started" 60 ;;
  esac
}

# stop TOOL DIR: stops the tool; prints "received drops" (drops: kernel,
# interface and queue together).
stop() {
  local tool=$1 dir=$2
  case $tool in
    tcpdump) kill -INT "$TOOLPID" ;;
    *) kill -TERM "$TOOLPID" ;;
  esac
  local i
  for ((i = 0; i < 600; i++)); do kill -0 "$TOOLPID" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$TOOLPID" 2>/dev/null || true
  wait "$TOOLPID" 2>/dev/null || true
  TOOLPID=
  case $tool in
    scanwatch-*)
      tail -n 1 "$dir/stats.jsonl" |
        jq -r '"\(.kernel_received) \(.kernel_dropped + .if_dropped + .queue_drops) kernel=\(.kernel_dropped),if=\(.if_dropped),queue=\(.queue_drops)"' ;;
    tcpdump)
      # "N packets received by filter", "M packets dropped by kernel"
      awk '/received by filter/ {r=$1} /dropped by kernel/ {d+=$1} /dropped by interface/ {d+=$1}
           END {print r+0, d+0}' "$dir/err" ;;
    suricata)
      # The exit line summing the af-packet threads' kernel counters
      # (capture.kernel_packets, capture.kernel_drops):
      # "device: IF: packets: N, drops: M (0.00%), ..."
      grep "device: $CAP_IF: packets:" "$dir/suricata.log" | tail -n 1 |
        sed -E 's/.*packets: ([0-9]+), drops: ([0-9]+).*/\1 \2/' ;;
  esac
}

# one TOOL RATE: one try; prints "sent received drops pps_achieved [detail]".
one() {
  local tool=$1 rate=$2 dir
  dir=$(mktemp -d "$WORK/run.XXXXXX"); chmod 777 "$dir"
  if ! start "$tool" "$dir"; then
    echo "$tool did not start: $(tail -n 3 "$dir/err" 2>/dev/null)" >&2
    kill -KILL "$TOOLPID" 2>/dev/null || true; TOOLPID=
    echo "0 0 -1 0"; return
  fi
  local speed=(--pps="$rate")
  [ "$rate" = topspeed ] && speed=(--topspeed)
  local rep
  rep=$(timeout 120 ip netns exec "$NS_G" tcpreplay -q "${speed[@]}" --loop=0 --limit="$PACKETS" -i "$V_G" "$REF" 2>&1 || true)
  local sent pps
  sent=$(echo "$rep" | awk '/Actual:/ {print $2}')
  pps=$(echo "$rep" | awk '/Rated:/ {for (i=1;i<=NF;i++) if ($i=="pps") print int($(i-1))}')
  # Let the last partly filled ring blocks retire (tcpdump's timeout is 1 s).
  sleep 1.5
  local res
  res=$(stop "$tool" "$dir")
  local recv drops detail
  read -r recv drops detail <<<"${res:-0 -1}"
  echo "${sent:-0} ${recv:-0} ${drops:--1} ${pps:-0} ${detail:-}"
  rm -rf "$dir"
}

if [ -n "$IFACE" ]; then
  echo "listening on $IFACE for $LISTEN_SECS s per tool; send traffic now" >&2
  printf '%-12s %12s %12s %12s\n' tool received dropped "pps(avg)"
  for tool in $TOOLS; do
    dir=$(mktemp -d "$WORK/run.XXXXXX"); chmod 777 "$dir"
    start "$tool" "$dir" || { echo "$tool did not start" >&2; continue; }
    sleep "$LISTEN_SECS"
    read -r r d _ < <(stop "$tool" "$dir")
    printf '%-12s %12s %12s %12s\n' "$tool" "$r" "$d" $((r / LISTEN_SECS))
  done
  exit 0
fi

echo "# $(date -u +%FT%TZ) $(uptime)" >&2
echo "# reference: $REF, $PACKETS packets per run, ring ${BUFFER_MIB} MiB, $TRIES tries per rate" >&2
declare -A BEST STOP
for tool in $TOOLS; do
  BEST[$tool]=0
  STOP[$tool]="lossless up to topspeed"
  for rate in $RATES; do
    ok=1; achieved=()
    for ((t = 1; t <= TRIES; t++)); do
      read -r sent recv drops pps detail < <(one "$tool" "$rate")
      achieved+=("$pps")
      echo "$tool rate=$rate try=$t sent=$sent received=$recv drops=$drops achieved_pps=$pps $detail" >&2
      if [ "$drops" != 0 ] || [ "$sent" = 0 ] || [ "$recv" -lt "$sent" ]; then
        ok=0; STOP[$tool]="lossy at $rate: $pps pps, $drops dropped, $recv of $sent received"; break
      fi
    done
    [ $ok = 1 ] || break
    low=$(printf '%s\n' "${achieved[@]}" | sort -n | head -n 1)
    # The rate counts only if tcpreplay reached it in every try (95%): on a
    # small machine a busy capture tool takes the sender's CPU, and a rate
    # never offered is not a rate handled. Topspeed counts if it went
    # beyond the last step.
    if [ "$rate" = topspeed ]; then
      if [ "$low" -gt "${BEST[$tool]}" ]; then BEST[$tool]=$low; else
        STOP[$tool]="sender-bound at topspeed: $low pps at least"; fi
      break
    fi
    if [ $((low * 100)) -lt $((rate * 95)) ]; then
      STOP[$tool]="sender-bound at $rate: no loss, but only $low pps reached"; break
    fi
    BEST[$tool]=$rate
  done
done

printf '\n%-12s %20s %10s   %s\n' tool "lossless pps (veth)" "× tcpdump" "why not higher"
base=${BEST[tcpdump]:-0}
for tool in $TOOLS; do
  if [ "$base" -gt 0 ]; then
    ratio=$(awk -v a="${BEST[$tool]}" -v b="$base" 'BEGIN {printf "%.2f", a / b}')
  else
    ratio=n/a
  fi
  printf '%-12s %20s %10s   %s\n' "$tool" "${BEST[$tool]}" "$ratio" "${STOP[$tool]}"
done
