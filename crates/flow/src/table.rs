//! The flow table's mechanics: where flows live and when they leave.
//!
//! Flows sit in a [`Slab`] and are found through a hash index of slab
//! indices; a [`Wheel`] holds their timers. This module looks flows up and
//! inserts them, evicts the flow due soonest when the table is at its cap,
//! fires timers as the watermark moves ([`FlowTable::advance`]), ends every
//! flow at the end of input ([`FlowTable::drain_with`]) and accounts for its
//! memory ([`FlowTable::memory_bytes`], [`FlowTable::cap_for_bytes`]). What a
//! packet does to a flow is [`crate::record`]'s business, and what becomes of
//! a probe [`crate::attempt`]'s.

use crate::attempt::{self, is_new_syn, resolve_due, Pending};
use crate::record::{
    idle_deadline, new_flow, next_deadline, on_packet, record, reordered_refusal, Flow,
};
use crate::slab::{self, Slab};
use crate::wheel::{self, Wheel};
use crate::{FlowConfig, FlowStats, Output};
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use scanwatch_model::{FlowKey, IcmpNotice, Item, Micros, PacketKind, PacketMeta};
use std::hash::BuildHasher;

/// The flow table: flows in a [`Slab`] of 120-byte entries, found through a
/// hash index of 4-byte slab indices (a swiss table: one control byte and
/// one index per bucket), with timers that also hold slab indices.
pub struct FlowTable {
    cfg: FlowConfig,
    flows: Slab,
    index: HashTable<u32>,
    hasher: RandomState,
    wheel: Wheel,
    now: Micros,
    pub stats: FlowStats,
}

