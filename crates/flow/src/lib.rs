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

mod state;
mod wheel;

use foldhash::fast::RandomState;
use hashbrown::HashMap;
use scanwatch_model::{
    proto, tcp_flags as tf, Attempt, FlowKey, FlowRecord, History, Micros, Outcome, PacketKind,
    PacketMeta, ProbeKind,
};
pub use state::{conn_state, Endpoint};
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
    /// Waiting for any answer.
    Probe {
        probe: ProbeKind,
        since: Micros,
    },
    /// Answered (SYN-ACK); waiting to see whether the originator sends data.
    /// The answer time is kept as a delay after the probe (it comes within
    /// the attempt timeout), so the state fits 16 bytes.
    AwaitData {
        probe_ts: Micros,
        delay_us: u32,
    },
}

impl Pending {
    fn await_data(probe_ts: Micros, answered_at: Micros) -> Pending {
        Pending::AwaitData {
            probe_ts,
            delay_us: u32::try_from((answered_at - probe_ts).max(0)).unwrap_or(u32::MAX),
        }
    }
}

#[inline]
fn answered_at(probe_ts: Micros, delay_us: u32) -> Micros {
    probe_ts + Micros::from(delay_us)
}

struct Flow {
    first_ts: Micros,
    last_ts: Micros,
    orig_pkts: u32,
    resp_pkts: u32,
    orig_bytes: u64,
    resp_bytes: u64,
    history: History,
    /// The originator is the key's `a` endpoint.
    orig_is_a: bool,
    orig: Endpoint,
    resp: Endpoint,
    vlan: u16,
    pending: Pending,
    /// The wheel slot holding this flow's live timer entry (its low 32 bits:
    /// slots are 262 ms, so they wrap after 35 years); entries found in
    /// other slots are stale and dropped when they fire.
    slot: u32,
}

/// The notice an ICMP error with a readable quote gives the worker of the
/// quoted flow (see [`PacketKind::IcmpNotice`]); `None` for anything else.
pub fn icmp_notice(m: &PacketMeta) -> Option<PacketMeta> {
    if m.kind != PacketKind::IcmpError || m.inner.is_none() {
        return None;
    }
    Some(PacketMeta {
        kind: PacketKind::IcmpNotice,
        ..*m
    })
}

/// The key a packet is dispatched to a worker by: its own flow's, or for a
/// notice the quoted flow's.
pub fn dispatch_key(m: &PacketMeta) -> FlowKey {
    if m.kind == PacketKind::IcmpNotice {
        if let Some(q) = m.inner {
            return FlowKey::new(q.src, q.sport, q.dst, q.dport, q.proto).0;
        }
    }
    FlowKey::new(m.src, m.sport, m.dst, m.dport, m.proto).0
}

/// Where a table puts what it produces; the worker drains it after each batch.
#[derive(Default)]
pub struct Output {
    pub attempts: Vec<Attempt>,
    pub flows: Vec<FlowRecord>,
}

