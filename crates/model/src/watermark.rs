//! The rule that makes results independent of thread count and reading
//! speed: a stage that merges several time-ordered inputs may act on time
//! `t` only once every input has promised that nothing older than `t` will
//! follow. The lowest promise is the stage's watermark.
//!
//! The pipeline applies it twice: a flow worker merges the capture inputs'
//! watermarks, a detector shard merges the flow workers'. Each promise only
//! moves forward; a late, lower promise is ignored.

use crate::Micros;

/// The lowest of the latest promises of a fixed set of inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    promised: Vec<Micros>,
}

impl Watermark {
    /// A watermark over `inputs` inputs (at least one), none of which has
    /// promised anything yet: it starts at `Micros::MIN`.
    pub fn new(inputs: usize) -> Watermark {
        Watermark {
            promised: vec![Micros::MIN; inputs.max(1)],
        }
    }

    /// Input `input` promises nothing older than `t`; returns the watermark.
    /// A promise lower than one the input already made changes nothing.
    #[inline]
    pub fn raise(&mut self, input: usize, t: Micros) -> Micros {
        if let Some(p) = self.promised.get_mut(input) {
            *p = (*p).max(t);
        }
        self.get()
    }

    /// The lowest promise: everything before it is settled.
    #[inline]
    pub fn get(&self) -> Micros {
        self.promised.iter().copied().min().unwrap_or(Micros::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_promise_holds_the_watermark_back() {
        let mut w = Watermark::new(3);
        assert_eq!(w.get(), Micros::MIN);
        assert_eq!(w.raise(0, 10), Micros::MIN);
        assert_eq!(w.raise(1, 20), Micros::MIN);
        assert_eq!(w.raise(2, 5), 5);
        assert_eq!(w.raise(2, 30), 10);
        assert_eq!(w.raise(0, 40), 20);
    }

    #[test]
    fn a_promise_never_moves_back() {
        let mut w = Watermark::new(2);
        w.raise(0, 50);
        w.raise(1, 60);
        assert_eq!(w.raise(0, 10), 50);
        assert_eq!(w.get(), 50);
    }

    #[test]
    fn one_input_is_its_own_watermark_and_zero_inputs_mean_one() {
        let mut w = Watermark::new(0);
        assert_eq!(w.raise(0, 7), 7);
        // An input that does not exist changes nothing.
        assert_eq!(w.raise(5, 100), 7);
    }

    #[test]
    fn matches_the_minimum_of_running_maxima() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut w = Watermark::new(4);
        let mut maxima = [Micros::MIN; 4];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % 4) as usize;
            let t = (x >> 8) as i64 % 1_000_000;
            maxima[i] = maxima[i].max(t);
            assert_eq!(w.raise(i, t), *maxima.iter().min().unwrap());
        }
    }
}
