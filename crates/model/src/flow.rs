//! Flows: the direction-free [`FlowKey`] workers shard and index by, Zeek's
//! [`ConnState`] codes and [`History`] letters, and the finished
//! [`FlowRecord`].

use crate::{Addr, Micros};

/// A flow's identity with no direction: the endpoint that sorts first is `a`.
/// Both directions of a flow map to the same key, so a symmetric hash of it
/// sends them to the same worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FlowKey {
    pub a: Addr,
    pub b: Addr,
    pub pa: u16,
    pub pb: u16,
    pub proto: u8,
}

impl FlowKey {
    /// The address of side `a` (`true`) or side `b`.
    #[inline]
    pub fn host(&self, a: bool) -> Addr {
        if a {
            self.a
        } else {
            self.b
        }
    }

    /// The port of side `a` (`true`) or side `b`.
    #[inline]
    pub fn port(&self, a: bool) -> u16 {
        if a {
            self.pa
        } else {
            self.pb
        }
    }

    /// The key of a packet from (`src`, `sport`) to (`dst`, `dport`), and
    /// whether the packet goes from `a` to `b`. Made without a branch: the
    /// decoder makes one for every packet, and which way it goes is a coin
    /// toss to the branch predictor.
    #[inline]
    pub fn new(src: Addr, sport: u16, dst: Addr, dport: u16, proto: u8) -> (FlowKey, bool) {
        // (src, sport) <= (dst, dport), as Addr's byte order then the port.
        let (s, d) = (u128::from_be_bytes(src.0), u128::from_be_bytes(dst.0));
        let fwd = (s < d) | ((s == d) & (sport <= dport));
        let m = u16::from(fwd).wrapping_neg();
        (
            FlowKey {
                a: Addr::select(fwd, src, dst),
                b: Addr::select(fwd, dst, src),
                pa: (sport & m) | (dport & !m),
                pb: (dport & m) | (sport & !m),
                proto,
            },
            fwd,
        )
    }

    /// A symmetric 64-bit hash, the same for both directions (the key is
    /// already ordered), keyed by `seed`. Used to pick a worker and a
    /// detector shard: three folded 64×64→128-bit multiplies (foldhash's
    /// mixing step), two of them independent, so it costs a few cycles per
    /// packet on the capture thread.
    #[inline]
    pub fn shard_hash(&self, seed: u64) -> u64 {
        let w = |c: &[u8; 16], i: usize| {
            u64::from_le_bytes([
                c[i],
                c[i + 1],
                c[i + 2],
                c[i + 3],
                c[i + 4],
                c[i + 5],
                c[i + 6],
                c[i + 7],
            ])
        };
        let rest = (u64::from(self.pa) << 32) | (u64::from(self.pb) << 8) | u64::from(self.proto);
        let a = fold(
            w(&self.a.0, 0) ^ seed ^ 0x243f_6a88_85a3_08d3,
            w(&self.a.0, 8) ^ 0x1319_8a2e_0370_7344,
        );
        let b = fold(
            w(&self.b.0, 0) ^ seed ^ 0xa409_3822_299f_31d0,
            w(&self.b.0, 8) ^ 0x082e_fa98_ec4e_6c89,
        );
        fold(a ^ rest ^ 0x4528_21e6_38d0_1377, b ^ 0xbe54_66cf_34e9_0c6c)
    }
}

