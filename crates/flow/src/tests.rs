//! Flow-table tests: packet sequences of real probe shapes, Zeek states,
//! attempt outcomes, watermarks, caps; proptests for the state machine.

use super::*;
use proptest::prelude::*;
use scanwatch_model::{
    proto, Addr, ConnState, IcmpNotice, Item, Outcome, PacketKind, PacketMeta, ProbeKind, Quoted,
    TcpFlags,
};

fn scanner() -> Addr {
    Addr::from_v4([198, 18, 0, 2])
}
fn target() -> Addr {
    Addr::from_v4([198, 19, 1, 10])
}

fn tcp(
    ts: Micros,
    from_scanner: bool,
    sport: u16,
    dport: u16,
    flags: TcpFlags,
    payload: u32,
) -> PacketMeta {
    let (src, dst, sp, dp) = if from_scanner {
        (scanner(), target(), sport, dport)
    } else {
        (target(), scanner(), dport, sport)
    };
    let mut m = PacketMeta {
        ts,
        payload_len: payload,
        kind: PacketKind::Tcp,
        tcp_flags: flags,
        ..PacketMeta::default()
    };
    m.set_tuple(src, sp, dst, dp, proto::TCP);
    m
}

/// A UDP datagram of `payload` bytes between the scanner's port `sport`
/// and the target's `dport`, from the scanner or (`from_scanner` false)
/// back to it.
fn udp(ts: Micros, from_scanner: bool, sport: u16, dport: u16, payload: u32) -> PacketMeta {
    let ends = ((scanner(), sport), (target(), dport));
    let (from, to) = if from_scanner { ends } else { (ends.1, ends.0) };
    PacketMeta {
        payload_len: payload,
        ..packet(ts, from, to, proto::UDP, PacketKind::Udp)
    }
}

/// A packet of `kind` from (`src`, `sport`) to (`dst`, `dport`).
fn packet(
    ts: Micros,
    (src, sport): (Addr, u16),
    (dst, dport): (Addr, u16),
    proto: u8,
    kind: PacketKind,
) -> PacketMeta {
    let mut m = PacketMeta {
        ts,
        kind,
        ..PacketMeta::default()
    };
    m.set_tuple(src, sport, dst, dport, proto);
    m
}

fn run(pkts: &[PacketMeta]) -> (Output, FlowTable) {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Output::default();
    for p in pkts {
        t.process(p, &mut out);
    }
    t.drain(&mut out);
    (out, t)
}

const S: TcpFlags = TcpFlags::SYN;
const SA: TcpFlags = TcpFlags::SYN.union(TcpFlags::ACK);
const A: TcpFlags = TcpFlags::ACK;
const RA: TcpFlags = TcpFlags::RST.union(TcpFlags::ACK);
const R: TcpFlags = TcpFlags::RST;
const FA: TcpFlags = TcpFlags::FIN.union(TcpFlags::ACK);
const PA: TcpFlags = TcpFlags::PSH.union(TcpFlags::ACK);

/// A table that has seen packets reports, at every watermark, what a
/// worker with no table reports for it: the workers' watermarks at one
/// input watermark are one value.
#[test]
fn a_tables_watermark_is_what_a_worker_without_one_reports() {
    let slot = 1i64 << wheel::SLOT_SHIFT;
    let t0 = 1_795_558_366 * 1_000_000;
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Output::default();
    t.process(&tcp(t0, true, 40000, 80, S, 0), &mut out);
    t.process(&tcp(t0 + 10, false, 40000, 80, SA, 0), &mut out);
    for w in [
        t0 + 11,
        t0 + slot - 1,
        t0 + slot,
        (t0 / slot + 2) * slot,
        (t0 / slot + 2) * slot + 1,
        t0 + 5 * slot + 17,
        t0 + 400_000_000,
    ] {
        let got = t.advance(w, &mut out);
        assert_eq!(got, FlowTable::watermark_for(w), "at {w}");
        assert!(got <= w && w - got < slot, "at {w}: {got}");
    }
    // The watermark of a slot's first microsecond is that microsecond.
    let b = (t0 / slot + 1) * slot;
    assert_eq!(FlowTable::watermark_for(b), b);
    assert_eq!(FlowTable::watermark_for(b - 1), b - slot);
}

