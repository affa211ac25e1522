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
# Usage: sudo scripts/record-pcaps.sh [OUTDIR]   (default: pcaps)
set -euo pipefail
OUT=${1:-pcaps}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
S=sw-scan T=sw-tgt
TRUTH="$OUT/truth.csv"
SERVICES_PID=

cleanup() {
  [ -n "$SERVICES_PID" ] && kill "$SERVICES_PID" 2>/dev/null || true
  ip netns pids $T 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns pids $S 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del $S 2>/dev/null || true
  ip netns del $T 2>/dev/null || true
  pkill -f "scanwatch-lo-listeners" 2>/dev/null || true
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

echo "pcap,scanner_ip,scan_type,protocol,targets,ports,tool,command" > "$TRUTH"

# rec NAME TRUTH-ROWS -- COMMAND...: capture the scanner side of the veth while
# COMMAND runs in the scanner namespace (bounded by timeout).
rec() {
  local name=$1 rows=$2 limit=$3; shift 4
  local f="$OUT/$name.pcap"
  ip netns exec $S timeout $((limit + 20)) tcpdump -i sw-s0 -s 128 -U -w "$f" 2>/dev/null &
  local tp=$!
  sleep 1.5
  ip netns exec $S timeout "$limit" "$@" >/dev/null 2>&1 || true
  sleep 3
  kill -INT $tp 2>/dev/null || true
  wait $tp 2>/dev/null || true
  printf '%s\n' "$rows" | sed "s|^|$name.pcap,|" >> "$TRUTH"
  echo "recorded $name.pcap: $(stat -c %s "$f") bytes"
}

rec nmap_syn_vertical_1-1000 \
  '198.18.0.2,vertical,tcp,198.19.1.10,1-1000,nmap,nmap -sS -p 1-1000 -n 198.19.1.10' \
  120 -- nmap -sS -p 1-1000 -n --max-retries 1 198.19.1.10
rec nmap_fin_vertical_top200 \
  '198.18.0.2,vertical,tcp,198.19.1.12,top-200,nmap,nmap -sF --top-ports 200 -n 198.19.1.12' \
  120 -- nmap -sF --top-ports 200 -n --max-retries 1 198.19.1.12
rec nmap_connect_horizontal_p22 \
  '198.18.0.2,horizontal,tcp,198.19.1.1-60,22,nmap,nmap -sT -Pn -p 22 -n 198.19.1.1-60' \
  120 -- nmap -sT -Pn -p 22 -n --max-retries 1 198.19.1.1-60
rec nmap_syn_block_20hosts_8ports \
  '198.18.0.2,block,tcp,198.19.2.1-20,"21,22,23,25,80,443,445,8080",nmap,"nmap -sS -Pn -p 21,22,23,25,80,443,445,8080 -n 198.19.2.1-20"' \
  120 -- nmap -sS -Pn -p 21,22,23,25,80,443,445,8080 -n --max-retries 1 198.19.2.1-20
rec nmap_icmp_pingsweep \
  '198.18.0.2,horizontal,icmp,198.19.2.0/26,-,nmap,nmap -sn -PE -n 198.19.2.0/26' \
  60 -- nmap -sn -PE -n --max-retries 1 198.19.2.0/26
rec hping3_udp_horizontal_p161 \
  '198.18.0.3,horizontal,udp,random 198.19.1.x,161,hping3,hping3 --udp -p 161 --rand-dest 198.19.1.x -c 150 -i u20000' \
  30 -- hping3 --udp -p 161 --rand-dest 198.19.1.x -c 150 -i u20000 -I sw-s0 -a 198.18.0.3
TMAC=$(ip -n $T link show sw-t0 | awk '/link\/ether/ {print $2}')
rec masscan_syn_vertical_1-500 \
  '198.18.0.3,vertical,tcp,198.19.1.13,1-500,masscan,masscan -p1-500 198.19.1.13 --rate 500' \
  40 -- masscan -p1-500 198.19.1.13 --rate 500 --wait 2 --adapter sw-s0 --adapter-ip 198.18.0.3 --router-mac "$TMAC"
# Slow: one probe every 10 s (30 ports, 5 minutes).
rec nmap_syn_vertical_slow_10s \
  '198.18.0.2,vertical,tcp,198.19.1.21,20-49,nmap,nmap -sS -Pn --scan-delay 10s --max-retries 0 -p 20-49 -n 198.19.1.21' \
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
  '198.18.0.20,none,tcp+udp,198.19.1.1-30 and 198.19.1.53,"80,53",python3 urllib + stub resolver,"90 HTTP requests to 30 servers, 150 DNS queries"' \
  90 -- python3 /tmp/sw-client.py

# Loopback: a connect scan of 127.0.5.5 with four listeners.
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
LP=$!
sleep 1
f="$OUT/nmap_connect_vertical_loopback_1-400.pcap"
timeout 60 tcpdump -i lo -s 128 -U -w "$f" net 127.0.5.0/24 2>/dev/null &
tp=$!
sleep 1.5
timeout 60 nmap -sT -Pn -p 1-400 -n 127.0.5.5 >/dev/null 2>&1 || true
sleep 2
kill -INT $tp; wait $tp 2>/dev/null || true
kill $LP 2>/dev/null || true
echo 'nmap_connect_vertical_loopback_1-400.pcap,127.0.0.1,vertical,tcp,127.0.5.5,1-400,nmap,nmap -sT -Pn -p 1-400 -n 127.0.5.5' >> "$TRUTH"
echo "recorded $(basename "$f"): $(stat -c %s "$f") bytes"
echo "truth: $TRUTH"
