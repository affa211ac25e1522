//! A hashed timer wheel over packet time, its lists threaded through the
//! flows themselves.
//!
//! Slots are [`SLOT_SHIFT`]-bit wide (≈262 ms) and there are [`SLOTS`] of
//! them (≈18 minutes). A deadline further out than that is parked in the last
//! slot and rescheduled when it fires. Each slot is a circular doubly linked
//! list whose nodes are flows (their `next`/`prev` slab indices) and whose
//! head is a sentinel kept here, so a timer costs no memory beyond the two
//! links in the flow, and moving a flow between slots is O(1).
//!
//! A flow's deadline is not moved when a packet pushes it later: the flow
//! stays in its slot, and when the slot fires the owner checks the flow's
//! real deadline and links it into a later slot (so a packet costs no timer
//! work). Only an earlier deadline (a FIN or RST) moves it at once.

use scanwatch_model::Micros;

pub const SLOT_SHIFT: u32 = 18;
pub const SLOTS: usize = 4096;
const MASK: i64 = SLOTS as i64 - 1;
/// Link value of a node in no list.
pub const UNLINKED: u32 = u32::MAX;
/// Sentinel nodes: `SENTINEL + s` heads slot `s`; `SENTINEL + SLOTS` heads
/// the list of the slot being fired. Slab indices stay below `SENTINEL`.
pub const SENTINEL: u32 = u32::MAX - 1 - SLOTS as u32 - 1;
const FIRING: u32 = SENTINEL + SLOTS as u32;

/// Where the flows' links live (the slab).
pub trait Links {
    fn next(&self, i: u32) -> u32;
    fn prev(&self, i: u32) -> u32;
    fn set_next(&mut self, i: u32, v: u32);
    fn set_prev(&mut self, i: u32, v: u32);
}

pub struct Wheel {
    /// Sentinels' links, `SLOTS + 1` of each.
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Absolute index of the next slot to fire; every slot before it has
    /// fired.
    cursor: i64,
    /// Absolute index of the slot whose flows are in the firing list.
    firing_slot: i64,
    started: bool,
    len: usize,
}

impl Default for Wheel {
    fn default() -> Self {
        let sentinels: Vec<u32> = (0..=SLOTS as u32).map(|s| SENTINEL + s).collect();
        Wheel {
            next: sentinels.clone(),
            prev: sentinels,
            cursor: 0,
            firing_slot: 0,
            started: false,
            len: 0,
        }
    }
}

impl Wheel {
    #[inline]
    pub fn slot_of(t: Micros) -> i64 {
        t >> SLOT_SHIFT
    }

    /// Everything before this time has fired: deadlines earlier than it are
    /// already handled.
    pub fn horizon(&self) -> Micros {
        self.cursor << SLOT_SHIFT
    }

    /// The end of the slot under the cursor: no timer fires before a time
    /// reaches it (nothing is left in the firing list between calls).
    #[inline]
    pub fn next_boundary(&self) -> Micros {
        (self.cursor + 1) << SLOT_SHIFT
    }

    /// Starts the clock at the first packet's time.
    pub fn start_at(&mut self, t: Micros) {
        if !self.started {
            self.cursor = Self::slot_of(t);
            self.started = true;
        }
    }

    /// Node `i`'s next (`fwd`) or previous link: a sentinel's here, a
    /// flow's in the slab.
    #[inline]
    fn link(&self, l: &impl Links, i: u32, fwd: bool) -> u32 {
        match (i.checked_sub(SENTINEL), fwd) {
            (Some(s), true) => self.next[s as usize],
            (Some(s), false) => self.prev[s as usize],
            (None, true) => l.next(i),
            (None, false) => l.prev(i),
        }
    }

    #[inline]
    fn set_link(&mut self, l: &mut impl Links, i: u32, fwd: bool, v: u32) {
        match (i.checked_sub(SENTINEL), fwd) {
            (Some(s), true) => self.next[s as usize] = v,
            (Some(s), false) => self.prev[s as usize] = v,
            (None, true) => l.set_next(i, v),
            (None, false) => l.set_prev(i, v),
        }
    }