/// Multiplies to 128 bits and folds the halves together.
#[inline]
fn fold(x: u64, y: u64) -> u64 {
    let p = u128::from(x) * u128::from(y);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Maps a 64-bit hash onto `0..n` by its high bits (a multiply, not a
/// division).
#[inline]
pub fn bucket(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

/// Flow tables are split into this many virtual shards, whatever the number
/// of workers: a flow's shard is [`vshard`] of its key's hash, each shard
/// has its own table with a fixed cap, and a worker owns whole shards
/// ([`worker_of`]). What a full shard evicts then depends only on the
/// packets of that shard's flows, never on how many workers there are.
pub const VSHARDS: usize = 64;

/// A flow's virtual shard, from its [`FlowKey::shard_hash`].
#[inline]
pub fn vshard(hash: u64) -> usize {
    bucket(hash, VSHARDS)
}

/// The worker (of `workers`) that owns virtual shard `v`: shards are dealt
/// out in contiguous runs, so with a power-of-two worker count this is
/// `bucket(hash, workers)`. With more than [`VSHARDS`] workers, some have
/// none.
#[inline]
pub fn worker_of(v: usize, workers: usize) -> usize {
    v * workers.max(1) / VSHARDS
}

/// Zeek's `conn_state` codes, with Zeek's meanings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Attempt seen, no reply.
    S0,
    /// Established, not terminated.
    S1,
    /// Normal establishment and termination.
    SF,
    /// Attempt rejected.
    REJ,
    /// Established, originator's close seen, no reply.
    S2,
    /// Established, responder's close seen, no reply.
    S3,
    /// Established, originator aborted (RST).
    RSTO,
    /// Responder sent a RST.
    RSTR,
    /// Originator sent a SYN then a RST; no SYN-ACK seen.
    RSTOS0,
    /// Responder sent a SYN-ACK then a RST; no SYN from the originator seen.
    RSTRH,
    /// Originator sent a SYN then a FIN; no SYN-ACK seen.
    SH,
    /// Responder sent a SYN-ACK then a FIN; no SYN from the originator seen.
    SHR,
    /// No SYN seen, just midstream traffic.
    OTH,
}

impl ConnState {
    pub const ALL: [ConnState; 13] = [
        ConnState::S0,
        ConnState::S1,
        ConnState::SF,
        ConnState::REJ,
        ConnState::S2,
        ConnState::S3,
        ConnState::RSTO,
        ConnState::RSTR,
        ConnState::RSTOS0,
        ConnState::RSTRH,
        ConnState::SH,
        ConnState::SHR,
        ConnState::OTH,
    ];

    /// The code in the first `n` bytes of an 8-byte block (for copies of a
    /// fixed size).
    #[inline]
    pub fn padded(self) -> (&'static [u8; 8], usize) {
        static TABLE: [([u8; 8], usize); 13] = {
            let mut t = [([0u8; 8], 0usize); 13];
            let mut i = 0;
            while i < ConnState::ALL.len() {
                let c = ConnState::ALL[i];
                let s = c.as_str().as_bytes();
                let mut j = 0;
                while j < s.len() {
                    t[c as usize].0[j] = s[j];
                    j += 1;
                }
                t[c as usize].1 = s.len();
                i += 1;
            }
            t
        };
        let (b, n) = &TABLE[self as usize];
        (b, *n)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::REJ => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::RSTO => "RSTO",
            ConnState::RSTR => "RSTR",
            ConnState::RSTOS0 => "RSTOS0",
            ConnState::RSTRH => "RSTRH",
            ConnState::SH => "SH",
            ConnState::SHR => "SHR",
            ConnState::OTH => "OTH",
        }
    }
}

/// Zeek's `history` string without allocation: letters in the order first
/// seen, upper case for the originator, lower case for the responder, each
/// letter once, `^` first when the direction was flipped. Holds 15 letters
/// (16 bytes with its length, so a flow-table entry stays at 128 bytes);
/// real flows use fewer, later letters past 15 are dropped.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct History {
    len: u8,
    buf: [u8; 15],
}

impl History {
    /// Adds `letter` (given in upper case) for the originator (`orig`) or
    /// the responder, unless that side already has it.
    #[inline]
    pub fn add(&mut self, letter: u8, orig: bool) {
        let c = if orig {
            letter
        } else {
            letter.to_ascii_lowercase()
        };
        if self.as_bytes().contains(&c) || usize::from(self.len) >= self.buf.len() {
            return;
        }
        self.buf[usize::from(self.len)] = c;
        self.len += 1;
    }

