#!/usr/bin/env bash
# Records real scanner runs and benign traffic into pcaps/, with pcaps/truth.csv.
#
# Everything stays on this machine: two network namespaces made here
# (sw-scan, sw-tgt) joined by one veth pair and nothing else, plus the
# loopback interface. Every tool runs under `timeout` with bounded probe
# counts and rates. Needs root and Debian's nmap, hping3, masscan, tcpdump,
# curl, python3, iproute2:
#   apt-get install -y nmap hping3 masscan tcpdump curl iproute2 python3
#
# zmap (Debian's zmap package) is needed for the zmap captures:
#   apt-get install -y zmap
#
# Usage: sudo scripts/record-pcaps.sh [OUTDIR]   (default: pcaps)
#
# ONLY="NAME ..." records only the captures named (file names without
# .pcap) and leaves every other file in OUTDIR untouched, e.g. to add new
# captures without re-recording the committed ones:
#   sudo ONLY="zmap_syn_horizontal_p80 nmap_syn_decoys_1-200" scripts/record-pcaps.sh
# truth.csv is always rewritten whole from the rows below (every capture's
# row, recorded this time or not), so it does not depend on ONLY.
set -euo pipefail
ONLY=${ONLY:-}
OUT=${1:-pcaps}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
S=sw-scan T=sw-tgt
TRUTH="$OUT/truth.csv"
SERVICES_PID= LO_PID=

# want NAME: true when NAME is to be recorded this run (ONLY empty or lists it).
want() {
  [ -z "$ONLY" ] && return 0
  case " $ONLY " in *" $1 "*) return 0 ;; esac
  return 1
}

cleanup() {
  [ -n "$SERVICES_PID" ] && kill "$SERVICES_PID" 2>/dev/null || true
  ip netns pids $T 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns pids $S 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del $S 2>/dev/null || true
  ip netns del $T 2>/dev/null || true
  [ -n "$LO_PID" ] && kill "$LO_PID" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

# --- the lab -----------------------------------------------------------------
ip netns add $S
ip netns add $T
ip link add sw-s0 type veth peer name sw-t0
ip link set sw-s0 netns $S
ip link set sw-t0 netns $T
for a in 198.18.0.2 198.18.0.3 198.18.0.20; do ip -n $S addr add $a/24 dev sw-s0; done
# nmap's decoys (-D) and the five sources of the split-range scan are real
# addresses of the scanner namespace too (secondary: 198.18.0.2 stays the
# source the kernel picks), so the target's answers to them are delivered
# and answered there as they would be by real hosts.
for a in 198.18.0.4 198.18.0.5 198.18.0.31 198.18.0.32 198.18.0.33 198.18.0.34 198.18.0.35; do
  ip -n $S addr add $a/24 dev sw-s0
done
ip -n $T addr add 198.18.0.1/24 dev sw-t0
for ns in $S $T; do ip -n $ns link set lo up; done
ip -n $S link set sw-s0 up
ip -n $T link set sw-t0 up
ip -n $S route add 198.19.0.0/16 via 198.18.0.1
# Target hosts: /32 addresses on the target's loopback. Addresses that are
# not assigned (198.19.1.41-254) are dead: the target does not forward, so
# probes to them go unanswered.
for i in $(seq 1 40); do ip -n $T addr add 198.19.1.$i/32 dev lo; done
for i in $(seq 1 30); do ip -n $T addr add 198.19.2.$i/32 dev lo; done
ip -n $T addr add 198.19.1.53/32 dev lo
ip -n $T addr add 198.19.1.80/32 dev lo

# Services on every target address: HTTP on 80/8080, banner services on
# 21/22/25/443 (accept, send a line, close), a DNS-like UDP responder on 53.
# The UDP responder is bound to 0.0.0.0, so its replies leave from the veth
# address (198.18.0.1) rather than the one asked (198.19.1.53), as a
# multi-homed or anycast server's do; the benign capture keeps that on
# purpose: such replies must not look like a UDP scan.
cat > /tmp/sw-services.py <<'PY'
import socket, threading, time, sys
deadline = time.time() + float(sys.argv[1])
def tcp(port, http):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(256); s.settimeout(1)
    while time.time() < deadline:
        try: c, _ = s.accept()
        except OSError: continue
        try:
            c.settimeout(2)
            if http:
                req = c.recv(4096)
                if req:
                    body = b"<html>" + b"x" * 1500 + b"</html>"
                    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            else:
                c.sendall(b"220 scanwatch lab service\r\n")
        except OSError: pass
        finally: c.close()
def udp53():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 53)); s.settimeout(1)
    while time.time() < deadline:
        try: d, a = s.recvfrom(2048)
        except OSError: continue
        if len(d) >= 12: s.sendto(d[:2] + b"\x81\x80" + d[4:], a)
