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
//! each failing on two or three of its few closed ports.
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
    /// with a scan hidden in it), `wide` (benign plus a masscan-style
    /// random scan of a /16 on all ports), or `distributed` (benign, clients
    /// of a server with closed ports, and a port range of one target split
    /// between several sources).
    #[arg(long, default_value = "mixed")]
    pub profile: String,
    /// Spoofed sources in the flood profile.
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
        /// The UDP probe an unreachable quotes.
        quote: Option<([u8; 4], [u8; 4], u16, u16)>,
    },
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
                    Some((qs, qd, qsp, qdp)) => {
                        b.extend_from_slice(&[0x45, 0, 0, 36, 0, 0, 0x40, 0, 64, 17, 0, 0]);
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
                    quote: Some((s, dst, sp, port)),
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
    planned.push(Planned {
        stream: Box::new(Benign::new(a.seed, start, benign_flows, a.active, a.rate)),
        truth: None,
    });
    let span = (benign_flows as f64 / a.rate.max(1e-3) * 1e6) as i64;
    let s = a.seed;
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
        p => anyhow::bail!("--profile {p:?}: expected mixed, benign, flood, wide or distributed"),
    };
    for spec in scans {
        planned.push(spec.plan(s, start, scan_span));
    }
    let mut out = PcapOut::new(&a.out)?;
    let mut truth = String::from("pcap,scanner_ip,scan_type,protocol,targets,ports,tool,command\n");
    let name = a
        .out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    truth.push_str(&format!(
        "{name},10.0.0.0,none,tcp+udp+icmp,172.16.0.0/12,-,gen,benign mix\n"
    ));
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
            out.write(t, &p)?;
        }
        if let Some((t2, p2)) = streams[i].next() {
            next[i] = Some(p2);
            heads.push(std::cmp::Reverse((t2, i)));
        }
    }
    out.w.flush()?;
    let secs = started.elapsed().as_secs_f64();
    let truth_path = a.truth.clone().unwrap_or_else(|| {
        let mut p = a.out.clone().into_os_string();
        p.push(".truth.csv");
        PathBuf::from(p)
    });
    std::fs::write(&truth_path, truth).with_context(|| format!("{}", truth_path.display()))?;
    eprintln!(
        "scanwatch gen: {} packets, {:.1} MB in {:.2} s ({:.0} MB/s) -> {}; truth -> {}",
        out.packets,
        out.bytes as f64 / 1e6,
        secs,
        out.bytes as f64 / 1e6 / secs.max(1e-9),
        a.out.display(),
        truth_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