    /// Marks the flow as flipped (`^`), which Zeek writes first.
    pub fn flip(&mut self) {
        if self.as_bytes().first() == Some(&b'^') || usize::from(self.len) >= self.buf.len() {
            return;
        }
        self.buf.copy_within(0..usize::from(self.len), 1);
        self.buf[0] = b'^';
        self.len += 1;
        // Letters recorded before the flip were for the other side.
        for c in &mut self.buf[1..usize::from(self.len)] {
            if c.is_ascii_uppercase() {
                *c = c.to_ascii_lowercase();
            } else {
                *c = c.to_ascii_uppercase();
            }
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    pub fn as_str(&self) -> &str {
        crate::ascii_str(self.as_bytes())
    }

    /// The letters in the first `n` bytes of a fixed-size block.
    #[inline]
    pub fn padded(&self) -> (&[u8; 15], usize) {
        (&self.buf, usize::from(self.len))
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finished flow, as written to the `flows` table (Zeek conn.log names).
/// The endpoints are the flow's key and which of its ends is the originator
/// (read through [`FlowRecord::orig_h`] and the like), so that the uid is
/// hashed from the key the flow table kept, with no key built again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    pub ts: Micros,
    pub last_ts: Micros,
    /// The flow's direction-free key.
    pub key: FlowKey,
    /// The originator is the key's `a` endpoint.
    pub orig_is_a: bool,
    pub orig_pkts: u64,
    /// Payload bytes sent by the originator.
    pub orig_bytes: u64,
    pub resp_pkts: u64,
    pub resp_bytes: u64,
    pub conn_state: ConnState,
    pub history: History,
    /// Outermost VLAN id, 0 when untagged.
    pub vlan: u16,
}

impl FlowRecord {
    /// The originator's address.
    #[inline]
    pub fn orig_h(&self) -> Addr {
        self.key.host(self.orig_is_a)
    }

    /// The originator's port (ICMP: see [`crate::PacketKind`]).
    #[inline]
    pub fn orig_p(&self) -> u16 {
        self.key.port(self.orig_is_a)
    }

    /// The responder's address.
    #[inline]
    pub fn resp_h(&self) -> Addr {
        self.key.host(!self.orig_is_a)
    }

    /// The responder's port.
    #[inline]
    pub fn resp_p(&self) -> u16 {
        self.key.port(!self.orig_is_a)
    }

    /// IP protocol number.
    #[inline]
    pub fn proto(&self) -> u8 {
        self.key.proto
    }

    /// Zeek-like unique id: `C` and 17 base-62 digits of a hash of the flow's
    /// first packet, so it is the same from run to run and at any thread count.
    pub fn uid(&self) -> String {
        String::from_utf8_lossy(&self.uid_bytes()).into_owned()
    }

    /// [`FlowRecord::uid`] as 18 ASCII bytes, with no allocation.
    #[inline]
    pub fn uid_bytes(&self) -> [u8; 18] {
        crate::ids::flow_uid(&self.key, self.ts)
    }

    /// The flow's [`crate::ids::flow_id`]: what an alert's `flow_id` says
    /// of the probe that triggered it.
    #[inline]
    pub fn flow_id(&self) -> u64 {
        crate::ids::flow_id(&self.key, self.ts)
    }

    pub fn community_id(&self) -> String {
        crate::community_id(
            self.orig_h(),
            self.resp_h(),
            self.orig_p(),
            self.resp_p(),
            self.proto(),
        )
    }

    /// [`FlowRecord::community_id`] as 30 ASCII bytes, with no allocation.
    pub fn community_id_bytes(&self) -> [u8; 30] {
        crate::community_id_bytes(
            self.orig_h(),
            self.resp_h(),
            self.orig_p(),
            self.resp_p(),
            self.proto(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_direction_free() {
        let x: Addr = "10.0.0.1".parse().unwrap();
        let y: Addr = "10.0.0.2".parse().unwrap();
        let (k1, fwd1) = FlowKey::new(x, 1234, y, 80, 6);
        let (k2, fwd2) = FlowKey::new(y, 80, x, 1234, 6);
        assert_eq!(k1, k2);
        assert_ne!(fwd1, fwd2);
        assert_eq!(k1.shard_hash(7), k2.shard_hash(7));
        // The order is the tuple's: address bytes first, then the port.
        assert!(fwd1 && (k1.a, k1.pa, k1.b, k1.pb) == (x, 1234, y, 80));
        let (k3, fwd3) = FlowKey::new(x, 9, x, 8, 17);
        assert!(!fwd3 && (k3.pa, k3.pb) == (8, 9));
        let (k4, fwd4) = FlowKey::new(x, 8, x, 8, 17);
        assert!(fwd4 && k4.a == x && k4.b == x);
        assert_ne!(k1.shard_hash(7), k1.shard_hash(8));
    }

    #[test]
    fn key_order_is_the_tuples_order() {
        // The branch-free key against the plain tuple comparison, over
        // addresses that differ in the first, middle and last bytes.
        let addrs: Vec<Addr> = [
            "0.0.0.0",
            "10.0.0.1",
            "10.0.0.2",
            "10.1.0.1",
            "255.255.255.255",
            "::",
            "2001:db8::1",
            "2001:db8::1:0",
            "fe80::1",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        for &x in &addrs {
            for &y in &addrs {
                for (px, py) in [(0, 0), (1, 2), (2, 1), (80, 80), (65535, 0)] {
                    let (k, fwd) = FlowKey::new(x, px, y, py, 6);
                    let want = (x, px) <= (y, py);
                    assert_eq!(fwd, want, "{x}:{px} {y}:{py}");
                    let (a, pa, b, pb) = if want { (x, px, y, py) } else { (y, py, x, px) };
                    assert_eq!((k.a, k.pa, k.b, k.pb, k.proto), (a, pa, b, pb, 6));
                }
            }
        }
    }

    #[test]
    fn history_records_each_letter_once_in_order() {
        let mut h = History::default();
        h.add(b'S', true);
        h.add(b'H', false);
        h.add(b'A', true);
        h.add(b'S', true);
        h.add(b'D', true);
        h.add(b'D', false);
        assert_eq!(h.as_str(), "ShADd");
        let mut f = History::default();
        f.add(b'H', true);
        f.flip();
        f.add(b'R', true);
        assert_eq!(f.as_str(), "^hR");
    }
}