#[test]
fn syn_to_closed_port_is_rejected_rej() {
    let (out, _) = run(&[
        tcp(0, true, 40000, 23, S, 0),
        tcp(100, false, 40000, 23, RA, 0),
    ]);
    assert_eq!(out.attempts.len(), 1);
    let a = out.attempts[0];
    assert_eq!(
        (a.outcome, a.probe, a.dport, a.time),
        (Outcome::Rejected, ProbeKind::Syn, 23, 100)
    );
    assert_eq!(a.src, scanner());
    assert_eq!(out.flows[0].conn_state, ConnState::REJ);
    assert_eq!(out.flows[0].history.as_str(), "Sr");
}

#[test]
fn syn_scan_open_port_is_answered_without_data_rsto() {
    let (out, _) = run(&[
        tcp(0, true, 40000, 22, S, 0),
        tcp(50, false, 40000, 22, SA, 0),
        tcp(60, true, 40000, 22, R, 0),
    ]);
    let a = out.attempts[0];
    assert_eq!((a.outcome, a.data, a.time), (Outcome::Answered, false, 60));
    assert!(a.is_probe_like());
    assert_eq!(out.flows[0].conn_state, ConnState::RSTO);
    assert_eq!(out.flows[0].history.as_str(), "ShR");
}

#[test]
fn real_conversation_is_a_success_sf() {
    let (out, _) = run(&[
        tcp(0, true, 40000, 80, S, 0),
        tcp(10, false, 40000, 80, SA, 0),
        tcp(20, true, 40000, 80, A, 0),
        tcp(30, true, 40000, 80, PA, 120),
        tcp(40, false, 40000, 80, PA, 900),
        tcp(50, true, 40000, 80, FA, 0),
        tcp(60, false, 40000, 80, FA, 0),
        tcp(70, true, 40000, 80, A, 0),
    ]);
    let a = out.attempts[0];
    assert_eq!((a.outcome, a.data), (Outcome::Answered, true));
    assert!(a.is_success());
    let f = out.flows[0];
    assert_eq!(f.conn_state, ConnState::SF);
    assert_eq!(f.history.as_str(), "ShADdFf");
    assert_eq!(
        (f.orig_pkts, f.resp_pkts, f.orig_bytes, f.resp_bytes),
        (5, 3, 120, 900)
    );
    assert_eq!(f.orig_h(), scanner());
}

#[test]
fn unanswered_syn_times_out_in_packet_time() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Output::default();
    t.process(&tcp(1_000_000, true, 40000, 3389, S, 0), &mut out);
    t.process(&tcp(2_000_000, true, 40000, 3389, S, 0), &mut out); // retransmission
    let wm = t.advance(5_900_000, &mut out);
    assert!(out.attempts.is_empty(), "not due yet");
    assert!(wm <= 5_900_000);
    t.advance(7_000_000, &mut out);
    assert_eq!(out.attempts.len(), 1);
    assert_eq!(out.attempts[0].outcome, Outcome::Unanswered);
    assert_eq!(out.attempts[0].time, 6_000_000);
    t.advance(20_000_000, &mut out);
    assert_eq!(out.flows.len(), 1);
    assert_eq!(out.flows[0].conn_state, ConnState::S0);
    assert_eq!(out.flows[0].orig_pkts, 2);
    assert!(t.is_empty());
}

/// A SYN unanswered past the attempt timeout, answered later (to a
/// retransmission, or a second pass from the same port): the timeout's
/// attempt stays unanswered and the answer is a second attempt of the same
/// contact, answered (the door is open), after the usual wait for data.
#[test]
fn a_syn_answered_after_its_timeout_is_a_second_attempt_answered() {
    let (out, _) = run(&[
        tcp(0, true, 40000, 22, S, 0),
        tcp(3_000_000, true, 40000, 22, S, 0),
        tcp(7_000_000, true, 40000, 22, S, 0),
        tcp(7_000_100, false, 40000, 22, SA, 0),
        tcp(7_000_200, true, 40000, 22, R, 0),
    ]);
    let got: Vec<_> = out
        .attempts
        .iter()
        .map(|a| (a.time, a.probe_ts, a.outcome, a.data, a.dport))
        .collect();
    assert_eq!(
        got,
        vec![
            (5_000_000, 0, Outcome::Unanswered, false, 22),
            (7_000_200, 0, Outcome::Answered, false, 22),
        ]
    );
    assert!(out.attempts[1].is_probe_like());
    assert_eq!(out.flows.len(), 1);
    assert_eq!(out.flows[0].history.as_str(), "ShR");
    let (_, t) = run(&[
        tcp(0, true, 40000, 22, S, 0),
        tcp(7_000_000, true, 40000, 22, S, 0),
        tcp(7_000_100, false, 40000, 22, SA, 0),
        tcp(7_000_200, true, 40000, 22, R, 0),
    ]);
    assert_eq!(t.stats.late_answers, 1);
}