impl FlowTable {
    pub fn new(mut cfg: FlowConfig) -> FlowTable {
        // Slab indices are u32, below the wheel's sentinels.
        cfg.max_flows = cfg.max_flows.clamp(1, wheel::SENTINEL as usize - 1);
        FlowTable {
            // Grown as flows arrive. The caps from `cap_for_bytes` keep a
            // full index at most 7/16 loaded: hashbrown doubles a table whose
            // free slots (tombstones left by removals) run out while more
            // than half full, and at the cap every new flow follows an
            // eviction, so a cap above 7/16 of the buckets would double the
            // index under churn. At or below it, hashbrown rehashes in place.
            // Small at first: a worker holds up to 64 of these (one per
            // virtual shard), most of them far from full on light traffic.
            index: HashTable::with_capacity(cfg.max_flows.min(1 << 10)),
            flows: Slab::default(),
            hasher: RandomState::default(),
            cfg,
            wheel: Wheel::default(),
            now: Micros::MIN,
            stats: FlowStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.len() == 0
    }

    /// Bytes held by the table: slab chunks (flows with their timer links),
    /// index buckets (control byte and slab index), the wheel's sentinels.
    pub fn memory_bytes(&self) -> usize {
        self.flows.memory_bytes() + self.index.allocation_size() + self.wheel.memory_bytes()
    }

    /// Size in bytes of one flow's slab entry (key and state).
    pub const ENTRY_BYTES: usize = std::mem::size_of::<Flow>();

    /// One index bucket: a control byte and a `u32` slab index.
    pub const INDEX_BUCKET_BYTES: usize = 1 + std::mem::size_of::<u32>();

    /// Most bytes the slab and index reach with a cap of `max_flows`, under
    /// churn at the cap (see `new`): the slab's chunks for the cap, and the
    /// power-of-two bucket count of which the cap, plus one, is 7/16.
    pub fn table_bytes(max_flows: usize) -> usize {
        let chunks = max_flows.div_ceil(slab::CHUNK).max(1);
        let buckets = (max_flows.saturating_add(1).saturating_mul(16) / 7)
            .max(1)
            .next_power_of_two();
        chunks * slab::CHUNK * Self::ENTRY_BYTES + buckets * Self::INDEX_BUCKET_BYTES
    }

    /// The largest cap whose table, plus `extra_per_flow` bytes for each
    /// flow (its record and attempt on the way out), stays within
    /// `bytes` under churn.
    pub fn cap_for_bytes(bytes: usize, extra_per_flow: usize) -> usize {
        let fits = |cap: usize| {
            Self::table_bytes(cap).saturating_add(cap.saturating_mul(extra_per_flow)) <= bytes
        };
        // table_bytes grows with the cap: binary search the largest fit.
        let (mut lo, mut hi) = (1usize, wheel::SENTINEL as usize - 1);
        if !fits(lo) {
            return lo;
        }
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }

    #[inline]
    fn find(&self, hash: u64, key: &FlowKey) -> Option<u32> {
        let flows = &self.flows;
        self.index
            .find(hash, |&i| flows.get(i).key == *key)
            .copied()
    }

    /// Handles what a worker is sent: a packet ([`FlowTable::process`]) or
    /// an ICMP error's notice ([`FlowTable::on_icmp_notice`]).
    #[inline]
    pub fn handle(&mut self, item: &Item, out: &mut Output) {
        match item {
            Item::Packet(m) => self.process(m, out),
            Item::Notice(n) => self.on_icmp_notice(n, out),
        }
    }

    /// The table's clock moves to `ts` (never back), and every timer due by
    /// then fires first. Timers thus fire at the same place among this
    /// table's packets whether the watermark moved them on between batches
    /// or this packet does: each slot fires just before the first packet at
    /// or after its end. So what is in the table when it is full (and so
    /// what it evicts), and the order of flows within a slot, depend on
    /// packet time alone, never on batch boundaries or the worker count.
    #[inline]
    fn tick(&mut self, ts: Micros, out: &mut Output) {
        if ts > self.now {
            self.now = ts;
        }
        self.wheel.start_at(ts);
        if ts >= self.wheel.next_boundary() {
            self.advance(ts, out);
        }
    }

    /// Handles one packet, by the key the decoder made. `m.ts` must not go
    /// backwards (the capture stage guarantees it).
    pub fn process(&mut self, m: &PacketMeta, out: &mut Output) {
        self.tick(m.ts, out);
        self.stats.packets += 1;
        let (key, from_a) = (m.key, m.from_a);
        let hash = self.hasher.hash_one(key);
        // Hot path: one probe sequence finds the flow, or the free bucket a
        // new flow goes to. At the cap, an eviction comes first and moves
        // buckets, so that case looks up and inserts separately.
        let found = if self.flows.len() < self.cfg.max_flows {
            let (flows, hasher) = (&self.flows, &self.hasher);
            match self.index.entry(
                hash,
                |&i| flows.get(i).key == key,
                |&j| hasher.hash_one(flows.get(j).key),
            ) {
                hashbrown::hash_table::Entry::Occupied(e) => Some(*e.get()),
                hashbrown::hash_table::Entry::Vacant(v) => {
                    let flow = new_flow(&mut self.stats, key, m, from_a);
                    let i = self.flows.insert(flow);
                    v.insert(i);
                    self.start_flow(i, m, from_a, out);
                    return;
                }
            }
        } else {
            self.find(hash, &key)
        };
        if let Some(i) = found {
            let f = self.flows.get_mut(i);
            // A flow whose idle deadline has passed (its timer slot has not
            // fired yet) ends here, before this packet, exactly as if the
            // timer had fired: the result must not depend on batch
            // boundaries. A new SYN on a closed flow starts a new one.
            let expired = idle_deadline(&self.cfg, f) <= m.ts;
            let restart = !expired
                && is_new_syn(m)
                && (f.orig.is_done() || f.resp.is_done())
                && !reordered_refusal(f, m, from_a == f.orig_is_a());
            if !expired && !restart {
                let was = f.pending();
                on_packet(&self.cfg, &mut self.stats, f, m, from_a, out);
                // A close can bring the idle deadline forward, and so can a
                // wait for data that begins on a flow scheduled at its idle
                // timeout (a late answer, a SYN that came after its
                // SYN-ACK): a timer may fire early, never late.
                let now_waits = matches!(f.pending(), Pending::AwaitData { .. });
                let was_due = matches!(was, Pending::Probe { .. } | Pending::AwaitData { .. });
                if closes(m) || (now_waits && !was_due) {
                    let d = next_deadline(&self.cfg, f);
                    self.wheel.reschedule(&mut self.flows, i, d);
                }
                return;
            }
            self.end_flow(i, if expired { None } else { Some(m.ts) }, out);
        }
        if self.flows.len() >= self.cfg.max_flows {
            self.evict_one(out);
        }
        let flow = new_flow(&mut self.stats, key, m, from_a);
        let i = self.flows.insert(flow);
        let (flows, hasher) = (&self.flows, &self.hasher);
        self.index
            .insert_unique(hash, i, |&j| hasher.hash_one(flows.get(j).key));
        self.start_flow(i, m, from_a, out);
    }

    /// A new flow's first timer and first packet.
    #[inline]
    fn start_flow(&mut self, i: u32, m: &PacketMeta, from_a: bool, out: &mut Output) {
        // Linked once, at the deadline the packet leaves it with (a FIN or
        // RST first packet already has its linger deadline).
        let f = self.flows.get_mut(i);
        on_packet(&self.cfg, &mut self.stats, f, m, from_a, out);
        let d = next_deadline(&self.cfg, f);
        self.wheel.schedule(&mut self.flows, i, d);
    }
}

impl FlowTable {
    /// The notice of an ICMP error that quotes a packet of a flow we may
    /// track: a pending probe of that flow is rejected. The error packet
    /// itself is counted in its own ICMP flow. `n.ts` must not go backwards.
    pub fn on_icmp_notice(&mut self, n: &IcmpNotice, out: &mut Output) {
        self.tick(n.ts, out);
        let Some(i) = self.find(self.hasher.hash_one(n.key), &n.key) else {
            return;
        };
        let f = self.flows.get_mut(i);
        self.stats.icmp_matched += 1;
        if let Some(a) = attempt::on_icmp_error(&self.cfg, f, n) {
            self.stats.attempts += 1;
            out.attempts.push(a);
        }
    }

