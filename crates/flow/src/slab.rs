//! Flow entries in fixed-size chunks, addressed by a `u32` index.
//!
//! The hash index and the timer wheel hold these 4-byte indices instead of
//! the flows (or their 38-byte keys): an entry never moves once placed, so
//! growing the index moves 4-byte values, not 120-byte entries, and a timer
//! reaches its flow without hashing. Chunks are allocated as the table
//! fills and kept (the table's high-water mark, bounded by its cap); freed
//! entries are chained into a free list through their `next` field and
//! reused last-freed-first, while they are still in cache. The timer wheel
//! threads its lists through the entries' `next`/`prev` links ([`Links`]).

use crate::record::Flow;
use crate::wheel::Links;

const CHUNK_SHIFT: u32 = 10;
/// Entries per chunk (one allocation of 1024 × 120 bytes: a worker holds
/// up to 64 tables, one per virtual shard, each with a part-filled chunk).
pub const CHUNK: usize = 1 << CHUNK_SHIFT;
const CHUNK_MASK: u32 = CHUNK as u32 - 1;
const NONE: u32 = u32::MAX;

pub(crate) struct Slab {
    chunks: Vec<Vec<Flow>>,
    /// Head of the free list; each free entry's `next` holds the next.
    free: u32,
    live: usize,
}

impl Default for Slab {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            free: NONE,
            live: 0,
        }
    }
}

impl Slab {
    #[inline]
    pub fn get(&self, i: u32) -> &Flow {
        &self.chunks[(i >> CHUNK_SHIFT) as usize][(i & CHUNK_MASK) as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, i: u32) -> &mut Flow {
        &mut self.chunks[(i >> CHUNK_SHIFT) as usize][(i & CHUNK_MASK) as usize]
    }

    /// Places `f` (marked live) and returns its index.
    pub fn insert(&mut self, mut f: Flow) -> u32 {
        f.set_live(true);
        self.live += 1;
        if self.free != NONE {
            let i = self.free;
            let e = self.get_mut(i);
            let next = e.next;
            *e = f;
            self.free = next;
            return i;
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let n = self.chunks.len() - 1;
        let last = &mut self.chunks[n];
        let i = ((n as u32) << CHUNK_SHIFT) | last.len() as u32;
        last.push(f);
        i
    }

    /// Frees entry `i` and returns a copy of what it held. `i` must be live.
    pub fn remove(&mut self, i: u32) -> Flow {
        let free = self.free;
        let e = self.get_mut(i);
        debug_assert!(e.live());
        let out = *e;
        e.set_live(false);
        e.next = free;
        self.free = i;
        self.live -= 1;
        out
    }

    pub fn len(&self) -> usize {
        self.live
    }

    /// Bytes held by the chunks.
    pub fn memory_bytes(&self) -> usize {
        self.chunks.len() * CHUNK * std::mem::size_of::<Flow>()
    }

    /// Indices of the live entries.
    pub fn live_indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.chunks.iter().enumerate().flat_map(|(n, c)| {
            c.iter()
                .enumerate()
                .filter(|(_, f)| f.live())
                .map(move |(j, _)| ((n as u32) << CHUNK_SHIFT) | j as u32)
        })
    }
}

impl Links for Slab {
    #[inline]
    fn next(&self, i: u32) -> u32 {
        self.get(i).next
    }

    #[inline]
    fn prev(&self, i: u32) -> u32 {
        self.get(i).prev
    }

    #[inline]
    fn set_next(&mut self, i: u32, v: u32) {
        self.get_mut(i).next = v;
    }

    #[inline]
    fn set_prev(&mut self, i: u32, v: u32) {
        self.get_mut(i).prev = v;
    }
}
