//! `scanwatch gen`: writes synthetic captures fast and deterministically (by
//! `--seed`), with a truth file in the format of the corpus's `truth.csv`.
//!
//! A capture is a merge, by time, of independent packet streams: a benign
//! mix (TCP sessions with handshake, request, response and teardown; DNS-like
//! UDP request/reply; ICMP echo) over a chosen number of flows with a chosen
//! number active at once, and one stream per injected scan (horizontal SYN,
//! vertical SYN, block, FIN, UDP sweep with ICMP port-unreachable replies,
//! ICMP echo sweep, connect sweep of an open port, and a slow vertical scan
//! at one probe every 15 s). The `flood` profile adds a SYN flood from
//! millions of spoofed sources with the victim's SYN-ACKs, and hides a real
//! scan inside it. The `wide` profile adds one masscan-style source sending
//! SYNs to random (address in a /16, port) pairs at 100,000 a second, most
//! ignored, some refused, a few answered (open doors). The `distributed`
//! profile splits a port range of one target between several sources (none
//! a scanner alone) and adds, as its negative, clients of a busy server
//! each failing on two or three of its few closed ports. The `campaign`
//! profile adds one slow SYN sweep spread over the sensors of `--split N`
//! (which writes one capture per sensor, each packet to the sensor of its
//! address pair), so few per sensor that none flags it alone.
//!
//! Packets are written straight into a buffered pcap (Ethernet, µs) from
//! header templates; nothing is allocated per packet.

use anyhow::{Context, Result};
use clap::Args;
use scanwatch_model::TcpFlags;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct GenArgs {
    /// Output pcap file.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: PathBuf,
    /// Truth file (default: the output with `.truth.csv`).
    #[arg(long, value_name = "CSV")]
    pub truth: Option<PathBuf>,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Benign flows in all.
    #[arg(long, default_value_t = 100_000)]
    pub flows: u64,
    /// Benign flows open at any moment.
    #[arg(long, default_value_t = 1000)]
    pub active: usize,
    /// Benign flows started per second of capture time.
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// `mixed` (benign plus scans), `benign`, `flood` (spoofed SYN flood
    /// with a scan hidden in it), the other flood shapes for memory tests
    /// (`flood6`: spoofed IPv6 SYN sources; `udp-flood`: spoofed sources,
    /// UDP to random ports; `frag-flood`: first fragments only;
    /// `long-lived`: `--flood-sources` flows active every 20 s for a minute;
    /// `fanout`: one source to random address:port), `wide` (benign plus a masscan-style
    /// random scan of a /16 on all ports), `distributed` (benign, clients
    /// of a server with closed ports, and a port range of one target split
    /// between several sources), `campaign` (benign plus one slow SYN sweep
    /// of port 22 whose targets are spread so each `--split` sensor sees
    /// `--campaign-per-sensor` of them), or one busy benign host alone
    /// (DESIGN §4):
    /// `resolver`, `mta`, `link-checker`, `nat-gateway`, `bittorrent`,
    /// `ntp-client`, `health-check`, `monitoring-poller`.
    #[arg(long, default_value = "mixed")]
    pub profile: String,
    /// Busy profiles: the share of the host's servers, peers or devices
    /// that fail (no answer, refused, or host unreachable), 0.0 to 0.6.
    #[arg(long, default_value_t = 0.4, value_parser = fail_share)]
    pub fail_share: f64,
    /// Busy profiles: mix one real scan from another address into the
    /// traffic (`--hidden-scan false` for the host alone).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub hidden_scan: bool,
    /// Spoofed sources (packets, or flows for `long-lived`) in the flood
    /// profiles.
    #[arg(long, default_value_t = 2_000_000)]
    pub flood_sources: u64,
    /// SYNs sent by the wide profile's scanner.
    #[arg(long, default_value_t = 200_000)]
    pub wide_probes: u64,
    /// Capture start, Unix seconds.
    #[arg(long, default_value_t = 1_790_000_000)]
    pub start: u64,
    /// Sources of the distributed profile's split-range scan.
    #[arg(long, default_value_t = 5)]
    pub dist_sources: u8,
    /// Ports `1..=N` the distributed profile's sources split between them.
    #[arg(long, default_value_t = 60)]
    pub dist_ports: u16,
    /// Write N captures, one per sensor (`OUT` with `.s0` … before its
    /// extension), each packet to the sensor of its address pair (a hash of
    /// the two addresses, so a flow and its replies stay together), as N
    /// sensors watching parts of one network would see it. 1: one capture.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub split: u8,
    /// The `campaign` profile: targets each sensor of `--split` sees from
    /// its one scanner (4 closed ports and 1 open door each by default:
    /// 25 contacts in all, over the 5-minute window's 20 where no sensor
    /// has enough alone).
    #[arg(long, default_value_t = 5)]
    pub campaign_per_sensor: u8,
}

/// The sensor (of `n`) that sees packets between `a` and `b` under
/// `--split`: either direction gives the same.
pub fn sensor_of_pair(a: [u8; 4], b: [u8; 4], n: u8) -> usize {
    let (a, b) = (u32::from_be_bytes(a), u32::from_be_bytes(b));
    let key = (u64::from(a.min(b)) << 32) | u64::from(a.max(b));
    (mix(key) % u64::from(n.max(1))) as usize
}

/// The `campaign` profile's scanner.
pub const CAMPAIGN_SCANNER: [u8; 4] = [198, 51, 100, 77];

/// The `campaign` profile's targets: `per` hosts of 172.21.7.0/24 (and the
/// next /24s when that is not enough) for each
/// of `n` sensors (by [`sensor_of_pair`] with the scanner), a quarter of
/// them (at least one per sensor) open on port 22, the rest closed.
fn campaign_targets(n: u8, per: u8) -> Vec<[u8; 4]> {
    let per = usize::from(per);
    let open_each = (per / 4).max(1).min(per);
    let mut taken = vec![(0usize, 0usize); usize::from(n)];
    let mut out = Vec::new();
    // Hosts .1 to .199 of 172.21.7.0/24, then of the next /24s.
    for i in 0..199 * 32u32 {
        let t = [172, 21, 7 + (i / 199) as u8, 1 + (i % 199) as u8];
        let k = sensor_of_pair(CAMPAIGN_SCANNER, t, n);
        let (closed, open) = &mut taken[k];
        if is_open(t, 22) {
            if *open < open_each {
                *open += 1;
                out.push(t);
            }
        } else if *closed < per - open_each {
            *closed += 1;
            out.push(t);
        }
    }
    out
}

fn fail_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=0.6).contains(&f) => Ok(f),
        _ => Err(format!("{s:?}: expected a share from 0.0 to 0.6")),
    }
}

/// xorshift64*: small, fast, and the same everywhere.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Exponential with mean `m` (µs).
    fn exp(&mut self, m: f64) -> i64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (-(1.0 - u).ln() * m) as i64
    }
}

/// The probe an ICMP error quotes: source, destination, ports, protocol.
type Quote = ([u8; 4], [u8; 4], u16, u16, u8);

/// One packet to write.
#[derive(Clone, Copy)]
enum Pkt {
    Tcp {
        src: [u8; 4],
        dst: [u8; 4],
        sp: u16,
        dp: u16,
        flags: TcpFlags,
        payload: u16,
    },
    Udp {
        src: [u8; 4],
        dst: [u8; 4],
        sp: u16,
        dp: u16,
        payload: u16,
    },
    Icmp {
        src: [u8; 4],
        dst: [u8; 4],
        ty: u8,
        code: u8,
        /// The probe an unreachable quotes: source, destination, ports and
        /// protocol (17 or 6).
        quote: Option<Quote>,
    },
    /// TCP over IPv6 (no extension headers).
    Tcp6 {
        src: [u8; 16],
        dst: [u8; 16],
        sp: u16,
        dp: u16,
        flags: TcpFlags,
    },
    /// The first fragment (offset 0, more fragments) of a UDP datagram of
    /// 1,480 bytes; the rest never comes.
    UdpFrag {
        src: [u8; 4],
        dst: [u8; 4],
        sp: u16,
        dp: u16,
        id: u16,
    },
}

impl Pkt {
    /// Source and destination, for `--split`'s choice of sensor (an IPv6
    /// address is folded to 4 bytes by XOR of its four words: only the
    /// hash of the pair needs it).
    fn addrs(&self) -> ([u8; 4], [u8; 4]) {
        fn fold(a: [u8; 16]) -> [u8; 4] {
            let mut o = [0u8; 4];
            for (i, b) in a.iter().enumerate() {
                o[i % 4] ^= b;
            }
            o
        }
        match *self {
            Pkt::Tcp { src, dst, .. }
            | Pkt::Udp { src, dst, .. }
            | Pkt::Icmp { src, dst, .. }
            | Pkt::UdpFrag { src, dst, .. } => (src, dst),
            Pkt::Tcp6 { src, dst, .. } => (fold(src), fold(dst)),
        }
    }
}

