//! The attempt state machine: whether a flow's first packet is a probe, and
//! how the probe's outcome becomes known (an answer or a reject from the
//! target, an ICMP error quoting it, the attempt timeout, or the flow's end),
//! producing the [`Attempt`] sent to the detectors.
//!
//! A flow's pending attempt is a [`Pending`] packed into its slab entry
//! (see [`crate::record::Flow`]). A SYN answered by a SYN-ACK waits a while
//! longer, for the originator's first byte, to tell a conversation from a
//! connect scan.

use crate::record::Flow;
use crate::{FlowConfig, FlowStats, Output};
use scanwatch_model::{
    print::mark, proto, Attempt, IcmpNotice, Micros, Outcome, PacketKind, PacketMeta, ProbeKind,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    None,
    /// Waiting for any answer. A probe is always a flow's first packet, so
    /// its time is the flow's `first_ts`.
    Probe {
        probe: ProbeKind,
    },
    /// Answered (SYN-ACK); waiting to see whether the originator sends data.
    /// The answer time is kept as a delay after the probe (at most 71
    /// minutes: a later one is held at that), so the state fits 8 bytes.
    AwaitData {
        delay_us: u32,
    },
    /// The probe's attempt timeout ran out and it was sent as unanswered,
    /// but the flow lives on (until its idle timeout). An answer that still
    /// comes (to a retransmitted SYN, a second pass of the same probe from
    /// the same port, or just late) is a second attempt of the same contact,
    /// answered: the door is reported open, not left "locked" because the
    /// first try timed out. A late reject adds nothing (the contact already
    /// counts as failed).
    TimedOut {
        probe: ProbeKind,
    },
}

impl Pending {
    pub(crate) fn await_data(probe_ts: Micros, answered_at: Micros) -> Pending {
        Pending::AwaitData {
            delay_us: u32::try_from((answered_at - probe_ts).max(0)).unwrap_or(u32::MAX),
        }
    }
}

#[inline]
pub(crate) fn answered_at(probe_ts: Micros, delay_us: u32) -> Micros {
    probe_ts + Micros::from(delay_us)
}

pub(crate) fn is_new_syn(m: &PacketMeta) -> bool {
    m.kind == PacketKind::Tcp && m.tcp_flags.is_opening_syn()
}

/// What the first packet of a flow says about it being a probe.
pub(crate) fn probe_kind(m: &PacketMeta) -> Option<ProbeKind> {
    match m.kind {
        // Backscatter (SYN-ACK, RST) is no probe.
        PacketKind::Tcp => match m.tcp_flags.probe_shape() {
            // Midstream data: a flow that started before we looked.
            Some(ProbeKind::Ack | ProbeKind::Maimon) if m.payload_len > 0 => None,
            shape => shape,
        },
        // From a service port to a higher one, shaped like the service's
        // reply, is a reply whose request we did not see (a multi-homed or
        // anycast server answering from another address, a reflection
        // attack's responses), not a probe. A scan sent from a service port
        // (`nmap -sU -g 53`: empty datagrams, or requests) still is.
        PacketKind::Udp if m.print.marks & mark::UDP_REPLY != 0 => None,
        PacketKind::Udp => Some(ProbeKind::Udp),
        PacketKind::IcmpQuery => match (m.proto(), m.icmp_type) {
            (proto::ICMP, 8) | (proto::ICMP6, 128) => Some(ProbeKind::IcmpEcho),
            (proto::ICMP, 13) => Some(ProbeKind::IcmpTimestamp),
            (proto::ICMP, 17) => Some(ProbeKind::IcmpAddrMask),
            _ => None,
        },
        PacketKind::IcmpError => None,
        PacketKind::Other => match m.proto() {
            // A transport header cut short or a later fragment: not a probe.
            proto::TCP | proto::UDP | proto::ICMP | proto::ICMP6 => None,
            _ => Some(ProbeKind::IpProto),
        },
    }
}