/// The late SYN-ACK of a conversation: the second attempt carries the data.
/// A SYN-ACK merged ahead of its SYN (two taps, one clock tick; or the
/// reply stamped a little early): the SYN is still the probe, answered.
#[test]
fn a_syn_that_comes_just_after_its_syn_ack_is_the_probe_it_answers() {
    for gap in [0, 1_000, 900_000] {
        let (out, t) = run(&[
            tcp(5_000_000, false, 40000, 22, SA, 0),
            tcp(5_000_000 + gap, true, 40000, 22, S, 0),
            tcp(5_000_000 + gap + 10, true, 40000, 22, R, 0),
        ]);
        let got: Vec<_> = out
            .attempts
            .iter()
            .map(|a| (a.outcome, a.data, a.src, a.dport, a.probe))
            .collect();
        assert_eq!(
            got,
            vec![(Outcome::Answered, false, scanner(), 22, ProbeKind::Syn)],
            "gap {gap}"
        );
        assert_eq!((t.stats.backscatter, t.stats.reordered_syns), (0, 1));
        assert_eq!(out.flows[0].orig_h(), scanner());
    }
    // Later than that, or after other packets, it is not taken for one.
    let (out, t) = run(&[
        tcp(0, false, 40000, 22, SA, 0),
        tcp(2_000_000, true, 40000, 22, S, 0),
    ]);
    assert!(out.attempts.iter().all(|a| a.outcome != Outcome::Answered));
    assert_eq!((t.stats.backscatter, t.stats.reordered_syns), (1, 0));
}

/// An echo reply merged ahead of its request (same clock tick): the
/// request is the probe, answered, and the flow turns round.
#[test]
fn an_echo_request_just_after_its_reply_is_the_probe_it_answers() {
    let echo = |ts, request: bool| {
        let (from, to, ty) = if request {
            ((scanner(), 8), (target(), 0), 8)
        } else {
            ((target(), 0), (scanner(), 8), 0)
        };
        PacketMeta {
            icmp_type: ty,
            payload_len: 56,
            ..packet(ts, from, to, proto::ICMP, PacketKind::IcmpQuery)
        }
    };
    let (out, t) = run(&[echo(1_000, false), echo(1_000, true)]);
    let got: Vec<_> = out
        .attempts
        .iter()
        .map(|a| (a.src, a.dst, a.dport, a.probe, a.outcome))
        .collect();
    assert_eq!(
        got,
        vec![(
            scanner(),
            target(),
            8,
            ProbeKind::IcmpEcho,
            Outcome::Answered
        )]
    );
    assert_eq!(t.stats.reordered_syns, 1);
    let f = out.flows[0];
    assert_eq!(f.orig_h(), scanner());
    assert_eq!((f.orig_pkts, f.resp_pkts), (1, 1));
    assert!(
        f.history.as_str().starts_with('^'),
        "{}",
        f.history.as_str()
    );
    // In order, nothing turns round.
    let (out, t) = run(&[echo(1_000, true), echo(1_100, false)]);
    assert_eq!(out.attempts.len(), 1);
    assert_eq!(out.attempts[0].outcome, Outcome::Answered);
    assert_eq!(t.stats.reordered_syns, 0);
}

/// A reply-shaped UDP datagram merged ahead of its request: the request
/// is the probe, answered.
#[test]
fn a_udp_request_just_after_its_reply_shaped_answer_is_the_probe() {
    let mut reply = udp(2_000, false, 40000, 161, 60);
    reply.print.marks |= scanwatch_model::print::mark::UDP_REPLY;
    let request = udp(2_000, true, 40000, 161, 40);
    let (out, t) = run(&[reply, request]);
    let got: Vec<_> = out
        .attempts
        .iter()
        .map(|a| (a.src, a.dport, a.probe, a.outcome))
        .collect();
    assert_eq!(
        got,
        vec![(scanner(), 161, ProbeKind::Udp, Outcome::Answered)]
    );
    assert_eq!(t.stats.reordered_syns, 1);
    assert_eq!(out.flows[0].orig_h(), scanner());
}

