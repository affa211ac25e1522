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
//!
//! The table's mechanics (slab, hash index, timer wheel, eviction, draining,
//! memory accounting) are in `table`; one flow's entry, its per-packet
//! bookkeeping and its record in `record`; the attempt state machine (is the
//! first packet a probe, and how its outcome becomes known) in `attempt`;
//! TCP endpoint states and Zeek's `conn_state` in `state`.

mod attempt;
mod record;
mod slab;
mod state;
mod table;
mod wheel;

use scanwatch_model::{Attempt, FlowRecord, Micros};
pub use state::{conn_state, Endpoint};
pub use table::FlowTable;
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
    /// Probes answered after their attempt timeout (each a second attempt
    /// of its contact, answered).
    pub late_answers: u64,
    /// SYNs (and ICMP queries) that came just after the answer to them
    /// (taken as the probe it answers; see `record::REORDERED_SYN`).
    pub reordered_syns: u64,
}

impl std::ops::AddAssign for FlowStats {
    /// Sums another table's counters into these (the pipeline's total).
    fn add_assign(&mut self, o: FlowStats) {
        let FlowStats {
            packets,
            flows_created,
            flows_ended,
            evicted,
            attempts,
            backscatter,
            icmp_matched,
            late_answers,
            reordered_syns,
        } = o;
        self.packets += packets;
        self.flows_created += flows_created;
        self.flows_ended += flows_ended;
        self.evicted += evicted;
        self.attempts += attempts;
        self.backscatter += backscatter;
        self.icmp_matched += icmp_matched;
        self.late_answers += late_answers;
        self.reordered_syns += reordered_syns;
    }
}

/// Where a table puts what it produces; the worker drains it after each batch.
#[derive(Default)]
pub struct Output {
    pub attempts: Vec<Attempt>,
    pub flows: Vec<FlowRecord>,
}

#[cfg(test)]
mod tests;
