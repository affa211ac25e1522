//! Inputs for the criterion benches: real packets from the project's own
//! captures, and synthetic flows and attempts at sizes a capture cannot
//! reach (a million concurrent flows).

use scanwatch_capture::{FileSource, Next, PacketSource};
use scanwatch_model::{
    proto, Addr, Attempt, Micros, Outcome, PacketKind, PacketMeta, ProbeKind, TcpFlags,
};
use std::path::{Path, PathBuf};

/// One captured frame: link type, time, bytes.
pub struct Frame {
    pub link_type: u32,
    pub ts: Micros,
    pub data: Vec<u8>,
}

fn pcaps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps")
}

/// Every frame of every capture in `pcaps/` (about 30 000).
pub fn own_frames() -> Vec<Frame> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(pcaps_dir())
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "pcap"));
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Ok(mut src) = FileSource::open(&[f], None) else {
            continue;
        };
        while let Ok(Next::Packet(p)) = src.next_packet() {
            out.push(Frame {
                link_type: p.link_type,
                ts: p.ts,
                data: p.data.to_vec(),
            });
        }
    }
    out
}

/// `n` distinct TCP flows, one SYN each, from many clients to a few servers,
/// in time order (1 µs apart).
pub fn syn_flows(n: u32) -> Vec<PacketMeta> {
    (0..n)
        .map(|i| {
            let mut m = PacketMeta {
                ts: 1_790_000_000_000_000 + i64::from(i),
                kind: PacketKind::Tcp,
                tcp_flags: TcpFlags::SYN,
                ..PacketMeta::default()
            };
            m.set_tuple(
                Addr::from_v4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
                1024 + (i % 60_000) as u16,
                Addr::from_v4([172, 16, 0, (i % 7) as u8]),
                443,
                proto::TCP,
            );
            m
        })
        .collect()
}

/// Attempts of a busy mix: many benign sources with answered contacts and a
/// few scanners with rejected ones, in time order.
pub fn attempts(n: u32) -> Vec<Attempt> {
    (0..n)
        .map(|i| {
            let scanner = i % 10 == 0;
            let src = if scanner {
                Addr::from_v4([203, 0, 113, (i % 7) as u8])
            } else {
                Addr::from_v4([10, 1, (i >> 8) as u8 % 64, i as u8])
            };
            Attempt {
                time: 1_790_000_000_000_000 + i64::from(i) * 50,
                src,
                dst: Addr::from_v4([172, 16, (i >> 10) as u8, (i >> 3) as u8]),
                proto: proto::TCP,
                dport: if scanner {
                    (i / 10 % 4096) as u16 + 1
                } else {
                    443
                },
                sport: 40_000,
                probe_ts: 1_790_000_000_000_000 + i64::from(i) * 50,
                probe: ProbeKind::Syn,
                outcome: if scanner {
                    Outcome::Rejected
                } else {
                    Outcome::Answered
                },
                data: !scanner,
                flow_id: u64::from(i),
                print: Default::default(),
                handshake: false,
                abortive: false,
            }
        })
        .collect()
}

/// One source scanning at 100,000 attempts a second: `wide` sends each to a
/// random (address in 203.0.0.0/16, port 1..=65535) pair, masscan style (each
/// contact new, far past the exact set a source keeps); otherwise it cycles
/// over 10 hosts × 100 ports (1,000 contacts, within the exact set). One in
/// 50 refused, the rest ignored.
pub fn scan_attempts(n: u32, wide: bool) -> Vec<Attempt> {
    let mut x = 0x5eed_u64;
    (0..n)
        .map(|i| {
            // splitmix64
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut r = x;
            r = (r ^ (r >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            r = (r ^ (r >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            r ^= r >> 31;
            let (dst, dport) = if wide {
                (
                    Addr::from_v4([203, 0, (r >> 8) as u8, r as u8]),
                    ((r >> 16) % 65_535) as u16 + 1,
                )
            } else {
                (
                    Addr::from_v4([172, 16, 0, (i % 10) as u8 + 1]),
                    (i / 10 % 100) as u16 + 1,
                )
            };
            let t = 1_790_000_000_000_000 + i64::from(i) * 10;
            Attempt {
                time: t,
                src: Addr::from_v4([198, 51, 100, 7]),
                dst,
                proto: proto::TCP,
                dport,
                sport: 61_000,
                probe_ts: t,
                probe: ProbeKind::Syn,
                outcome: if (r >> 40).is_multiple_of(50) {
                    Outcome::Rejected
                } else {
                    Outcome::Unanswered
                },
                data: false,
                flow_id: u64::from(i),
                print: Default::default(),
                handshake: false,
                abortive: false,
            }
        })
        .collect()
}
