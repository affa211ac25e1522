//! A hashed timer wheel over packet time.
//!
//! Slots are [`SLOT_SHIFT`]-bit wide (≈262 ms) and there are [`SLOTS`] of
//! them (≈18 minutes). A deadline further out than that is parked in the last
//! slot and rescheduled when it fires. Entries are never removed when a flow's
//! deadline moves: the owner checks the flow's real deadline when a slot
//! fires and reschedules it (lazy deletion), so a packet costs no timer work.

use scanwatch_model::Micros;

/// What a timer entry names: a flow's slab index.
pub type Entry = u32;

pub const SLOT_SHIFT: u32 = 18;
pub const SLOTS: usize = 4096;
const MASK: i64 = SLOTS as i64 - 1;
/// Largest slot vector kept for reuse after its slot fired.
const KEEP_CAPACITY: usize = 256;

pub struct Wheel {
    slots: Vec<Vec<Entry>>,
    /// Absolute index of the next slot to fire; every slot before it has
    /// fired.
    cursor: i64,
    started: bool,
    len: usize,
}

impl Default for Wheel {
    fn default() -> Self {
        Wheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            cursor: 0,
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

    /// Schedules entry `key` for `deadline`; returns the absolute slot it went to
    /// (the owner keeps it to recognise its live entry later).
    pub fn schedule(&mut self, key: Entry, deadline: Micros) -> i64 {
        let s = Self::slot_of(deadline)
            .max(self.cursor)
            .min(self.cursor + MASK);
        self.slots[(s & MASK) as usize].push(key);
        self.len += 1;
        s
    }

    /// Takes the next slot whose end is at or before `now`, if any, with its
    /// absolute index. The caller hands the emptied vector back
    /// with [`Wheel::give_back`] so its allocation is reused.
    pub fn next_due(&mut self, now: Micros) -> Option<(Vec<Entry>, i64)> {
        if !self.started {
            return None;
        }
        // Skip empty slots quickly, but never run past `now`.
        while (self.cursor + 1) << SLOT_SHIFT <= now {
            let idx = (self.cursor & MASK) as usize;
            let slot = self.cursor;
            self.cursor += 1;
            if !self.slots[idx].is_empty() {
                let v = std::mem::take(&mut self.slots[idx]);
                self.len -= v.len();
                return Some((v, slot));
            }
            if self.slots[idx].capacity() > KEEP_CAPACITY {
                // Emptied by evictions before it came due: free the burst.
                self.slots[idx] = Vec::new();
            }
            if self.len == 0 {
                // Nothing scheduled: jump straight to now.
                self.cursor = self.cursor.max(Self::slot_of(now));
            }
        }
        None
    }

    pub fn give_back(&mut self, mut v: Vec<Entry>) {
        v.clear();
        // Keep a modest allocation for reuse, never a burst's: 4096 slots
        // each holding on to the largest vector it ever had would add up to
        // far more than the flows themselves.
        if v.capacity() > KEEP_CAPACITY {
            return;
        }
        let idx = ((self.cursor - 1) & MASK) as usize;
        if self.slots[idx].is_empty() && self.slots[idx].capacity() < v.capacity() {
            self.slots[idx] = v;
        }
    }

    /// Pops one scheduled entry from the earliest non-empty slot (for eviction
    /// when the table is full).
    pub fn pop_earliest(&mut self) -> Option<Entry> {
        if self.len == 0 {
            return None;
        }
        for i in 0..SLOTS as i64 {
            let idx = ((self.cursor + i) & MASK) as usize;
            if let Some(k) = self.slots[idx].pop() {
                self.len -= 1;
                return Some(k);
            }
        }
        None
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held: the slot vectors and their entries' allocations.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Vec<Entry>>()
            + self
                .slots
                .iter()
                .map(|v| v.capacity() * std::mem::size_of::<Entry>())
                .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
