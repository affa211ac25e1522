//! [`Addr`]: an IPv4 or IPv6 address in 16 bytes, IPv4 stored v4-mapped
//! (`::ffff:a.b.c.d`), so that flow keys are fixed-size, hash in one pass and
//! compare as plain bytes. An IPv6 packet that really carries v4-mapped
//! addresses is indistinguishable from IPv4 here; such packets do not appear on
//! the wire in practice.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

#[derive(Clone, Copy, Eq, Default)]
pub struct Addr(pub [u8; 16]);

impl std::hash::Hash for Addr {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// Byte equality as one 128-bit compare (flow-key lookups compare two
/// addresses per probe), the same relation the derived one would be.
impl PartialEq for Addr {
    #[inline]
    fn eq(&self, other: &Addr) -> bool {
        u128::from_ne_bytes(self.0) == u128::from_ne_bytes(other.0)
    }
}

/// Byte order (lexicographic), computed as one 128-bit big-endian compare
/// rather than a `memcmp` call: flow keys order their endpoints with it on
/// every packet.
impl Ord for Addr {
    #[inline]
    fn cmp(&self, other: &Addr) -> std::cmp::Ordering {
        u128::from_be_bytes(self.0).cmp(&u128::from_be_bytes(other.0))
    }
}

impl PartialOrd for Addr {
    #[inline]
    fn partial_cmp(&self, other: &Addr) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

const V4_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

impl Addr {
    #[inline]
    pub fn from_v4(o: [u8; 4]) -> Addr {
        // Built in one vector register and stored whole, on x86-64: as
        // three scalar stores (what the compiler makes of the byte array),
        // any 8- or 16-byte load of the address soon after (hashing it,
        // moving the packet's record) cannot be forwarded from the stores
        // and stalls; that was a quarter of the decoder's time.
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::_mm_set_epi32;
            let mapped = i32::from_ne_bytes([0, 0, 0xff, 0xff]);
            // SAFETY: SSE2 is part of x86-64, so the intrinsic is always
            // available; an __m128i and a [u8; 16] have the same size, and
            // every bit pattern is a valid byte array.
            unsafe {
                Addr(std::mem::transmute::<std::arch::x86_64::__m128i, [u8; 16]>(
                    _mm_set_epi32(i32::from_ne_bytes(o), mapped, 0, 0),
                ))
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Addr([
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, o[0], o[1], o[2], o[3],
        ])
    }

    #[inline]
    pub const fn from_v6(o: [u8; 16]) -> Addr {
        Addr(o)
    }

    /// `x` when `c`, else `y`, without a branch (flow keys order their
    /// endpoints with it on every packet, and which way a packet goes is
    /// not predictable); on x86-64 in one vector register, stored whole.
    #[inline]
    pub fn select(c: bool, x: Addr, y: Addr) -> Addr {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{
                __m128i, _mm_and_si128, _mm_andnot_si128, _mm_or_si128, _mm_set1_epi8,
            };
            // SAFETY: SSE2 is part of x86-64, so the intrinsics are always
            // available; an __m128i and a [u8; 16] have the same size, and
            // every bit pattern is valid for both.
            unsafe {
                let m = _mm_set1_epi8(-i8::from(c));
                let x = std::mem::transmute::<[u8; 16], __m128i>(x.0);
                let y = std::mem::transmute::<[u8; 16], __m128i>(y.0);
                Addr(std::mem::transmute::<__m128i, [u8; 16]>(_mm_or_si128(
                    _mm_and_si128(m, x),
                    _mm_andnot_si128(m, y),
                )))
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        if c {
            x
        } else {
            y
        }
    }

    #[inline]
    /// The address as one number (IPv4 in the mapped form), for ordering
    /// and neighbour checks.
    pub fn to_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    pub fn is_v4(&self) -> bool {
        self.0[..12] == V4_PREFIX
    }

    pub fn to_ip(&self) -> IpAddr {
        if self.is_v4() {
            IpAddr::V4(Ipv4Addr::new(
                self.0[12], self.0[13], self.0[14], self.0[15],
            ))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.0))
        }
    }

    /// Multicast, limited broadcast or unspecified: never the target of a
    /// probe (SSDP, mDNS, DHCP discovery and neighbour discovery go there).
    pub fn is_group_or_unspecified(&self) -> bool {
        match self.to_ip() {
            IpAddr::V4(a) => a.is_multicast() || a.is_broadcast() || a.is_unspecified(),
            IpAddr::V6(a) => a.is_multicast() || a.is_unspecified(),
        }
    }

    /// The first `bits` bits of the address, the rest zero (for CIDR
    /// matching). For IPv4, `bits` counts from the IPv4 part (0..=32).
    pub fn prefix(&self, bits: u8) -> Addr {
        let total = if self.is_v4() {
            96 + u32::from(bits.min(32))
        } else {
            u32::from(bits.min(128))
        };
        let mut out = [0u8; 16];
        for (i, byte) in self.0.iter().enumerate() {
            let start = (i as u32) * 8;
            if start + 8 <= total {
                out[i] = *byte;
            } else if start < total {
                let keep = total - start;
                out[i] = byte & (0xffu8 << (8 - keep));
            }
        }
        Addr(out)
    }
}

impl Addr {
    /// Writes the canonical text form into `buf` (46 bytes is enough for
    /// any address) and returns it, with no allocation; IPv4 is formatted
    /// by hand, the hot case.
    pub fn write_text<'a>(&self, buf: &'a mut [u8; 46]) -> &'a str {
        let n = if let Some((text, n)) = self.v4_text() {
            buf[..16].copy_from_slice(&text);
            n
        } else {
            use std::io::Write;
            let mut cur = std::io::Cursor::new(&mut buf[..]);
            let _ = write!(cur, "{}", self.to_ip());
            cur.position() as usize
        };
        crate::ascii_str(&buf[..n])
    }

