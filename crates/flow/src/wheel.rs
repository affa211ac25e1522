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
