//! One flow table per worker thread: packets in, [`FlowRecord`]s and
//! connection [`Attempt`]s out.
//!
//! A worker owns its [`FlowTable`] outright (shared-nothing: the capture stage
//! sends both directions of a flow to the same worker by a symmetric hash), so
//! no lock is taken per packet. For every flow the table keeps Zeek's endpoint
//! states, `history` letters and counters, and — when the flow's first packet
//! was a probe — the probe's pending outcome. An attempt leaves the table as
//! soon as its outcome is known: at the answer or the reject, or when packet
//! time passes its timeout.
//!
//! Time is packet time only. [`FlowTable::advance`] fires timers up to a
//! watermark and returns the table's own watermark: a promise that no attempt
//! emitted later will carry an earlier time. Detector shards merge attempts
//! from all workers up to the lowest such promise, which is what makes
//! detections the same at any thread count and any replay speed.
//!
//! The table has a cap ([`FlowConfig::max_flows`]). When it is full, the flow
//! whose timer is due soonest is evicted (half-open probes and closed flows
//! first, since their deadlines are short), its record written and counted in
//! [`FlowStats::evicted`].

mod slab;
mod state;
mod wheel;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use scanwatch_model::{
    proto, Attempt, FlowKey, FlowRecord, History, Micros, Outcome, PacketKind, PacketMeta,
    ProbeKind, Quoted,
};
use slab::Slab;
pub use state::{conn_state, Endpoint};
use std::hash::BuildHasher;
pub use wheel::Wheel;

/// Timeouts (µs of packet time) and caps. Defaults follow Zeek where Zeek has
/// one.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// An unanswered probe resolves as `unanswered` after this long.
    pub attempt_timeout: Micros,
    /// After a SYN-ACK, how long to wait for the originator's first byte
    /// before calling the contact "answered, no data".
    pub data_wait: Micros,
    /// Idle timeout of an established or midstream TCP flow.
    pub tcp_idle: Micros,
    /// Idle timeout of a TCP flow that never got past the handshake.
    pub tcp_attempt_idle: Micros,
    /// How long a reset or fully closed TCP flow stays to collect stragglers.
    pub tcp_linger: Micros,
    pub udp_idle: Micros,
    pub icmp_idle: Micros,
    pub other_idle: Micros,
    /// Most flows this table holds at once.
    pub max_flows: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            attempt_timeout: 5_000_000,
            data_wait: 5_000_000,
            tcp_idle: 300_000_000,
            tcp_attempt_idle: 10_000_000,
            tcp_linger: 2_000_000,
            udp_idle: 60_000_000,
            icmp_idle: 60_000_000,
            other_idle: 60_000_000,
            max_flows: 1 << 20,
        }
    }
}

/// Counters a table keeps; the pipeline sums them over workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub packets: u64,
    pub flows_created: u64,
    pub flows_ended: u64,
    /// Flows pushed out because the table was full.
    pub evicted: u64,
    pub attempts: u64,
    /// Flows that began with a SYN-ACK or a RST: replies to someone else's
    /// (usually spoofed) SYNs.
    pub backscatter: u64,
    /// ICMP errors tied to the flow they quote.
    pub icmp_matched: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    None,
    /// Waiting for any answer. A probe is always a flow's first packet, so
    /// its time is the flow's `first_ts`.
    Probe {
        probe: ProbeKind,
    },
    /// Answered (SYN-ACK); waiting to see whether the originator sends data.
    /// The answer time is kept as a delay after the probe (it comes within
    /// the attempt timeout), so the state fits 8 bytes.
    AwaitData {
        delay_us: u32,
    },
}

impl Pending {
    fn await_data(probe_ts: Micros, answered_at: Micros) -> Pending {
        Pending::AwaitData {
            delay_us: u32::try_from((answered_at - probe_ts).max(0)).unwrap_or(u32::MAX),
        }
    }
}

#[inline]
fn answered_at(probe_ts: Micros, delay_us: u32) -> Micros {
    probe_ts + Micros::from(delay_us)
}

/// One tracked flow: its key, state and timer links, 112 bytes in the
/// slab. The pending probe, the direction and the slab's live mark share
/// one byte of flags (see the accessors).
#[derive(Clone, Copy)]
struct Flow {
    key: FlowKey,
    first_ts: Micros,
    last_ts: Micros,
    orig_bytes: u64,
    resp_bytes: u64,
    orig_pkts: u32,
    resp_pkts: u32,
    /// Timer-wheel links (slab indices or wheel sentinels; `UNLINKED` when
    /// in no list). A free slab entry chains the free list through `next`.
    next: u32,
    prev: u32,
    /// [`Pending::AwaitData`]: the answer's delay after the probe.
    delay_us: u32,
    history: History,
    vlan: u16,
    orig: Endpoint,
    resp: Endpoint,
    /// [`Pending::Probe`]: the probe's kind.
    probe: ProbeKind,
    /// Bits 0-1: the pending state (0 none, 1 probe, 2 awaiting data);
    /// bit 2: the originator is the key's `a` endpoint; bit 3: live.
    flags: u8,
}