    #[inline]
    fn nx(&self, l: &impl Links, i: u32) -> u32 {
        self.link(l, i, true)
    }

    #[inline]
    fn pv(&self, l: &impl Links, i: u32) -> u32 {
        self.link(l, i, false)
    }

    #[inline]
    fn set_nx(&mut self, l: &mut impl Links, i: u32, v: u32) {
        self.set_link(l, i, true, v);
    }

    #[inline]
    fn set_pv(&mut self, l: &mut impl Links, i: u32, v: u32) {
        self.set_link(l, i, false, v);
    }

    /// Links flow `i` (in no list) at the tail of the slot of `deadline`.
    pub fn schedule(&mut self, l: &mut impl Links, i: u32, deadline: Micros) {
        let s = Self::slot_of(deadline)
            .max(self.cursor)
            .min(self.cursor + MASK);
        let h = SENTINEL + (s & MASK) as u32;
        let last = self.pv(l, h);
        self.set_nx(l, last, i);
        l.set_prev(i, last);
        l.set_next(i, h);
        self.set_pv(l, h, i);
        self.len += 1;
    }

    /// Takes flow `i` out of its list, if it is in one.
    pub fn unlink(&mut self, l: &mut impl Links, i: u32) {
        let (p, n) = (l.prev(i), l.next(i));
        if n == UNLINKED {
            return;
        }
        self.set_nx(l, p, n);
        self.set_pv(l, n, p);
        l.set_next(i, UNLINKED);
        l.set_prev(i, UNLINKED);
        self.len -= 1;
    }

    /// Moves flow `i` (in a list) to the slot of `deadline`.
    pub fn reschedule(&mut self, l: &mut impl Links, i: u32, deadline: Micros) {
        self.unlink(l, i);
        self.schedule(l, i, deadline);
    }

    /// Takes one flow of the slot being fired, with that slot's absolute
    /// index; when that slot is done, moves on to the next slot whose end is
    /// at or before `now`. `None` when nothing more is due.
    pub fn pop_due(&mut self, l: &mut impl Links, now: Micros) -> Option<(u32, i64)> {
        if !self.started {
            return None;
        }
        loop {
            let first = self.next[SLOTS];
            if first != FIRING {
                self.unlink(l, first);
                return Some((first, self.firing_slot));
            }
            // Skip empty slots quickly, but never run past `now`.
            if (self.cursor + 1) << SLOT_SHIFT > now {
                return None;
            }
            let h = SENTINEL + (self.cursor & MASK) as u32;
            self.firing_slot = self.cursor;
            self.cursor += 1;
            let (first, last) = (self.nx(l, h), self.pv(l, h));
            if first != h {
                // The whole slot becomes the firing list; flows rescheduled
                // while it fires go to later slots (the cursor has moved).
                self.next[SLOTS] = first;
                self.prev[SLOTS] = last;
                self.set_pv(l, first, FIRING);
                self.set_nx(l, last, FIRING);
                let s = (h - SENTINEL) as usize;
                self.next[s] = h;
                self.prev[s] = h;
            } else if self.len == 0 {
                // Nothing scheduled: jump straight to now.
                self.cursor = self.cursor.max(Self::slot_of(now));
            }
        }
    }

    /// Microseconds the wheel spans: a deadline further out is parked in
    /// its last slot.
    pub const SPAN: Micros = (SLOTS as Micros) << SLOT_SHIFT;

    /// Whether no flow is linked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Unlinks every flow of every slot (none may be firing) and returns
    /// them, in slot order from the cursor: for a jump of the clock longer
    /// than the wheel spans (see [`Wheel::jump_to`]).
    pub fn take_all(&mut self, l: &mut impl Links) -> Vec<u32> {
        let mut all = Vec::with_capacity(self.len);
        for k in 0..SLOTS as i64 {
            let h = SENTINEL + ((self.cursor + k) & MASK) as u32;
            let mut i = self.nx(l, h);
            while i != h {
                let n = self.nx(l, i);
                l.set_next(i, UNLINKED);
                l.set_prev(i, UNLINKED);
                all.push(i);
                i = n;
            }
            let s = (h - SENTINEL) as usize;
            self.next[s] = h;
            self.prev[s] = h;
        }
        self.len = 0;
        all
    }

