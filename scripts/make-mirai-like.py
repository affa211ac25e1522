#!/usr/bin/env python3
"""Writes pcaps/mirai_like_syn_horizontal_p23.pcap: a synthetic capture of a
Mirai-style telnet scanner, made from the probe layout of Mirai's
`bot/scanner.c` (jgamblin/Mirai-Source-Code) — we do not run malware:

* TCP SYN to port 23, one probe in ten to 2323;
* sequence number = the target's IPv4 address (scanner.c: tcph->seq = iph->daddr);
* one source port (>= 1024) and one window for the whole run, no options,
  TTL 64, IP ID random, DF clear;
* random targets in 198.19.0.0/16 (test addresses), 300 probes at ~160/s;
  one target in 25 answers with RST (closed), the rest stay silent.

Deterministic (fixed seed). Usage: scripts/make-mirai-like.py [OUT.pcap]
"""
import random
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "pcaps/mirai_like_syn_horizontal_p23.pcap"
rng = random.Random(2016)
SRC = bytes([198, 18, 0, 66])
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def packet(src, dst, sport, dport, seq, ack, flags, win, ttl, ipid):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, win, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ipid, 0, ttl, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return MAC_B + MAC_A + b"\x08\x00" + ip + tcp


recs = []
t = 1_790_000_000.0
sport = rng.randrange(1024, 65535)
win = rng.randrange(1, 65535)
for i in range(300):
    dst = bytes([198, 19, rng.randrange(256), rng.randrange(1, 255)])
    dport = 2323 if rng.randrange(10) == 0 else 23
    seq = struct.unpack("!I", dst)[0]
    recs.append((t, packet(SRC, dst, sport, dport, seq, 0, 0x02, win, 64, rng.randrange(65536))))
    if rng.randrange(25) == 0:
        recs.append((t + 0.0004, packet(dst, SRC, dport, sport, 0, seq + 1, 0x14, 0, 64, 0)))
    t += 1 / 160
with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for ts, p in recs:
        sec = int(ts)
        f.write(struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)), len(p), len(p)))
        f.write(p)
print(f"{out}: {len(recs)} packets")
