//! One tracked flow: the slab entry ([`Flow`]), what a packet does to it
//! (counters, Zeek `history` letters, endpoint states), its deadlines, and
//! the [`FlowRecord`] it becomes when it ends.
//!
//! The entry also carries the flow's pending attempt (see
//! [`crate::attempt`]) packed into its flag byte, and the timer wheel's links.

use crate::attempt::{
    answered_at, attempt, is_new_syn, probe_kind, resolve_due, resolve_on_packet, Pending,
};
use crate::state::{self, conn_state, Endpoint};
use crate::wheel;
use crate::{FlowConfig, FlowStats, Output};
use scanwatch_model::{
    print::mark, proto, FlowKey, FlowRecord, History, Micros, Outcome, PacketKind, PacketMeta,
    ProbeKind, ProbePrint,
};

/// One tracked flow: its key, state and timer links, 120 bytes in the
/// slab. The pending probe, the direction and the slab's live mark share
/// one byte of flags (see the accessors).
#[derive(Clone, Copy)]
pub(crate) struct Flow {
    pub(crate) key: FlowKey,
    pub(crate) first_ts: Micros,
    pub(crate) last_ts: Micros,
    pub(crate) orig_bytes: u64,
    pub(crate) resp_bytes: u64,
    pub(crate) orig_pkts: u32,
    pub(crate) resp_pkts: u32,
    /// Timer-wheel links (slab indices or wheel sentinels; `UNLINKED` when
    /// in no list). A free slab entry chains the free list through `next`.
    pub(crate) next: u32,
    pub(crate) prev: u32,
    /// [`Pending::AwaitData`]: the answer's delay after the probe.
    pub(crate) delay_us: u32,
    pub(crate) history: History,
    pub(crate) vlan: u16,
    pub(crate) orig: Endpoint,
    pub(crate) resp: Endpoint,
    /// [`Pending::Probe`] and [`Pending::TimedOut`]: the probe's kind.
    pub(crate) probe: ProbeKind,
    /// The first packet's header facts, for tool attribution of its probe.
    pub(crate) print: ProbePrint,
    /// Bits 0-1: the pending state (0 none, 1 probe, 2 awaiting data, 3
    /// timed out);
    /// bit 2: the originator is the key's `a` endpoint; bit 3: live.
    pub(crate) flags: u8,
}

const PENDING_BITS: u8 = 0b11;
const ORIG_IS_A: u8 = 0b100;
const LIVE: u8 = 0b1000;

impl Flow {
    #[inline]
    pub(crate) fn pending(&self) -> Pending {
        match self.flags & PENDING_BITS {
            1 => Pending::Probe { probe: self.probe },
            2 => Pending::AwaitData {
                delay_us: self.delay_us,
            },
            3 => Pending::TimedOut { probe: self.probe },
            _ => Pending::None,
        }
    }

    #[inline]
    pub(crate) fn set_pending(&mut self, p: Pending) {
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
            Pending::TimedOut { probe } => {
                self.flags |= 3;
                self.probe = probe;
            }
        }
    }

    /// The originator is the key's `a` endpoint.
    #[inline]
    pub(crate) fn orig_is_a(&self) -> bool {
        self.flags & ORIG_IS_A != 0
    }

    #[inline]
    pub(crate) fn live(&self) -> bool {
        self.flags & LIVE != 0
    }

    #[inline]
    pub(crate) fn set_live(&mut self, live: bool) {
        if live {
            self.flags |= LIVE;
        } else {
            self.flags &= !LIVE;
        }
    }
}

/// How long after a SYN-ACK that began a flow its SYN may still come and be
/// taken as the probe it answers (see [`on_packet`]): clocks of two taps a
/// little apart, or one tick of a coarse clock. A real SYN with the same
/// four-tuple as a stray SYN-ACK within this time is no coincidence.
pub(crate) const REORDERED_SYN: Micros = 1_000_000;

pub(crate) fn new_flow(stats: &mut FlowStats, key: FlowKey, m: &PacketMeta, from_a: bool) -> Flow {
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
    let probe = if m.dst().is_group_or_unspecified() || m.src().is_group_or_unspecified() {
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
        print: m.print,
        flags: if orig_is_a { ORIG_IS_A } else { 0 },
    };
    if let Some(probe) = probe {
        f.set_pending(Pending::Probe { probe });
    }
    f
}