for p, h in [(80, True), (8080, True), (21, False), (22, False), (25, False), (443, False)]:
    threading.Thread(target=tcp, args=(p, h), daemon=True).start()
threading.Thread(target=udp53, daemon=True).start()
while time.time() < deadline: time.sleep(0.5)
PY
ip netns exec $T timeout 1500 python3 /tmp/sw-services.py 1400 &
SERVICES_PID=$!
sleep 1.5

echo "pcap,scanner_ip,scan_type,protocol,targets,ports,tool,command,technique" > "$TRUTH"

# rec NAME TRUTH-ROWS LIMIT -- COMMAND...: capture the scanner side of the
# veth while COMMAND runs in the scanner namespace (bounded by timeout
# LIMIT seconds). The truth rows are written whether or not NAME is recorded
# this run (see ONLY above).
rec() {
  local name=$1 rows=$2 limit=$3; shift 4
  local f="$OUT/$name.pcap"
  printf '%s\n' "$rows" | sed "s|^|$name.pcap,|" >> "$TRUTH"
  want "$name" || return 0
  ip netns exec $S timeout $((limit + 20)) tcpdump -i sw-s0 -s 128 -U -w "$f" 2>/dev/null &
  local tp=$!
  sleep 1.5
  ip netns exec $S timeout "$limit" "$@" >/dev/null 2>&1 || true
  sleep 3
  kill -INT $tp 2>/dev/null || true
  wait $tp 2>/dev/null || true
  echo "recorded $name.pcap: $(stat -c %s "$f") bytes"
}

rec nmap_syn_vertical_1-1000 \
  '198.18.0.2,vertical,tcp,198.19.1.10,1-1000,nmap,nmap -sS -p 1-1000 -n 198.19.1.10,syn' \
  120 -- nmap -sS -p 1-1000 -n --max-retries 1 198.19.1.10
rec nmap_fin_vertical_top200 \
  '198.18.0.2,vertical,tcp,198.19.1.12,top-200,nmap,nmap -sF --top-ports 200 -n 198.19.1.12,fin' \
  120 -- nmap -sF --top-ports 200 -n --max-retries 1 198.19.1.12
rec nmap_connect_horizontal_p22 \
  '198.18.0.2,horizontal,tcp,198.19.1.1-60,22,nmap,nmap -sT -Pn -p 22 -n 198.19.1.1-60,connect' \
  120 -- nmap -sT -Pn -p 22 -n --max-retries 1 198.19.1.1-60
rec nmap_syn_block_20hosts_8ports \
  '198.18.0.2,block,tcp,198.19.2.1-20,"21,22,23,25,80,443,445,8080",nmap,"nmap -sS -Pn -p 21,22,23,25,80,443,445,8080 -n 198.19.2.1-20",syn' \
  120 -- nmap -sS -Pn -p 21,22,23,25,80,443,445,8080 -n --max-retries 1 198.19.2.1-20
rec nmap_icmp_pingsweep \
  '198.18.0.2,horizontal,icmp,198.19.2.0/26,-,nmap,nmap -sn -PE -n 198.19.2.0/26,icmp-echo' \
  60 -- nmap -sn -PE -n --max-retries 1 198.19.2.0/26
rec hping3_udp_horizontal_p161 \
  '198.18.0.3,horizontal,udp,random 198.19.1.x,161,hping3,hping3 --udp -p 161 --rand-dest 198.19.1.x -c 150 -i u20000,udp' \
  30 -- hping3 --udp -p 161 --rand-dest 198.19.1.x -c 150 -i u20000 -I sw-s0 -a 198.18.0.3