/// Resolves a pending probe from a packet of its own flow.
pub(crate) fn resolve_on_packet(f: &mut Flow, m: &PacketMeta, from_orig: bool) -> Option<Attempt> {
    let since = f.first_ts;
    match f.pending() {
        Pending::None => None,
        Pending::TimedOut { probe } => {
            if from_orig {
                return None;
            }
            match (probe, m.kind) {
                (ProbeKind::Syn, PacketKind::Tcp) if m.tcp_flags.is_syn_ack() => {
                    // As in time: wait for the originator's data or close,
                    // if the delay fits the state's 32 bits of µs (71
                    // minutes); later than that, answered now, no wait.
                    if u32::try_from(m.ts - since).is_ok() {
                        f.set_pending(Pending::await_data(since, m.ts));
                        None
                    } else {
                        f.set_pending(Pending::None);
                        Some(attempt(f, m.ts, since, probe, Outcome::Answered, false))
                    }
                }
                // A late RST (or anything else) for a TCP probe: it stays
                // as it was sent, unanswered.
                (_, PacketKind::Tcp) => {
                    f.set_pending(Pending::None);
                    None
                }
                (p, _) if p.is_stealth() || p == ProbeKind::Syn => {
                    f.set_pending(Pending::None);
                    None
                }
                (p, _) => {
                    f.set_pending(Pending::None);
                    Some(attempt(f, m.ts, since, p, Outcome::Answered, false))
                }
            }
        }
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

pub(crate) fn attempt(
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
        flow_id: scanwatch_model::ids::flow_id(key, f.first_ts),
        print: f.print,
        // The originator's bare ACK after the SYN-ACK: `A` in its history.
        handshake: probe == ProbeKind::Syn && f.history.as_bytes().contains(&b'A'),
        // Neither `F` nor `D` from the originator (upper case).
        abortive: probe == ProbeKind::Syn
            && !f.history.as_bytes().contains(&b'F')
            && !f.history.as_bytes().contains(&b'D'),
    }
}

/// Resolves the flow's pending attempt if its time ran out before `limit`
/// (exclusive): an unanswered probe at its attempt timeout, an answered SYN
/// whose originator sent no data at the end of the data wait.
pub(crate) fn resolve_due(
    cfg: &FlowConfig,
    stats: &mut FlowStats,
    f: &mut Flow,
    limit: Micros,
    out: &mut Output,
) {
    let since = f.first_ts;
    let (time, probe_ts, probe, outcome, next) = match f.pending() {
        Pending::Probe { probe } if since + cfg.attempt_timeout < limit => (
            since + cfg.attempt_timeout,
            since,
            probe,
            Outcome::Unanswered,
            Pending::TimedOut { probe },
        ),
        Pending::AwaitData { delay_us } if answered_at(since, delay_us) + cfg.data_wait < limit => {
            (
                answered_at(since, delay_us) + cfg.data_wait,
                since,
                ProbeKind::Syn,
                Outcome::Answered,
                Pending::None,
            )
        }
        _ => return,
    };
    f.set_pending(next);
    stats.attempts += 1;
    out.attempts
        .push(attempt(f, time, probe_ts, probe, outcome, false));
}

/// The notice `n` of an ICMP error about flow `f` (quoting a packet whose
/// sender was the key's `a` endpoint when `n.from_a`): the attempt it resolves,
/// if the flow's originator has a probe pending and the error is one that
/// refuses (ICMP unreachable, time exceeded, parameter problem; ICMPv6
/// unreachable, time exceeded, parameter problem). A probe whose timeout
/// passed before the error came stays unanswered.
pub(crate) fn on_icmp_error(cfg: &FlowConfig, f: &mut Flow, n: &IcmpNotice) -> Option<Attempt> {
    // ICMP quotes its own family: v4 addresses mean ICMPv4.
    let rejects = if n.key.a.is_v4() {
        matches!(n.icmp_type, 3 | 11 | 12)
    } else {
        matches!(n.icmp_type, 1 | 3 | 4)
    };
    // Only an error about the originator's probe rejects it.
    if !rejects || n.from_a != f.orig_is_a() {
        return None;
    }
    let Pending::Probe { probe } = f.pending() else {
        return None;
    };
    let since = f.first_ts;
    let outcome = if since + cfg.attempt_timeout <= n.ts {
        Outcome::Unanswered
    } else {
        Outcome::Rejected
    };
    // Too late to refuse it: unanswered, and an answer may still come (as
    // if the timer had fired first, which depends on its slot alone).
    f.set_pending(if outcome == Outcome::Unanswered {
        Pending::TimedOut { probe }
    } else {
        Pending::None
    });
    let t = if outcome == Outcome::Unanswered {
        since + cfg.attempt_timeout
    } else {
        n.ts
    };
    Some(attempt(f, t, since, probe, outcome, false))
}

/// The attempt still pending when flow `f` ends: a probe is unanswered and an
/// answered SYN had no data, at the end's time `at` (a packet's, for an
/// early end) or at its own deadline (`at` is `None` for a timer), never
/// after that deadline and never before the wheel's `horizon`.
pub(crate) fn resolve_at_end(
    cfg: &FlowConfig,
    f: &Flow,
    at: Option<Micros>,
    horizon: Micros,
) -> Option<Attempt> {
    match f.pending() {
        Pending::Probe { probe } => {
            let since = f.first_ts;
            let t = at.unwrap_or(since + cfg.attempt_timeout);
            let t = t.min(since + cfg.attempt_timeout).max(horizon);
            Some(attempt(f, t, since, probe, Outcome::Unanswered, false))
        }
        Pending::AwaitData { delay_us } => {
            let answered_at = answered_at(f.first_ts, delay_us);
            let t = at
                .unwrap_or(answered_at + cfg.data_wait)
                .min(answered_at + cfg.data_wait)
                .max(horizon);
            Some(attempt(
                f,
                t,
                f.first_ts,
                ProbeKind::Syn,
                Outcome::Answered,
                false,
            ))
        }
        Pending::None | Pending::TimedOut { .. } => None,
    }
}
