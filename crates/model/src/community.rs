//! Community ID v1 flow hashes (<https://github.com/corelight/community-id-spec>),
//! so scanwatch's flow records join with Zeek's, Suricata's and Elastic's.

use crate::{icmp, proto, Addr};

/// Community ID v1 with seed 0 for one packet direction (either direction of
/// a flow gives the same value). For ICMP/ICMPv6 `sport` is the type and
/// `dport` the code; the pairing of types ([`icmp::pair`]) is applied here:
/// a paired type's partner takes the port slot, and any other type is
/// one-way with its code in the port slot. Protocols without
/// ports pass 0 for both.
pub fn community_id(src: Addr, dst: Addr, sport: u16, dport: u16, ip_proto: u8) -> String {
    let b = community_id_bytes(src, dst, sport, dport, ip_proto);
    String::from_utf8_lossy(&b).into_owned()
}

/// [`community_id`] as its 30 ASCII bytes (`1:` and 28 base64 characters),
/// with no allocation.
pub fn community_id_bytes(src: Addr, dst: Addr, sport: u16, dport: u16, ip_proto: u8) -> [u8; 30] {
    let (mut sp, mut dp) = (sport, dport);
    let mut one_way = false;
    let has_ports = matches!(ip_proto, proto::TCP | proto::UDP | proto::SCTP);
    if ip_proto == proto::ICMP || ip_proto == proto::ICMP6 {
        let ty = sport as u8;
        match icmp::pair(ip_proto, ty) {
            Some(peer) => {
                sp = u16::from(ty);
                dp = u16::from(peer);
            }
            None => {
                sp = u16::from(ty);
                dp = dport;
                one_way = true;
            }
        }
    }
    let ports = has_ports || ip_proto == proto::ICMP || ip_proto == proto::ICMP6;
    // The spec orders endpoints by address bytes, then port: Addr's order
    // is that of its 16 bytes (a v4 address's prefix is the same for both).
    let ordered = src < dst || (src == dst && sp < dp);
    let (sa, da) = if one_way || ordered {
        (addr_bytes(&src), addr_bytes(&dst))
    } else {
        std::mem::swap(&mut sp, &mut dp);
        (addr_bytes(&dst), addr_bytes(&src))
    };
    if src.is_v4() && dst.is_v4() {
        return v4_block(sa, da, ip_proto, ports.then_some((sp, dp)));
    }
    // The whole message (at most 2 + 16 + 16 + 2 + 4 = 40 bytes) fits one
    // SHA-1 block with its padding, so it is padded here and compressed
    // once, without the streaming hasher's buffering.
    let mut block = [0u8; 64];
    let mut n = 2; // seed 0
    block[n..n + sa.len()].copy_from_slice(sa);
    n += sa.len();
    block[n..n + da.len()].copy_from_slice(da);
    n += da.len();
    block[n] = ip_proto;
    n += 2;
    if ports {
        block[n..n + 2].copy_from_slice(&sp.to_be_bytes());
        block[n + 2..n + 4].copy_from_slice(&dp.to_be_bytes());
        n += 4;
    }
    let digest = sha1_one_block(block, n);
    let mut out = [0u8; 30];
    out[0] = b'1';
    out[1] = b':';
    base64_20(&digest, &mut out[2..]);
    out
}