    /// The watermark [`FlowTable::advance`] returns for `watermark` once the
    /// table has seen a packet: the start of the timer slot it falls in.
    /// A worker that has no table yet reports the same, so that every
    /// worker's watermark at a given input watermark is one value, and a
    /// detector shard's last step before the end does not depend on which
    /// worker finishes last.
    pub fn watermark_for(watermark: Micros) -> Micros {
        (Wheel::slot_of(watermark) << wheel::SLOT_SHIFT).min(watermark)
    }

    /// Fires every timer due before `watermark` and returns this table's
    /// watermark ([`FlowTable::watermark_for`]): no attempt emitted after
    /// this call will have an earlier time.
    pub fn advance(&mut self, watermark: Micros, out: &mut Output) -> Micros {
        if watermark > self.now {
            self.now = watermark;
        }
        loop {
            // At most one turn of the wheel at a time: a gap longer than
            // the wheel spans (hours, years) would otherwise be walked slot
            // by slot, re-parking far deadlines at every turn.
            let step = watermark.min(self.wheel.horizon().saturating_add(Wheel::SPAN));
            while let Some((i, slot)) = self.wheel.pop_due(&mut self.flows, step) {
                self.fire(i, slot, out);
            }
            if step >= watermark || self.wheel.is_empty() {
                break;
            }
            // What is left is due later than a whole turn: move the wheel to
            // the earliest deadline (or the watermark) at once and link
            // every flow again at its deadline. No slot skipped held a due
            // flow, so this is what walking would have done.
            let all = self.wheel.take_all(&mut self.flows);
            let cfg = &self.cfg;
            let earliest = all
                .iter()
                .map(|&i| next_deadline(cfg, self.flows.get(i)))
                .min()
                .unwrap_or(watermark);
            self.wheel.jump_to(earliest.min(watermark));
            for i in all {
                let d = next_deadline(&self.cfg, self.flows.get(i));
                self.wheel.schedule(&mut self.flows, i, d);
            }
        }
        // Nothing left, or a turn short of the watermark: the rest of the
        // way is empty slots.
        while let Some((i, slot)) = self.wheel.pop_due(&mut self.flows, watermark) {
            self.fire(i, slot, out);
        }
        self.wheel.horizon().min(watermark)
    }