/// `--split`'s file for sensor `k`: `dir/name.sK.ext`.
fn split_name(out: &std::path::Path, k: u8) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = match out.extension() {
        Some(e) => format!("{stem}.s{k}.{}", e.to_string_lossy()),
        None => format!("{stem}.s{k}"),
    };
    out.with_file_name(name)
}

/// A stream of packets in time order.
trait Stream {
    /// The next packet and its time (µs), or None when done.
    fn next(&mut self) -> Option<(i64, Pkt)>;
}

struct PcapOut {
    w: BufWriter<File>,
    buf: Vec<u8>,
    packets: u64,
    bytes: u64,
}

impl PcapOut {
    fn new(path: &PathBuf) -> Result<PcapOut> {
        let f = File::create(path).with_context(|| format!("{}", path.display()))?;
        let mut w = BufWriter::with_capacity(4 << 20, f);
        let mut h = Vec::with_capacity(24);
        h.extend(0xa1b2_c3d4u32.to_le_bytes());
        h.extend(2u16.to_le_bytes());
        h.extend(4u16.to_le_bytes());
        h.extend(0u32.to_le_bytes());
        h.extend(0u32.to_le_bytes());
        h.extend(65535u32.to_le_bytes());
        h.extend(1u32.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapOut {
            w,
            buf: Vec::with_capacity(256),
            packets: 0,
            bytes: 24,
        })
    }

    fn ipv4(&mut self, src: [u8; 4], dst: [u8; 4], proto: u8, l4_len: usize) {
        let total = (20 + l4_len) as u16;
        let b = &mut self.buf;
        b.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let start = b.len();
        b.extend_from_slice(&[0x45, 0]);
        b.extend_from_slice(&total.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
        b.extend_from_slice(&src);
        b.extend_from_slice(&dst);
        let mut sum = 0u32;
        for c in b[start..start + 20].chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let ck = !(sum as u16);
        b[start + 10..start + 12].copy_from_slice(&ck.to_be_bytes());
    }

    /// Writes one packet; payload bytes are declared in the headers but only
    /// the first 64 are stored (as a snaplen-cut capture would).
    fn write(&mut self, ts: i64, p: &Pkt) -> Result<()> {
        self.buf.clear();
        let wire;
        match *p {
            Pkt::Tcp {
                src,
                dst,
                sp,
                dp,
                flags,
                payload,
            } => {
                self.ipv4(src, dst, 6, 20 + usize::from(payload));
                let b = &mut self.buf;
                b.extend_from_slice(&sp.to_be_bytes());
                b.extend_from_slice(&dp.to_be_bytes());
                b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, if flags.ack() { 1 } else { 0 }]);
                b.extend_from_slice(&[0x50, flags.bits(), 0xff, 0xff, 0, 0, 0, 0]);
                wire = 54 + usize::from(payload);
                let keep = usize::from(payload).min(64);
                b.resize(b.len() + keep, 0x61);
            }
            Pkt::Udp {
                src,
                dst,
                sp,
                dp,
                payload,
            } => {
                self.ipv4(src, dst, 17, 8 + usize::from(payload));
                let b = &mut self.buf;
                b.extend_from_slice(&sp.to_be_bytes());
                b.extend_from_slice(&dp.to_be_bytes());
                b.extend_from_slice(&(8 + payload).to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                wire = 42 + usize::from(payload);
                let keep = usize::from(payload).min(64);
                b.resize(b.len() + keep, 0x62);
            }
            Pkt::Icmp {
                src,
                dst,
                ty,
                code,
                quote,
            } => {
                let body = if quote.is_some() { 28 } else { 32 };
                self.ipv4(src, dst, 1, 8 + body);
                let b = &mut self.buf;
                b.extend_from_slice(&[ty, code, 0, 0, 0, 1, 0, 1]);
                match quote {
                    Some((qs, qd, qsp, qdp, qp)) => {
                        let qlen = if qp == 17 { 36 } else { 40 };
                        b.extend_from_slice(&[0x45, 0, 0, qlen, 0, 0, 0x40, 0, 64, qp, 0, 0]);
                        b.extend_from_slice(&qs);
                        b.extend_from_slice(&qd);
                        b.extend_from_slice(&qsp.to_be_bytes());
                        b.extend_from_slice(&qdp.to_be_bytes());
                        b.extend_from_slice(&[0, 16, 0, 0]);
                    }
                    None => b.resize(b.len() + 32, 0x63),
                }
                wire = self.buf.len();
            }
            Pkt::Tcp6 {
                src,
                dst,
                sp,
                dp,
                flags,
            } => {
                let b = &mut self.buf;
                b.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd]);
                b.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, 6, 64]);
                b.extend_from_slice(&src);
                b.extend_from_slice(&dst);
                b.extend_from_slice(&sp.to_be_bytes());
                b.extend_from_slice(&dp.to_be_bytes());
                b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, if flags.ack() { 1 } else { 0 }]);
                b.extend_from_slice(&[0x50, flags.bits(), 0xff, 0xff, 0, 0, 0, 0]);
                wire = self.buf.len();
            }
            Pkt::UdpFrag {
                src,
                dst,
                sp,
                dp,
                id,
            } => {
                // 1,480 bytes of UDP in all; this fragment carries the first
                // 1,024 (its header and 1,016 of data; 64 stored).
                self.ipv4(src, dst, 17, 1024);
                let b = &mut self.buf;
                let ip = 14;
                b[ip + 4..ip + 6].copy_from_slice(&id.to_be_bytes());
                // More fragments, offset 0 (and no don't-fragment bit).
                b[ip + 6] = 0x20;
                b[ip + 7] = 0;
                b[ip + 10] = 0;
                b[ip + 11] = 0;
                let mut sum = 0u32;
                for c in b[ip..ip + 20].chunks(2) {
                    sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
                }
                while sum > 0xffff {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
                b[ip + 10..ip + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
                b.extend_from_slice(&sp.to_be_bytes());
                b.extend_from_slice(&dp.to_be_bytes());
                b.extend_from_slice(&1480u16.to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                wire = 14 + 20 + 1024;
                b.resize(b.len() + 64, 0x66);
            }
        }
        let cap = self.buf.len() as u32;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&cap.to_le_bytes());
        rec[12..16].copy_from_slice(&(wire as u32).max(cap).to_le_bytes());
        self.w.write_all(&rec)?;
        self.w.write_all(&self.buf)?;
        self.packets += 1;
        self.bytes += 16 + u64::from(cap);
        Ok(())
    }
}

fn client(i: u64) -> [u8; 4] {
    [10, (i >> 16) as u8 % 64, (i >> 8) as u8, i as u8]
}

fn server(i: u64) -> [u8; 4] {
    [172, 16 + ((i >> 16) as u8 % 16), (i >> 8) as u8, i as u8]
}

/// The benign mix: sessions opened at `rate` per second, at most `active`
/// at once, each a small script of packets.
struct Benign {
    rng: Rng,
    t: i64,
    started: u64,
    total: u64,
    gap: f64,
    active: usize,
    /// (next packet time, session) min-heap.
    heap: BinaryHeap<std::cmp::Reverse<(i64, u64, u32)>>,
    sessions: Vec<Session>,
    free: Vec<u32>,
}

#[derive(Clone, Copy, Default)]
struct Session {
    kind: u8,
    step: u8,
    c: [u8; 4],
    s: [u8; 4],
    cp: u16,
    sp: u16,
    rounds: u8,
}

impl Benign {
    fn new(seed: u64, start: i64, total: u64, active: usize, rate: f64) -> Benign {
        Benign {
            rng: Rng::new(seed ^ 0xbe),
            t: start,
            started: 0,
            total,
            gap: 1e6 / rate.max(1e-3),
            active: active.max(1),
            heap: BinaryHeap::new(),
            sessions: Vec::new(),
            free: Vec::new(),
        }
    }

    fn open(&mut self) {
        let r = &mut self.rng;
        let kind = match r.below(10) {
            0..=6 => 0, // TCP web/TLS session
            7 | 8 => 1, // DNS
            _ => 2,     // ping
        };
        let s = Session {
            kind,
            step: 0,
            c: client(r.below(20_000)),
            s: server(r.below(if kind == 1 { 4 } else { 500 })),
            cp: 20_000 + r.below(40_000) as u16,
            sp: match kind {
                0 => [80u16, 443, 443, 443, 8080, 22][r.below(6) as usize],
                1 => 53,
                _ => 0,
            },
            rounds: 1 + r.below(4) as u8,
        };
        let id = match self.free.pop() {
            Some(i) => {
                self.sessions[i as usize] = s;
                i
            }
            None => {
                self.sessions.push(s);
                (self.sessions.len() - 1) as u32
            }
        };
        self.started += 1;
        self.heap
            .push(std::cmp::Reverse((self.t, self.started, id)));
    }
}