    /// Moves the cursor forward to the slot of `t` at once (the wheel must
    /// be empty: [`Wheel::take_all`] first). The slots skipped held nothing.
    pub fn jump_to(&mut self, t: Micros) {
        if self.len == 0 && self.next[SLOTS] == FIRING {
            self.cursor = self.cursor.max(Self::slot_of(t));
        }
    }

    /// Takes the first flow of the earliest non-empty slot (for eviction
    /// when the table is full).
    pub fn pop_earliest(&mut self, l: &mut impl Links) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        for k in 0..=SLOTS as i64 {
            let h = if k == 0 {
                FIRING
            } else {
                SENTINEL + ((self.cursor + k - 1) & MASK) as u32
            };
            let first = self.nx(l, h);
            if first != h {
                self.unlink(l, first);
                return Some(first);
            }
        }
        None
    }

    /// Bytes held: the sentinels (the flows' links are in the flows).
    pub fn memory_bytes(&self) -> usize {
        (self.next.len() + self.prev.len()) * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    //! The wheel alone, over plain link arrays, against a reference that
    //! knows nothing of slots-as-lists: a sorted map of (slot, insertion
    //! number), where a deadline's slot is its own, clamped into the span
    //! the documentation promises (not before the horizon, at most
    //! `SLOTS - 1` slots after it).

    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap};

    const SLOT: i64 = 1 << SLOT_SHIFT;
    const SPAN: i64 = SLOT * SLOTS as i64;

    /// Links of `n` nodes, all in no list.
    struct Nodes {
        next: Vec<u32>,
        prev: Vec<u32>,
    }

    impl Nodes {
        fn new(n: usize) -> Nodes {
            Nodes {
                next: vec![UNLINKED; n],
                prev: vec![UNLINKED; n],
            }
        }
    }

    impl Links for Nodes {
        fn next(&self, i: u32) -> u32 {
            self.next[i as usize]
        }
        fn prev(&self, i: u32) -> u32 {
            self.prev[i as usize]
        }
        fn set_next(&mut self, i: u32, v: u32) {
            self.next[i as usize] = v;
        }
        fn set_prev(&mut self, i: u32, v: u32) {
            self.prev[i as usize] = v;
        }
    }

    /// The wheel under test, its nodes, and the reference beside them.
    struct Harness {
        wheel: Wheel,
        nodes: Nodes,
        /// Reference: absolute slot of the horizon (next slot to fire).
        cursor: i64,
        /// Reference: (slot, insertion number) → node.
        due: BTreeMap<(i64, u64), u32>,
        at: HashMap<u32, (i64, u64)>,
        seq: u64,
        now: Micros,
    }

    impl Harness {
        fn new(nodes: usize, start: Micros) -> Harness {
            let mut wheel = Wheel::default();
            wheel.start_at(start);
            // A second start does not move the clock.
            wheel.start_at(start + 100 * SPAN);
            Harness {
                wheel,
                nodes: Nodes::new(nodes),
                cursor: start >> SLOT_SHIFT,
                due: BTreeMap::new(),
                at: HashMap::new(),
                seq: 0,
                now: start,
            }
        }

        /// Links `i` (relinks it if it is linked) at `deadline`.
        fn schedule(&mut self, i: u32, deadline: Micros) {
            if let Some(k) = self.at.remove(&i) {
                self.due.remove(&k);
                self.wheel.reschedule(&mut self.nodes, i, deadline);
            } else {
                self.wheel.schedule(&mut self.nodes, i, deadline);
            }
            let slot = (deadline >> SLOT_SHIFT).clamp(self.cursor, self.cursor + SLOTS as i64 - 1);
            self.seq += 1;
            self.due.insert((slot, self.seq), i);
            self.at.insert(i, (slot, self.seq));
        }

        fn unlink(&mut self, i: u32) {
            self.wheel.unlink(&mut self.nodes, i);
            if let Some(k) = self.at.remove(&i) {
                self.due.remove(&k);
            }
        }

        /// One `pop_due` at the harness's `now`, checked against the
        /// reference: the earliest entry if its slot has ended by `now`.
        fn pop_due(&mut self) -> Option<u32> {
            let got = self.wheel.pop_due(&mut self.nodes, self.now);
            let want = match self.due.first_key_value() {
                Some((&(slot, seq), &i)) if (slot + 1) << SLOT_SHIFT <= self.now => {
                    self.due.remove(&(slot, seq));
                    self.at.remove(&i);
                    self.cursor = self.cursor.max(slot + 1);
                    Some((i, slot))
                }
                _ => {
                    self.cursor = self.cursor.max(self.now >> SLOT_SHIFT);
                    None
                }
            };
            assert_eq!(got, want, "pop_due at {}", self.now);
            self.check();
            got.map(|(i, _)| i)
        }

        fn pop_earliest(&mut self) -> Option<u32> {
            let got = self.wheel.pop_earliest(&mut self.nodes);
            let want = self.due.pop_first().map(|(_, i)| {
                self.at.remove(&i);
                i
            });
            assert_eq!(got, want, "pop_earliest");
            self.check();
            got
        }

        fn check(&self) {
            assert_eq!(self.wheel.len, self.due.len());
            assert_eq!(self.wheel.horizon(), self.cursor << SLOT_SHIFT);
            // Every node's links, where that is cheap (see `check_links`).
            if self.nodes.next.len() <= 64 {
                self.check_links();
            }
        }

        /// A node is in a list exactly when the reference holds it.
        fn check_links(&self) {
            for (i, &n) in self.nodes.next.iter().enumerate() {
                assert_eq!(
                    n == UNLINKED,
                    !self.at.contains_key(&(i as u32)),
                    "node {i}"
                );
            }
        }
    }

    #[test]
    fn an_unstarted_wheel_has_nothing_due() {
        let mut w = Wheel::default();
        let mut n = Nodes::new(1);
        assert_eq!(w.pop_due(&mut n, Micros::MAX / 2), None);
        assert_eq!(w.pop_earliest(&mut n), None);
        assert_eq!(w.horizon(), 0);
    }

    #[test]
    fn due_in_slot_order_then_insertion_order_once_the_slot_has_ended() {
        let t0 = 1_000 * SLOT + 5;
        let mut h = Harness::new(6, t0);
        // Two in slot +3, one in +1, one in +3 again, one in the past.
        h.schedule(0, t0 + 3 * SLOT);
        h.schedule(1, t0 + SLOT);
        h.schedule(2, t0 + 3 * SLOT + 7);
        h.schedule(3, t0 - 10 * SLOT);
        h.now = t0 + 3 * SLOT;
        // The past deadline fires with the horizon's slot, then slot +1;
        // slot +3 has not ended.
        assert_eq!(h.pop_due(), Some(3));
        assert_eq!(h.pop_due(), Some(1));
        assert_eq!(h.pop_due(), None);
        assert_eq!(h.wheel.horizon(), 1_003 * SLOT);
        h.now = t0 + 4 * SLOT;
        assert_eq!(h.pop_due(), Some(0));
        assert_eq!(h.pop_due(), Some(2));
        assert_eq!(h.pop_due(), None);
    }

    #[test]
    fn a_far_deadline_parks_in_the_last_slot_and_is_relinked_until_due() {
        let t0 = 7 * SLOT;
        let mut h = Harness::new(1, t0);
        let deadline = t0 + 3 * SPAN + 12 * SLOT;
        h.schedule(0, deadline);
        let mut fired = Vec::new();
        while h.now < deadline + 2 * SLOT {
            h.now += SLOT / 2;
            while let Some(i) = h.pop_due() {
                // As the table does: not yet due, linked again.
                fired.push(h.now);
                if h.now < deadline {
                    h.schedule(i, deadline);
                }
            }
        }
        // Parked in the span's last slot three times, then due.
        assert_eq!(fired.len(), 4, "{fired:?}");
        assert!(*fired.last().unwrap() >= deadline);
        assert!(h.due.is_empty());
    }

    #[test]
    fn deadlines_at_the_end_of_time_stay_in_the_span() {
        let mut h = Harness::new(2, 0);
        h.schedule(0, Micros::MAX);
        h.schedule(1, SLOT);
        assert_eq!(h.pop_earliest(), Some(1));
        h.now = SPAN;
        assert_eq!(h.pop_due(), Some(0));
    }

    #[test]
    fn many_entries_over_several_turns_of_the_wheel() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = 20_000u32;
        let mut h = Harness::new(n as usize, 123_456_789);
        for i in 0..n {
            let d = h.now + (rnd() % (3 * SPAN as u64)) as i64 - SLOT;
            h.schedule(i, d);
        }
        let mut popped = 0;
        for step in 0..2_000 {
            h.now += (rnd() % (8 * SLOT as u64)) as i64;
            while let Some(i) = h.pop_due() {
                popped += 1;
                // Every third fired node comes back later; some others are
                // moved or dropped before they fire.
                if i % 3 == 0 {
                    h.schedule(i, h.now + (rnd() % (2 * SPAN as u64)) as i64);
                }
            }
            let j = (rnd() % u64::from(n)) as u32;
            if step % 2 == 0 {
                h.unlink(j);
            } else {
                h.schedule(j, h.now + (rnd() % (SPAN as u64)) as i64);
            }
        }
        h.check_links();
        assert!(popped > usize::try_from(n).unwrap(), "{popped}");
        while h.pop_earliest().is_some() {}
        assert_eq!(h.wheel.len, 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Links (or relinks) a node at now + offset.
        Schedule(u32, i64),
        Unlink(u32),
        /// Moves now on and pops what is due, at most `max` of them; the
        /// k-th popped node is linked again at now + `relink[k]` when given
        /// (as the table does with a flow whose deadline moved later).
        Advance {
            by: i64,
            max: usize,
            relink: Vec<Option<i64>>,
        },
        PopEarliest,
    }

    fn offset() -> impl Strategy<Value = i64> {
        prop_oneof![
            4 => -2 * SLOT..8 * SLOT,
            2 => 0..3 * SPAN,
            1 => Just(Micros::MAX / 2),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u32..48, offset()).prop_map(|(i, o)| Op::Schedule(i, o)),
            1 => (0u32..48).prop_map(Op::Unlink),
            3 => (
                prop_oneof![4 => 0..6 * SLOT, 1 => 0..2 * SPAN],
                1usize..64,
                prop::collection::vec(prop::option::of(offset()), 0..8),
            )
                .prop_map(|(by, max, relink)| Op::Advance { by, max, relink }),
            1 => Just(Op::PopEarliest),
        ]
    }

    proptest! {
        #[test]
        fn random_operations_match_the_reference(
            start in 0i64..(1 << 42),
            ops in prop::collection::vec(op(), 1..120),
        ) {
            let mut h = Harness::new(48, start);
            for op in ops {
                match op {
                    Op::Schedule(i, o) => h.schedule(i, h.now.saturating_add(o)),
                    Op::Unlink(i) => h.unlink(i),
                    Op::Advance { by, max, relink } => {
                        h.now += by;
                        for k in 0..max {
                            let Some(i) = h.pop_due() else { break };
                            if let Some(Some(o)) = relink.get(k) {
                                h.schedule(i, h.now.saturating_add(*o));
                            }
                        }
                    }
                    Op::PopEarliest => {
                        h.pop_earliest();
                    }
                }
            }
            // Whatever is left fires in order once its time has come.
            h.now += 2 * SPAN;
            while h.pop_due().is_some() {}
            prop_assert!(h.due.is_empty());
        }
    }
}