/// The IPv4 case, the common one: the message (seed, addresses, protocol,
/// a zero, the ports) is 12 or 16 bytes, built in a register and stored
/// with the padding as four whole 16-byte lanes. Byte stores at varying
/// offsets, read back by the compression's 16-byte loads, stall them
/// (store forwarding fails), which cost as much as the hash itself.
#[inline]
fn v4_block(sa: &[u8], da: &[u8], ip_proto: u8, ports: Option<(u16, u16)>) -> [u8; 30] {
    let word = |b: &[u8]| u128::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    // Big-endian: byte 0 is the top byte. Seed 0 in bytes 0-1.
    let mut msg = (word(sa) << 80) | (word(da) << 48) | (u128::from(ip_proto) << 40);
    let len = if let Some((sp, dp)) = ports {
        msg |= (u128::from(sp) << 16) | u128::from(dp);
        16
    } else {
        // 12 bytes: the 0x80 that ends the message goes in byte 12.
        msg |= 0x80 << 24;
        12
    };
    let lane1 = if len == 16 { 0x80u128 << 120 } else { 0 };
    let lanes = [msg, lane1, 0, u128::from(len as u64 * 8)];
    let mut block = [0u8; 64];
    for (i, l) in lanes.iter().enumerate() {
        block[i * 16..i * 16 + 16].copy_from_slice(&l.to_be_bytes());
    }
    let digest = sha1_padded(block);
    let mut out = [0u8; 30];
    out[0] = b'1';
    out[1] = b':';
    base64_20(&digest, &mut out[2..]);
    out
}

/// SHA-1 of the first `n` bytes of `block` (n < 56): padding (a 1 bit,
/// zeros, the length in bits) and one compression.
fn sha1_one_block(mut block: [u8; 64], n: usize) -> [u8; 20] {
    block[n] = 0x80;
    block[56..].copy_from_slice(&((n as u64) * 8).to_be_bytes());
    sha1_padded(block)
}