/// A RST merged ahead of the SYN it refuses: the SYN is the probe,
/// rejected, not a backscatter flow and a lost probe.
#[test]
fn a_syn_just_after_the_rst_refusing_it_is_the_probe_rejected() {
    let (out, t) = run(&[
        tcp(3_000, false, 40000, 23, RA, 0),
        tcp(3_000, true, 40000, 23, S, 0),
    ]);
    let got: Vec<_> = out
        .attempts
        .iter()
        .map(|a| (a.src, a.dport, a.probe, a.outcome))
        .collect();
    assert_eq!(
        got,
        vec![(scanner(), 23, ProbeKind::Syn, Outcome::Rejected)]
    );
    assert_eq!((t.stats.backscatter, t.stats.reordered_syns), (0, 1));
    let f = out.flows[0];
    assert_eq!(f.orig_h(), scanner());
    assert_eq!((f.orig_pkts, f.resp_pkts), (1, 1));
}

#[test]
fn a_late_answer_that_becomes_a_conversation_is_a_success() {
    let (out, _) = run(&[
        tcp(0, true, 40000, 80, S, 0),
        tcp(7_000_000, true, 40000, 80, S, 0),
        tcp(7_000_100, false, 40000, 80, SA, 0),
        tcp(7_000_200, true, 40000, 80, A, 0),
        tcp(7_000_300, true, 40000, 80, PA, 100),
    ]);
    let got: Vec<_> = out.attempts.iter().map(|a| (a.outcome, a.data)).collect();
    assert_eq!(
        got,
        vec![(Outcome::Unanswered, false), (Outcome::Answered, true)]
    );
    assert!(out.attempts[1].is_success());
}

/// A late RST adds nothing: the contact already counts as failed.
#[test]
fn a_late_reject_leaves_the_probe_unanswered() {
    let (out, _) = run(&[
        tcp(0, true, 40000, 23, S, 0),
        tcp(6_000_000, false, 40000, 23, RA, 0),
        tcp(8_000_000, false, 40000, 23, SA, 0),
    ]);
    let got: Vec<_> = out.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(got, vec![Outcome::Unanswered]);
}

/// A UDP reply after the timeout (a retry answered): answered too.
#[test]
fn a_udp_reply_after_the_timeout_is_a_second_attempt_answered() {
    let probe = |ts| udp(ts, true, 33333, 161, 0);
    let reply = udp(6_000_100, false, 33333, 161, 40);
    let (out, _) = run(&[probe(0), probe(6_000_000), reply]);
    let got: Vec<_> = out
        .attempts
        .iter()
        .map(|a| (a.time, a.outcome, a.probe))
        .collect();
    assert_eq!(
        got,
        vec![
            (5_000_000, Outcome::Unanswered, ProbeKind::Udp),
            (6_000_100, Outcome::Answered, ProbeKind::Udp),
        ]
    );
    // One answer, one second attempt: a second reply adds nothing.
    let (out2, _) = run(&[probe(0), probe(6_000_000), reply, {
        let mut r = reply;
        r.ts = 6_000_200;
        r
    }]);
    assert_eq!(out2.attempts.len(), 2);
}

/// An ICMP refusal that comes after the probe's timeout (but before its
/// timer's slot fired) leaves the probe unanswered, and a later answer
/// still counts: as it does when the timer fired first.
#[test]
fn a_late_refusal_leaves_room_for_a_later_answer_whatever_the_timer_slot() {
    let probe = udp(0, true, 33333, 161, 0);
    let quoted = Quoted {
        src: scanner(),
        dst: target(),
        sport: 33333,
        dport: 161,
        proto: proto::UDP,
    };
    for err_at in [5_010_000, 5_600_000] {
        let err = PacketMeta {
            icmp_type: 3,
            icmp_code: 3,
            ..packet(
                err_at,
                (target(), 3),
                (scanner(), 3),
                proto::ICMP,
                PacketKind::IcmpError,
            )
        };
        let notice = IcmpNotice::new(&err, &quoted);
        let reply = udp(6_000_100, false, 33333, 161, 40);
        let mut t = FlowTable::new(FlowConfig::default());
        let mut out = Output::default();
        for item in [
            Item::Packet(probe),
            Item::Packet(err),
            Item::Notice(notice),
            Item::Packet(reply),
        ] {
            t.handle(&item, &mut out);
        }
        t.drain(&mut out);
        let got: Vec<_> = out.attempts.iter().map(|a| (a.time, a.outcome)).collect();
        assert_eq!(
            got,
            vec![
                (5_000_000, Outcome::Unanswered),
                (6_000_100, Outcome::Answered)
            ],
            "error at {err_at}"
        );
    }
}

