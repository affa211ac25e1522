//! Fixed-size distinct counts for sources that outgrow their exact contact
//! set: a HyperLogLog (Flajolet et al. 2007) with 2^12 one-byte registers,
//! read with Ertl's improved estimator ("New cardinality estimation
//! algorithms for HyperLogLog sketches", 2017), which needs no bias table
//! and is accurate from a handful of items to billions (standard error
//! 1.04 / 64 ≈ 1.6%).
//!
//! Inserting is one hash and at most one register write; the sketch keeps a
//! histogram of its register values, so an estimate is a few dozen float
//! operations whatever the count, and [`Hll::insert`] says when it changed.
//! Hashes are seeded with fixed constants: the same items give the same
//! registers in every run and at any thread count.

use scanwatch_model::Addr;

/// Index bits: 2^12 registers.
const P: u32 = 12;
/// Registers per sketch.
pub(crate) const M: usize = 1 << P;
/// Largest register value: the 64 - P bits left after the index, plus one.
const Q: usize = 64 - P as usize;

/// Bytes one sketch holds (its registers, histogram and header), for the
/// memory accounting.
pub const HLL_BYTES: usize = M + (Q + 2) * 4 + 32;

/// One HyperLogLog sketch.
#[derive(Clone)]
pub(crate) struct Hll {
    regs: Box<[u8; M]>,
    /// How many registers hold each value 0..=Q+1.
    hist: [u32; Q + 2],
    /// The largest register value: the histogram is zero above it, so the
    /// estimate's sum starts there (the same result, a few steps instead
    /// of Q).
    top: usize,
}

impl Default for Hll {
    fn default() -> Self {
        let mut hist = [0u32; Q + 2];
        hist[0] = M as u32;
        Hll {
            regs: Box::new([0u8; M]),
            hist,
            top: 0,
        }
    }
}

impl Hll {
    /// Adds an item by its 64-bit hash; true if a register changed (the
    /// estimate may have moved).
    #[inline]
    pub fn insert(&mut self, h: u64) -> bool {
        let i = (h >> (64 - P)) as usize;
        let w = h << P;
        // Leading zeros of the remaining 52 bits, plus one (Q + 1 if all zero).
        let rho = (w.leading_zeros() as usize).min(Q) + 1;
        let r = &mut self.regs[i];
        let old = usize::from(*r);
        if rho <= old {
            return false;
        }
        *r = rho as u8;
        self.hist[old] -= 1;
        self.hist[rho] += 1;
        self.top = self.top.max(rho);
        true
    }

    /// Takes in everything `other` has seen (register-wise maximum).
    #[cfg(test)]
    pub fn merge(&mut self, other: &Hll) {
        for (i, &r) in other.regs.iter().enumerate() {
            let old = self.regs[i];
            if r > old {
                self.regs[i] = r;
                self.hist[usize::from(old)] -= 1;
                self.hist[usize::from(r)] += 1;
                self.top = self.top.max(usize::from(r));
            }
        }
    }

    /// Estimated number of distinct items inserted.
    pub fn estimate(&self) -> f64 {
        let m = M as f64;
        let c = &self.hist;
        if c[0] as usize == M {
            return 0.0;
        }
        let mut z = m * tau(1.0 - f64::from(c[Q + 1]) / m);
        // Above `top` every count is zero and, unless a register holds
        // Q + 1, so is z: halving zero leaves zero, so those steps go.
        let from = if c[Q + 1] == 0 { self.top.min(Q) } else { Q };
        for k in (1..=from).rev() {
            z = 0.5 * (z + f64::from(c[k]));
        }
        z += m * sigma(f64::from(c[0]) / m);
        // alpha_inf = 1 / (2 ln 2)
        let alpha = 0.5 / std::f64::consts::LN_2;
        alpha * m * m / z
    }

