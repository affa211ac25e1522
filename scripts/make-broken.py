#!/usr/bin/env python3
"""Writes pcaps/broken/: one small capture file per kind of damage a sensor
meets (cut files, lying length fields, wrong magic, bad pcapng blocks,
malformed packets). Deterministic; the expected behaviour of scanwatch on
each file is one row of pcaps/broken/expect.csv (the table the tests read:
crates/cli/tests/broken.rs, crates/pipeline/tests/fuzz_regressions.rs,
tests/test_output.py); this script checks that every file it writes has a
row and every row a file.

    python3 scripts/make-broken.py
"""

import csv
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pcaps", "broken")
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ihl=5):
    total = 20 + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, total, 1, 0, 64, proto, 0,
                    bytes(src), bytes(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def tcp(sport, dport, flags, seq=1000):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 1024, 0, 0)


def eth(payload, ethertype=0x0800):
    return b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + struct.pack("!H", ethertype) + payload


A, B = [192, 0, 2, 1], [192, 0, 2, 2]


def syn(port):
    return eth(ipv4(A, B, 6, tcp(40000, port, 0x02)))


def rst(port):
    return eth(ipv4(B, A, 6, tcp(port, 40000, 0x14)))


def pcap_header(snaplen=262144, link=1):
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, link)


def rec(i, data, caplen=None, wire=None):
    caplen = len(data) if caplen is None else caplen
    wire = len(data) if wire is None else wire
    return struct.pack("<IIII", T0 + i, 0, caplen, wire) + data


def pcap(frames, snaplen=262144):
    return pcap_header(snaplen) + b"".join(rec(i, f) for i, f in enumerate(frames))


def block(btype, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def shb():
    return block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(link=1, snaplen=262144):
    return block(0x00000001, struct.pack("<HHI", link, 0, snaplen))


def epb(i, data, iface=0):
    ts = (T0 + i) * 1_000_000
    return block(0x00000006, struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data)


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {}
    files["empty.pcap"] = b""
    files["short_global_header.pcap"] = pcap_header()[:10]
    good = pcap([syn(22), rst(22), syn(23)])
    cut_rec = rec(3, rst(23))
    files["truncated_record.pcap"] = good + cut_rec[:16 + 20]
    files["truncated_record_header.pcap"] = good + cut_rec[:9]
    # A record longer than the file's snap length: libpcap keeps such
    # records (it trims them to the snap length); so do we (whole).
    files["caplen_over_snaplen.pcap"] = pcap_header(snaplen=40) + rec(0, syn(22)) + rec(1, rst(22))
    # A record that claims more than 256 KiB: a corrupt length, not a
    # packet; reading stops there (no 2 GiB allocation), what came before
    # is kept.
    files["caplen_over_256k.pcap"] = (pcap_header() + rec(0, syn(22)) + rec(1, rst(22))
                                      + struct.pack("<IIII", T0 + 2, 0, 300_000, 300_000) + b"\0" * 64)
    files["wrong_magic.pcap"] = b"\xde\xad\xbe\xef" + pcap([syn(22)])[4:]
    files["pcapng_bad_block_length.pcapng"] = (shb() + idb() + epb(0, syn(22)) + epb(1, rst(22))
                                               + struct.pack("<II", 6, 13) + b"\0" * 20)
    files["pcapng_unknown_block.pcapng"] = (shb() + idb() + epb(0, syn(22))
                                            + block(0x0BADBEEF, b"vendor data here")
                                            + epb(1, rst(22)))
    # A second interface of a link type scanwatch does not decode (4242):
    # its packets are counted undecodable and named in a warning, the
    # Ethernet interface's are read.
    files["pcapng_unknown_link_type.pcapng"] = (shb() + idb() + idb(link=4242)
                                                + epb(0, syn(22)) + epb(1, b"\x01" * 40, iface=1)
                                                + epb(2, b"\x02" * 40, iface=1) + epb(3, rst(22)))
    # IPv4 header length 0 (and 4: shorter than the fixed header).
    bad_ihl0 = eth(ipv4(A, B, 6, tcp(40000, 80, 0x02), ihl=0))
    bad_ihl4 = eth(ipv4(A, B, 6, tcp(40000, 81, 0x02), ihl=4))
    files["ipv4_ihl0.pcap"] = pcap([syn(22), bad_ihl0, bad_ihl4, rst(22)])
    # IPv6 with 300 chained destination-options headers and no end: the
    # decoder must stop walking, not loop or recurse.
    ext = b"".join(struct.pack("!BB6s", 60, 0, b"\x01\x04\0\0\0\0") for _ in range(300))
    v6 = struct.pack("!IHBB16s16s", 6 << 28, len(ext), 60, 64,
                     bytes.fromhex("20010db8000000000000000000000001"),
                     bytes.fromhex("20010db8000000000000000000000002")) + ext
    files["ipv6_ext_loop.pcap"] = pcap([syn(22), eth(v6, 0x86DD), rst(22)])
    # ICMP port unreachable quoting garbage, a quote with an impossible
    # IPv4 header length, and an empty quote.
    def unreach(quote):
        body = struct.pack("!BBHI", 3, 3, 0, 0) + quote
        body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
        return eth(ipv4(B, A, 1, body))
    garbage = bytes((i * 73 + 11) & 0xFF for i in range(28))
    lying = bytes([0x4F]) + bytes(27)  # IHL 15 (60 bytes) in a 28-byte quote
    files["icmp_quoting_garbage.pcap"] = pcap([syn(22), unreach(garbage), unreach(lying), unreach(b""), rst(22)])
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    with open(os.path.join(OUT, "expect.csv")) as f:
        rows = [r["file"] for r in csv.DictReader(f)]
    if sorted(rows) != sorted(files):
        raise SystemExit(f"pcaps/broken/expect.csv rows {sorted(rows)} != files written {sorted(files)}")
    print(f"wrote {len(files)} files to {OUT}")


if __name__ == "__main__":
    main()