TMAC=$(ip -n $T link show sw-t0 | awk '/link\/ether/ {print $2}')
rec masscan_syn_vertical_1-500 \
  '198.18.0.3,vertical,tcp,198.19.1.13,1-500,masscan,masscan -p1-500 198.19.1.13 --rate 500,syn' \
  40 -- masscan -p1-500 198.19.1.13 --rate 500 --wait 2 --adapter sw-s0 --adapter-ip 198.18.0.3 --router-mac "$TMAC"
# Slow: one probe every 10 s (30 ports, 5 minutes).
rec nmap_syn_vertical_slow_10s \
  '198.18.0.2,vertical,tcp,198.19.1.21,20-49,nmap,nmap -sS -Pn --scan-delay 10s --max-retries 0 -p 20-49 -n 198.19.1.21,syn' \
  400 -- nmap -sS -Pn --scan-delay 10s --max-retries 0 -p 20-49 -n 198.19.1.21
# Benign: a busy web client (30 servers, 3 pages each, one connection per
# request) and a DNS stub resolver (150 queries from fresh source ports).
cat > /tmp/sw-client.py <<'PY'
import socket, random, time, urllib.request
for i in range(1, 31):
    for page in range(3):
        try: urllib.request.urlopen("http://198.19.1.%d/page%d.html" % (i, page), timeout=2).read()
        except Exception: pass
    time.sleep(0.05)
for i in range(150):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
    q = random.randbytes(2) + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x04test\x00\x00\x01\x00\x01"
    s.sendto(q, ("198.19.1.53", 53))
    try: s.recvfrom(512)
    except OSError: pass
    s.close(); time.sleep(0.01)
PY
rec benign_web_and_dns_client \
  '198.18.0.20,none,tcp+udp,198.19.1.1-30 and 198.19.1.53,"80,53",python3 urllib + stub resolver,"90 HTTP requests to 30 servers, 150 DNS queries",-' \
  90 -- python3 /tmp/sw-client.py

# Loopback: a connect scan of 127.0.5.5 with four listeners.
LO_NAME=nmap_connect_vertical_loopback_1-400
if want $LO_NAME; then
python3 - <<'PY' &
import socket, threading, time
# scanwatch-lo-listeners
deadline = time.time() + 60
def serve(p):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.5.5", p)); s.listen(64); s.settimeout(1)
    while time.time() < deadline:
        try: c, _ = s.accept(); c.close()
        except OSError: pass
for p in (22, 80, 111, 443): threading.Thread(target=serve, args=(p,), daemon=True).start()
while time.time() < deadline: time.sleep(0.5)
PY
LO_PID=$!
sleep 1
f="$OUT/$LO_NAME.pcap"
timeout 60 tcpdump -i lo -s 128 -U -w "$f" net 127.0.5.0/24 2>/dev/null &
tp=$!
sleep 1.5
timeout 60 nmap -sT -Pn -p 1-400 -n 127.0.5.5 >/dev/null 2>&1 || true
sleep 2
kill -INT $tp; wait $tp 2>/dev/null || true
kill $LO_PID 2>/dev/null || true
echo "recorded $(basename "$f"): $(stat -c %s "$f") bytes"
fi
echo "$LO_NAME.pcap,127.0.0.1,vertical,tcp,127.0.5.5,1-400,nmap,nmap -sT -Pn -p 1-400 -n 127.0.5.5,connect" >> "$TRUTH"

# --- issue 16: zmap, decoys, a split-range scan, more techniques ------------
# zmap's default blacklist (/etc/zmap/blacklist.conf) excludes 198.18.0.0/15,
# the lab's whole range: the lab scans give it an empty one.
: > /tmp/sw-zmap-blacklist.conf
rec zmap_syn_horizontal_p80 \
  '198.18.0.3,horizontal,tcp,198.19.1.0/24,80,zmap,zmap -p 80 -n 256 -r 300 --cooldown-time 3 198.19.1.0/24,syn' \
  30 -- zmap -p 80 -n 256 -r 300 --cooldown-time 3 -i sw-s0 -S 198.18.0.3 -G "$TMAC" \
    -b /tmp/sw-zmap-blacklist.conf --disable-syslog -q -o /dev/null 198.19.1.0/24
