//! Stable ids: every id scanwatch writes is derived here, so that the same
//! flow, scan or STIX object gets the same id from run to run, at any thread
//! count and in any share. Each id is one call over a few shared primitives:
//!
//! * [`flow_uid`] — the flows table's `uid`: `C` and 17 base-62 digits of two
//!   64-bit hashes of the flow's direction-free key and first packet time
//!   ([`FlowKey::shard_hash`], then [`mix`]);
//! * [`detection_id`] — the detections table's `detection_id`: 16 hex digits
//!   of [`fnv1a64`] over the scanner, protocol and first time;
//! * [`stix_id`] — `scanwatch share`'s STIX ids: a [`name_uuid`] (SHA-1,
//!   shaped as an RFC 4122 version-5 UUID) of the object's kind and name.

use crate::{Addr, FlowKey, Micros};

/// The splitmix64 finaliser: cheap, and every input bit reaches every output
/// bit.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// 64-bit FNV-1a over the bytes of `parts`, in order (as if concatenated).
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A deterministic name-based UUID: the first 16 bytes of the SHA-1 of the
/// concatenated `parts`, with RFC 4122's version (5) and variant bits, as
/// hyphenated lower-case hex (`xxxxxxxx-xxxx-5xxx-yxxx-xxxxxxxxxxxx`).
pub fn name_uuid(parts: &[&[u8]]) -> String {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    for p in parts {
        h.update(p);
    }
    let digest: [u8; 20] = h.finalize().into();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, v) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{v:02x}"));
    }
    s
}

/// The flow `uid` (Zeek-like): `C` and 17 base-62 digits of a hash of the
/// flow's key and first packet time, as 18 ASCII bytes, with no allocation.
#[inline]
pub fn flow_uid(key: &FlowKey, ts: Micros) -> [u8; 18] {
    let h1 = key.shard_hash(ts as u64);
    let h2 = mix(h1 ^ (ts as u64).rotate_left(17));
    // 17 base-62 characters from 6-bit chunks of two 64-bit hashes (no
    // division; the two values above 61 fold back onto the first two
    // digits, a negligible bias), by table, without a branch.
    const DIGITS: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz01";
    let d = |h: u64, i: u32| DIGITS[((h >> (i * 6)) & 63) as usize];
    // Built in registers and stored whole: byte stores that a copy then
    // reads back in 16-byte loads would stall it.
    let mut lo = u128::from(b'C');
    for i in 0..10 {
        lo |= u128::from(d(h1, i)) << (8 * (1 + i));
    }
    for i in 0..5 {
        lo |= u128::from(d(h2, i)) << (8 * (11 + i));
    }
    let mut out = [0u8; 18];
    out[..16].copy_from_slice(&lo.to_le_bytes());
    out[16] = d(h2, 5);
    out[17] = d(h2, 6);
    out
}

/// The flow's `flow_id`, as EVE alerts carry it: the low 51 bits of the
/// hash that also gives the first ten digits of the flow's
/// [`flow_uid`] (below 2^53, so a JSON reader that parses numbers as
/// doubles keeps it exact; Suricata keeps its own ids as short for the same
/// reason). The flows table holds it beside the uid.
#[inline]
pub fn flow_id(key: &FlowKey, ts: Micros) -> u64 {
    key.shard_hash(ts as u64) & ((1 << 51) - 1)
}

/// A scan's `detection_id`: 16 hex digits of FNV-1a over the scanner's 16
/// address bytes, the protocol, the first time (little-endian) and, unless
/// it is the protocol's usual one (SYN for TCP, UDP, echo for ICMP, and
/// any unusual protocol), the technique's name, so the same scan gets the
/// same id from run to run, a source's two techniques get two ids, and
/// records made before techniques were told apart keep theirs.
pub fn detection_id(scanner: Addr, proto: u8, tech: crate::Technique, first: Micros) -> String {
    use crate::Technique as T;
    let usual = matches!(
        tech,
        T::Syn | T::Connect | T::Udp | T::IcmpEcho | T::Icmpv6Echo | T::IpProto
    );
    let h = if usual {
        fnv1a64(&[&scanner.0, &[proto], &first.to_le_bytes()])
    } else {
        fnv1a64(&[
            &scanner.0,
            &[proto],
            &first.to_le_bytes(),
            tech.name().as_bytes(),
        ])
    };
    format!("{h:016x}")
}

