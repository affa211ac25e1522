#!/usr/bin/env python3
"""Writes a copy of a classic pcap with timestamp faults, for the tests of
scanwatch's packet clock (out-of-order input, outliers, gaps):

    timefaults.py IN OUT [--future N] [--zero N] [--huge N] [--shift-after N SECS]
                         [--disorder MS] [--seed S]

--future N       packet N (0-based) dated one year later
--zero N         packet N dated 0 (1970-01-01)
--huge N         packet N dated near the largest time pcapng can hold
                 (2^63-1 microseconds); OUT is written as pcapng
--shift-after N SECS   every packet from N on moved SECS later (a gap, as
                 when a sensor restarts)
--disorder MS    packets moved by up to MS milliseconds of local disorder
                 (a multi-queue NIC), order in the file kept: the file is no
                 longer sorted by time
Deterministic for a given --seed. Packets are otherwise copied byte for byte.
"""

import argparse
import random
import struct
import sys

YEAR_US = 365 * 86400 * 1_000_000
HUGE_US = (1 << 63) - 1


def read_pcap(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        e = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        e = ">"
        magic = struct.unpack(">I", data[:4])[0]
    else:
        sys.exit(f"{path}: not a classic pcap")
    nano = magic == 0xA1B23C4D
    _, _, _, _, _, snap, link = struct.unpack(e + "IHHiIII", data[:24])
    pkts, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        body = data[off + 16:off + 16 + incl]
        if len(body) < incl:
            break
        us = sec * 1_000_000 + (frac // 1000 if nano else frac)
        pkts.append([us, orig, body])
        off += 16 + incl
    return link, snap, pkts


def write_pcap(path, link, snap, pkts):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snap, link))
        for us, orig, body in pkts:
            if not 0 <= us < (1 << 32) * 1_000_000:
                sys.exit("a time beyond classic pcap's range: use --huge (pcapng)")
            f.write(struct.pack("<IIII", us // 1_000_000, us % 1_000_000, len(body), orig))
            f.write(body)


def write_pcapng(path, link, snap, pkts):
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    with open(path, "wb") as f:
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(1, struct.pack("<HHI", link, 0, snap)))  # µs resolution
        for us, orig, body in pkts:
            hi, lo = us >> 32, us & 0xFFFFFFFF
            f.write(block(6, struct.pack("<IIIII", 0, hi, lo, len(body), orig) + body))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--future", type=int)
    ap.add_argument("--zero", type=int)
    ap.add_argument("--huge", type=int)
    ap.add_argument("--shift-after", nargs=2, type=int, metavar=("N", "SECS"))
    ap.add_argument("--disorder", type=float)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    link, snap, pkts = read_pcap(a.inp)
    rnd = random.Random(a.seed)
    if a.disorder:
        d = int(a.disorder * 1000)
        for p in pkts[1:-1]:
            p[0] = max(0, p[0] + rnd.randint(-d, d))
    if a.shift_after:
        n, secs = a.shift_after
        for p in pkts[n:]:
            p[0] += secs * 1_000_000
    if a.future is not None:
        pkts[a.future][0] += YEAR_US
    if a.zero is not None:
        pkts[a.zero][0] = 0
    if a.huge is not None:
        pkts[a.huge][0] = HUGE_US
        write_pcapng(a.out, link, snap, pkts)
    else:
        write_pcap(a.out, link, snap, pkts)


if __name__ == "__main__":
    main()