pub struct FlowTable {
    cfg: FlowConfig,
    map: HashMap<FlowKey, Flow, RandomState>,
    wheel: Wheel,
    now: Micros,
    pub stats: FlowStats,
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> FlowTable {
        FlowTable {
            // Grown as flows arrive. The caps from `cap_for_bytes` keep a
            // full table at most 7/16 loaded: hashbrown doubles a table whose
            // free slots (tombstones left by removals) run out while more
            // than half full, and at the cap every new flow follows an
            // eviction, so a cap above 7/16 of the buckets would double the
            // table under churn (seen on a spoofed flood: +100 MB at 139k
            // flows per worker). At or below it, hashbrown rehashes in place.
            map: HashMap::with_capacity_and_hasher(
                cfg.max_flows.min(1 << 16),
                RandomState::default(),
            ),
            cfg,
            wheel: Wheel::default(),
            now: Micros::MIN,
            stats: FlowStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Approximate bytes held by the table (entries, control bytes, timers).
    pub fn memory_bytes(&self) -> usize {
        (self.map.capacity() * 8 / 7 + 1).next_power_of_two() * Self::BYTES_PER_BUCKET
            + self.wheel.len() * std::mem::size_of::<FlowKey>()
    }

    /// An entry and its control byte.
    pub const BYTES_PER_BUCKET: usize = Self::ENTRY_BYTES + 1;

    /// Most bytes the hash table reaches with a cap of `max_flows`, under
    /// churn at the cap (see `new`): the power-of-two bucket count of which
    /// the cap, plus one, is 7/16.
    pub fn table_bytes(max_flows: usize) -> usize {
        let want = max_flows.saturating_add(1).saturating_mul(16) / 7;
        want.max(1).next_power_of_two() * Self::BYTES_PER_BUCKET
    }

    /// The largest cap whose table stays within `bytes` under churn: one
    /// less than 7/16 of the largest power-of-two bucket count that fits.
    pub fn cap_for_bytes(bytes: usize) -> usize {
        let buckets = (bytes / Self::BYTES_PER_BUCKET).max(32);
        let pow2 = if buckets.is_power_of_two() {
            buckets
        } else {
            buckets.next_power_of_two() / 2
        };
        pow2 * 7 / 16 - 1
    }

    /// Size in bytes of one table entry (key, flow state), without the
    /// hash table's spare capacity.
    pub const ENTRY_BYTES: usize = std::mem::size_of::<(FlowKey, Flow)>();

    /// Handles one packet. `m.ts` must not go backwards (the capture stage
    /// guarantees it).
    pub fn process(&mut self, m: &PacketMeta, out: &mut Output) {
        if m.ts > self.now {
            self.now = m.ts;
        }
        self.wheel.start_at(m.ts);
        if m.kind == PacketKind::IcmpNotice {
            if let Some(q) = m.inner {
                let (qkey, q_from_a) = FlowKey::new(q.src, q.sport, q.dst, q.dport, q.proto);
                self.icmp_error(qkey, q_from_a, m, out);
            }
            return;
        }
        self.stats.packets += 1;
        let (key, from_a) = FlowKey::new(m.src, m.sport, m.dst, m.dport, m.proto);
        // Hot path: one lookup for a packet of a live flow.
        if let Some(f) = self.map.get_mut(&key) {
            // A flow whose idle deadline has passed (its timer slot has not
            // fired yet) ends here, before this packet, exactly as if the
            // timer had fired: the result must not depend on batch
            // boundaries. A new SYN on a closed flow starts a new one.
            let expired = idle_deadline(&self.cfg, key.proto, f) <= m.ts;
            let restart = !expired && is_new_syn(m) && (f.orig.is_done() || f.resp.is_done());
            if !expired && !restart {
                on_packet(&self.cfg, &mut self.stats, f, &key, m, from_a, out);
                closing_reschedule(&self.cfg, &mut self.wheel, f, &key, m);
                return;
            }
            self.end_flow(key, if expired { None } else { Some(m.ts) }, out);
        }
        if self.map.len() >= self.cfg.max_flows {
            self.evict_one(out);
        }
        let mut flow = self.new_flow(m, from_a);
        self.stats.flows_created += 1;
        flow.slot = self
            .wheel
            .schedule(key, next_deadline(&self.cfg, key.proto, &flow)) as u32;
        let f = self.map.entry(key).insert(flow).into_mut();
        on_packet(&self.cfg, &mut self.stats, f, &key, m, from_a, out);
        closing_reschedule(&self.cfg, &mut self.wheel, f, &key, m);
    }

    fn new_flow(&mut self, m: &PacketMeta, from_a: bool) -> Flow {
        // Zeek flips a flow whose first packet is a SYN-ACK: the receiver is
        // the originator that we missed.
        let synack =
            m.kind == PacketKind::Tcp && m.tcp_flags & (tf::SYN | tf::ACK) == (tf::SYN | tf::ACK);
        let rst_first = m.kind == PacketKind::Tcp && m.tcp_flags & tf::RST != 0;
        if synack || rst_first {
            self.stats.backscatter += 1;
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
        Flow {
            first_ts: m.ts,
            last_ts: m.ts,
            orig_pkts: 0,
            resp_pkts: 0,
            orig_bytes: 0,
            resp_bytes: 0,
            history,
            orig_is_a,
            orig: Endpoint::Inactive,
            resp: Endpoint::Inactive,
            vlan: m.vlan,
            pending: match probe {
                Some(p) => Pending::Probe {
                    probe: p,
                    since: m.ts,
                },
                None => Pending::None,
            },
            slot: 0,
        }
    }

    /// An ICMP error (its notice) that quotes a packet of a flow we track:
    /// a pending probe of that flow is rejected. The error packet itself is
    /// counted in its own ICMP flow.
    fn icmp_error(&mut self, key: FlowKey, quoted_from_a: bool, m: &PacketMeta, out: &mut Output) {
        let Some(f) = self.map.get_mut(&key) else {
            return;
        };
        self.stats.icmp_matched += 1;
        let rejects = match m.proto {
            proto::ICMP6 => matches!(m.icmp_type, 1 | 3 | 4),
            _ => matches!(m.icmp_type, 3 | 11 | 12),
        };
        // Only an error about the originator's probe rejects it.
        if !rejects || quoted_from_a != f.orig_is_a {
            return;
        }
        if let Pending::Probe { probe, since } = f.pending {
            f.pending = Pending::None;
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
                .push(attempt(&key, f.orig_is_a, t, since, probe, outcome, false));
        }
    }

    /// Fires every timer due before `watermark` and returns this table's
    /// watermark: no attempt emitted after this call will have an earlier
    /// time.
    pub fn advance(&mut self, watermark: Micros, out: &mut Output) -> Micros {
        if watermark > self.now {
            self.now = watermark;
        }
        while let Some((keys, slot)) = self.wheel.next_due(watermark) {
            for &key in &keys {
                self.fire(key, slot, out);
            }
            self.wheel.give_back(keys);
        }
        self.wheel.horizon().min(watermark)
    }

    fn fire(&mut self, key: FlowKey, slot: i64, out: &mut Output) {
        let cfg = &self.cfg;
        let slot_end = (slot + 1) << wheel::SLOT_SHIFT;
        let Some(f) = self.map.get_mut(&key) else {
            return;
        };
        if f.slot != slot as u32 {
            return; // a stale entry: the flow's live entry is elsewhere
        }
        let deadline = next_deadline(cfg, key.proto, f);
        if deadline >= slot_end {
            // Moved later since it was scheduled.
            f.slot = self.wheel.schedule(key, deadline) as u32;
            return;
        }
        // Resolve a pending attempt whose time has come.
        resolve_due(cfg, &mut self.stats, f, &key, slot_end, out);
        if idle_deadline(cfg, key.proto, f) < slot_end {
            self.end_flow(key, None, out);
        } else {
            let d = next_deadline(cfg, key.proto, f);
            f.slot = self.wheel.schedule(key, d) as u32;
        }
    }

    /// Ends a flow: resolves what it still waits for, writes its record.
    /// `at` is the time of the packet that forces an early end (a new SYN on a
    /// closed flow, or eviction); `None` for a timer.
    fn end_flow(&mut self, key: FlowKey, at: Option<Micros>, out: &mut Output) {
        let Some(f) = self.map.remove(&key) else {
            return;
        };
        let cfg = &self.cfg;
        match f.pending {
            Pending::Probe { probe, since } => {
                let t = at.unwrap_or(since + cfg.attempt_timeout);
                let t = t.min(since + cfg.attempt_timeout).max(self.wheel.horizon());
                self.stats.attempts += 1;
                out.attempts.push(attempt(
                    &key,
                    f.orig_is_a,
                    t,
                    since,
                    probe,
                    Outcome::Unanswered,
                    false,
                ));
            }
            Pending::AwaitData { probe_ts, delay_us } => {
                let answered_at = answered_at(probe_ts, delay_us);
                let t = at
                    .unwrap_or(answered_at + cfg.data_wait)
                    .min(answered_at + cfg.data_wait)
                    .max(self.wheel.horizon());
                self.stats.attempts += 1;
                out.attempts.push(attempt(
                    &key,
                    f.orig_is_a,
                    t,
                    probe_ts,
                    ProbeKind::Syn,
                    Outcome::Answered,
                    false,
                ));
            }
            Pending::None => {}
        }
        self.stats.flows_ended += 1;
        out.flows.push(record(&key, &f));
    }

    fn evict_one(&mut self, out: &mut Output) {
        while let Some(k) = self.wheel.pop_earliest() {
            if self.map.contains_key(&k) {
                self.stats.evicted += 1;
                let now = self.now;
                self.end_flow(k, Some(now), out);
                return;
            }
        }
        // No timers at all (cannot happen while flows exist): drop any one.
        if let Some(&k) = self.map.keys().next() {
            self.stats.evicted += 1;
            let now = self.now;
            self.end_flow(k, Some(now), out);
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
        let mut keys: Vec<FlowKey> = self.map.keys().copied().collect();
        keys.sort_unstable();
        for ks in keys.chunks(chunk.max(1)) {
            for &k in ks {
                self.end_flow(k, None, out);
            }
            take(out);
        }
    }
}

/// One packet of a flow that exists: a timed-out probe resolves first, then
/// counters, history and states move, then the packet may resolve a probe.
fn on_packet(
    cfg: &FlowConfig,
    stats: &mut FlowStats,
    f: &mut Flow,
    key: &FlowKey,
    m: &PacketMeta,
    from_a: bool,
    out: &mut Output,
) {
    let from_orig = from_a == f.orig_is_a;
    // A probe whose answer time ran out before this packet resolves first.
    resolve_due(cfg, stats, f, key, m.ts + 1, out);
    update(f, m, from_orig);
    if let Some(a) = resolve_on_packet(f, key, m, from_orig) {
        stats.attempts += 1;
        out.attempts.push(a);
    }
}

fn is_new_syn(m: &PacketMeta) -> bool {
    m.kind == PacketKind::Tcp && m.tcp_flags & (tf::SYN | tf::ACK | tf::RST) == tf::SYN
}

/// What the first packet of a flow says about it being a probe.
fn probe_kind(m: &PacketMeta) -> Option<ProbeKind> {
    match m.kind {
        PacketKind::Tcp => {
            let f = m.tcp_flags;
            let (syn, ack, rst, fin) = (
                f & tf::SYN != 0,
                f & tf::ACK != 0,
                f & tf::RST != 0,
                f & tf::FIN != 0,
            );
            if rst || (syn && ack) {
                None // backscatter
            } else if syn {
                Some(ProbeKind::Syn)
            } else if ack {
                if m.payload_len > 0 {
                    None // midstream data: a flow that started before we looked
                } else if fin {
                    Some(ProbeKind::Maimon)
                } else {
                    Some(ProbeKind::Ack)
                }
            } else if f & (tf::FIN | tf::PSH | tf::URG) == (tf::FIN | tf::PSH | tf::URG) {
                Some(ProbeKind::Xmas)
            } else if fin {
                Some(ProbeKind::Fin)
            } else if f & (tf::FIN | tf::PSH | tf::URG) == 0 {
                Some(ProbeKind::Null)
            } else {
                Some(ProbeKind::Xmas)
            }
        }
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
            let (syn, ack, rst, fin) = (
                fl & tf::SYN != 0,
                fl & tf::ACK != 0,
                fl & tf::RST != 0,
                fl & tf::FIN != 0,
            );
            if syn && (fin || rst) {
                h.add(b'Q', from_orig);
            }
            if syn && !ack {
                h.add(b'S', from_orig);
            }
            if syn && ack {
                h.add(b'H', from_orig);
            }
            if ack && !syn && !fin && !rst && m.payload_len == 0 {
                h.add(b'A', from_orig);
            }
            if m.payload_len > 0 {
                h.add(b'D', from_orig);
            }
            if fin {
                h.add(b'F', from_orig);
            }
            if rst {
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
fn resolve_on_packet(
    f: &mut Flow,
    key: &FlowKey,
    m: &PacketMeta,
    from_orig: bool,
) -> Option<Attempt> {
    match f.pending {
        Pending::None => None,
        Pending::Probe { probe, since } => {
            if from_orig {
                return None;
            }
            let outcome = match (probe, m.kind) {
                (ProbeKind::Syn, PacketKind::Tcp) => {
                    if m.tcp_flags & tf::RST != 0 {
                        Outcome::Rejected
                    } else if m.tcp_flags & (tf::SYN | tf::ACK) == (tf::SYN | tf::ACK) {
                        f.pending = Pending::await_data(since, m.ts);
                        return None;
                    } else {
                        return None;
                    }
                }
                (p, PacketKind::Tcp) if p.is_stealth() => {
                    if m.tcp_flags & tf::RST != 0 {
                        Outcome::Rejected
                    } else {
                        // The target talks back normally: a flow that began
                        // before the capture, not a probe.
                        f.pending = Pending::None;
                        return None;
                    }
                }
                _ => Outcome::Answered,
            };
            f.pending = Pending::None;
            Some(attempt(
                key,
                f.orig_is_a,
                m.ts,
                since,
                probe,
                outcome,
                false,
            ))
        }
        Pending::AwaitData { probe_ts, .. } => {
            let data = from_orig && m.payload_len > 0;
            let closed = m.kind == PacketKind::Tcp && m.tcp_flags & (tf::RST | tf::FIN) != 0;
            if data || closed {
                f.pending = Pending::None;
                Some(attempt(
                    key,
                    f.orig_is_a,
                    m.ts,
                    probe_ts,
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
    key: &FlowKey,
    orig_is_a: bool,
    time: Micros,
    probe_ts: Micros,
    probe: ProbeKind,
    outcome: Outcome,
    data: bool,
) -> Attempt {
    let (src, sport, dst, dport) = if orig_is_a {
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
    key: &FlowKey,
    limit: Micros,
    out: &mut Output,
) {
    let (time, probe_ts, probe, outcome) = match f.pending {
        Pending::Probe { probe, since } if since + cfg.attempt_timeout < limit => (
            since + cfg.attempt_timeout,
            since,
            probe,
            Outcome::Unanswered,
        ),
        Pending::AwaitData { probe_ts, delay_us }
            if answered_at(probe_ts, delay_us) + cfg.data_wait < limit =>
        {
            (
                answered_at(probe_ts, delay_us) + cfg.data_wait,
                probe_ts,
                ProbeKind::Syn,
                Outcome::Answered,
            )
        }
        _ => return,
    };
    f.pending = Pending::None;
    stats.attempts += 1;
    out.attempts.push(attempt(
        key,
        f.orig_is_a,
        time,
        probe_ts,
        probe,
        outcome,
        false,
    ));
}

/// Deadlines only move later on most packets (the wheel's lazy entries
/// handle that), but a FIN or RST brings a TCP flow's end closer (the
/// linger time): it gets a new, earlier entry so that the record is written
/// when it is due, not at the older, later deadline.
#[inline]
fn closing_reschedule(
    cfg: &FlowConfig,
    wheel: &mut Wheel,
    f: &mut Flow,
    key: &FlowKey,
    m: &PacketMeta,
) {
    if m.kind == PacketKind::Tcp && m.tcp_flags & (tf::FIN | tf::RST) != 0 {
        let d = next_deadline(cfg, key.proto, f);
        // Earlier than the live entry (slot numbers compared mod 2^32).
        if ((Wheel::slot_of(d) as u32).wrapping_sub(f.slot) as i32) < 0 {
            f.slot = wheel.schedule(*key, d) as u32;
        }
    }
}

fn idle_timeout(cfg: &FlowConfig, proto_: u8, f: &Flow) -> Micros {
    match proto_ {
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

fn idle_deadline(cfg: &FlowConfig, proto_: u8, f: &Flow) -> Micros {
    f.last_ts.saturating_add(idle_timeout(cfg, proto_, f))
}

fn next_deadline(cfg: &FlowConfig, proto_: u8, f: &Flow) -> Micros {
    let idle = idle_deadline(cfg, proto_, f);
    let attempt = match f.pending {
        Pending::None => Micros::MAX,
        Pending::Probe { since, .. } => since + cfg.attempt_timeout,
        Pending::AwaitData { probe_ts, delay_us } => {
            answered_at(probe_ts, delay_us) + cfg.data_wait
        }
    };
    idle.min(attempt)
}

fn record(key: &FlowKey, f: &Flow) -> FlowRecord {
    let (orig_h, orig_p, resp_h, resp_p) = if f.orig_is_a {
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