/// SHA-1 of a message already padded to one block.
#[inline]
fn sha1_padded(block: [u8; 64]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    sha1::compress(&mut h, &[block.into()]);
    let mut d = [0u8; 20];
    for (o, w) in d.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    d
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 of exactly 20 bytes (a SHA-1 digest) into 28 characters:
/// six full 3-byte groups, then 2 bytes and one `=`. A fixed-size encoder
/// runs in a quarter of the general one's instructions.
#[inline]
fn base64_20(d: &[u8; 20], out: &mut [u8]) {
    let mut o = 0;
    for g in d[..18].chunks_exact(3) {
        let n = (u32::from(g[0]) << 16) | (u32::from(g[1]) << 8) | u32::from(g[2]);
        out[o] = B64[(n >> 18) as usize & 63];
        out[o + 1] = B64[(n >> 12) as usize & 63];
        out[o + 2] = B64[(n >> 6) as usize & 63];
        out[o + 3] = B64[n as usize & 63];
        o += 4;
    }
    let n = (u32::from(d[18]) << 16) | (u32::from(d[19]) << 8);
    out[24] = B64[(n >> 18) as usize & 63];
    out[25] = B64[(n >> 12) as usize & 63];
    out[26] = B64[(n >> 6) as usize & 63];
    out[27] = b'=';
}

fn addr_bytes(a: &Addr) -> &[u8] {
    if a.is_v4() {
        &a.0[12..]
    } else {
        &a.0[..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Addr {
        s.parse().unwrap()
    }

    // Vectors from the Community ID specification's baseline
    // (community-id-spec, baseline/baseline_deflt.json and README examples),
    // cross-checked with the reference Python `communityid` package.
    #[test]
    fn tcp_vector_both_directions() {
        let want = "1:LQU9qZlK+B5F3KDmev6m5PMibrg=";
        assert_eq!(
            community_id(a("128.232.110.120"), a("66.35.250.204"), 34855, 80, 6),
            want
        );
        assert_eq!(
            community_id(a("66.35.250.204"), a("128.232.110.120"), 80, 34855, 6),
            want
        );
    }

    #[test]
    fn one_block_sha1_is_sha1() {
        use sha1::Digest;
        for n in 0..56 {
            let mut block = [0u8; 64];
            for (i, b) in block[..n].iter_mut().enumerate() {
                *b = (i * 37 + n) as u8;
            }
            let want: [u8; 20] = sha1::Sha1::digest(&block[..n]).into();
            assert_eq!(sha1_one_block(block, n), want, "{n} bytes");
        }
    }

    /// The spec's recipe step by step, with the streaming hasher.
    fn reference(src: Addr, dst: Addr, sport: u16, dport: u16, p: u8) -> String {
        use sha1::Digest;
        let icmp = p == proto::ICMP || p == proto::ICMP6;
        let (mut sp, mut dp, mut one_way) = (sport, dport, false);
        if icmp {
            match icmp::pair(p, sport as u8) {
                Some(peer) => dp = u16::from(peer),
                None => one_way = true,
            }
            sp = sport & 0xff;
        }
        let (mut s, mut d) = (addr_bytes(&src).to_vec(), addr_bytes(&dst).to_vec());
        if !one_way && (s > d || (s == d && sp > dp)) {
            std::mem::swap(&mut s, &mut d);
            std::mem::swap(&mut sp, &mut dp);
        }
        let mut msg = vec![0u8, 0];
        msg.extend(&s);
        msg.extend(&d);
        msg.extend([p, 0]);
        if icmp || matches!(p, proto::TCP | proto::UDP | proto::SCTP) {
            msg.extend(sp.to_be_bytes());
            msg.extend(dp.to_be_bytes());
        }
        let digest: [u8; 20] = sha1::Sha1::digest(&msg).into();
        let mut out = [0u8; 28];
        base64_20(&digest, &mut out);
        format!("1:{}", std::str::from_utf8(&out).unwrap())
    }

    #[test]
    fn fast_paths_match_the_recipe() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000 {
            let r = next();
            let v6 = i % 4 == 3;
            let addr = |w: u64| {
                if v6 {
                    Addr::from_v6(((u128::from(w) << 64) | u128::from(w >> 7)).to_be_bytes())
                } else {
                    // Few distinct values, so equal addresses and ports occur.
                    Addr::from_v4(((w as u32) & 0x0300_0003).to_be_bytes())
                }
            };
            let (s, d) = (addr(r), addr(next()));
            let (sp, dp) = ((r >> 40) as u16 & 0x0103, (r >> 20) as u16 & 0x0103);
            let p = [6, 17, 132, 1, 58, 47, 50][(r >> 60) as usize % 7];
            let (sp, dp) = if p == 1 || p == 58 {
                ((r >> 33) as u16 % 160, (r >> 50) as u16 % 4)
            } else {
                (sp, dp)
            };
            assert_eq!(
                community_id(s, d, sp, dp, p),
                reference(s, d, sp, dp, p),
                "{s} {d} {sp} {dp} {p}"
            );
        }
    }

    #[test]
    fn udp_vector() {
        assert_eq!(
            community_id(a("192.168.1.52"), a("8.8.8.8"), 54585, 53, 17),
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ="
        );
    }

    #[test]
    fn icmp_echo_request_and_reply_match() {
        let req = community_id(a("192.168.0.89"), a("192.168.0.1"), 8, 0, 1);
        let rep = community_id(a("192.168.0.1"), a("192.168.0.89"), 0, 0, 1);
        assert_eq!(req, rep);
        assert_eq!(req, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
    }

    #[test]
    fn icmp6_pairs_one_way_icmp_and_portless_protocols() {
        assert_eq!(
            community_id(
                a("fe80::200:86ff:fe05:80da"),
                a("fe80::260:97ff:fe07:69ea"),
                135,
                0,
                58
            ),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="
        );
        // Destination unreachable has no pair: one-way, code in the port slot.
        assert_eq!(
            community_id(a("192.168.0.1"), a("192.168.0.89"), 3, 3, 1),
            "1:ZouhgnVac3AK62b9tKlLG4N+dVQ="
        );
        assert_eq!(
            community_id(a("10.0.0.1"), a("10.0.0.2"), 0, 0, 47),
            "1:+KlEHDT0vJgzs/eNmzHq0aSpRYw="
        );
    }
}