impl Stream for Benign {
    fn next(&mut self) -> Option<(i64, Pkt)> {
        // Keep `active` sessions open while flows remain to start.
        while self.heap.len() < self.active && self.started < self.total {
            self.t += self.rng.exp(self.gap);
            self.open();
        }
        let std::cmp::Reverse((t, order, id)) = self.heap.pop()?;
        let rtt = 200 + self.rng.below(20_000) as i64;
        let s = &mut self.sessions[id as usize];
        let (c, sv, cp, sp) = (s.c, s.s, s.cp, s.sp);
        let tcp = |fwd: bool, flags: TcpFlags, payload: u16| {
            if fwd {
                Pkt::Tcp {
                    src: c,
                    dst: sv,
                    sp: cp,
                    dp: sp,
                    flags,
                    payload,
                }
            } else {
                Pkt::Tcp {
                    src: sv,
                    dst: c,
                    sp,
                    dp: cp,
                    flags,
                    payload,
                }
            }
        };
        let (pkt, done) = match s.kind {
            0 => {
                // S, SA, A, (req, resp)*rounds, F, FA, A
                let n = 3 + 2 * usize::from(s.rounds) + 3;
                let st = usize::from(s.step);
                let p = match st {
                    0 => tcp(true, TcpFlags::SYN, 0),
                    1 => tcp(false, TcpFlags::SYN | TcpFlags::ACK, 0),
                    2 => tcp(true, TcpFlags::ACK, 0),
                    x if x < n - 3 => {
                        if (x - 3).is_multiple_of(2) {
                            tcp(true, TcpFlags::PSH | TcpFlags::ACK, 300)
                        } else {
                            tcp(false, TcpFlags::PSH | TcpFlags::ACK, 1400)
                        }
                    }
                    x if x == n - 3 => tcp(true, TcpFlags::FIN | TcpFlags::ACK, 0),
                    x if x == n - 2 => tcp(false, TcpFlags::FIN | TcpFlags::ACK, 0),
                    _ => tcp(true, TcpFlags::ACK, 0),
                };
                (p, st + 1 >= n)
            }
            1 => {
                let p = if s.step == 0 {
                    Pkt::Udp {
                        src: c,
                        dst: sv,
                        sp: cp,
                        dp: 53,
                        payload: 40,
                    }
                } else {
                    Pkt::Udp {
                        src: sv,
                        dst: c,
                        sp: 53,
                        dp: cp,
                        payload: 120,
                    }
                };
                (p, s.step >= 1)
            }
            _ => {
                let p = if s.step == 0 {
                    Pkt::Icmp {
                        src: c,
                        dst: sv,
                        ty: 8,
                        code: 0,
                        quote: None,
                    }
                } else {
                    Pkt::Icmp {
                        src: sv,
                        dst: c,
                        ty: 0,
                        code: 0,
                        quote: None,
                    }
                };
                (p, s.step >= 1)
            }
        };
        s.step += 1;
        if done {
            self.free.push(id);
        } else {
            self.heap.push(std::cmp::Reverse((t + rtt, order, id)));
        }
        Some((t, pkt))
    }
}

/// A scan: probes at a fixed pace, each followed by the target's answer.
struct Scan {
    scanner: [u8; 4],
    targets: Vec<[u8; 4]>,
    ports: Vec<u16>,
    kind: ScanShape,
    t: i64,
    gap: i64,
    i: usize,
    pending: Option<(i64, Pkt)>,
    rng: Rng,
}

#[derive(Clone, Copy, PartialEq)]
enum ScanShape {
    Syn,
    Fin,
    Connect,
    Udp,
    Echo,
}

/// Which (target, port) answer: a fixed pattern so the truth is known.
fn is_open(t: [u8; 4], port: u16) -> bool {
    matches!(port, 22 | 80 | 443) && !t[3].is_multiple_of(3)
}

fn is_dead(t: [u8; 4]) -> bool {
    t[3] >= 200
}

impl Stream for Scan {
    fn next(&mut self) -> Option<(i64, Pkt)> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        let n = self.targets.len() * self.ports.len();
        if self.i >= n {
            return None;
        }
        let (ti, pi) = (self.i / self.ports.len(), self.i % self.ports.len());
        let (dst, port) = (self.targets[ti], self.ports[pi]);
        self.i += 1;
        let t = self.t;
        self.t += self.gap;
        let sp = 40_000 + (self.i % 20_000) as u16;
        let rtt = 100 + self.rng.below(900) as i64;
        let s = self.scanner;
        let (probe, answer) = match self.kind {
            ScanShape::Syn | ScanShape::Connect => (
                Pkt::Tcp {
                    src: s,
                    dst,
                    sp,
                    dp: port,
                    flags: TcpFlags::SYN,
                    payload: 0,
                },
                if is_dead(dst) {
                    None
                } else if is_open(dst, port) || self.kind == ScanShape::Connect {
                    Some(Pkt::Tcp {
                        src: dst,
                        dst: s,
                        sp: port,
                        dp: sp,
                        flags: TcpFlags::SYN | TcpFlags::ACK,
                        payload: 0,
                    })
                } else {
                    Some(Pkt::Tcp {
                        src: dst,
                        dst: s,
                        sp: port,
                        dp: sp,
                        flags: TcpFlags::RST | TcpFlags::ACK,
                        payload: 0,
                    })
                },
            ),
            ScanShape::Fin => (
                Pkt::Tcp {
                    src: s,
                    dst,
                    sp,
                    dp: port,
                    flags: TcpFlags::FIN,
                    payload: 0,
                },
                if is_dead(dst) || is_open(dst, port) {
                    None
                } else {
                    Some(Pkt::Tcp {
                        src: dst,
                        dst: s,
                        sp: port,
                        dp: sp,
                        flags: TcpFlags::RST | TcpFlags::ACK,
                        payload: 0,
                    })
                },
            ),
            ScanShape::Udp => (
                Pkt::Udp {
                    src: s,
                    dst,
                    sp,
                    dp: port,
                    payload: 0,
                },
                (!is_dead(dst)).then_some(Pkt::Icmp {
                    src: dst,
                    dst: s,
                    ty: 3,
                    code: 3,
                    quote: Some((s, dst, sp, port, 17)),
                }),
            ),
            ScanShape::Echo => (
                Pkt::Icmp {
                    src: s,
                    dst,
                    ty: 8,
                    code: 0,
                    quote: None,
                },
                (!is_dead(dst)).then_some(Pkt::Icmp {
                    src: dst,
                    dst: s,
                    ty: 0,
                    code: 0,
                    quote: None,
                }),
            ),
        };
        if let Some(a) = answer {
            self.pending = Some((t + rtt.min(self.gap.max(2) - 1), a));
        }
        Some((t, probe))
    }
}

/// SYN flood from spoofed sources at a victim, which answers SYN-ACK.
struct Flood {
    rng: Rng,
    t: i64,
    n: u64,
    total: u64,
    gap: f64,
    victim: [u8; 4],
    pending: Option<(i64, Pkt)>,
}

impl Stream for Flood {
    fn next(&mut self) -> Option<(i64, Pkt)> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        if self.n >= self.total {
            return None;
        }
        self.n += 1;
        self.t += self.rng.exp(self.gap).max(1);
        let x = self.rng.next();
        let src = [
            100 + (x % 100) as u8,
            (x >> 8) as u8,
            (x >> 16) as u8,
            (x >> 24) as u8,
        ];
        let sp = (x >> 32) as u16 | 1024;
        self.pending = Some((
            self.t + 1,
            Pkt::Tcp {
                src: self.victim,
                dst: src,
                sp: 80,
                dp: sp,
                flags: TcpFlags::SYN | TcpFlags::ACK,
                payload: 0,
            },
        ));
        Some((
            self.t,
            Pkt::Tcp {
                src,
                dst: self.victim,
                sp,
                dp: 80,
                flags: TcpFlags::SYN,
                payload: 0,
            },
        ))
    }
}

/// The flood shapes besides the spoofed IPv4 SYN flood (`flood`), for the
/// memory tests: every one makes a new flow (and most a new detector source
/// or target contact) per packet or two, `total` of them over the span.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Spoofed IPv6 sources SYN a victim, which answers SYN-ACK.
    Syn6,
    /// Spoofed IPv4 sources send UDP to random ports of a victim; nothing
    /// answers.
    Udp,
    /// Spoofed IPv4 sources send the first fragment of a UDP datagram to
    /// random ports of a victim; the rest never comes.
    Frag,
    /// `total` client flows to servers, each answered, every flow active
    /// again every `LONG_PERIOD` for `LONG_ROUNDS` rounds: none idles out.
    Long,
    /// One source SYNs random (address, port) pairs of a /8; nothing
    /// answers.
    Fanout,
}

/// The profiles of [`Shape`], by name.
const SHAPES: [(&str, Shape); 5] = [
    ("flood6", Shape::Syn6),
    ("udp-flood", Shape::Udp),
    ("frag-flood", Shape::Frag),
    ("long-lived", Shape::Long),
    ("fanout", Shape::Fanout),
];