    /// Flow `i`, just taken out of the list of `slot`, whose end has come:
    /// it is linked into a later slot, or resolved and ended.
    fn fire(&mut self, i: u32, slot: i64, out: &mut Output) {
        let cfg = &self.cfg;
        let slot_end = (slot + 1) << wheel::SLOT_SHIFT;
        let f = self.flows.get_mut(i);
        let deadline = next_deadline(cfg, f);
        if deadline >= slot_end {
            // Moved later since it was scheduled.
            self.wheel.schedule(&mut self.flows, i, deadline);
            return;
        }
        // Resolve a pending attempt whose time has come.
        resolve_due(cfg, &mut self.stats, f, slot_end, out);
        if idle_deadline(cfg, f) < slot_end {
            self.end_flow(i, None, out);
        } else {
            let d = next_deadline(cfg, f);
            self.wheel.schedule(&mut self.flows, i, d);
        }
    }

    /// Ends flow `i`: resolves what it still waits for, writes its record.
    /// `at` is the time of the packet that forces an early end (a new SYN on a
    /// closed flow, or eviction); `None` for a timer.
    fn end_flow(&mut self, i: u32, at: Option<Micros>, out: &mut Output) {
        self.wheel.unlink(&mut self.flows, i);
        let f = self.flows.remove(i);
        if let Ok(e) = self
            .index
            .find_entry(self.hasher.hash_one(f.key), |&j| j == i)
        {
            e.remove();
        }
        if let Some(a) = attempt::resolve_at_end(&self.cfg, &f, at, self.wheel.horizon()) {
            self.stats.attempts += 1;
            out.attempts.push(a);
        }
        self.stats.flows_ended += 1;
        out.flows.push(record(&f));
    }

    fn evict_one(&mut self, out: &mut Output) {
        if let Some(i) = self.wheel.pop_earliest(&mut self.flows) {
            self.stats.evicted += 1;
            let now = self.now;
            self.end_flow(i, Some(now), out);
            return;
        }
        // No timers at all (cannot happen while flows exist): drop any one.
        let any = self.flows.live_indices().next();
        if let Some(i) = any {
            self.stats.evicted += 1;
            let now = self.now;
            self.end_flow(i, Some(now), out);
        }
    }

    /// Ends every flow (end of input or shutdown), resolving pending attempts
    /// as their timers would have.
    pub fn drain(&mut self, out: &mut Output) {
        self.drain_with(out, usize::MAX, |_| {});
    }

    /// As [`FlowTable::drain`], handing `out` to `take` after every `chunk`
    /// flows so that a full table never becomes a million records at once.
    pub fn drain_with(
        &mut self,
        out: &mut Output,
        chunk: usize,
        mut take: impl FnMut(&mut Output),
    ) {
        // In key order, so that the output does not depend on where flows
        // happened to land in the slab.
        let mut live: Vec<(FlowKey, u32)> = self
            .flows
            .live_indices()
            .map(|i| (self.flows.get(i).key, i))
            .collect();
        live.sort_unstable();
        for ks in live.chunks(chunk.max(1)) {
            for &(_, i) in ks {
                self.end_flow(i, None, out);
            }
            take(out);
        }
    }
}

/// Deadlines only move later on most packets (a flow stays in its wheel
/// slot and is moved on when the slot fires), but a FIN or RST brings a TCP
/// flow's end closer (the linger time): the flow is moved to its new slot at
/// once, so that the record is written when it is due.
#[inline]
fn closes(m: &PacketMeta) -> bool {
    m.kind == PacketKind::Tcp && m.tcp_flags.is_fin_or_rst()
}
