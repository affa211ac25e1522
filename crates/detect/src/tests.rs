//! Detector tests over attempt streams shaped like real scans and like the
//! busy benign hosts that fool scan detectors.

use super::*;
use scanwatch_model::ProbeKind;

const SEC: Micros = 1_000_000;

fn addr(s: &str) -> Addr {
    s.parse().unwrap()
}

fn host(i: u32) -> Addr {
    Addr::from_v4([198, 19, (i / 250) as u8 + 1, (i % 250) as u8 + 1])
}

fn att(t: Micros, src: Addr, dst: Addr, port: u16, outcome: Outcome, data: bool) -> Attempt {
    Attempt {
        time: t,
        src,
        dst,
        proto: proto::TCP,
        dport: port,
        sport: 40000,
        probe_ts: t,
        probe: ProbeKind::Syn,
        outcome,
        data,
    }
}

fn run(cfg: DetectConfig, mut atts: Vec<Attempt>) -> (Vec<ScanEvent>, Detector) {
    atts.sort();
    let mut d = Detector::new(cfg).unwrap();
    let mut ev = Vec::new();
    for a in &atts {
        d.on_attempt(a, &mut ev);
        d.advance(a.time, &mut ev);
    }
    d.finish(&mut ev);
    (ev, d)
}

fn ends(ev: &[ScanEvent]) -> Vec<&Detection> {
    ev.iter()
        .filter(|e| e.phase == Phase::End)
        .map(|e| &e.detection)
        .collect()
}

#[test]
fn vertical_syn_scan_with_open_doors() {
    let s = addr("198.18.0.2");
    let t = addr("198.19.1.10");
    let atts = (1..=1024u16)
        .map(|p| {
            let o = match p {
                22 | 80 | 443 => Outcome::Answered,
                135..=139 => Outcome::Unanswered,
                _ => Outcome::Rejected,
            };
            att(i64::from(p) * 1000, s, t, p, o, false)
        })
        .collect();
    let (ev, _) = run(DetectConfig::default(), atts);
    assert_eq!(ev.iter().filter(|e| e.phase == Phase::Start).count(), 1);
    let d = ends(&ev);
    assert_eq!(d.len(), 1);
    let d = d[0];
    assert_eq!(
        (d.kind, d.scanner, d.proto),
        (ScanKind::Vertical, s, proto::TCP)
    );
    assert_eq!((d.dst_count, d.port_count, d.probes), (1, 1024, 1024));
    assert_eq!((d.answered, d.rejected, d.unanswered), (3, 1016, 5));
    assert_eq!(
        d.open,
        vec!["198.19.1.10:22", "198.19.1.10:80", "198.19.1.10:443"]
    );
    assert!(d.detector.contains("window:5m"), "{}", d.detector);
    // Escalating updates, not one per probe.
    let updates = ev.iter().filter(|e| e.phase == Phase::Update).count();
    assert!((1..=12).contains(&updates), "{updates} updates");
}

#[test]
fn horizontal_and_block_shapes() {
    let s = addr("198.18.0.2");
    let h: Vec<_> = (0..200)
        .map(|i| {
            att(
                i64::from(i) * 5000,
                s,
                host(i),
                22,
                Outcome::Rejected,
                false,
            )
        })
        .collect();
    let (ev, _) = run(DetectConfig::default(), h);
    assert_eq!(ends(&ev)[0].kind, ScanKind::Horizontal);
    assert_eq!(ends(&ev)[0].dst_count, 200);

    let ports = [21u16, 22, 23, 25, 80, 443, 445, 3389, 8080];
    let mut b = Vec::new();
    for i in 0..40 {
        for (j, p) in ports.iter().enumerate() {
            let o = if *p == 23 {
                Outcome::Rejected
            } else {
                Outcome::Answered
            };
            b.push(att(
                i64::from(i) * 9000 + j as i64 * 1000,
                s,
                host(i),
                *p,
                o,
                false,
            ));
        }
    }
    let (ev, _) = run(DetectConfig::default(), b);
    let d = ends(&ev);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].kind, ScanKind::Block);
    assert_eq!((d[0].dst_count, d[0].port_count), (40, 9));
    assert_eq!(d[0].open.len(), 40 * 8);
}