const PENDING_BITS: u8 = 0b11;
const ORIG_IS_A: u8 = 0b100;
const LIVE: u8 = 0b1000;

impl Flow {
    #[inline]
    fn pending(&self) -> Pending {
        match self.flags & PENDING_BITS {
            1 => Pending::Probe { probe: self.probe },
            2 => Pending::AwaitData {
                delay_us: self.delay_us,
            },
            _ => Pending::None,
        }
    }

    #[inline]
    fn set_pending(&mut self, p: Pending) {
        self.flags &= !PENDING_BITS;
        match p {
            Pending::None => {}
            Pending::Probe { probe } => {
                self.flags |= 1;
                self.probe = probe;
            }
            Pending::AwaitData { delay_us } => {
                self.flags |= 2;
                self.delay_us = delay_us;
            }
        }
    }

    /// The originator is the key's `a` endpoint.
    #[inline]
    fn orig_is_a(&self) -> bool {
        self.flags & ORIG_IS_A != 0
    }

    #[inline]
    fn live(&self) -> bool {
        self.flags & LIVE != 0
    }

    #[inline]
    fn set_live(&mut self, live: bool) {
        if live {
            self.flags |= LIVE;
        } else {
            self.flags &= !LIVE;
        }
    }
}

/// The notice that ICMP error `m`, quoting `q`, gives the worker of the
/// quoted flow (see [`PacketKind::IcmpNotice`]).
pub fn icmp_notice(m: &PacketMeta, q: &Quoted) -> PacketMeta {
    PacketMeta {
        ts: m.ts,
        src: q.src,
        dst: q.dst,
        sport: q.sport,
        dport: q.dport,
        proto: q.proto,
        vlan: m.vlan,
        kind: PacketKind::IcmpNotice,
        icmp_type: m.icmp_type,
        icmp_code: m.icmp_code,
        ..PacketMeta::default()
    }
}

/// The key a packet is dispatched to a worker by: its own flow's (for a
/// notice, that is the quoted flow's).
pub fn dispatch_key(m: &PacketMeta) -> FlowKey {
    FlowKey::new(m.src, m.sport, m.dst, m.dport, m.proto).0
}

/// Where a table puts what it produces; the worker drains it after each batch.
#[derive(Default)]
pub struct Output {
    pub attempts: Vec<Attempt>,
    pub flows: Vec<FlowRecord>,
}