const LONG_ROUNDS: u64 = 3;
const LONG_PERIOD: i64 = 20_000_000;
const FANOUT_SCANNER: [u8; 4] = [198, 51, 100, 7];

struct Flood2 {
    shape: Shape,
    rng: Rng,
    start: i64,
    t: i64,
    n: u64,
    total: u64,
    gap: f64,
    pending: Option<(i64, Pkt)>,
}

impl Stream for Flood2 {
    fn next(&mut self) -> Option<(i64, Pkt)> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        let packets = if self.shape == Shape::Long {
            self.total * LONG_ROUNDS
        } else {
            self.total
        };
        if self.n >= packets {
            return None;
        }
        let k = self.n;
        self.n += 1;
        let x = self.rng.next();
        let v4 = [
            100 + (x % 100) as u8,
            (x >> 8) as u8,
            (x >> 16) as u8,
            (x >> 24) as u8,
        ];
        let port = (x >> 32) as u16 | 1024;
        let victim = [172, 20, 9, 80];
        if self.shape == Shape::Long {
            // Round r, flow i: the same (client, port) every round.
            let (r, i) = (k / self.total.max(1), k % self.total.max(1));
            self.t = self.start
                + r as i64 * LONG_PERIOD
                + (i as f64 * LONG_PERIOD as f64 / self.total.max(1) as f64) as i64;
            let src = [10, 64 + (i >> 16) as u8 % 64, (i >> 8) as u8, i as u8];
            let dst = [172, 16 + (i % 16) as u8, 0, 1];
            let sp = 1024 + (i >> 20) as u16;
            self.pending = Some((
                self.t + 1,
                Pkt::Udp {
                    src: dst,
                    dst: src,
                    sp: 443,
                    dp: sp,
                    payload: 200,
                },
            ));
            return Some((
                self.t,
                Pkt::Udp {
                    src,
                    dst,
                    sp,
                    dp: 443,
                    payload: 100,
                },
            ));
        }
        self.t += self.rng.exp(self.gap).max(1);
        let t = self.t;
        let p = match self.shape {
            Shape::Syn6 => {
                let mut src = [0u8; 16];
                src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                src[4..12].copy_from_slice(&x.to_be_bytes());
                src[15] = 1;
                let mut dst = [0u8; 16];
                dst[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                dst[15] = 0x80;
                self.pending = Some((
                    t + 1,
                    Pkt::Tcp6 {
                        src: dst,
                        dst: src,
                        sp: 80,
                        dp: port,
                        flags: TcpFlags::SYN | TcpFlags::ACK,
                    },
                ));
                Pkt::Tcp6 {
                    src,
                    dst,
                    sp: port,
                    dp: 80,
                    flags: TcpFlags::SYN,
                }
            }
            Shape::Udp => Pkt::Udp {
                src: v4,
                dst: victim,
                sp: port,
                dp: (x >> 48) as u16 | 1,
                payload: 32,
            },
            Shape::Frag => Pkt::UdpFrag {
                src: v4,
                dst: victim,
                sp: port,
                dp: (x >> 48) as u16 | 1,
                id: (x >> 40) as u16,
            },
            Shape::Fanout | Shape::Long => Pkt::Tcp {
                src: FANOUT_SCANNER,
                dst: [10, (x >> 8) as u8, (x >> 16) as u8, (x >> 24) as u8],
                sp: 40000 + (x % 1000) as u16,
                dp: (x >> 48) as u16 | 1,
                flags: TcpFlags::SYN,
                payload: 0,
            },
        };
        Some((t, p))
    }
}

/// The wide profile's scanner, its /16 and its probe spacing (µs).
const WIDE_SCANNER: [u8; 4] = [203, 0, 113, 99];
const WIDE_NET: [u8; 2] = [192, 168];
const WIDE_GAP: i64 = 10;

/// How a (target, port) of the wide scan answers, the same every time it
/// is probed: one in 4,096 pairs is open (SYN-ACK), one in 16 refuses (RST),
/// the rest are silent.
fn wide_answer(dst: [u8; 4], port: u16) -> Option<TcpFlags> {
    let mut x = (u64::from(u32::from_be_bytes(dst)) << 16) | u64::from(port);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    if x % 4096 == 0 {
        Some(TcpFlags::SYN | TcpFlags::ACK)
    } else if x % 16 == 1 {
        Some(TcpFlags::RST | TcpFlags::ACK)
    } else {
        None
    }
}

/// A masscan/zmap-style scan: SYNs to random (address in a /16, port in
/// 1..=65535) pairs, one every [`WIDE_GAP`] µs, answered per [`wide_answer`].
struct WideScan {
    rng: Rng,
    t: i64,
    n: u64,
    total: u64,
    pending: Option<(i64, Pkt)>,
}

impl Stream for WideScan {
    fn next(&mut self) -> Option<(i64, Pkt)> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        if self.n >= self.total {
            return None;
        }
        self.n += 1;
        let t = self.t;
        self.t += WIDE_GAP;
        let x = self.rng.next();
        let dst = [WIDE_NET[0], WIDE_NET[1], (x >> 8) as u8, x as u8];
        let port = ((x >> 16) % 65_535) as u16 + 1;
        // masscan's fixed source port.
        let sp = 61_000;
        let s = WIDE_SCANNER;
        if let Some(flags) = wide_answer(dst, port) {
            self.pending = Some((
                t + 5,
                Pkt::Tcp {
                    src: dst,
                    dst: s,
                    sp: port,
                    dp: sp,
                    flags,
                    payload: 0,
                },
            ));
        }
        Some((
            t,
            Pkt::Tcp {
                src: s,
                dst,
                sp,
                dp: port,
                flags: TcpFlags::SYN,
                payload: 0,
            },
        ))
    }
}

/// The distributed profile's target and its first source (the others
/// follow: .31, .32, …).
const DIST_TARGET: [u8; 4] = [198, 19, 1, 10];
const DIST_FIRST_SOURCE: [u8; 4] = [198, 18, 0, 31];
/// The busy server whose clients hit its closed ports, and the clients.
const CLOSED_SERVER: [u8; 4] = [198, 19, 2, 20];
const CLOSED_CLIENTS: u8 = 50;
/// The server's closed ports (a restarted service): clients try 2 or 3.
const CLOSED_PORTS: [u16; 3] = [8080, 8443, 9000];