rec zmap_icmp_echo_horizontal \
  '198.18.0.3,horizontal,icmp,198.19.2.0/26,-,zmap,zmap -M icmp_echoscan -n 64 -r 300 --cooldown-time 3 198.19.2.0/26,icmp-echo' \
  30 -- zmap -M icmp_echoscan -n 64 -r 300 --cooldown-time 3 -i sw-s0 -S 198.18.0.3 -G "$TMAC" \
    -b /tmp/sw-zmap-blacklist.conf --disable-syslog -q -o /dev/null 198.19.2.0/26
# Decoys: every probe is sent from 198.18.0.4, 198.18.0.5 and the real
# source 198.18.0.2 (ME), all three addresses of sw-s0.
rec nmap_syn_decoys_1-200 \
  '198.18.0.2 198.18.0.4 198.18.0.5,vertical,tcp,198.19.1.11,1-200,nmap,"nmap -sS -Pn -D 198.18.0.4,198.18.0.5,ME -p 1-200 -n 198.19.1.11",syn' \
  120 -- nmap -sS -Pn -D 198.18.0.4,198.18.0.5,ME -p 1-200 -n --max-retries 1 198.19.1.11
# Split range: five sources scan one fifth each of ports 1-60 of one host,
# all at once; none crosses a per-source threshold.
rec nmap_syn_distributed_5src_1-60 \
  '198.18.0.31 198.18.0.32 198.18.0.33 198.18.0.34 198.18.0.35,distributed,tcp,198.19.1.10,1-60,nmap,"nmap -sS -Pn -S 198.18.0.3N -e sw-s0 -p (12N-11)-(12N) -n 198.19.1.10 for N=1..5, concurrently",syn' \
  60 -- bash -c 'for n in 1 2 3 4 5; do
      nmap -sS -Pn -S 198.18.0.3$n -e sw-s0 -p $((n * 12 - 11))-$((n * 12)) -n --max-retries 1 198.19.1.10 &
    done; wait'
rec nmap_xmas_vertical_top100 \
  '198.18.0.2,vertical,tcp,198.19.1.14,top-100,nmap,nmap -sX --top-ports 100 -n 198.19.1.14,xmas' \
  120 -- nmap -sX --top-ports 100 -n --max-retries 1 198.19.1.14
rec nmap_ack_vertical_1-150 \
  '198.18.0.2,vertical,tcp,198.19.1.15,1-150,nmap,nmap -sA -p 1-150 -n 198.19.1.15,ack' \
  120 -- nmap -sA -p 1-150 -n --max-retries 1 198.19.1.15
rec nmap_udp_vertical_top30 \
  '198.18.0.2,vertical,udp,198.19.1.53,top-30,nmap,nmap -sU --top-ports 30 --max-retries 1 --host-timeout 60s -n 198.19.1.53,udp' \
  80 -- nmap -sU --top-ports 30 --max-retries 1 --host-timeout 60s -n 198.19.1.53
rec nmap_null_vertical_1-100 \
  '198.18.0.2,vertical,tcp,198.19.1.16,1-100,nmap,nmap -sN -p 1-100 -n 198.19.1.16,null' \
  120 -- nmap -sN -p 1-100 -n --max-retries 1 198.19.1.16
rec hping3_syn_horizontal_p80 \
  '198.18.0.3,horizontal,tcp,random 198.19.2.x,80,hping3,hping3 -S -p 80 --rand-dest 198.19.2.x -c 150 -i u20000,syn' \
  30 -- hping3 -S -p 80 --rand-dest 198.19.2.x -c 150 -i u20000 -I sw-s0 -a 198.18.0.3
# A Mirai-style telnet scanner, synthetic (we do not run malware): written
# from scanner.c's probe layout by scripts/make-mirai-like.py.
printf '%s\n' 'mirai_like_syn_horizontal_p23.pcap,198.18.0.66,horizontal,tcp,random 198.19.0.0/16,"23,2323",mirai-like,scripts/make-mirai-like.py (synthetic: Mirai scanner.c probe layout),syn' >> "$TRUTH"
if want mirai_like_syn_horizontal_p23; then
  python3 "$(dirname "$0")/make-mirai-like.py" "$OUT/mirai_like_syn_horizontal_p23.pcap"
fi
echo "truth: $TRUTH"