/// The flow table: flows in a [`Slab`] of 112-byte entries, found through a
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
            index: HashTable::with_capacity(cfg.max_flows.min(1 << 16)),
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

    /// Handles one packet. `m.ts` must not go backwards (the capture stage
    /// guarantees it).
    pub fn process(&mut self, m: &PacketMeta, out: &mut Output) {
        if m.ts > self.now {
            self.now = m.ts;
        }
        self.wheel.start_at(m.ts);
        if m.kind == PacketKind::IcmpNotice {
            let (qkey, q_from_a) = FlowKey::new(m.src, m.sport, m.dst, m.dport, m.proto);
            self.icmp_error(qkey, q_from_a, m, out);
            return;
        }
        self.stats.packets += 1;
        let (key, from_a) = FlowKey::new(m.src, m.sport, m.dst, m.dport, m.proto);
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
            let restart = !expired && is_new_syn(m) && (f.orig.is_done() || f.resp.is_done());
            if !expired && !restart {
                on_packet(&self.cfg, &mut self.stats, f, m, from_a, out);
                if closes(m) {
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
    /// An ICMP error (its notice) that quotes a packet of a flow we track:
    /// a pending probe of that flow is rejected. The error packet itself is
    /// counted in its own ICMP flow.
    fn icmp_error(&mut self, key: FlowKey, quoted_from_a: bool, m: &PacketMeta, out: &mut Output) {
        let Some(i) = self.find(self.hasher.hash_one(key), &key) else {
            return;
        };
        let f = self.flows.get_mut(i);
        self.stats.icmp_matched += 1;
        // ICMP quotes its own family: v4 addresses mean ICMPv4.
        let rejects = if m.src.is_v4() {
            matches!(m.icmp_type, 3 | 11 | 12)
        } else {
            matches!(m.icmp_type, 1 | 3 | 4)
        };
        // Only an error about the originator's probe rejects it.
        if !rejects || quoted_from_a != f.orig_is_a() {
            return;
        }
        if let Pending::Probe { probe } = f.pending() {
            let since = f.first_ts;
            f.set_pending(Pending::None);
            let outcome = if since + self.cfg.attempt_timeout <= m.ts {
                Outcome::Unanswered
            } else {
                Outcome::Rejected
            };
            let t = if outcome == Outcome::Unanswered {
                since + self.cfg.attempt_timeout
            } else {
                m.ts
            };
            self.stats.attempts += 1;
            out.attempts
                .push(attempt(f, t, since, probe, outcome, false));
        }
    }

    /// Fires every timer due before `watermark` and returns this table's
    /// watermark: no attempt emitted after this call will have an earlier
    /// time.
    pub fn advance(&mut self, watermark: Micros, out: &mut Output) -> Micros {
        if watermark > self.now {
            self.now = watermark;
        }
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
        let cfg = &self.cfg;
        match f.pending() {
            Pending::Probe { probe } => {
                let since = f.first_ts;
                let t = at.unwrap_or(since + cfg.attempt_timeout);
                let t = t.min(since + cfg.attempt_timeout).max(self.wheel.horizon());
                self.stats.attempts += 1;
                out.attempts
                    .push(attempt(&f, t, since, probe, Outcome::Unanswered, false));
            }
            Pending::AwaitData { delay_us } => {
                let answered_at = answered_at(f.first_ts, delay_us);
                let t = at
                    .unwrap_or(answered_at + cfg.data_wait)
                    .min(answered_at + cfg.data_wait)
                    .max(self.wheel.horizon());
                self.stats.attempts += 1;
                out.attempts.push(attempt(
                    &f,
                    t,
                    f.first_ts,
                    ProbeKind::Syn,
                    Outcome::Answered,
                    false,
                ));
            }
            Pending::None => {}
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

fn new_flow(stats: &mut FlowStats, key: FlowKey, m: &PacketMeta, from_a: bool) -> Flow {
    stats.flows_created += 1;
    // Zeek flips a flow whose first packet is a SYN-ACK: the receiver is
    // the originator that we missed.
    let tcp = m.kind == PacketKind::Tcp;
    let synack = tcp && m.tcp_flags.is_syn_ack();
    if tcp && m.tcp_flags.is_syn_ack_or_rst() {
        stats.backscatter += 1;
    }
    let orig_is_a = if synack { !from_a } else { from_a };
    let mut history = History::default();
    if synack {
        history.flip();
    }
    let probe = if m.dst.is_group_or_unspecified() || m.src.is_group_or_unspecified() {
        None
    } else {
        probe_kind(m)
    };
    let mut f = Flow {
        key,
        first_ts: m.ts,
        last_ts: m.ts,
        orig_bytes: 0,
        resp_bytes: 0,
        orig_pkts: 0,
        resp_pkts: 0,
        next: wheel::UNLINKED,
        prev: wheel::UNLINKED,
        delay_us: 0,
        history,
        vlan: m.vlan,
        orig: Endpoint::Inactive,
        resp: Endpoint::Inactive,
        probe: ProbeKind::Syn,
        flags: if orig_is_a { ORIG_IS_A } else { 0 },
    };
    if let Some(probe) = probe {
        f.set_pending(Pending::Probe { probe });
    }
    f
}

/// One packet of a flow that exists: a timed-out probe resolves first, then
/// counters, history and states move, then the packet may resolve a probe.
fn on_packet(
    cfg: &FlowConfig,
    stats: &mut FlowStats,
    f: &mut Flow,
    m: &PacketMeta,
    from_a: bool,
    out: &mut Output,
) {
    let from_orig = from_a == f.orig_is_a();
    // A probe whose answer time ran out before this packet resolves first.
    resolve_due(cfg, stats, f, m.ts + 1, out);
    update(f, m, from_orig);
    if let Some(a) = resolve_on_packet(f, m, from_orig) {
        stats.attempts += 1;
        out.attempts.push(a);
    }
}

fn is_new_syn(m: &PacketMeta) -> bool {
    m.kind == PacketKind::Tcp && m.tcp_flags.is_opening_syn()
}

/// What the first packet of a flow says about it being a probe.
fn probe_kind(m: &PacketMeta) -> Option<ProbeKind> {
    match m.kind {
        // Backscatter (SYN-ACK, RST) is no probe.
        PacketKind::Tcp => match m.tcp_flags.probe_shape() {
            // Midstream data: a flow that started before we looked.
            Some(ProbeKind::Ack | ProbeKind::Maimon) if m.payload_len > 0 => None,
            shape => shape,
        },
        // From a service port to an ephemeral one is a reply whose request
        // we did not see (a multi-homed or anycast server answering from
        // another address), not a probe: scanners aim at service ports.
        PacketKind::Udp if m.sport < 1024 && m.dport >= 1024 => None,
        PacketKind::Udp => Some(ProbeKind::Udp),
        PacketKind::IcmpQuery => match (m.proto, m.icmp_type) {
            (proto::ICMP, 8) | (proto::ICMP6, 128) => Some(ProbeKind::IcmpEcho),
            (proto::ICMP, 13) => Some(ProbeKind::IcmpTimestamp),
            (proto::ICMP, 17) => Some(ProbeKind::IcmpAddrMask),
            _ => None,
        },
        PacketKind::IcmpError | PacketKind::IcmpNotice => None,
        PacketKind::Other => match m.proto {
            // A transport header cut short or a later fragment: not a probe.
            proto::TCP | proto::UDP | proto::ICMP | proto::ICMP6 => None,
            _ => Some(ProbeKind::IpProto),
        },
    }
}

/// Per-packet bookkeeping: counters, history letters, endpoint states.
fn update(f: &mut Flow, m: &PacketMeta, from_orig: bool) {
    f.last_ts = f.last_ts.max(m.ts);
    if from_orig {
        f.orig_pkts = f.orig_pkts.saturating_add(1);
        f.orig_bytes += u64::from(m.payload_len);
    } else {
        f.resp_pkts = f.resp_pkts.saturating_add(1);
        f.resp_bytes += u64::from(m.payload_len);
    }
    match m.kind {
        PacketKind::Tcp => {
            let fl = m.tcp_flags;
            let h = &mut f.history;
            if fl.syn() && fl.is_fin_or_rst() {
                h.add(b'Q', from_orig);
            }
            if fl.syn() && !fl.ack() {
                h.add(b'S', from_orig);
            }
            if fl.is_syn_ack() {
                h.add(b'H', from_orig);
            }
            if fl.is_bare_ack() && m.payload_len == 0 {
                h.add(b'A', from_orig);
            }
            if m.payload_len > 0 {
                h.add(b'D', from_orig);
            }
            if fl.fin() {
                h.add(b'F', from_orig);
            }
            if fl.rst() {
                h.add(b'R', from_orig);
            }
            let (me, peer) = if from_orig {
                (&mut f.orig, &mut f.resp)
            } else {
                (&mut f.resp, &mut f.orig)
            };
            state::tcp_step(me, peer, fl, m.payload_len);
        }
        _ => {
            let me = if from_orig { &mut f.orig } else { &mut f.resp };
            *me = Endpoint::Active;
        }
    }
}

/// Resolves a pending probe from a packet of its own flow.
fn resolve_on_packet(f: &mut Flow, m: &PacketMeta, from_orig: bool) -> Option<Attempt> {
    let since = f.first_ts;
    match f.pending() {
        Pending::None => None,
        Pending::Probe { probe } => {
            if from_orig {
                return None;
            }
            let outcome = match (probe, m.kind) {
                (ProbeKind::Syn, PacketKind::Tcp) => {
                    if m.tcp_flags.rst() {
                        Outcome::Rejected
                    } else if m.tcp_flags.is_syn_ack() {
                        f.set_pending(Pending::await_data(since, m.ts));
                        return None;
                    } else {
                        return None;
                    }
                }
                (p, PacketKind::Tcp) if p.is_stealth() => {
                    if m.tcp_flags.rst() {
                        Outcome::Rejected
                    } else {
                        // The target talks back normally: a flow that began
                        // before the capture, not a probe.
                        f.set_pending(Pending::None);
                        return None;
                    }
                }
                _ => Outcome::Answered,
            };
            f.set_pending(Pending::None);
            Some(attempt(f, m.ts, since, probe, outcome, false))
        }
        Pending::AwaitData { .. } => {
            let data = from_orig && m.payload_len > 0;
            let closed = m.kind == PacketKind::Tcp && m.tcp_flags.is_fin_or_rst();
            if data || closed {
                f.set_pending(Pending::None);
                Some(attempt(
                    f,
                    m.ts,
                    since,
                    ProbeKind::Syn,
                    Outcome::Answered,
                    data,
                ))
            } else {
                None
            }
        }
    }
}

fn attempt(
    f: &Flow,
    time: Micros,
    probe_ts: Micros,
    probe: ProbeKind,
    outcome: Outcome,
    data: bool,
) -> Attempt {
    let key = &f.key;
    let (src, sport, dst, dport) = if f.orig_is_a() {
        (key.a, key.pa, key.b, key.pb)
    } else {
        (key.b, key.pb, key.a, key.pa)
    };
    let (dport, sport) = match probe {
        // ICMP: the "port" of a probe is its type.
        ProbeKind::IcmpEcho | ProbeKind::IcmpTimestamp | ProbeKind::IcmpAddrMask => (sport, 0),
        ProbeKind::IpProto => (u16::from(key.proto), 0),
        _ => (dport, sport),
    };
    Attempt {
        time,
        src,
        dst,
        proto: key.proto,
        dport,
        sport,
        probe_ts,
        probe,
        outcome,
        data,
    }
}

/// Resolves the flow's pending attempt if its time ran out before `limit`
/// (exclusive): an unanswered probe at its attempt timeout, an answered SYN
/// whose originator sent no data at the end of the data wait.
fn resolve_due(
    cfg: &FlowConfig,
    stats: &mut FlowStats,
    f: &mut Flow,
    limit: Micros,
    out: &mut Output,
) {
    let since = f.first_ts;
    let (time, probe_ts, probe, outcome) = match f.pending() {
        Pending::Probe { probe } if since + cfg.attempt_timeout < limit => (
            since + cfg.attempt_timeout,
            since,
            probe,
            Outcome::Unanswered,
        ),
        Pending::AwaitData { delay_us } if answered_at(since, delay_us) + cfg.data_wait < limit => {
            (
                answered_at(since, delay_us) + cfg.data_wait,
                since,
                ProbeKind::Syn,
                Outcome::Answered,
            )
        }
        _ => return,
    };
    f.set_pending(Pending::None);
    stats.attempts += 1;
    out.attempts
        .push(attempt(f, time, probe_ts, probe, outcome, false));
}

/// Deadlines only move later on most packets (a flow stays in its wheel
/// slot and is moved on when the slot fires), but a FIN or RST brings a TCP
/// flow's end closer (the linger time): the flow is moved to its new slot at
/// once, so that the record is written when it is due.
#[inline]
fn closes(m: &PacketMeta) -> bool {
    m.kind == PacketKind::Tcp && m.tcp_flags.is_fin_or_rst()
}

fn idle_timeout(cfg: &FlowConfig, f: &Flow) -> Micros {
    match f.key.proto {
        proto::TCP => {
            if f.orig.is_done() && f.resp.is_done()
                || f.orig == Endpoint::Reset
                || f.resp == Endpoint::Reset
            {
                cfg.tcp_linger
            } else if f.orig.is_established()
                || f.resp.is_established()
                || f.orig == Endpoint::Partial
            {
                cfg.tcp_idle
            } else {
                cfg.tcp_attempt_idle
            }
        }
        proto::UDP => cfg.udp_idle,
        proto::ICMP | proto::ICMP6 => cfg.icmp_idle,
        _ => cfg.other_idle,
    }
}

fn idle_deadline(cfg: &FlowConfig, f: &Flow) -> Micros {
    f.last_ts.saturating_add(idle_timeout(cfg, f))
}

fn next_deadline(cfg: &FlowConfig, f: &Flow) -> Micros {
    let idle = idle_deadline(cfg, f);
    let attempt = match f.pending() {
        Pending::None => Micros::MAX,
        Pending::Probe { .. } => f.first_ts + cfg.attempt_timeout,
        Pending::AwaitData { delay_us } => answered_at(f.first_ts, delay_us) + cfg.data_wait,
    };
    idle.min(attempt)
}

fn record(f: &Flow) -> FlowRecord {
    let key = &f.key;
    let (orig_h, orig_p, resp_h, resp_p) = if f.orig_is_a() {
        (key.a, key.pa, key.b, key.pb)
    } else {
        (key.b, key.pb, key.a, key.pa)
    };
    FlowRecord {
        ts: f.first_ts,
        last_ts: f.last_ts,
        orig_h,
        orig_p,
        resp_h,
        resp_p,
        proto: key.proto,
        orig_pkts: u64::from(f.orig_pkts),
        orig_bytes: f.orig_bytes,
        resp_pkts: u64::from(f.resp_pkts),
        resp_bytes: f.resp_bytes,
        conn_state: conn_state(
            key.proto,
            f.orig,
            f.resp,
            f.history.as_bytes(),
            f.orig_bytes,
            f.resp_bytes,
        ),
        history: f.history,
        vlan: f.vlan,
    }
}

#[cfg(test)]
mod tests;