/// One packet of a flow that exists: a timed-out probe resolves first, then
/// counters, history and states move, then the packet may resolve a probe.
pub(crate) fn on_packet(
    cfg: &FlowConfig,
    stats: &mut FlowStats,
    f: &mut Flow,
    m: &PacketMeta,
    from_a: bool,
    out: &mut Output,
) {
    let from_orig = from_a == f.orig_is_a();
    // A flow that began with a SYN-ACK (flipped, counted as backscatter)
    // and whose originator now sends the very SYN it answers, soon after:
    // the two came out of order (two taps' captures merged with one clock
    // tick for both, or clocks a little apart). The SYN is the probe and
    // the SYN-ACK its answer, as if they had come in order; otherwise an
    // open door would vanish depending on how the inputs were named.
    let reordered_syn = from_orig
        && f.orig_pkts == 0
        && f.resp_pkts == 1
        && f.pending() == Pending::None
        && f.history.as_bytes() == b"^h"
        && is_new_syn(m)
        && m.ts - f.first_ts <= REORDERED_SYN;
    // The same for an ICMP query or a UDP request: a flow that began with
    // the reply (an ICMP reply type, or UDP shaped like its service's
    // reply: no probe, so its sender became the originator), then the
    // request from the other side soon after. The flow turns round (as
    // Zeek's `^`) and the request is the probe, answered.
    let began_with_reply = match m.kind {
        PacketKind::IcmpQuery => true,
        PacketKind::Udp => f.print.marks & mark::UDP_REPLY != 0,
        _ => false,
    };
    if began_with_reply
        && !from_orig
        && f.orig_pkts == 1
        && f.resp_pkts == 0
        && f.pending() == Pending::None
        && m.ts - f.first_ts <= REORDERED_SYN
    {
        if let Some(probe) = probe_kind(m)
            .filter(|_| !m.dst().is_group_or_unspecified() && !m.src().is_group_or_unspecified())
        {
            take_as_probe(f, m, probe, Outcome::Answered, stats, out);
            return;
        }
    }
    // And for a refusal: a flow that began with a RST (backscatter, its
    // sender the originator), then the SYN it refuses from the other side
    // soon after. The flow turns round and the SYN is the probe, rejected.
    if reordered_refusal(f, m, from_orig) {
        stats.backscatter = stats.backscatter.saturating_sub(1);
        take_as_probe(f, m, ProbeKind::Syn, Outcome::Rejected, stats, out);
        return;
    }
    // A probe whose answer time ran out before this packet resolves first.
    resolve_due(cfg, stats, f, m.ts + 1, out);
    let timed_out = matches!(f.pending(), Pending::TimedOut { .. });
    update(f, m, from_orig);
    if reordered_syn {
        stats.backscatter = stats.backscatter.saturating_sub(1);
        stats.reordered_syns += 1;
        f.print = m.print;
        // The wait for data runs from the SYN (up to 1 s after the answer
        // it came behind), so it never ends before the packet that began it.
        f.set_pending(Pending::await_data(f.first_ts, m.ts));
        return;
    }
    let a = resolve_on_packet(f, m, from_orig);
    if timed_out && (a.is_some() || matches!(f.pending(), Pending::AwaitData { .. })) {
        stats.late_answers += 1;
    }
    if let Some(a) = a {
        stats.attempts += 1;
        out.attempts.push(a);
    }
}

/// A SYN from the receiver of the RST that alone began flow `f`, within
/// [`REORDERED_SYN`] of it: the refusal and its probe came out of order.
/// (Not a new flow, though the RST closed the old one.)
pub(crate) fn reordered_refusal(f: &Flow, m: &PacketMeta, from_orig: bool) -> bool {
    !from_orig
        && f.orig_pkts == 1
        && f.resp_pkts == 0
        && f.pending() == Pending::None
        && f.history.as_bytes() == b"R"
        && is_new_syn(m)
        && m.ts - f.first_ts <= REORDERED_SYN
}

/// The request `m` came behind the one packet (its reply or refusal) that
/// began flow `f`: the flow turns round, `m` is its originator's first
/// packet and the probe, resolved as `outcome` at once.
fn take_as_probe(
    f: &mut Flow,
    m: &PacketMeta,
    probe: ProbeKind,
    outcome: Outcome,
    stats: &mut FlowStats,
    out: &mut Output,
) {
    turn_round(f);
    update(f, m, true);
    f.print = m.print;
    stats.reordered_syns += 1;
    stats.attempts += 1;
    out.attempts
        .push(attempt(f, m.ts, f.first_ts, probe, outcome, false));
}

/// Makes the responder the originator: counters, states and history
/// letters change sides, and the history starts with `^`.
fn turn_round(f: &mut Flow) {
    f.flags ^= ORIG_IS_A;
    std::mem::swap(&mut f.orig_pkts, &mut f.resp_pkts);
    std::mem::swap(&mut f.orig_bytes, &mut f.resp_bytes);
    std::mem::swap(&mut f.orig, &mut f.resp);
    f.history.flip();
}

/// Per-packet bookkeeping: counters, history letters, endpoint states.
pub(crate) fn update(f: &mut Flow, m: &PacketMeta, from_orig: bool) {
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

pub(crate) fn idle_timeout(cfg: &FlowConfig, f: &Flow) -> Micros {
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

pub(crate) fn idle_deadline(cfg: &FlowConfig, f: &Flow) -> Micros {
    f.last_ts.saturating_add(idle_timeout(cfg, f))
}

pub(crate) fn next_deadline(cfg: &FlowConfig, f: &Flow) -> Micros {
    let idle = idle_deadline(cfg, f);
    let attempt = match f.pending() {
        Pending::None | Pending::TimedOut { .. } => Micros::MAX,
        Pending::Probe { .. } => f.first_ts + cfg.attempt_timeout,
        Pending::AwaitData { delay_us } => answered_at(f.first_ts, delay_us) + cfg.data_wait,
    };
    idle.min(attempt)
}

pub(crate) fn record(f: &Flow) -> FlowRecord {
    let key = &f.key;
    FlowRecord {
        ts: f.first_ts,
        last_ts: f.last_ts,
        key: *key,
        orig_is_a: f.orig_is_a(),
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