    #[cfg(test)]
    pub fn registers(&self) -> &[u8] {
        &self.regs[..]
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// A 64-bit finaliser (Stafford's mix 13, as in splitmix64): every input bit
/// moves every output bit.
#[inline]
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Fixed seeds (never per-run random: results must repeat).
const SEED_ADDR: u64 = 0x5ca9_3a7c_0000_0001;
const SEED_PORT: u64 = 0x5ca9_3a7c_0000_0002;
const SEED_PAIR: u64 = 0x5ca9_3a7c_0000_0003;

/// The hash of a target address.
#[inline]
pub(crate) fn hash_addr(a: Addr) -> u64 {
    let (hi, lo) = a.0.split_at(8);
    let mut h = [0u8; 8];
    h.copy_from_slice(hi);
    let mut l = [0u8; 8];
    l.copy_from_slice(lo);
    mix(mix(u64::from_le_bytes(l) ^ SEED_ADDR) ^ u64::from_le_bytes(h))
}

/// The hash of a port.
#[inline]
pub(crate) fn hash_port(p: u16) -> u64 {
    mix(u64::from(p) ^ SEED_PORT)
}

/// The hash of a (target, port) pair, from the target's hash.
#[inline]
pub(crate) fn hash_pair(addr_hash: u64, p: u16) -> u64 {
    mix(addr_hash ^ (u64::from(p) << 48) ^ SEED_PAIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Deterministic pseudo-random stream (splitmix64).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix(self.0)
        }
    }

    fn v4(x: u32) -> Addr {
        Addr::from_v4(x.to_be_bytes())
    }

    #[test]
    fn estimates_are_within_a_few_percent_of_the_exact_count() {
        for (n, seed) in [(10_000usize, 1u64), (100_000, 2), (1_000_000, 3)] {
            let mut rng = Rng(seed);
            let mut exact = HashSet::new();
            let mut h = Hll::default();
            // Draw with repeats, as a scan does: the truth is the set.
            while exact.len() < n {
                let a = v4(rng.next() as u32);
                let p = (rng.next() % 65_535) as u16 + 1;
                exact.insert((a, p));
                h.insert(hash_pair(hash_addr(a), p));
            }
            let est = h.estimate();
            let err = (est - n as f64).abs() / n as f64;
            assert!(
                err < 0.04,
                "{n} distinct: estimate {est:.0}, error {err:.3}"
            );
        }
    }

    #[test]
    fn small_counts_are_near_exact() {
        let mut h = Hll::default();
        assert_eq!(h.estimate(), 0.0);
        for i in 0..100u32 {
            h.insert(hash_addr(v4(i)));
        }
        let est = h.estimate();
        assert!((est - 100.0).abs() < 3.0, "{est}");
        // Ports: all 65,535 of them.
        let mut p = Hll::default();
        for port in 1..=65_535u16 {
            p.insert(hash_port(port));
        }
        let est = p.estimate();
        assert!((est - 65_535.0).abs() / 65_535.0 < 0.04, "{est}");
    }

    #[test]
    fn inserting_again_and_merging_change_nothing_twice() {
        let mut a = Hll::default();
        let mut rng = Rng(7);
        let items: Vec<u64> = (0..20_000).map(|_| rng.next()).collect();
        for &x in &items {
            a.insert(x);
        }
        let regs = a.registers().to_vec();
        let est = a.estimate();
        // Every item again: no register moves.
        assert!(items.iter().all(|&x| !a.insert(x)));
        assert_eq!(a.registers(), &regs[..]);
        assert_eq!(a.estimate(), est);
        // Merging a sketch into itself, or one of a subset, changes nothing.
        let copy = a.clone();
        a.merge(&copy);
        assert_eq!(a.registers(), &regs[..]);
        let mut half = Hll::default();
        for &x in &items[..10_000] {
            half.insert(x);
        }
        a.merge(&half);
        assert_eq!(a.registers(), &regs[..]);
        // Two halves merged equal the whole, register for register.
        let mut other = Hll::default();
        for &x in &items[10_000..] {
            other.insert(x);
        }
        half.merge(&other);
        assert_eq!(half.registers(), &regs[..]);
        assert_eq!(half.estimate(), est);
    }

    #[test]
    fn hashes_are_fixed_from_run_to_run() {
        // Pinned values: a per-run seed would change them.
        assert_eq!(hash_port(80), 0x9bea_16ce_215d_5263);
        assert_eq!(
            hash_pair(hash_addr(v4(0xc613_0001)), 80),
            0x203a_2d98_89fb_25e8
        );
        let a = hash_addr(v4(0xc613_0001));
        assert_eq!(a, hash_addr("198.19.0.1".parse().unwrap()));
        assert_ne!(hash_pair(a, 80), hash_pair(a, 81));
        assert_ne!(hash_addr(v4(1)), hash_addr(v4(2)));
    }

    /// Ertl's estimator summed over every register value, as written in
    /// the paper, to check the shortcut above the top register.
    fn estimate_full(h: &Hll) -> f64 {
        let m = M as f64;
        let c = &h.hist;
        if c[0] as usize == M {
            return 0.0;
        }
        let mut z = m * tau(1.0 - f64::from(c[Q + 1]) / m);
        for k in (1..=Q).rev() {
            z = 0.5 * (z + f64::from(c[k]));
        }
        z += m * sigma(f64::from(c[0]) / m);
        0.5 / std::f64::consts::LN_2 * m * m / z
    }

    #[test]
    fn the_estimate_from_the_top_register_is_the_full_sum() {
        let mut h = Hll::default();
        let mut rng = Rng(11);
        for i in 0..200_000u32 {
            if h.insert(rng.next()) || i % 997 == 0 {
                assert_eq!(h.estimate().to_bits(), estimate_full(&h).to_bits(), "{i}");
            }
        }
        // A register at Q + 1 (52 zero bits after the index).
        h.insert(0);
        assert_eq!(h.top, Q + 1);
        assert_eq!(h.estimate().to_bits(), estimate_full(&h).to_bits());
    }
}