#[test]
fn busy_client_whose_connections_succeed_is_not_a_scanner() {
    let c = addr("198.18.0.20");
    let mut atts = Vec::new();
    for i in 0..40u32 {
        for k in 0..3 {
            atts.push(att(
                i64::from(i * 3 + k) * 70_000,
                c,
                host(i),
                80,
                Outcome::Answered,
                true,
            ));
        }
    }
    // A few failures among them do not change that.
    for i in 40..44u32 {
        atts.push(att(
            10 * SEC + i64::from(i),
            c,
            host(i),
            80,
            Outcome::Unanswered,
            false,
        ));
    }
    let (ev, d) = run(DetectConfig::default(), atts);
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(d.stats.scans_started, 0);
}

#[test]
fn connect_sweep_that_finds_every_door_open_is_still_a_scan() {
    let s = addr("198.18.0.2");
    let atts = (0..199)
        .map(|i| {
            att(
                i64::from(i) * 20_000,
                s,
                host(i),
                8080,
                Outcome::Answered,
                false,
            )
        })
        .collect();
    let (ev, _) = run(DetectConfig::default(), atts);
    let d = ends(&ev);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].kind, ScanKind::Horizontal);
    assert_eq!(d[0].open.len(), 199);
}

#[test]
fn trw_catches_a_slow_small_sweep() {
    // 9 targets on 445 over 100 minutes, nothing answers: below every window
    // threshold, but every first contact fails.
    let s = addr("176.192.150.3");
    let atts = (0..9)
        .map(|i| {
            att(
                i64::from(i) * 700 * SEC,
                s,
                host(i),
                445,
                Outcome::Unanswered,
                false,
            )
        })
        .collect();
    let (ev, _) = run(DetectConfig::default(), atts);
    let d = ends(&ev);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].kind, ScanKind::Horizontal);
    assert!(d[0].detector.contains("trw"));
}

#[test]
fn trw_needs_a_shape_and_respects_successes() {
    // Failures scattered over random ports of random hosts (a P2P client).
    let c = addr("10.0.0.5");
    let atts = (0..30)
        .map(|i| {
            att(
                i64::from(i) * SEC,
                c,
                host(i),
                6881 + i as u16 * 7,
                Outcome::Unanswered,
                false,
            )
        })
        .collect();
    let (ev, _) = run(DetectConfig::default(), atts);
    assert!(ev.is_empty(), "{ev:?}");
}

#[test]
fn slow_vertical_scan_is_caught_by_the_long_window() {
    let s = addr("198.18.0.2");
    let t = addr("198.19.1.21");
    // One probe every 30 s: 10 per 5 minutes, never 20.
    let atts = (0..45u16)
        .map(|i| {
            att(
                i64::from(i) * 30 * SEC,
                s,
                t,
                20 + i,
                Outcome::Rejected,
                false,
            )
        })
        .collect();
    let (ev, _) = run(DetectConfig::default(), atts);
    let d = ends(&ev);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].kind, ScanKind::Vertical);
    assert!(d[0].detector.contains("window:1h"), "{}", d[0].detector);
}

#[test]
fn the_last_window_at_the_limit_fires_under_its_own_name() {
    // MAX_WINDOWS windows, only the last one (7 minutes) slow enough for
    // this scan: one probe every 10 s, 25 ports; the others need 1000.
    let windows = (1..=MAX_WINDOWS as u64)
        .map(|i| Window {
            seconds: 60 * i,
            horizontal: 1000.0,
            vertical: if i == MAX_WINDOWS as u64 {
                20.0
            } else {
                1000.0
            },
        })
        .collect();
    let cfg = DetectConfig {
        windows,
        trw: false,
        ..DetectConfig::default()
    };
    let s = addr("198.18.0.2");
    let t = addr("198.19.1.21");
    let atts = (0..25u16)
        .map(|i| {
            att(
                i64::from(i) * 10 * SEC,
                s,
                t,
                20 + i,
                Outcome::Rejected,
                false,
            )
        })
        .collect();
    let (ev, _) = run(cfg, atts);
    let d = ends(&ev);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].detector, "window:7m");
}