    /// An IPv4 address's text in the first `n` of 16 bytes (the rest is
    /// filler), or `None` for IPv6. Each octet comes from a table of its
    /// digits and a dot, shifted into one 128-bit value: no division, and
    /// one 16-byte store that a copy can load back at once (four small
    /// stores at varying offsets stall the copy that reads them).
    #[inline]
    pub fn v4_text(&self) -> Option<([u8; 16], usize)> {
        if !self.is_v4() {
            return None;
        }
        let mut acc = 0u128;
        let mut n = 0u32;
        for &o in &self.0[12..] {
            let (len, digits) = OCTET_TEXT[usize::from(o)];
            acc |= u128::from(u32::from_le_bytes(digits)) << (8 * n);
            n += u32::from(len);
        }
        // At most 16 bytes ("255." four times); no dot after the last octet.
        Some((acc.to_le_bytes(), n as usize - 1))
    }
}

/// Decimal text of each octet value followed by a dot, padded to 4 bytes,
/// with its length (dot included).
static OCTET_TEXT: [(u8, [u8; 4]); 256] = {
    let mut t = [(0u8, [0u8; 4]); 256];
    let mut v = 0usize;
    while v < 256 {
        let o = v as u8;
        let mut d = [0u8; 4];
        let mut n = 0;
        if o >= 100 {
            d[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            d[n] = b'0' + (o / 10) % 10;
            n += 1;
        }
        d[n] = b'0' + o % 10;
        d[n + 1] = b'.';
        t[v] = ((n + 2) as u8, d);
        v += 1;
    }
    t
};

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Addr {
        match ip {
            IpAddr::V4(a) => Addr::from_v4(a.octets()),
            IpAddr::V6(a) => Addr::from_v6(a.octets()),
        }
    }
}

impl FromStr for Addr {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<Addr, Self::Err> {
        IpAddr::from_str(s).map(Addr::from)
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_v4() {
            // The table-driven text; `pad` keeps width and alignment.
            f.pad(self.write_text(&mut [0u8; 46]))
        } else {
            fmt::Display::fmt(&self.to_ip(), f)
        }
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_ip(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_round_trips_and_prints_canonically() {
        let a: Addr = "198.18.0.2".parse().unwrap();
        assert!(a.is_v4());
        assert_eq!(a.to_string(), "198.18.0.2");
        let b: Addr = "2001:db8:5::2".parse().unwrap();
        assert!(!b.is_v4());
        assert_eq!(b.to_string(), "2001:db8:5::2");
        // Width and alignment are honoured, as std's addresses do.
        assert_eq!(format!("{a:>12}|{a:<12}|"), "  198.18.0.2|198.18.0.2  |");
        assert_eq!(format!("{b:>15}"), "  2001:db8:5::2");
    }

    #[test]
    fn write_text_matches_display() {
        let mut buf = [0u8; 46];
        for o in 0..=255u8 {
            let a = Addr::from_v4([o, 255 - o, o / 3, 7]);
            assert_eq!(a.write_text(&mut buf), a.to_ip().to_string());
        }
        for s in [
            "0.0.0.0",
            "10.0.0.1",
            "198.19.100.255",
            "255.255.255.255",
            "2001:db8::1",
            "::1",
            "fe80::200:86ff:fe05:80da",
        ] {
            let a: Addr = s.parse().unwrap();
            assert_eq!(a.write_text(&mut buf), s);
        }
    }

    #[test]
    fn order_and_equality_are_byte_order_and_equality() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..10_000 {
            let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
            for i in 0..16 {
                // Few distinct byte values, so that long equal prefixes occur.
                a[i] = (next() % 3) as u8 * 127;
                b[i] = (next() % 3) as u8 * 127;
            }
            assert_eq!(Addr(a).cmp(&Addr(b)), a.cmp(&b), "{a:?} {b:?}");
            assert_eq!(Addr(a) == Addr(b), a == b);
        }
    }

    #[test]
    fn prefix_masks_v4_and_v6() {
        let a: Addr = "198.19.1.77".parse().unwrap();
        assert_eq!(a.prefix(24).to_string(), "198.19.1.0");
        assert_eq!(a.prefix(20).to_string(), "198.19.0.0");
        let b: Addr = "2001:db8:6::2a".parse().unwrap();
        assert_eq!(b.prefix(64).to_string(), "2001:db8:6::");
    }

    #[test]
    fn group_addresses_are_recognised() {
        for s in [
            "239.255.255.250",
            "255.255.255.255",
            "ff02::1:ff00:1",
            "0.0.0.0",
        ] {
            assert!(s.parse::<Addr>().unwrap().is_group_or_unspecified(), "{s}");
        }
        assert!(!"10.0.0.1"
            .parse::<Addr>()
            .unwrap()
            .is_group_or_unspecified());
    }
}
