//! Crypto-PAn (Xu, Fan, Ammar, Moon, 2002): prefix-preserving address
//! pseudonyms under a 32-byte key, the original construction, so a partner
//! with the key (or the published tools: the Crypto-PAn C++ code,
//! yacryptopan, …) gets the same pseudonyms. The first 16 key bytes are an
//! AES-128 key K, the last 16 are encrypted under K to make the pad. For
//! each bit i of the address, the one-time-pad bit is the most significant
//! bit of AES_K(the address's first i bits followed by the pad's bits after
//! i); output bit i is input bit i XOR that bit. Two addresses sharing a
//! k-bit prefix get pseudonyms sharing a k-bit prefix, and nothing more.
//! IPv4 works on 32 bits, IPv6 the same way on 128 (as yacryptopan does).

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use anyhow::{bail, Context, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

#[derive(Clone)]
pub struct CryptoPan {
    aes: Aes128,
    /// The pad, as a 128-bit big-endian number.
    pad: u128,
}

impl std::fmt::Debug for CryptoPan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CryptoPan { key: <secret> }")
    }
}

impl CryptoPan {
    pub fn new(key: &[u8; 32]) -> CryptoPan {
        let aes = Aes128::new(GenericArray::from_slice(&key[..16]));
        let mut pad = GenericArray::clone_from_slice(&key[16..]);
        aes.encrypt_block(&mut pad);
        let mut p = [0u8; 16];
        p.copy_from_slice(&pad);
        CryptoPan {
            aes,
            pad: u128::from_be_bytes(p),
        }
    }

    /// The key from a file: exactly 32 raw bytes, or 64 hex digits with an
    /// optional trailing newline. Anything else is refused. Warns on stderr
    /// when the file can be read by group or others.
    pub fn from_key_file(path: &Path) -> Result<CryptoPan> {
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        let key = parse_key(&bytes).with_context(|| format!("key file {}", path.display()))?;
        if let Some(w) = permission_warning(path) {
            eprintln!("scanwatch: warning: {w}");
        }
        Ok(CryptoPan::new(&key))
    }

    /// The top bit of AES_K(block).
    fn prf_bit(&self, block: u128) -> u128 {
        let mut b = GenericArray::from(block.to_be_bytes());
        self.aes.encrypt_block(&mut b);
        u128::from(b[0] >> 7)
    }

    /// Anonymizes an `nbits`-bit address placed in the top bits of `a`.
    fn anonymize_bits(&self, a: u128, nbits: u32) -> u128 {
        let mut otp = 0u128;
        for i in 0..nbits {
            // The first i bits from the address, the rest from the pad.
            let mask = if i == 0 { 0 } else { u128::MAX << (128 - i) };
            let block = (a & mask) | (self.pad & !mask);
            otp |= self.prf_bit(block) << (127 - i);
        }
        a ^ otp
    }

    pub fn anonymize(&self, addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V4(a) => {
                let v = self.anonymize_bits(u128::from(u32::from(a)) << 96, 32);
                IpAddr::V4(Ipv4Addr::from((v >> 96) as u32))
            }
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(self.anonymize_bits(u128::from(a), 128))),
        }
    }
}

/// 32 raw bytes, or 64 hex digits and at most one trailing newline.
pub fn parse_key(bytes: &[u8]) -> Result<[u8; 32]> {
    let is_hex = |b: &[u8]| b.iter().all(u8::is_ascii_hexdigit);
    if bytes.len() == 32 {
        if is_hex(bytes) {
            // A random 32-byte key is all hex digits with probability about
            // 1e-34: this is a 16-byte key written in hex, too short.
            bail!("holds 32 hex digits (16 bytes); Crypto-PAn needs 32 bytes: 64 hex digits or 32 raw bytes");
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(bytes);
        return Ok(k);
    }
    let text = bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes);
    if text.len() != 64 || !is_hex(text) {
        bail!(
            "must hold exactly 32 raw bytes or 64 hex digits (with an optional trailing newline); it holds {} bytes",
            bytes.len()
        );
    }
    let mut k = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).context("hex")?;
        k[i] = u8::from_str_radix(s, 16).context("hex")?;
    }
    Ok(k)
}