/// An answer more than the pending state's 71 minutes after the probe
/// (a flow kept alive by retransmissions) is answered at once, at its own
/// time, not at a delay cut to 32 bits.
#[test]
fn a_very_late_answer_is_dated_at_the_answer() {
    let mut pkts: Vec<PacketMeta> = (0..500)
        .map(|i| tcp(i * 9_000_000, true, 40000, 22, S, 0))
        .collect();
    pkts.push(tcp(4_500_000_000, false, 40000, 22, SA, 0));
    let (out, _) = run(&pkts);
    let answered: Vec<_> = out
        .attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Answered)
        .map(|a| a.time)
        .collect();
    assert_eq!(answered, vec![4_500_000_000]);
}

/// A SYN that came 0.9 s behind its SYN-ACK, with a data wait shorter
/// than that: the wait runs from the SYN, so the attempt is never dated
/// before the packet that made it (nor below a watermark already given).
#[test]
fn a_short_data_wait_starts_at_the_syn_that_came_behind_its_answer() {
    let cfg = FlowConfig {
        data_wait: 200_000,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::new(cfg);
    let mut out = Output::default();
    t.process(&tcp(0, false, 40000, 22, SA, 0), &mut out);
    let wm = t.advance(800_000, &mut out);
    t.process(&tcp(900_000, true, 40000, 22, S, 0), &mut out);
    t.advance(5_000_000, &mut out);
    let times: Vec<_> = out.attempts.iter().map(|a| (a.time, a.outcome)).collect();
    assert_eq!(times, vec![(1_100_000, Outcome::Answered)]);
    assert!(times[0].0 >= wm);
}

#[test]
fn udp_probe_rejected_by_icmp_port_unreachable() {
    let probe = packet(
        0,
        (scanner(), 33333),
        (target(), 161),
        proto::UDP,
        PacketKind::Udp,
    );
    let err = PacketMeta {
        icmp_type: 3,
        icmp_code: 3,
        ..packet(
            300,
            (target(), 3),
            (scanner(), 3),
            proto::ICMP,
            PacketKind::IcmpError,
        )
    };
    let quoted = Quoted {
        src: scanner(),
        dst: target(),
        sport: 33333,
        dport: 161,
        proto: proto::UDP,
    };
    // The capture stage sends the error (to its own flow) and its notice
    // (to the quoted flow's worker); here one table gets both.
    let notice = IcmpNotice::new(&err, &quoted);
    assert_eq!(notice.key, probe.key);
    assert_eq!(notice.from_a, probe.from_a);
    assert_ne!(Item::Notice(notice).key(), &err.key);
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Output::default();
    for item in [Item::Packet(probe), Item::Packet(err), Item::Notice(notice)] {
        t.handle(&item, &mut out);
    }
    t.drain(&mut out);
    assert_eq!(out.attempts.len(), 1);
    assert_eq!(out.attempts[0].outcome, Outcome::Rejected);
    assert_eq!(out.attempts[0].dport, 161);
    assert_eq!(
        out.flows.len(),
        2,
        "the UDP probe's flow and the ICMP error's own"
    );
    let udp = out.flows.iter().find(|f| f.proto() == proto::UDP).unwrap();
    let icmp = out.flows.iter().find(|f| f.proto() == proto::ICMP).unwrap();
    assert_eq!((udp.orig_pkts, udp.resp_pkts), (1, 0));
    assert_eq!(icmp.orig_pkts + icmp.resp_pkts, 1);
    assert_eq!(udp.conn_state, ConnState::S0);
    assert_eq!(t.stats.icmp_matched, 1);
    assert_eq!(t.stats.packets, 2, "the notice is not a packet");
    // Without the notice the probe is not rejected: it times out.
    let (out, _) = run(&[probe, err]);
    assert_eq!(out.attempts[0].outcome, Outcome::Unanswered);
}

#[test]
fn stealth_probes() {
    // FIN to a closed port: RST back.
    let (out, _) = run(&[
        tcp(0, true, 1, 25, TcpFlags::FIN, 0),
        tcp(5, false, 1, 25, RA, 0),
    ]);
    assert_eq!(
        (out.attempts[0].probe, out.attempts[0].outcome),
        (ProbeKind::Fin, Outcome::Rejected)
    );
    // NULL to an open port: silence.
    let (out, _) = run(&[tcp(0, true, 1, 80, TcpFlags::NONE, 0)]);
    assert_eq!(
        (out.attempts[0].probe, out.attempts[0].outcome),
        (ProbeKind::Null, Outcome::Unanswered)
    );
    // Xmas and ACK shapes.
    let (out, _) = run(&[tcp(
        0,
        true,
        1,
        80,
        TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG,
        0,
    )]);
    assert_eq!(out.attempts[0].probe, ProbeKind::Xmas);
    let (out, _) = run(&[tcp(0, true, 1, 80, A, 0), tcp(9, false, 1, 80, R, 0)]);
    assert_eq!(
        (out.attempts[0].probe, out.attempts[0].outcome),
        (ProbeKind::Ack, Outcome::Rejected)
    );
}

#[test]
fn midstream_flow_is_not_a_probe() {
    let (out, _) = run(&[
        tcp(0, true, 5000, 443, PA, 500),
        tcp(10, false, 5000, 443, A, 0),
    ]);
    assert!(out.attempts.is_empty());
    assert_eq!(out.flows[0].conn_state, ConnState::OTH);
    // A bare ACK answered by ACK (not RST) is a flow we joined late.
    let (out, _) = run(&[
        tcp(0, true, 5000, 443, A, 0),
        tcp(10, false, 5000, 443, PA, 100),
    ]);
    assert!(out.attempts.is_empty());
}

#[test]
fn udp_reply_from_a_service_port_is_not_a_probe() {
    // Decode marks a reply-shaped datagram (see scanwatch_decode's
    // `udp_reply_shaped`, tested on real bytes there).
    let mut reply = PacketMeta {
        payload_len: 100,
        ..packet(
            0,
            (target(), 53),
            (scanner(), 41234),
            proto::UDP,
            PacketKind::Udp,
        )
    };
    reply.print.marks |= scanwatch_model::print::mark::UDP_REPLY;
    let (out, _) = run(&[reply]);
    assert!(out.attempts.is_empty());
    // A probe to a service port from a low source port still is.
    let mut probe = reply;
    probe.set_tuple(target(), 53, scanner(), 161, proto::UDP);
    probe.print.marks = 0;
    let (out, _) = run(&[probe]);
    assert_eq!(out.attempts.len(), 1);
    // So is one from port 53 to a high port that is not reply-shaped
    // (`nmap -sU -g 53` to 11211): the scan is seen.
    let mut g53 = reply;
    g53.print.marks = 0;
    let (out, _) = run(&[g53]);
    assert_eq!(out.attempts.len(), 1);
    assert_eq!(out.attempts[0].dport, 41234);
}

#[test]
fn synack_first_is_backscatter_and_flipped() {
    let (out, t) = run(&[
        tcp(0, false, 40000, 80, SA, 0),
        tcp(10, true, 40000, 80, R, 0),
    ]);
    assert!(out.attempts.is_empty());
    assert_eq!(t.stats.backscatter, 1);
    let f = out.flows[0];
    assert_eq!(
        f.orig_h(),
        scanner(),
        "the receiver of the SYN-ACK is the originator"
    );
    assert_eq!(f.history.as_str(), "^hR");
}

#[test]
fn new_syn_after_reset_starts_a_new_flow() {
    let (out, _) = run(&[
        tcp(0, true, 40000, 23, S, 0),
        tcp(1, false, 40000, 23, RA, 0),
        tcp(500_000, true, 40000, 23, S, 0),
        tcp(500_001, false, 40000, 23, RA, 0),
    ]);
    assert_eq!(out.flows.len(), 2);
    assert_eq!(out.attempts.len(), 2);
}

#[test]
fn table_cap_evicts_and_counts() {
    let cfg = FlowConfig {
        max_flows: 10,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::new(cfg);
    let mut out = Output::default();
    for i in 0..100u16 {
        t.process(&tcp(i64::from(i), true, 40000, i + 1, S, 0), &mut out);
    }
    assert!(t.len() <= 10);
    assert_eq!(t.stats.evicted, 90);
    t.drain(&mut out);
    assert_eq!(out.flows.len(), 100);
    assert_eq!(out.attempts.len(), 100);
}

fn arb_packet() -> impl Strategy<Value = (u8, bool, u16, u8, u32)> {
    (
        0u8..50,
        any::<bool>(),
        20u16..26,
        any::<u8>(),
        prop_oneof![Just(0u32), 1u32..1500],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the packets, every packet lands in exactly one flow record,
    /// every probe resolves exactly once, and where the batches end does
    /// not change what comes out.
    #[test]
    fn conservation_and_batch_independence(
        steps in prop::collection::vec(arb_packet(), 1..200),
        cuts in prop::collection::vec(any::<bool>(), 200),
    ) {
        let mut ts = 0i64;
        let pkts: Vec<PacketMeta> = steps.iter().map(|&(dt, dir, port, flags, pl)| {
            ts += i64::from(dt) * 100_000;
            tcp(ts, dir, 40000, port, TcpFlags::from_bits(flags), pl)
        }).collect();
        let mut results = Vec::new();
        for with_cuts in [false, true] {
            let mut t = FlowTable::new(FlowConfig::default());
            let mut out = Output::default();
            let mut wm_promise = i64::MIN;
            for (i, p) in pkts.iter().enumerate() {
                let before = out.attempts.len();
                t.process(p, &mut out);
                for a in &out.attempts[before..] {
                    prop_assert!(a.time >= wm_promise, "attempt at {} before watermark {}", a.time, wm_promise);
                }
                if with_cuts && cuts[i] {
                    let before = out.attempts.len();
                    let wm = t.advance(p.ts, &mut out);
                    for a in &out.attempts[before..] {
                        prop_assert!(a.time >= wm_promise);
                    }
                    prop_assert!(wm >= wm_promise);
                    wm_promise = wm;
                }
            }
            t.drain(&mut out);
            let pk: u64 = out.flows.iter().map(|f| f.orig_pkts + f.resp_pkts).sum();
            prop_assert_eq!(pk, pkts.len() as u64);
            let mut a = out.attempts.clone();
            a.sort();
            let mut f: Vec<_> = out.flows.iter().map(|r| (r.ts, r.orig_p(), r.resp_p(), r.orig_pkts, r.resp_pkts, r.conn_state.as_str(), r.history.as_str().to_string())).collect();
            f.sort();
            results.push((a, f));
        }
        prop_assert_eq!(&results[0], &results[1]);
    }
}

#[test]
fn rejected_probe_is_written_after_the_linger_time_not_the_attempt_timeout() {
    // The SYN schedules the flow at its attempt deadline (5 s); the RST
    // brings its end to 2 s of linger. The record must come out once the
    // clock passes that, without waiting for the older, later timer.
    let t0 = 1_700_000_000_000_000;
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Output::default();
    t.process(&tcp(t0, true, 40000, 23, S, 0), &mut out);
    t.process(&tcp(t0 + 100, false, 40000, 23, RA, 0), &mut out);
    t.advance(t0 + 1_500_000, &mut out);
    assert!(out.flows.is_empty(), "still lingering at 1.5 s");
    t.advance(t0 + 2_600_000, &mut out);
    assert_eq!(out.flows.len(), 1, "written between 2 s and 2.6 s");
    assert_eq!(out.flows[0].conn_state, ConnState::REJ);
}

#[test]
fn a_tracked_flow_costs_at_most_136_bytes_with_its_index_and_timer() {
    // A slab entry (key, state and its timer links) and an index bucket
    // (control byte and u32) at the emptiest the index gets (7/16 full,
    // just after it doubles, or under churn at the cap): the cap arithmetic
    // of `--max-memory` and the README's per-flow figures rest on this.
    // 120 since probes carry their header facts (`ProbePrint`, 6 bytes,
    // 8 with alignment) for tool attribution.
    assert_eq!(FlowTable::ENTRY_BYTES, 120);
    let index_per_flow = FlowTable::INDEX_BUCKET_BYTES as f64 * 16.0 / 7.0;
    assert!(FlowTable::ENTRY_BYTES as f64 + index_per_flow <= 136.0);
}

#[test]
fn a_million_flows_take_at_most_136_bytes_each() {
    // One table holding 1 M concurrent flows (established TCP sessions to
    // distinct ports of distinct hosts), measured, not computed: slab
    // chunks, index buckets, wheel.
    let mut t = FlowTable::new(FlowConfig {
        max_flows: 2_000_000,
        ..FlowConfig::default()
    });
    let mut out = Output::default();
    let t0 = 1_700_000_000_000_000;
    let n = 1_000_000u32;
    for k in 0..n {
        let mut p = tcp(
            t0 + i64::from(k),
            true,
            40000,
            1 + (k % 60_000) as u16,
            S,
            0,
        );
        p.set_tuple(
            Addr::from_v4([10, (k >> 16) as u8, (k >> 8) as u8, k as u8]),
            40000,
            target(),
            1 + (k % 60_000) as u16,
            proto::TCP,
        );
        t.process(&p, &mut out);
    }
    assert_eq!(t.len(), n as usize);
    let per_flow = t.memory_bytes() as f64 / f64::from(n);
    assert!(per_flow <= 136.0, "{per_flow:.1} bytes per flow");
}

#[test]
fn the_cap_for_a_budget_fits_it_and_uses_most_of_it() {
    for mib in [1usize, 16, 100, 256, 1000, 4096] {
        let bytes = mib << 20;
        let cap = FlowTable::cap_for_bytes(bytes, 72);
        let used = FlowTable::table_bytes(cap) + cap * 72;
        assert!(used <= bytes, "{mib} MiB: cap {cap} needs {used}");
        let next = FlowTable::table_bytes(cap + 1) + (cap + 1) * 72;
        assert!(next > bytes, "{mib} MiB: cap {cap} is not the largest");
    }
}

#[test]
fn slab_entries_are_reused_and_their_timers_follow_the_new_flow() {
    // Many short flows through a table capped at 64: slab entries are
    // freed (by eviction, by timers, by a RST's earlier deadline) and
    // reused, their timer links relinked each time. Every flow must still
    // come out exactly once, with its own packets.
    let cfg = FlowConfig {
        max_flows: 64,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::new(cfg);
    let mut out = Output::default();
    let t0 = 1_700_000_000_000_000;
    let n = 5_000u32;
    for k in 0..n {
        let ts = t0 + i64::from(k) * 1_000;
        let port = 1 + (k % 60_000) as u16;
        t.process(&tcp(ts, true, 40000, port, S, 0), &mut out);
        if k % 3 == 0 {
            t.process(&tcp(ts + 10, false, 40000, port, RA, 0), &mut out);
        }
        t.advance(ts, &mut out);
    }
    t.drain(&mut out);
    assert_eq!(out.flows.len(), n as usize);
    let mut ports: Vec<u16> = out.flows.iter().map(|r| r.resp_p()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), n as usize, "each flow once");
    for r in &out.flows {
        let rejected = (u32::from(r.resp_p()) - 1) % 3 == 0;
        assert_eq!(r.orig_pkts, 1);
        assert_eq!(r.resp_pkts, u64::from(rejected), "port {}", r.resp_p());
    }
    assert_eq!(out.attempts.len(), n as usize);
    assert!(
        t.memory_bytes() < 1 << 20,
        "a table capped at 64 stays small"
    );
}

#[test]
fn a_jump_of_a_year_in_one_advance_gives_what_walking_gives() {
    // Flows before the jump, and flows after it that the same batch created
    // before the watermark moved (their deadlines lie far beyond the
    // wheel's turn): one advance across the year must end the same flows
    // with the same attempts as advancing ten minutes at a time.
    let year = 365 * 86_400_000_000i64;
    let t0 = 1_767_225_600_000_000i64;
    let end = t0 + year + 3_600_000_000;
    let mut pkts = Vec::new();
    for p in 0..40u16 {
        let t = t0 + i64::from(p) * 1000;
        pkts.push(tcp(t, true, 40000 + p, 1000 + p, S, 0));
        if p % 3 == 0 {
            pkts.push(tcp(t + 100, false, 40000 + p, 1000 + p, SA, 0));
        }
    }
    for p in 0..40u16 {
        let t = t0 + year + i64::from(p) * 1000;
        pkts.push(tcp(t, true, 41000 + p, 2000 + p, S, 0));
        if p % 4 == 0 {
            pkts.push(tcp(t + 50, false, 41000 + p, 2000 + p, RA, 0));
        }
    }
    let feed = |t: &mut FlowTable, o: &mut Output| {
        for p in &pkts {
            t.process(p, o);
        }
    };
    let (mut a, mut oa) = (FlowTable::new(FlowConfig::default()), Output::default());
    feed(&mut a, &mut oa);
    a.advance(end, &mut oa);
    let (mut b, mut ob) = (FlowTable::new(FlowConfig::default()), Output::default());
    feed(&mut b, &mut ob);
    let mut t = t0;
    while t < end {
        t = (t + 600_000_000).min(end);
        b.advance(t, &mut ob);
    }
    assert_eq!(a.len(), b.len());
    assert!(oa.flows.len() >= 80, "every flow ended: {}", oa.flows.len());
    let key = |r: &FlowRecord| {
        (
            r.ts,
            r.last_ts,
            r.orig_p(),
            r.resp_p(),
            r.orig_pkts,
            r.resp_pkts,
            r.conn_state.as_str(),
        )
    };
    let (mut fa, mut fb): (Vec<_>, Vec<_>) = (
        oa.flows.iter().map(key).collect(),
        ob.flows.iter().map(key).collect(),
    );
    fa.sort();
    fb.sort();
    assert_eq!(fa, fb);
    oa.attempts.sort();
    ob.attempts.sort();
    assert_eq!(oa.attempts, ob.attempts);
}