/// A STIX id (`KIND--UUID`) from the object's kind and a name, so the same
/// scanner gets the same id in every share: the [`name_uuid`] of
/// `scanwatch-stix:KIND:NAME`.
pub fn stix_id(kind: &str, name: &str) -> String {
    let uuid = name_uuid(&[b"scanwatch-stix:", kind.as_bytes(), b":", name.as_bytes()]);
    format!("{kind}--{uuid}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnState, FlowRecord, History};

    // Expected values below were written by the id code as it stood before
    // it moved here (flow.rs, detect's scan.rs, cli's share.rs); a change
    // to any of them changes the ids in every output.

    #[test]
    fn flow_uids_are_pinned() {
        let cases: [(&str, u16, &str, u16, u8, i64, &str); 4] = [
            (
                "198.18.0.2",
                40000,
                "198.19.1.10",
                443,
                6,
                1_790_000_000_123_456,
                "C4hEZyyE4lGANDTssp",
            ),
            // The other direction of the same flow: the key is direction-free.
            (
                "198.19.1.10",
                443,
                "198.18.0.2",
                40000,
                6,
                1_790_000_000_123_456,
                "C4hEZyyE4lGANDTssp",
            ),
            (
                "2001:db8::1",
                5353,
                "2001:db8::53",
                53,
                17,
                0,
                "C2dt1OYdFX1mc1ju8V",
            ),
            ("10.0.0.1", 0, "10.0.0.2", 8, 1, -1, "CiG8VUksFU8Z3tsW6F"),
        ];
        for (o, op, r, rp, pr, ts, want) in cases {
            let (orig_h, resp_h): (Addr, Addr) = (o.parse().unwrap(), r.parse().unwrap());
            let (key, orig_is_a) = FlowKey::new(orig_h, op, resp_h, rp, pr);
            assert_eq!(&flow_uid(&key, ts), want.as_bytes());
            let rec = FlowRecord {
                ts,
                last_ts: ts,
                key,
                orig_is_a,
                orig_pkts: 0,
                orig_bytes: 0,
                resp_pkts: 0,
                resp_bytes: 0,
                conn_state: ConnState::S0,
                history: History::default(),
                vlan: 0,
            };
            assert_eq!(rec.uid(), want);
            assert_eq!(&rec.uid_bytes(), want.as_bytes());
            assert_eq!((rec.orig_h(), rec.orig_p()), (orig_h, op));
            assert_eq!((rec.resp_h(), rec.resp_p(), rec.proto()), (resp_h, rp, pr));
        }
    }

    #[test]
    fn detection_ids_are_pinned() {
        // The first value also checked by hand in Python.
        for (a, p, t, want) in [
            (
                "198.18.0.2",
                6u8,
                1_790_000_000_000_000i64,
                "eebce94c3ac5368b",
            ),
            ("2001:db8::1", 17, 0, "7ee2f75a950ae25f"),
            ("10.0.0.1", 1, -1, "2e347e428bff8705"),
        ] {
            assert_eq!(
                detection_id(a.parse().unwrap(), p, crate::Technique::Syn, t),
                want
            );
        }
    }

    #[test]
    fn stix_ids_are_pinned() {
        // The first value also checked by hand in Python (hashlib).
        for (k, n, want) in [
            (
                "indicator",
                "198.18.0.2",
                "indicator--75d10e49-80d8-5fe6-9806-931e729f1bf2",
            ),
            (
                "identity",
                "scanwatch",
                "identity--bdd52c45-37d0-59d1-954f-ec5147abef66",
            ),
            (
                "sighting",
                "2001:db8::1@sensor-a",
                "sighting--b0fbc10b-352b-5729-998d-b17e885e3bc2",
            ),
            ("bundle", "", "bundle--4a74960a-2d2f-5b89-86df-aabcfaacd34c"),
        ] {
            assert_eq!(stix_id(k, n), want);
        }
    }

    #[test]
    fn primitives_match_published_vectors() {
        // FNV-1a 64 test vectors (Fowler, Noll, Vo): "" and "a", "foobar"
        // split across parts.
        assert_eq!(fnv1a64(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foo", b"", b"bar"]), 0x8594_4171_f739_67e8);
        // splitmix64's first output from seed 0 is mix(0).
        assert_eq!(mix(0), 0xe220_a839_7b1d_cdaf);
        let u = name_uuid(&[b"x"]);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "5");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
    }
}