/// A warning when the key file is readable by group or others.
fn permission_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "key file {} can be read by others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The key and the 71 address pairs of the sample trace shipped with
    /// the original Crypto-PAn distribution (sample_trace_raw.dat /
    /// sample_trace_sanitized.dat; public reference vectors), copied from
    /// ../shared/testdata so the test runs on a fresh clone too.
    const KEY_HEX: &str = include_str!("../testdata/cryptopan-key.hex");
    const PAIRS: &str = include_str!("../testdata/cryptopan-ipv4.csv");

    fn reference() -> CryptoPan {
        CryptoPan::new(&parse_key(KEY_HEX.as_bytes()).unwrap())
    }

    #[test]
    fn matches_all_71_reference_pairs() {
        let cp = reference();
        let mut n = 0;
        for line in PAIRS.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let (a, b) = line.split_once(',').unwrap();
            let (a, b): (IpAddr, IpAddr) = (a.trim().parse().unwrap(), b.trim().parse().unwrap());
            assert_eq!(cp.anonymize(a), b, "{a}");
            n += 1;
        }
        assert_eq!(n, 71);
    }

    #[test]
    fn the_fixture_is_the_shared_reference_when_present() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata");
        if let (Ok(k), Ok(p)) = (
            std::fs::read_to_string(dir.join("cryptopan-key.hex")),
            std::fs::read_to_string(dir.join("cryptopan-ipv4.csv")),
        ) {
            assert_eq!(k.trim(), KEY_HEX.trim());
            assert_eq!(p.trim(), PAIRS.trim());
        }
    }

    #[test]
    fn key_files_are_strict() {
        let hex = KEY_HEX.trim();
        assert!(parse_key(hex.as_bytes()).is_ok());
        assert!(parse_key(format!("{hex}\n").as_bytes()).is_ok());
        assert!(parse_key(format!("{hex}\r\n").as_bytes()).is_ok());
        let raw = parse_key(hex.as_bytes()).unwrap();
        assert_eq!(parse_key(&raw).unwrap(), raw);
        for bad in [
            format!("{hex}\n\n"),
            format!(" {hex}"),
            hex[..62].to_string(),
            format!("{hex}00"),
            hex[..32].to_string(),
            format!("{}zz", &hex[..62]),
            String::new(),
        ] {
            assert!(parse_key(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(parse_key(&raw[..31]).is_err());
    }

    #[test]
    fn key_file_permissions_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("scanwatch-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("k");
        std::fs::write(&f, KEY_HEX).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(permission_warning(&f).is_none());
        assert!(CryptoPan::from_key_file(&f).is_ok());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(permission_warning(&f).unwrap().contains("644"));
        std::fs::write(&f, "short\n").unwrap();
        let e = CryptoPan::from_key_file(&f).unwrap_err();
        assert!(format!("{e:#}").contains("64 hex digits"), "{e:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn common_prefix(a: u128, b: u128) -> u32 {
        (a ^ b).leading_zeros()
    }

    fn v6(x: u128) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(x))
    }

    fn bits(a: IpAddr) -> u128 {
        match a {
            IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
            IpAddr::V6(a) => u128::from(a),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Shared prefix in, exactly the same shared prefix out (IPv6).
        #[test]
        fn ipv6_preserves_prefixes_exactly(a: u128, b: u128, keep in 0u32..128) {
            let cp = reference();
            // b shares `keep` leading bits with a (at least).
            let mask = if keep == 0 { 0 } else { u128::MAX << (128 - keep) };
            let b = (a & mask) | (b & !mask);
            let (pa, pb) = (bits(cp.anonymize(v6(a))), bits(cp.anonymize(v6(b))));
            prop_assert_eq!(common_prefix(pa, pb), common_prefix(a, b));
        }

        #[test]
        fn ipv4_preserves_prefixes_exactly(a: u32, b: u32) {
            let cp = reference();
            let (x, y) = (IpAddr::V4(a.into()), IpAddr::V4(b.into()));
            let (px, py) = (bits(cp.anonymize(x)), bits(cp.anonymize(y)));
            prop_assert_eq!(common_prefix(px, py), common_prefix(bits(x), bits(y)));
        }

        /// Deterministic, a permutation (distinct in, distinct out), and
        /// another key gives another pseudonym.
        #[test]
        fn ipv6_is_deterministic_injective_and_keyed(a: u128, b: u128, key: [u8; 32]) {
            let cp = reference();
            prop_assert_eq!(cp.anonymize(v6(a)), cp.anonymize(v6(a)));
            if a != b {
                prop_assert_ne!(cp.anonymize(v6(a)), cp.anonymize(v6(b)));
            }
            let other = CryptoPan::new(&key);
            if key != parse_key(KEY_HEX.as_bytes()).unwrap() {
                // 128 pad bits decide; equal only by a 2^-128 accident.
                prop_assert_ne!(cp.anonymize(v6(a)), other.anonymize(v6(a)));
            }
        }
    }

    /// IPv6 pairs under the reference key, computed by an independent
    /// implementation (yacryptopan 1.0.2, `CryptoPAn(key).anonymize(a)`),
    /// so partners using it get our pseudonyms.
    #[test]
    fn ipv6_matches_yacryptopan() {
        let cp = reference();
        for (a, want) in [
            ("2001:db8::1", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e"),
            ("2001:db8::2", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1c"),
            ("2001:db8:1::10", "4401:2bc:603e:23c0:0:6fff:f0f8:c3f3"),
            ("fe80::1", "cf7f:c0e:1fc3:da1c:70:b18e:f7f3:2101"),
            ("::1", "78ff:f001:9fc0:20df:8380:b1f1:704:ed"),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "ce78:61ff:387e:8078:38c4:407:c3bf:f781",
            ),
            ("::", "78ff:f001:9fc0:20df:8380:b1f1:704:ec"),
            // IPv4-mapped: anonymized as 128 bits, not as IPv4.
            (
                "::ffff:128.11.68.132",
                "78ff:f001:9fc0:20df:8380:7db:8efb:4564",
            ),
        ] {
            let want: IpAddr = want.parse().unwrap();
            assert_eq!(cp.anonymize(a.parse().unwrap()), want, "{a}");
        }
    }
}
