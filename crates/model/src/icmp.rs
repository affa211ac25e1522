//! ICMP and ICMPv6 types as flows see them: which request pairs with which
//! reply, and which types are errors that quote another packet.
//!
//! This is the one copy of the request/reply table. The decoder maps a query's
//! type to its "ports" with it (so a request and its reply share a flow key)
//! and [`community_id`](crate::community_id) orders endpoints with it (so they
//! share a Community ID); were there two tables, one could drift and the two
//! would disagree about which packets make one flow.

use crate::proto;

/// ICMPv4 (request, reply) pairs, as the Community ID specification lists
/// them: echo, timestamp, information, router solicitation/advertisement
/// (10 asks, 9 answers), address mask.
const V4_PAIRS: [(u8, u8); 5] = [(8, 0), (13, 14), (15, 16), (10, 9), (17, 18)];

/// ICMPv6 pairs: echo, router solicitation/advertisement, neighbour
/// solicitation/advertisement, node information query/response, home agent
/// address discovery request/reply.
const V6_PAIRS: [(u8, u8); 5] = [(128, 129), (133, 134), (135, 136), (139, 140), (144, 145)];

/// The type that `ty` pairs with (a request's reply, a reply's request),
/// or `None` for a one-way type. `ip_proto` is [`proto::ICMP6`] for ICMPv6;
/// any other value means ICMPv4.
#[inline]
pub fn pair(ip_proto: u8, ty: u8) -> Option<u8> {
    let pairs = if ip_proto == proto::ICMP6 {
        &V6_PAIRS
    } else {
        &V4_PAIRS
    };
    for &(a, b) in pairs {
        if ty == a {
            return Some(b);
        }
        if ty == b {
            return Some(a);
        }
    }
    None
}

/// The (sport, dport) an ICMP packet of type `ty` and code `code` takes in a
/// flow key, as Community ID maps them: a paired type gives (type, partner),
/// so that a request and its reply are the two directions of one flow; any
/// other type gives (type, code).
#[inline]
pub fn ports(ip_proto: u8, ty: u8, code: u8) -> (u16, u16) {
    match pair(ip_proto, ty) {
        Some(peer) => (u16::from(ty), u16::from(peer)),
        None => (u16::from(ty), u16::from(code)),
    }
}

/// ICMP types that quote the offending packet: destination unreachable,
/// source quench, redirect, time exceeded, parameter problem (v4);
/// destination unreachable, packet too big, time exceeded, parameter
/// problem (v6).
#[inline]
pub fn is_error(ip_proto: u8, ty: u8) -> bool {
    if ip_proto == proto::ICMP6 {
        matches!(ty, 1..=4)
    } else {
        matches!(ty, 3 | 4 | 5 | 11 | 12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_is_symmetric_and_errors_are_never_paired() {
        for p in [proto::ICMP, proto::ICMP6] {
            let mut paired = 0;
            for ty in 0..=255u8 {
                if let Some(peer) = pair(p, ty) {
                    paired += 1;
                    assert_ne!(peer, ty);
                    assert_eq!(pair(p, peer), Some(ty), "{p} {ty}");
                    assert!(!is_error(p, ty), "{p} {ty}");
                    assert_eq!(ports(p, ty, 7), (u16::from(ty), u16::from(peer)));
                } else {
                    assert_eq!(ports(p, ty, 7), (u16::from(ty), 7));
                }
            }
            assert_eq!(paired, 10, "five pairs for {p}");
        }
    }

    #[test]
    fn echo_pairs_as_rfc_792_and_4443_number_it() {
        assert_eq!(pair(proto::ICMP, 8), Some(0));
        assert_eq!(pair(proto::ICMP6, 128), Some(129));
        // ICMPv6 type 0 is reserved, not an echo reply.
        assert_eq!(pair(proto::ICMP6, 0), None);
        assert!(is_error(proto::ICMP, 3) && is_error(proto::ICMP6, 1));
        assert!(!is_error(proto::ICMP, 8) && !is_error(proto::ICMP6, 128));
    }
}