#[test]
fn allow_list_silences_a_scanner() {
    let cfg = DetectConfig {
        allow_scanners: vec!["198.18.0.0/24".into()],
        ..DetectConfig::default()
    };
    let s = addr("198.18.0.2");
    let atts = (0..100u16)
        .map(|p| att(i64::from(p), s, host(0), p, Outcome::Rejected, false))
        .collect();
    let (ev, d) = run(cfg, atts);
    assert!(ev.is_empty());
    assert_eq!(d.stats.allowed, 100);
}

#[test]
fn scan_ends_after_idle_and_a_later_one_is_a_new_record() {
    let s = addr("198.18.0.2");
    let mut atts: Vec<_> = (0..50u16)
        .map(|p| {
            att(
                i64::from(p) * 1000,
                s,
                host(0),
                p + 1,
                Outcome::Rejected,
                false,
            )
        })
        .collect();
    atts.extend((0..50u16).map(|p| {
        att(
            3600 * SEC + i64::from(p) * 1000,
            s,
            host(1),
            p + 1,
            Outcome::Rejected,
            false,
        )
    }));
    let (ev, _) = run(DetectConfig::default(), atts);
    let d = ends(&ev);
    assert_eq!(d.len(), 2);
    assert_ne!(d[0].detection_id, d[1].detection_id);
    assert!(d.iter().all(|d| d.kind == ScanKind::Vertical));
}

#[test]
fn source_cap_keeps_the_scanner_among_a_spoofed_flood() {
    let cfg = DetectConfig {
        max_sources: 1000,
        ..DetectConfig::default()
    };
    let victim = addr("198.19.1.80");
    let scanner = addr("203.0.113.9");
    let mut atts = Vec::new();
    for i in 0..20_000u32 {
        let spoofed = Addr::from_v4([100, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        atts.push(att(
            i64::from(i) * 100,
            spoofed,
            victim,
            80,
            Outcome::Answered,
            false,
        ));
        if i % 500 == 0 {
            let p = 1 + (i / 500) as u16;
            atts.push(att(
                i64::from(i) * 100 + 1,
                scanner,
                victim,
                p,
                Outcome::Rejected,
                false,
            ));
        }
    }
    let (ev, d) = run(cfg, atts);
    assert!(d.sizes().0 <= 1000);
    assert!(d.stats.sources_evicted > 0);
    let found: Vec<_> = ends(&ev)
        .into_iter()
        .filter(|d| d.scanner == scanner)
        .collect();
    assert_eq!(found.len(), 1, "the hidden scan survives eviction");
    assert!(
        ends(&ev).iter().all(|d| d.scanner == scanner),
        "no spoofed source flagged"
    );
}

#[test]
fn contact_cap_bounds_many_sources_with_many_contacts_and_keeps_the_scanner() {
    // 400 sources, each making 100 answered contacts (busy clients), and
    // one scanner whose probes fail: 40k contacts against a cap of 5000.
    let cfg = DetectConfig {
        max_contacts_total: 5000,
        ..DetectConfig::default()
    };
    let scanner = addr("203.0.113.9");
    let target = addr("198.19.1.80");
    let mut atts = Vec::new();
    let mut t = 0i64;
    for round in 0..100u16 {
        for s in 0..400u32 {
            let client = Addr::from_v4([100, 64, (s >> 8) as u8, s as u8]);
            let server = Addr::from_v4([198, 19, 2, (round % 250) as u8]);
            t += 10;
            atts.push(att(
                t,
                client,
                server,
                1000 + round,
                Outcome::Answered,
                false,
            ));
        }
        t += 10;
        atts.push(att(t, scanner, target, 1 + round, Outcome::Rejected, false));
    }
    let (ev, d) = run(cfg, atts);
    assert!(d.contacts_held() <= 5000, "{}", d.contacts_held());
    assert!(d.stats.sources_evicted > 0);
    let found = ends(&ev);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].scanner, scanner);
    assert_eq!(found[0].kind, ScanKind::Vertical);
}