/// The `distributed` profile's streams: `dist_sources` sources each probing
/// a slice of ports `1..=dist_ports` (shuffled by the seed) of one target, a
/// probe a second each, starting a few seconds apart a quarter into the
/// capture; and the negative beside it: [`CLOSED_CLIENTS`] clients each
/// trying 2 or 3 of a busy server's [`CLOSED_PORTS`] once.
fn distributed_plan(a: &GenArgs, start: i64, span: i64) -> Result<Vec<Planned>> {
    let n = a.dist_sources;
    let range = a.dist_ports;
    if n == 0 || u16::from(n) > range || u16::from(DIST_FIRST_SOURCE[3]) + u16::from(n) > 255 {
        anyhow::bail!(
            "--dist-sources {n} --dist-ports {range}: expected 1 to 224 sources and at least one port each"
        );
    }
    let mut rng = Rng::new(a.seed ^ 0xd157);
    let mut ports: Vec<u16> = (1..=range).collect();
    for i in (1..ports.len()).rev() {
        ports.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let t0 = start + span / 4;
    let t = DIST_TARGET;
    let mut v = Vec::new();
    let per = ports.len().div_ceil(usize::from(n));
    for (i, slice) in ports.chunks(per).enumerate() {
        let mut scanner = DIST_FIRST_SOURCE;
        scanner[3] += i as u8;
        let mut list = slice.to_vec();
        list.sort_unstable();
        v.push(Planned {
            stream: Box::new(Scan {
                scanner,
                targets: vec![t],
                ports: list.clone(),
                kind: ScanShape::Syn,
                t: t0 + i as i64 * 2_300_000,
                gap: 1_000_000,
                i: 0,
                pending: None,
                rng: Rng::new(a.seed ^ u64::from(u32::from_be_bytes(scanner))),
            }),
            truth: Some(format!(
                "{}.{}.{}.{},distributed,tcp,{}.{}.{}.{},{},gen,split-range scan {} of {n}",
                scanner[0],
                scanner[1],
                scanner[2],
                scanner[3],
                t[0],
                t[1],
                t[2],
                t[3],
                list.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                i + 1
            )),
        });
    }
    for c in 0..CLOSED_CLIENTS {
        let tries = 2 + rng.below(2) as usize;
        let first = rng.below(CLOSED_PORTS.len() as u64) as usize;
        let ports: Vec<u16> = (0..tries)
            .map(|k| CLOSED_PORTS[(first + k) % CLOSED_PORTS.len()])
            .collect();
        v.push(Planned {
            stream: Box::new(Scan {
                scanner: [10, 99, 0, c + 1],
                targets: vec![CLOSED_SERVER],
                ports,
                kind: ScanShape::Syn,
                t: start + span / 5 + i64::from(c) * 400_000 + rng.below(300_000) as i64,
                gap: 1_000_000,
                i: 0,
                pending: None,
                rng: Rng::new(a.seed ^ 0xc105ed ^ u64::from(c)),
            }),
            truth: None,
        });
    }
    Ok(v)
}

fn hosts(net: [u8; 3], range: std::ops::RangeInclusive<u8>) -> Vec<[u8; 4]> {
    range.map(|i| [net[0], net[1], net[2], i]).collect()
}

struct Planned {
    stream: Box<dyn Stream>,
    truth: Option<String>,
}

/// The ports a scan probes, in order.
#[derive(Clone, Copy)]
enum Ports {
    List(&'static [u16]),
    /// `first..=last`.
    Range(u16, u16),
}

impl Ports {
    fn to_vec(self) -> Vec<u16> {
        match self {
            Ports::List(l) => l.to_vec(),
            Ports::Range(a, b) => (a..=b).collect(),
        }
    }
}

/// When a scan starts, within its profile's background traffic of `span`
/// microseconds from the capture start.
#[derive(Clone, Copy)]
enum Start {
    /// `span × share` in (it is a float, truncated).
    Share(f64),
    /// `span / n` in (integer division).
    Part(i64),
}

/// One injected scan: who scans what, how, when and how fast, and the text
/// of its truth row after the scanner's address.
struct ScanSpec {
    scanner: [u8; 4],
    /// Targets: hosts `first..=last` of this /24.
    net: [u8; 3],
    hosts: (u8, u8),
    ports: Ports,
    shape: ScanShape,
    start: Start,
    /// Microseconds between probes.
    gap: i64,
    truth: &'static str,
}

/// The `mixed` profile's scans, in stream order (ties in the merge go to
/// the earlier stream).
const MIXED_SCANS: &[ScanSpec] = &[
    ScanSpec {
        scanner: [203, 0, 113, 1],
        net: [172, 20, 1],
        hosts: (1, 254),
        ports: Ports::List(&[22]),
        shape: ScanShape::Syn,
        start: Start::Share(0.1),
        gap: 2_000,
        truth: "horizontal,tcp,172.20.1.1-254,22,gen,syn sweep",
    },
    ScanSpec {
        scanner: [203, 0, 113, 2],
        net: [172, 20, 1],
        hosts: (10, 10),
        ports: Ports::Range(1, 1000),
        shape: ScanShape::Syn,
        start: Start::Share(0.2),
        gap: 500,
        truth: "vertical,tcp,172.20.1.10,1-1000,gen,syn vertical",
    },
    ScanSpec {
        scanner: [203, 0, 113, 3],
        net: [172, 20, 2],
        hosts: (1, 20),
        ports: Ports::List(&[21, 22, 23, 25, 80, 443, 445, 3389, 8080, 3306]),
        shape: ScanShape::Syn,
        start: Start::Share(0.3),
        gap: 1_000,
        truth: "block,tcp,172.20.2.1-20,10 ports,gen,syn block",
    },
    ScanSpec {
        scanner: [203, 0, 113, 4],
        net: [172, 20, 1],
        hosts: (12, 12),
        ports: Ports::Range(1, 300),
        shape: ScanShape::Fin,
        start: Start::Share(0.4),
        gap: 1_000,
        truth: "vertical,tcp,172.20.1.12,1-300,gen,fin vertical",
    },
    ScanSpec {
        scanner: [203, 0, 113, 5],
        net: [172, 20, 3],
        hosts: (1, 120),
        ports: Ports::List(&[161]),
        shape: ScanShape::Udp,
        start: Start::Share(0.5),
        gap: 5_000,
        truth: "horizontal,udp,172.20.3.1-120,161,gen,udp sweep",
    },
    ScanSpec {
        scanner: [203, 0, 113, 6],
        net: [172, 20, 4],
        hosts: (1, 254),
        ports: Ports::List(&[0]),
        shape: ScanShape::Echo,
        start: Start::Share(0.6),
        gap: 3_000,
        truth: "horizontal,icmp,172.20.4.0/24,-,gen,echo sweep",
    },
    ScanSpec {
        scanner: [203, 0, 113, 7],
        net: [172, 20, 5],
        hosts: (1, 100),
        ports: Ports::List(&[8080]),
        shape: ScanShape::Connect,
        start: Start::Share(0.7),
        gap: 4_000,
        truth: "horizontal,tcp,172.20.5.1-100,8080,gen,connect sweep all open",
    },
    ScanSpec {
        scanner: [203, 0, 113, 8],
        net: [172, 20, 1],
        hosts: (21, 21),
        ports: Ports::Range(20, 59),
        shape: ScanShape::Syn,
        start: Start::Share(0.0),
        gap: 15_000_000,
        truth: "vertical,tcp,172.20.1.21,20-59,gen,slow vertical one probe per 15 s",
    },
];

/// The scan hidden in the `flood` profile, a third of the way into it.
const FLOOD_SCANS: &[ScanSpec] = &[ScanSpec {
    scanner: [203, 0, 113, 66],
    net: [172, 20, 9],
    hosts: (80, 80),
    ports: Ports::Range(1, 500),
    shape: ScanShape::Syn,
    start: Start::Part(3),
    gap: 2_000,
    truth: "vertical,tcp,172.20.9.80,1-500,gen,syn vertical hidden in a flood",
}];

impl ScanSpec {
    /// The scan's stream and truth row, in a capture that starts at `start`
    /// with background traffic `span` microseconds long.
    fn plan(&self, seed: u64, start: i64, span: i64) -> Planned {
        let scanner = self.scanner;
        let ip = format!(
            "{}.{}.{}.{}",
            scanner[0], scanner[1], scanner[2], scanner[3]
        );
        let t = start
            + match self.start {
                Start::Share(f) => (span as f64 * f) as i64,
                Start::Part(n) => span / n,
            };
        Planned {
            stream: Box::new(Scan {
                scanner,
                targets: hosts(self.net, self.hosts.0..=self.hosts.1),
                ports: self.ports.to_vec(),
                kind: self.shape,
                t,
                gap: self.gap,
                i: 0,
                pending: None,
                rng: Rng::new(seed ^ u64::from(u32::from_be_bytes(scanner))),
            }),
            truth: Some(format!("{ip},{}", self.truth)),
        }
    }
}

pub fn main(a: GenArgs) -> Result<ExitCode> {
    let start = a.start as i64 * 1_000_000;
    let mut planned: Vec<Planned> = Vec::new();
    let benign_flows = a.flows;
    let busy_host = busy(&a.profile, a.seed, a.fail_share, start);
    if busy_host.is_none() {
        planned.push(Planned {
            stream: Box::new(Benign::new(a.seed, start, benign_flows, a.active, a.rate)),
            truth: None,
        });
    }
    let span = (benign_flows as f64 / a.rate.max(1e-3) * 1e6) as i64;
    let s = a.seed;
    let mut benign_row = "10.0.0.0,none,tcp+udp+icmp,172.16.0.0/12,-,gen,benign mix".to_string();
    // The profile's scans, and the span of background traffic they start in.
    let (scans, scan_span): (&[ScanSpec], i64) = match a.profile.as_str() {
        "benign" => (&[], span),
        "mixed" => (MIXED_SCANS, span),
        "flood" => {
            let victim = [172, 20, 9, 80];
            let flood_span = span.max(10_000_000);
            planned.push(Planned {
                stream: Box::new(Flood {
                    rng: Rng::new(s ^ 0xf100d),
                    t: start,
                    n: 0,
                    total: a.flood_sources,
                    gap: flood_span as f64 / a.flood_sources.max(1) as f64,
                    victim,
                    pending: None,
                }),
                truth: None,
            });
            (FLOOD_SCANS, flood_span)
        }
        "wide" => {
            planned.push(Planned {
                stream: Box::new(WideScan {
                    rng: Rng::new(s ^ 0x1de),
                    t: start + span / 5,
                    n: 0,
                    total: a.wide_probes,
                    pending: None,
                }),
                truth: Some(format!(
                    "{}.{}.{}.{},block,tcp,{}.{}.0.0/16,1-65535,synthetic (masscan-like spread; not its headers),random syn scan of a /16 on all ports",
                    WIDE_SCANNER[0],
                    WIDE_SCANNER[1],
                    WIDE_SCANNER[2],
                    WIDE_SCANNER[3],
                    WIDE_NET[0],
                    WIDE_NET[1]
                )),
            });
            (&[], span)
        }
        "distributed" => {
            planned.extend(distributed_plan(&a, start, span)?);
            (&[], span)
        }
        "campaign" => {
            let targets = campaign_targets(a.split, a.campaign_per_sensor);
            let [x, y, z, w] = CAMPAIGN_SCANNER;
            let (lo, hi) = (
                targets.iter().min().copied().unwrap_or_default(),
                targets.iter().max().copied().unwrap_or_default(),
            );
            planned.push(Planned {
                truth: Some(format!(
                    "{x}.{y}.{z}.{w},horizontal,tcp,172.21.{}.{}-172.21.{}.{} ({} hosts),22,gen,syn sweep split over {} sensors",
                    lo[2], lo[3], hi[2], hi[3],
                    targets.len(),
                    a.split
                )),
                stream: Box::new(Scan {
                    scanner: CAMPAIGN_SCANNER,
                    targets,
                    ports: vec![22],
                    kind: ScanShape::Syn,
                    t: start + span / 10,
                    // One probe every 3 s: a minute or so in all.
                    gap: 3_000_000,
                    i: 0,
                    pending: None,
                    rng: Rng::new(s ^ 0xca),
                }),
            });
            (&[], span)
        }
        p if SHAPES.iter().any(|(n, _)| *n == p) => {
            let shape = SHAPES
                .iter()
                .find(|(n, _)| *n == p)
                .map_or(Shape::Udp, |x| x.1);
            let flood_span = span.max(10_000_000);
            planned.push(Planned {
                stream: Box::new(Flood2 {
                    shape,
                    rng: Rng::new(s ^ 0xf100d2),
                    start,
                    t: start,
                    n: 0,
                    total: a.flood_sources,
                    gap: flood_span as f64 / a.flood_sources.max(1) as f64,
                    pending: None,
                }),
                truth: (shape == Shape::Fanout).then(|| {
                    format!(
                        "{}.{}.{}.{},block,tcp,10.0.0.0/8,1-65535,gen,one source to random address:port",
                        FANOUT_SCANNER[0], FANOUT_SCANNER[1], FANOUT_SCANNER[2], FANOUT_SCANNER[3]
                    )
                }),
            });
            (&[], flood_span)
        }
        p => match busy_host {
            Some((host, pkts, busy_span)) => {
                benign_row = format!(
                    "{}.{}.{}.{},none,tcp+udp+icmp,-,-,gen,busy {p} failing {}",
                    host[0], host[1], host[2], host[3], a.fail_share
                );
                planned.push(Planned {
                    stream: Box::new(Built {
                        pkts: pkts.into_iter(),
                    }),
                    truth: None,
                });
                let hidden: &[ScanSpec] = if a.hidden_scan {
                    std::slice::from_ref(&HIDDEN_SCANS[(s % 2) as usize])
                } else {
                    &[]
                };
                (hidden, busy_span)
            }
            None => anyhow::bail!(
                "--profile {p:?}: expected mixed, benign, flood, flood6, udp-flood, frag-flood, long-lived, fanout, wide, distributed, campaign or one of {}",
                BUSY_PROFILES.join(", ")
            ),
        },
    };
    for spec in scans {
        planned.push(spec.plan(s, start, scan_span));
    }
    let outs: Vec<PathBuf> = if a.split <= 1 {
        vec![a.out.clone()]
    } else {
        (0..a.split).map(|k| split_name(&a.out, k)).collect()
    };
    let mut files = outs.iter().map(PcapOut::new).collect::<Result<Vec<_>>>()?;
    let mut truth = String::from("pcap,scanner_ip,scan_type,protocol,targets,ports,tool,command\n");
    let name = a
        .out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    truth.push_str(&format!("{name},{benign_row}\n"));
    let mut streams: Vec<Box<dyn Stream>> = Vec::new();
    for p in planned {
        if let Some(t) = p.truth {
            truth.push_str(&format!("{name},{t}\n"));
        }
        streams.push(p.stream);
    }
    // k-way merge by time (ties by stream index: deterministic).
    let mut heads: BinaryHeap<std::cmp::Reverse<(i64, usize)>> = BinaryHeap::new();
    let mut next: Vec<Option<Pkt>> = vec![None; streams.len()];
    for (i, s) in streams.iter_mut().enumerate() {
        if let Some((t, p)) = s.next() {
            next[i] = Some(p);
            heads.push(std::cmp::Reverse((t, i)));
        }
    }
    let started = std::time::Instant::now();
    let mut last = i64::MIN;
    while let Some(std::cmp::Reverse((t, i))) = heads.pop() {
        if let Some(p) = next[i].take() {
            let t = t.max(last);
            last = t;
            let k = if files.len() > 1 {
                let (x, y) = p.addrs();
                sensor_of_pair(x, y, a.split)
            } else {
                0
            };
            files[k].write(t, &p)?;
        }
        if let Some((t2, p2)) = streams[i].next() {
            next[i] = Some(p2);
            heads.push(std::cmp::Reverse((t2, i)));
        }
    }
    for f in &mut files {
        f.w.flush()?;
    }
    let (packets, bytes) = files
        .iter()
        .fold((0, 0), |(p, b), f| (p + f.packets, b + f.bytes));
    let secs = started.elapsed().as_secs_f64();
    let truth_path = a.truth.clone().unwrap_or_else(|| {
        let mut p = a.out.clone().into_os_string();
        p.push(".truth.csv");
        PathBuf::from(p)
    });
    std::fs::write(&truth_path, truth).with_context(|| format!("{}", truth_path.display()))?;
    eprintln!(
        "scanwatch gen: {} packets, {:.1} MB in {:.2} s ({:.0} MB/s) -> {}; truth -> {}",
        packets,
        bytes as f64 / 1e6,
        secs,
        bytes as f64 / 1e6 / secs.max(1e-9),
        outs.iter()
            .map(|o| o.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        truth_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The busy benign hosts of DESIGN §4, one profile each: the known
/// false-alarm sources of scan detectors.
pub const BUSY_PROFILES: [&str; 8] = [
    "resolver",
    "mta",
    "link-checker",
    "nat-gateway",
    "bittorrent",
    "ntp-client",
    "health-check",
    "monitoring-poller",
];

/// How a server (or peer, or device) of a busy profile fails, the same way
/// every time: no answer, refused (TCP RST or ICMP port unreachable), or
/// ICMP host unreachable from a router on the way.
#[derive(Clone, Copy, PartialEq)]
enum Fate {
    Ok,
    Silent,
    Refused,
    Unreachable,
}

/// The site resolver the busy hosts look names up with.
const RESOLVER: [u8; 4] = [10, 1, 0, 53];

/// The packets of one busy benign host (and the hosts it talks to), built
/// whole and sorted: a few thousand packets at most.
struct Busy {
    rng: Rng,
    seed: u64,
    fail: f64,
    host: [u8; 4],
    pkts: Vec<(i64, Pkt)>,
    /// Next source port of the host.
    port: u16,
}

/// SplitMix64 of a value: a fixed pseudo-random number per (seed, item).
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

impl Busy {
    fn new(seed: u64, fail: f64, host: [u8; 4]) -> Busy {
        Busy {
            rng: Rng::new(seed ^ 0xb05e),
            seed,
            fail,
            host,
            pkts: Vec::new(),
            port: 32_768 + (seed % 1000) as u16,
        }
    }

    fn sport(&mut self) -> u16 {
        self.port = if self.port >= 60_999 {
            32_768
        } else {
            self.port + 1 + self.rng.below(7) as u16
        };
        self.port
    }

    fn u(&mut self) -> f64 {
        unit(self.rng.next())
    }

    /// The fate of item `id` of kind `role`: failing for a `fail` share of
    /// them, fixed per seed.
    fn fate(&self, role: u64, id: u64) -> Fate {
        let h = mix(self.seed.wrapping_mul(0x100_0193) ^ (role << 48) ^ id);
        if unit(h) >= self.fail {
            return Fate::Ok;
        }
        match (h >> 8) % 20 {
            0..=9 => Fate::Silent,
            10..=16 => Fate::Refused,
            _ => Fate::Unreachable,
        }
    }

    /// A server's round-trip time (µs), fixed per address.
    fn rtt(s: [u8; 4]) -> i64 {
        2_000 + (mix(u64::from(u32::from_be_bytes(s))) % 120_000) as i64
    }

    /// Picks a server among `seen` so far: a new one with probability
    /// `p_new`, else a known one, the early (popular) ones more often.
    fn pick(&mut self, seen: &mut u64, p_new: f64) -> u64 {
        if *seen == 0 || self.u() < p_new {
            *seen += 1;
            return *seen - 1;
        }
        let u = self.u();
        ((*seen as f64) * u * u) as u64
    }

    /// One UDP exchange from the host: the request, and per `fate` a reply
    /// carrying `resp` bytes, nothing, or an ICMP error. Returns when done.
    fn udp(&mut self, t: i64, s: [u8; 4], dp: u16, req: u16, resp: u16, fate: Fate) -> i64 {
        let (c, cp) = (self.host, self.sport());
        self.udp_from(t, c, cp, s, dp, req, resp, fate)
    }

    #[allow(clippy::too_many_arguments)]
    fn udp_from(
        &mut self,
        t: i64,
        c: [u8; 4],
        cp: u16,
        s: [u8; 4],
        dp: u16,
        req: u16,
        resp: u16,
        fate: Fate,
    ) -> i64 {
        let rtt = Busy::rtt(s);
        self.pkts.push((
            t,
            Pkt::Udp {
                src: c,
                dst: s,
                sp: cp,
                dp,
                payload: req,
            },
        ));
        let quote = Some((c, s, cp, dp, 17));
        let answer = match fate {
            Fate::Ok => Pkt::Udp {
                src: s,
                dst: c,
                sp: dp,
                dp: cp,
                payload: resp,
            },
            Fate::Silent => return t + 2_000_000,
            Fate::Refused => Pkt::Icmp {
                src: s,
                dst: c,
                ty: 3,
                code: 3,
                quote,
            },
            Fate::Unreachable => Pkt::Icmp {
                src: [s[0], s[1], s[2], 1],
                dst: c,
                ty: 3,
                code: 1,
                quote,
            },
        };
        self.pkts.push((t + rtt, answer));
        t + rtt
    }

    /// A DNS lookup at the site resolver (always answered).
    fn dns(&mut self, t: i64) -> i64 {
        let s = RESOLVER;
        let rtt = 300 + self.rng.below(30_000) as i64;
        let cp = self.sport();
        self.pkts.push((
            t,
            Pkt::Udp {
                src: self.host,
                dst: s,
                sp: cp,
                dp: 53,
                payload: 35,
            },
        ));
        self.pkts.push((
            t + rtt,
            Pkt::Udp {
                src: s,
                dst: self.host,
                sp: 53,
                dp: cp,
                payload: 90 + self.rng.below(200) as u16,
            },
        ));
        t + rtt
    }

    /// One TCP connection from the host: per `fate` a session (handshake,
    /// `rounds` of request and response, teardown), an RST, SYN
    /// retransmissions left unanswered, or an ICMP host unreachable.
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        t: i64,
        s: [u8; 4],
        dp: u16,
        fate: Fate,
        rounds: u32,
        req: u16,
        resp: u16,
    ) -> i64 {
        let (c, cp) = (self.host, self.sport());
        let rtt = Busy::rtt(s);
        let f = |src, dst, sp, dp, flags, payload| Pkt::Tcp {
            src,
            dst,
            sp,
            dp,
            flags,
            payload,
        };
        self.pkts.push((t, f(c, s, cp, dp, TcpFlags::SYN, 0)));
        match fate {
            Fate::Ok => {
                let mut x = t + rtt;
                self.pkts
                    .push((x, f(s, c, dp, cp, TcpFlags::SYN | TcpFlags::ACK, 0)));
                x += 50;
                self.pkts.push((x, f(c, s, cp, dp, TcpFlags::ACK, 0)));
                for _ in 0..rounds {
                    x += 100;
                    self.pkts
                        .push((x, f(c, s, cp, dp, TcpFlags::PSH | TcpFlags::ACK, req)));
                    x += rtt + self.rng.below(5_000) as i64;
                    self.pkts
                        .push((x, f(s, c, dp, cp, TcpFlags::PSH | TcpFlags::ACK, resp)));
                }
                x += 200;
                self.pkts
                    .push((x, f(c, s, cp, dp, TcpFlags::FIN | TcpFlags::ACK, 0)));
                x += rtt;
                self.pkts
                    .push((x, f(s, c, dp, cp, TcpFlags::FIN | TcpFlags::ACK, 0)));
                x += 50;
                self.pkts.push((x, f(c, s, cp, dp, TcpFlags::ACK, 0)));
                x
            }
            Fate::Refused => {
                let rst = TcpFlags::RST | TcpFlags::ACK;
                self.pkts.push((t + rtt, f(s, c, dp, cp, rst, 0)));
                t + rtt
            }
            Fate::Silent => {
                self.pkts
                    .push((t + 1_000_000, f(c, s, cp, dp, TcpFlags::SYN, 0)));
                self.pkts
                    .push((t + 3_000_000, f(c, s, cp, dp, TcpFlags::SYN, 0)));
                t + 7_000_000
            }
            Fate::Unreachable => {
                self.pkts.push((
                    t + rtt,
                    Pkt::Icmp {
                        src: [s[0], s[1], s[2], 1],
                        dst: c,
                        ty: 3,
                        code: 1,
                        quote: Some((c, s, cp, dp, 6)),
                    },
                ));
                t + rtt
            }
        }
    }

    /// An ICMP echo and, unless the device is down, its reply.
    fn ping(&mut self, t: i64, s: [u8; 4], fate: Fate) {
        let c = self.host;
        self.pkts.push((
            t,
            Pkt::Icmp {
                src: c,
                dst: s,
                ty: 8,
                code: 0,
                quote: None,
            },
        ));
        if fate == Fate::Ok {
            self.pkts.push((
                t + Busy::rtt(s) / 4,
                Pkt::Icmp {
                    src: s,
                    dst: c,
                    ty: 0,
                    code: 0,
                    quote: None,
                },
            ));
        }
    }
}

/// Address `i` of a server pool: `a.b.x.y`, hosts 1..=250 of each /24.
fn pool(a: u8, b: u8, i: u64) -> [u8; 4] {
    [
        a,
        b.wrapping_add((i / 62_500) as u8),
        (i / 250 % 250) as u8,
        (i % 250) as u8 + 1,
    ]
}

/// A busy host's address, its packets in time order, and their span (µs).
type BusyHost = ([u8; 4], Vec<(i64, Pkt)>, i64);

/// Builds one busy profile's packets from `t0`; returns the host, its
/// packets in time order, and the span of the traffic (µs).
fn busy(profile: &str, seed: u64, fail: f64, t0: i64) -> Option<BusyHost> {
    const S: i64 = 1_000_000;
    let fail = fail.clamp(0.0, 1.0);
    let mut b;
    let span;
    match profile {
        // A recursive resolver: client queries at about 4 a second, each
        // resolved at authoritative servers (a new one about once a second,
        // else a known one, popular ones most); a server that fails is
        // retried once, then avoided (but probed again now and then).
        "resolver" => {
            b = Busy::new(seed, fail, RESOLVER);
            span = 300 * S;
            let mut seen = 0u64;
            let mut bad: Vec<bool> = Vec::new();
            let mut t = t0;
            while t < t0 + span {
                t += b.rng.exp(250_000.0);
                let client = [10, 1, 1, 1 + b.rng.below(40) as u8];
                let ccp = 1024 + b.rng.below(60_000) as u16;
                b.pkts.push((
                    t,
                    Pkt::Udp {
                        src: client,
                        dst: RESOLVER,
                        sp: ccp,
                        dp: 53,
                        payload: 35,
                    },
                ));
                let mut x = t + 200;
                for _try in 0..3 {
                    let id = b.pick(&mut seen, 0.25);
                    if bad.len() <= id as usize {
                        bad.resize(id as usize + 1, false);
                    }
                    if bad[id as usize] && b.u() > 0.05 {
                        continue;
                    }
                    let s = pool(198, 18, id);
                    let fate = b.fate(1, id);
                    let resp = 120 + b.rng.below(400) as u16;
                    x = b.udp(x, s, 53, 40, resp, fate);
                    if fate == Fate::Ok {
                        break;
                    }
                    if !bad[id as usize] {
                        x = b.udp(x, s, 53, 40, 0, fate);
                    }
                    bad[id as usize] = true;
                }
                b.pkts.push((
                    x + 100,
                    Pkt::Udp {
                        src: RESOLVER,
                        dst: client,
                        sp: 53,
                        dp: ccp,
                        payload: 90,
                    },
                ));
            }
        }
        // A mail relay: a message about every 1/3 s, to a new domain about
        // once a second; MX and A lookups at the resolver (cached for a
        // few minutes), then an SMTP session that carries the message.
        "mta" => {
            b = Busy::new(seed, fail, [10, 1, 0, 25]);
            span = 300 * S;
            let mut seen = 0u64;
            let mut looked: Vec<i64> = Vec::new();
            let mut t = t0;
            while t < t0 + span {
                t += b.rng.exp(333_000.0);
                let id = b.pick(&mut seen, 0.33);
                if looked.len() <= id as usize {
                    looked.resize(id as usize + 1, i64::MIN);
                }
                let mut x = t;
                if looked[id as usize] < t - 300 * S {
                    x = b.dns(x);
                    x = b.dns(x + 100);
                    looked[id as usize] = t;
                }
                let fate = b.fate(2, id);
                b.tcp(x + 100, pool(198, 20, id), 25, fate, 6, 60, 80);
            }
        }
        // A link checker: about three links a second, on a new site about
        // once a second, else on any site seen before;
        // a lookup first (cached a minute), then HTTPS, or HTTP, or HTTP
        // redirected to HTTPS; a failed link is tried again.
        "link-checker" => {
            b = Busy::new(seed, fail, [10, 1, 0, 80]);
            span = 300 * S;
            let mut seen = 0u64;
            let mut looked: Vec<i64> = Vec::new();
            let mut t = t0;
            while t < t0 + span {
                t += b.rng.exp(333_000.0);
                // Pages link to sites old and new alike (no popular few).
                let id = if seen == 0 || b.u() < 0.33 {
                    seen += 1;
                    seen - 1
                } else {
                    (seen as f64 * b.u()) as u64
                };
                if looked.len() <= id as usize {
                    looked.resize(id as usize + 1, i64::MIN);
                }
                let mut x = t;
                if looked[id as usize] < t - 60 * S {
                    x = b.dns(x);
                    looked[id as usize] = t;
                }
                let s = pool(198, 22, id);
                let fate = b.fate(3, id);
                let ports: &[u16] = match mix(id ^ 0x11c) % 5 {
                    0 => &[80],
                    1 => &[80, 443],
                    _ => &[443],
                };
                for &p in ports {
                    x = b.tcp(x + 100, s, p, fate, 1, 300, 1400);
                    if fate != Fate::Ok {
                        b.tcp(x + 2 * S, s, p, fate, 1, 300, 1400);
                        break;
                    }
                }
            }
        }
        // A NAT gateway: the sessions of many users behind one address,
        // about eight a second, to servers old and new on the services
        // people use (web, mail, chat, QUIC, NTP, STUN).
        "nat-gateway" => {
            b = Busy::new(seed, fail, [10, 1, 0, 1]);
            span = 300 * S;
            let mut seen = 0u64;
            let mut t = t0;
            while t < t0 + span {
                t += b.rng.exp(125_000.0);
                let id = b.pick(&mut seen, 0.15);
                let s = pool(198, 24, id);
                let fate = b.fate(4, id);
                let h = mix(id ^ 0x4a7);
                let (udp, port) = match h % 20 {
                    0..=10 => (false, 443),
                    11..=13 => (false, 80),
                    14 => (false, 993),
                    15 => (false, 5223),
                    16 => (false, 22),
                    17 => (true, 443),
                    18 => (true, 123),
                    _ => (true, 3478),
                };
                if udp {
                    b.udp(t, s, port, 100, 400, fate);
                } else {
                    let rounds = 1 + b.rng.below(4) as u32;
                    b.tcp(t, s, port, fate, rounds, 400, 1400);
                }
            }
        }
        // A BitTorrent client: a new peer about once a second, on a random
        // high port (some on 51413 or 6881-6889), tried over uTP (UDP) and
        // TCP; DHT queries to nodes on random ports every two seconds; some
        // good peers reconnected later.
        "bittorrent" => {
            b = Busy::new(seed, fail, [10, 1, 0, 66]);
            span = 300 * S;
            let peer = |id: u64| {
                let h = mix(id ^ 0xb177);
                let a = [
                    [24u8, 31, 46, 62, 77, 81, 89, 94, 109, 151][(h % 10) as usize],
                    (h >> 8) as u8,
                    (h >> 16) as u8,
                    (h >> 24) as u8 % 250 + 1,
                ];
                let u = (h >> 32) % 100;
                let port = match u {
                    0..=5 => 51_413,
                    6..=9 => 6881 + ((h >> 40) % 9) as u16,
                    _ => 10_000 + ((h >> 40) % 55_000) as u16,
                };
                (a, port)
            };
            let mut t = t0;
            let mut peers = 0u64;
            let mut again: Vec<(i64, u64)> = Vec::new();
            while t < t0 + span {
                t += b.rng.exp(1_000_000.0);
                let id = peers;
                peers += 1;
                let (s, port) = peer(id);
                let fate = b.fate(5, id);
                let x = b.udp(t, s, port, 20, 20, fate);
                b.tcp(x + 1000, s, port, fate, 8, 68, 16_000);
                if fate == Fate::Ok && b.u() < 0.3 {
                    again.push((t + (30.0 + b.u() * 200.0) as i64 * S, id));
                }
            }
            for (x, id) in again {
                let (s, port) = peer(id);
                b.tcp(x, s, port, Fate::Ok, 8, 68, 16_000);
            }
            let mut nodes = 0u64;
            let mut t = t0;
            while t < t0 + span {
                t += b.rng.exp(2_000_000.0);
                let id = b.pick(&mut nodes, 0.5);
                let (s, port) = peer(id ^ 0xd47_0000_0000);
                let fate = b.fate(6, id);
                b.udp(t, s, port, 90, 300, fate);
            }
        }
        // An NTP client (ntpd's `pool`): eight servers polled every 64 s
        // after an iburst of four; a server unreachable for eight polls is
        // dropped and a new one looked up.
        "ntp-client" => {
            b = Busy::new(seed, fail, [10, 1, 0, 123]);
            span = 3600 * S;
            let mut next_id = 0u64;
            for slot in 0..8i64 {
                let mut t = t0 + slot * 700_000;
                while t < t0 + span {
                    let id = next_id;
                    next_id += 1;
                    t = b.dns(t) + 1000;
                    let s = pool(198, 26, id);
                    let fate = b.fate(7, id);
                    for k in 0..4 {
                        b.udp(t + k * 2 * S, s, 123, 48, 48, fate);
                    }
                    t += 64 * S;
                    let mut misses = 0;
                    while t < t0 + span && misses < 8 {
                        b.udp(t, s, 123, 48, 48, fate);
                        misses += usize::from(fate != Fate::Ok);
                        t += 64 * S + b.rng.below(2 * S as u64) as i64;
                    }
                }
            }
        }
        // A health-check prober: 24 services (HTTP health endpoints on
        // 8080, 443 and 80, Postgres, Redis) on 16 hosts, each checked every
        // 10 s with a request and response; some down from the start, some
        // going down during the capture.
        "health-check" => {
            b = Busy::new(seed, fail, [10, 1, 0, 9]);
            span = 600 * S;
            let mut services: Vec<([u8; 4], u16, Fate, i64)> = Vec::new();
            for i in 0..24u64 {
                let h = 1 + i % 16;
                let port = match i / 16 {
                    0 => 8080,
                    _ => [443, 80, 5432, 6379][(i % 4) as usize],
                };
                let fate = b.fate(8, i);
                // Half the failing services are down from the start, half
                // go down at some point.
                let down_at = if fate != Fate::Ok && mix(i ^ seed) % 2 == 1 {
                    t0 + (mix(i ^ seed ^ 7) % (span as u64 / 2)) as i64
                } else {
                    t0
                };
                services.push(([10, 2, 0, h as u8], port, fate, down_at));
            }
            let mut round = t0;
            while round < t0 + span {
                for (k, &(s, port, fate, down_at)) in services.iter().enumerate() {
                    let t = round + k as i64 * 400_000;
                    let f = if t >= down_at { fate } else { Fate::Ok };
                    b.tcp(t, s, port, f, 1, 120, 300);
                }
                round += 10 * S;
            }
        }
        // A monitoring poller: 20 devices, each pinged and asked for SNMP
        // counters (UDP 161) once a minute, spread over the first 10 s;
        // some down.
        "monitoring-poller" => {
            b = Busy::new(seed, fail, [10, 1, 0, 161]);
            span = 900 * S;
            let mut round = t0;
            while round < t0 + span {
                for i in 0..20u64 {
                    let s = [10, 3, (i / 200) as u8, (i % 200) as u8 + 1];
                    let fate = b.fate(9, i);
                    let t = round + i as i64 * 500_000;
                    b.ping(t, s, fate);
                    b.udp(t + 1000, s, 161, 80, 400, fate);
                }
                round += 60 * S;
            }
        }
        _ => return None,
    }
    let mut pkts = b.pkts;
    pkts.sort_by_key(|(t, _)| *t);
    Some((b.host, pkts, span))
}

/// Packets already built, in time order.
struct Built {
    pkts: std::vec::IntoIter<(i64, Pkt)>,
}

impl Stream for Built {
    fn next(&mut self) -> Option<(i64, Pkt)> {
        self.pkts.next()
    }
}

/// The real scan hidden in a busy profile, just over the default 5-minute
/// thresholds (20): a SYN scan of 25 closed ports of one host (even seeds)
/// or of one closed port on 25 hosts (odd seeds), a probe every 200 ms.
const HIDDEN_SCANS: [ScanSpec; 2] = [
    ScanSpec {
        scanner: [203, 0, 113, 77],
        net: [10, 4, 0],
        hosts: (10, 10),
        ports: Ports::Range(1000, 1024),
        shape: ScanShape::Syn,
        start: Start::Part(3),
        gap: 200_000,
        truth: "vertical,tcp,10.4.0.10,1000-1024,gen,syn vertical hidden in a busy host's traffic",
    },
    ScanSpec {
        scanner: [203, 0, 113, 78],
        net: [10, 4, 1],
        hosts: (1, 25),
        ports: Ports::List(&[23]),
        shape: ScanShape::Syn,
        start: Start::Part(3),
        gap: 200_000,
        truth: "horizontal,tcp,10.4.1.1-25,23,gen,syn sweep hidden in a busy host's traffic",
    },
];
