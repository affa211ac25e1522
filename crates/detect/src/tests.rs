//! Detector tests over attempt streams shaped like real scans and like the
//! busy benign hosts that fool scan detectors.

use super::*;
use scanwatch_model::ProbeKind;
use std::collections::HashSet;

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
        flow_id: t as u64,
        print: scanwatch_model::ProbePrint::default(),
        handshake: false,
        abortive: false,
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
fn light_sources_are_counted_as_they_are_and_their_rests_reused_within_the_cap() {
    // A flood of one-attempt sources (light: evicted without reading their
    // rest, whose memory the next new source is written into), mixed with
    // sources that come back (no longer light), swept past the longest
    // window on the way. After every attempt the count of contacts held is
    // what the sources hold, a light source holds one contact and nothing
    // else, and live and spare rests stay within the cap.
    let cfg = DetectConfig {
        max_sources: 1000,
        ..DetectConfig::default()
    };
    let mut d = Detector::new(cfg).unwrap();
    let mut ev = Vec::new();
    let victim = addr("198.19.1.80");
    let mut t = 0i64;
    let (mut light_seen, mut reused) = (0u32, 0u32);
    for i in 0..12_000u32 {
        t += if i == 6_000 { 2 * 86_400 * SEC } else { 1_000 };
        let src = if i % 7 == 0 {
            // Comes back: a second contact makes it heavy.
            Addr::from_v4([100, 1, ((i / 7) % 40) as u8, 1])
        } else {
            Addr::from_v4([100, 2, (i >> 8) as u8, i as u8])
        };
        let spare_before = d.spare_rests.len();
        let a = att(
            t,
            src,
            victim,
            (i % 3) as u16 + 80,
            Outcome::Unanswered,
            false,
        );
        d.on_attempt(&a, &mut ev);
        d.advance(t, &mut ev);
        reused += u32::from(d.spare_rests.len() < spare_before);
        let held: usize = d.sources.values().map(|s| s.contacts.len()).sum();
        assert_eq!(d.contacts_held(), held, "attempt {i}");
        assert!(d.sources.len() + d.spare_rests.len() <= 1000, "attempt {i}");
        for s in d.sources.values().filter(|s| s.light) {
            light_seen += 1;
            assert_eq!(s.contacts.len(), 1);
            assert!(s.sketch.is_none() && s.per_dst.capacity() == 0);
            assert_eq!(s.one_dst, s.contacts.keys().next().map(|c| c.dst));
        }
    }
    assert!(d.stats.sources_evicted > 5_000);
    assert!(reused > 1_000, "{reused} rests reused");
    assert!(light_seen > 0);
    // The entry the eviction ranks stays small.
    assert_eq!(std::mem::size_of::<(Addr, Source)>(), 48);
}

#[test]
fn every_sweep_leaves_nothing_older_than_the_longest_window() {
    // Windows of 2 and 10 minutes; a sweep comes each minute of packet
    // time, and one that nothing can be old enough for is skipped. Bursts
    // of sources (one-attempt ones, busy ones with sketches, ones that come
    // back to add a contact to an old set) are separated by quiet spells
    // shorter and longer than the window. After every sweep nothing older
    // than its horizon is left and the counts are what the sources hold.
    let w = |seconds| Window {
        seconds,
        horizontal: 20.0,
        vertical: 20.0,
    };
    let cfg = DetectConfig {
        windows: vec![w(120), w(600)],
        max_contacts: 64,
        ..DetectConfig::default()
    };
    let horizon_span = cfg.longest_window();
    let mut d = Detector::new(cfg).unwrap();
    let mut ev = Vec::new();
    let mut t = 0;
    let (mut sweeps, mut forgot, mut sketched) = (0u32, 0usize, 0u32);
    let gaps = [30, 400, 45, 900, 20, 3_000, 61, 590];
    for (phase, gap) in gaps.iter().cycle().take(40).enumerate() {
        t += gap * SEC;
        let back = Addr::from_v4([100, 3, 0, (phase % 3) as u8 + 1]);
        let busy = Addr::from_v4([100, 4, 0, (phase % 5) as u8 + 1]);
        for i in 0..300u32 {
            t += 500_000;
            let (src, outcome) = match i % 3 {
                0 => (busy, Outcome::Answered),
                1 if i % 2 == 0 => (back, Outcome::Rejected),
                _ => (
                    Addr::from_v4([100, 5, phase as u8, i as u8]),
                    Outcome::Unanswered,
                ),
            };
            let a = att(
                t,
                src,
                host(i + 7 * phase as u32),
                80 + (i % 4) as u16,
                outcome,
                false,
            );
            let before = d.sources.len();
            let due = d.next_sweep;
            d.on_attempt(&a, &mut ev);
            d.advance(t, &mut ev);
            if d.next_sweep == due {
                continue;
            }
            sweeps += 1;
            forgot += (before + 1).saturating_sub(d.sources.len());
            // The sweep's point: the minute the next one follows.
            let horizon = d.next_sweep - SWEEP_EVERY - horizon_span;
            for s in d.sources.values() {
                assert!(s.last >= horizon, "phase {phase} attempt {i}");
                assert!(s.contacts.values().all(|c| c.last >= horizon));
                if let Some(k) = &s.sketch {
                    sketched += 1;
                    assert!(k.since >= horizon, "phase {phase} attempt {i}");
                }
            }
            let held: usize = d.sources.values().map(|s| s.contacts.len()).sum();
            assert_eq!(d.contacts_held(), held, "phase {phase} attempt {i}");
            let with_sketch = d.sources.values().filter(|s| s.sketch.is_some()).count();
            assert_eq!(d.sketch_sources, with_sketch);
        }
    }
    assert!(sweeps > 100, "{sweeps} sweeps");
    assert!(forgot > 1_000, "{forgot} sources forgotten");
    assert!(sketched > 0);
}

#[test]
fn a_sweep_drops_a_sketch_older_than_every_contact_left() {
    // A busy source's sketch starts with its first contact (70 s); trims
    // then leave only contacts from the last minute or so of its 190 s.
    // The sweep of the minute 660 s (horizon 60 s) forgets an older source
    // and keeps the sketch; the one of 720 s (horizon 120 s) must drop the
    // sketch, though every contact left is newer than its horizon.
    let cfg = DetectConfig {
        windows: vec![Window {
            seconds: 600,
            horizontal: 20.0,
            vertical: 20.0,
        }],
        max_contacts: 64,
        ..DetectConfig::default()
    };
    let mut d = Detector::new(cfg).unwrap();
    let mut ev = Vec::new();
    let busy = addr("10.0.0.7");
    let early = att(0, addr("10.0.0.8"), host(1), 80, Outcome::Rejected, false);
    d.on_attempt(&early, &mut ev);
    for i in 0..190u32 {
        let t = (70 + i64::from(i)) * SEC;
        d.on_attempt(
            &att(t, busy, host(i), 443, Outcome::Answered, true),
            &mut ev,
        );
    }
    d.advance(665 * SEC, &mut ev);
    let s = &d.sources[&busy];
    assert_eq!(d.sources.len(), 1);
    assert_eq!(s.sketch.as_ref().map(|k| k.since), Some(70 * SEC));
    assert!(s.contacts.values().all(|c| c.last > 125 * SEC));
    d.advance(725 * SEC, &mut ev);
    assert!(d.sources[&busy].sketch.is_none());
    assert_eq!(d.sketch_sources, 0);
    assert!(ev.is_empty());
}

#[test]
fn sources_made_after_evictions_start_with_no_contacts() {
    // Evicted sources' contact tables are emptied and reused by new
    // sources: a scanner that arrives after many evictions counts its own
    // contacts only (a leftover spoofed contact would add port 80).
    let cfg = DetectConfig {
        max_sources: 1000,
        ..DetectConfig::default()
    };
    let victim = addr("198.19.1.80");
    let scanners = [
        addr("203.0.113.9"),
        addr("203.0.113.10"),
        addr("203.0.113.11"),
    ];
    let mut atts = Vec::new();
    let mut t = 0i64;
    for i in 0..8_000u32 {
        let spoofed = Addr::from_v4([100, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        t += 100;
        atts.push(att(t, spoofed, victim, 80, Outcome::Unanswered, false));
        // The scanners start once evictions have left spare tables.
        if i >= 4_000 && i % 100 == 0 {
            let p = 1 + ((i - 4_000) / 100) as u16;
            for (k, &s) in scanners.iter().enumerate() {
                atts.push(att(
                    t + 1 + k as i64,
                    s,
                    victim,
                    p,
                    Outcome::Rejected,
                    false,
                ));
            }
        }
    }
    let (ev, d) = run(cfg, atts);
    assert!(
        d.stats.sources_evicted >= 4_000,
        "{}",
        d.stats.sources_evicted
    );
    for s in scanners {
        let found: Vec<_> = ends(&ev).into_iter().filter(|d| d.scanner == s).collect();
        assert_eq!(found.len(), 1, "{s}");
        assert_eq!(found[0].probes, 40, "{s}");
        assert_eq!(found[0].port_count, 40, "{s}");
        assert!(!found[0].ports.contains(&80), "{s}");
    }
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

/// Deterministic pseudo-random numbers (splitmix64) for generated scans.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
}

/// A masscan-style scan: `n` SYNs at 100k/s from one source to random
/// (address in 203.0.0.0/16, port 1..=65535) pairs; one in 50 refused, one
/// in 5,000 answered, the rest ignored.
fn wide_scan(src: Addr, n: usize, seed: u64) -> Vec<Attempt> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let r = rng.next();
            let dst = Addr::from_v4([203, 0, (r >> 8) as u8, r as u8]);
            let port = ((r >> 16) % 65_535) as u16 + 1;
            let o = match (r >> 40) % 5000 {
                0 => Outcome::Answered,
                1..=100 => Outcome::Rejected,
                _ => Outcome::Unanswered,
            };
            att(i as Micros * 10, src, dst, port, o, false)
        })
        .collect()
}

#[test]
fn wide_random_scan_is_flagged_as_block_early_with_estimated_counts() {
    let s = addr("198.18.7.7");
    let atts = wide_scan(s, 200_000, 42);
    let dsts: HashSet<Addr> = atts.iter().map(|a| a.dst).collect();
    let ports: HashSet<u16> = atts.iter().map(|a| a.dport).collect();
    let mut open: Vec<(Addr, u16)> = atts
        .iter()
        .filter(|a| a.outcome == Outcome::Answered)
        .map(|a| (a.dst, a.dport))
        .collect();
    open.sort();
    open.dedup();
    let open: Vec<String> = open
        .into_iter()
        .map(|(a, p)| scanwatch_model::endpoint_text(a, Some(p)))
        .collect();
    assert!(!open.is_empty());

    let cfg = DetectConfig::default();
    let mut d = Detector::new(cfg.clone()).unwrap();
    let mut ev = Vec::new();
    let mut most_contacts = 0;
    for a in &atts {
        d.on_attempt(a, &mut ev);
        d.advance(a.time, &mut ev);
        most_contacts = most_contacts.max(d.contacts_held());
    }
    d.finish(&mut ev);
    // Memory stays bounded: never more than the exact cap of contacts, one
    // source with sketches, and the sketches went with the scan record.
    assert!(most_contacts <= cfg.max_contacts, "{most_contacts}");
    assert!(d.sketch_sources <= 1);
    let starts: Vec<_> = ev.iter().filter(|e| e.phase == Phase::Start).collect();
    assert_eq!(starts.len(), 1, "one record for the scan");
    let first = &starts[0].detection;
    assert_eq!(first.kind, ScanKind::Block);
    assert!(
        first.probes <= SKETCH_START as u64,
        "flagged only after {} probes",
        first.probes
    );
    // Memory stays bounded: never more than the exact cap of contacts, one
    // source with sketches, and the sketches went with the scan record.
    // Every update and the end stay block.
    assert!(ev.iter().all(|e| e.detection.kind == ScanKind::Block));
    let end = ends(&ev);
    assert_eq!(end.len(), 1);
    let end = end[0];
    assert_eq!(end.probes, 200_000);
    let near = |est: u64, truth: usize| (est as f64 - truth as f64).abs() <= truth as f64 * 0.05;
    assert!(
        near(end.dst_count, dsts.len()),
        "{} vs {}",
        end.dst_count,
        dsts.len()
    );
    assert!(
        near(end.port_count, ports.len()),
        "{} vs {}",
        end.port_count,
        ports.len()
    );
    // The open doors are exact.
    assert_eq!(end.open, open);
    // A wide record stays block: no kind change. Its doors are told at most
    // once a second, and together they are every door, each once.
    assert!(ev.iter().all(|e| e.phase != Phase::KindChange));
    let doors: Vec<&ScanEvent> = ev.iter().filter(|e| e.phase == Phase::OpenDoor).collect();
    assert!(doors.len() >= 2, "{} open_door events", doors.len());
    // (The last may be sooner: doors still untold at the end of input are
    // told just before the end event.)
    let times: Vec<Micros> = doors.iter().map(|e| e.time).collect();
    assert!(
        times[..times.len() - 1]
            .windows(2)
            .all(|w| w[1] - w[0] >= SEC),
        "{times:?}"
    );
    let mut told: Vec<String> = doors.iter().flat_map(|e| e.new_open.clone()).collect();
    told.sort();
    let before_start = starts[0].detection.open.len();
    assert_eq!(told.len() + before_start, open.len());
    told.extend(starts[0].detection.open.iter().cloned());
    told.sort();
    let mut open = open;
    open.sort();
    assert_eq!(told, open);
}

#[test]
fn scan_record_counts_targets_past_its_cap_with_a_sketch() {
    // A sweep of port 445 over 50,000 hosts, with a record capped at 1,000
    // listed targets: it still counts all of them.
    let cfg = DetectConfig {
        max_scan_targets: 1000,
        ..DetectConfig::default()
    };
    let s = addr("198.18.7.8");
    let atts: Vec<Attempt> = (0..50_000u32)
        .map(|i| {
            let dst = Addr::from_v4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            att(i64::from(i) * 100, s, dst, 445, Outcome::Unanswered, false)
        })
        .collect();
    let truth: HashSet<Addr> = atts.iter().map(|a| a.dst).collect();
    let (ev, _) = run(cfg, atts);
    let end = ends(&ev);
    assert_eq!(end.len(), 1);
    assert_eq!(end[0].kind, ScanKind::Horizontal);
    assert_eq!(end[0].targets.len(), 256);
    let err = (end[0].dst_count as f64 - truth.len() as f64).abs() / truth.len() as f64;
    assert!(err < 0.05, "{} vs {}", end[0].dst_count, truth.len());
}

#[test]
fn small_sources_never_get_sketches_and_sketch_sources_are_capped() {
    // Under SKETCH_START contacts: no sketch, whatever the traffic.
    let (ev, d) = run(
        DetectConfig::default(),
        wide_scan(addr("198.18.7.9"), SKETCH_START - 1, 3),
    );
    assert_eq!(d.sketch_sources, 0);
    assert!(ev.is_empty(), "{} events", ev.len());
    assert_eq!(d.stats.sketches_denied, 0);
    // With room for one sketched source per shard, a second wide source
    // goes on without one (and is not flagged from sketches), then gets
    // one once the first has been flagged and its sketches freed.
    let cfg = DetectConfig {
        max_contacts: 64,
        max_contacts_total: SKETCH_CONTACTS,
        ..DetectConfig::default()
    };
    let mut d = Detector::new(cfg).unwrap();
    assert_eq!(d.max_sketch_sources, 1);
    let mut ev = Vec::new();
    let a = wide_scan(addr("198.18.7.10"), 65, 4);
    for x in &a {
        d.on_attempt(x, &mut ev);
    }
    // Overflowed once: it has sketches, and was flagged from them.
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].detection.kind, ScanKind::Block);
    assert_eq!(d.sketch_sources, 0, "sketches leave with the record");

    // A busy source that talks to everyone takes the one slot and keeps
    // it (it is never flagged); a wide scanner after it gets no sketches,
    // is not flagged from them, and that is counted, once.
    let mut d = Detector::new(DetectConfig {
        max_contacts: 64,
        max_contacts_total: SKETCH_CONTACTS,
        ..DetectConfig::default()
    })
    .unwrap();
    let mut ev = Vec::new();
    let busy = addr("10.0.0.7");
    for (i, x) in wide_scan(addr("198.18.7.11"), 100, 5).iter().enumerate() {
        let a = att(
            i as Micros * 10,
            busy,
            x.dst,
            x.dport,
            Outcome::Answered,
            true,
        );
        d.on_attempt(&a, &mut ev);
    }
    assert_eq!(d.sketch_sources, 1);
    for x in &wide_scan(addr("198.18.7.12"), 200, 6) {
        let mut x = *x;
        x.time += 10_000;
        x.probe_ts += 10_000;
        d.on_attempt(&x, &mut ev);
    }
    assert!(ev.is_empty(), "{} events", ev.len());
    assert_eq!(d.stats.sketches_denied, 1);
}

#[test]
fn p2p_client_with_thousands_of_peers_mostly_answering_is_not_flagged() {
    // 6,000 peers on random ports, each contacted once; a third ignore it,
    // the rest answer and talk: far past the exact cap, and quiet.
    let s = addr("10.0.0.99");
    let mut rng = Rng(11);
    let atts = (0..6000)
        .map(|i| {
            let r = rng.next();
            let dst = Addr::from_v4([
                (r >> 24) as u8 | 1,
                (r >> 16) as u8,
                (r >> 8) as u8,
                r as u8,
            ]);
            let port = ((r >> 32) % 60_000) as u16 + 1024;
            let (o, data) = if i % 3 == 0 {
                (Outcome::Unanswered, false)
            } else {
                (Outcome::Answered, true)
            };
            att(i as Micros * 20_000, s, dst, port, o, data)
        })
        .collect();
    let (ev, d) = run(DetectConfig::default(), atts);
    assert!(ev.is_empty(), "{:?}", ev.first().map(|e| &e.detection));
    assert_eq!(d.sketch_sources, 1, "it did overflow into sketches");
}

#[test]
fn sketch_memory_fits_what_the_accounting_says() {
    use std::mem::size_of;
    // A protocol's set: its fields plus the three boxed register arrays.
    let per_set = size_of::<ProtoSketch>() + 3 * sketch::M;
    assert!(per_set <= 3 * HLL_BYTES + 64, "{per_set}");
    let per_source = SKETCH_PROTOS * per_set + size_of::<Sketches>();
    assert!(per_source <= SKETCH_SOURCE_BYTES, "{per_source}");
    // What the pipeline's CONTACT_WORST_BYTES adds per contact.
    assert_eq!(SKETCH_BYTES_PER_CONTACT, 7);
    // The cap on sketched sources follows the shard's contact cap.
    let d = Detector::new(DetectConfig::default()).unwrap();
    assert_eq!(d.max_sketch_sources, 4_000_000 / SKETCH_CONTACTS);
}

/// A vertical scan of ports 1..=300, one probe every 10 ms, where the
/// listed ports answer.
fn vertical_with_doors(s: Addr, t: Addr, open: &[u16]) -> Vec<Attempt> {
    (1..=300u16)
        .map(|p| {
            let o = if open.contains(&p) {
                Outcome::Answered
            } else {
                Outcome::Rejected
            };
            let mut a = att(i64::from(p) * 10_000, s, t, p, o, false);
            a.sport = 50_000 + p;
            a.flow_id = 7_000 + u64::from(p);
            a
        })
        .collect()
}

#[test]
fn open_door_after_the_start_is_told_at_that_attempt() {
    let s = addr("198.18.0.2");
    let t = addr("198.19.1.10");
    // Port 5 answers before the scan is flagged, port 150 after.
    let (ev, _) = run(
        DetectConfig::default(),
        vertical_with_doors(s, t, &[5, 150]),
    );
    let start = ev.iter().find(|e| e.phase == Phase::Start).unwrap();
    assert!(start.time < 150 * 10_000);
    assert_eq!(start.detection.open, vec!["198.19.1.10:5"]);
    let doors: Vec<&ScanEvent> = ev.iter().filter(|e| e.phase == Phase::OpenDoor).collect();
    assert_eq!(doors.len(), 1, "{doors:?}");
    let d = doors[0];
    assert_eq!(d.time, 150 * 10_000);
    assert_eq!(d.new_open, vec!["198.19.1.10:150"]);
    assert_eq!(d.detection.open, vec!["198.19.1.10:5", "198.19.1.10:150"]);
    assert_eq!(
        d.trigger,
        Some(Trigger {
            dst: t,
            dport: 150,
            sport: 50_150,
            flow_id: 7_150,
            time: 150 * 10_000
        })
    );
    // new_open is for open_door events only.
    assert!(ev
        .iter()
        .all(|e| e.phase == Phase::OpenDoor || e.new_open.is_empty()));
    // The start points at the attempt that flagged, the end at the last.
    assert_eq!(start.trigger.map(|g| g.time), Some(start.time));
    let end = ev.iter().find(|e| e.phase == Phase::End).unwrap();
    assert_eq!(
        end.trigger.map(|g| (g.dport, g.flow_id)),
        Some((300, 7_300))
    );
}

#[test]
fn doors_within_a_second_are_told_together_after_it_and_none_is_lost() {
    let s = addr("198.18.0.2");
    let t = addr("198.19.1.10");
    // Doors at 1.5 s, then 1.6 and 1.7 s (within the second after the
    // first), then 2.8 s (within the second after the deferred one); the
    // scan's last probe is at 3.0 s.
    let (ev, _) = run(
        DetectConfig::default(),
        vertical_with_doors(s, t, &[150, 160, 170, 280]),
    );
    let doors: Vec<(Micros, Vec<String>, Option<u16>)> = ev
        .iter()
        .filter(|e| e.phase == Phase::OpenDoor)
        .map(|e| (e.time, e.new_open.clone(), e.trigger.map(|g| g.dport)))
        .collect();
    let door = |p: u16| format!("198.19.1.10:{p}");
    assert_eq!(
        doors,
        vec![
            (150 * 10_000, vec![door(150)], Some(150)),
            // Told when the second is over, pointing at the first of them.
            (150 * 10_000 + SEC, vec![door(160), door(170)], Some(160)),
            // Still untold when the input ends: told just before the end.
            (300 * 10_000, vec![door(280)], Some(280)),
        ]
    );
    let end = ev.last().unwrap();
    assert_eq!(end.phase, Phase::End);
    assert_eq!(end.detection.open.len(), 4);
    let last_door = ev.iter().rposition(|e| e.phase == Phase::OpenDoor).unwrap();
    assert_eq!(last_door, ev.len() - 2);
}

#[test]
fn host_by_host_scan_turns_from_vertical_to_block_as_it_happens() {
    // 10 hosts × 100 ports, one host after the other: flagged vertical on
    // the first host, block once the tenth host has `block_ports` ports.
    let s = addr("198.18.0.2");
    let cfg = DetectConfig::default();
    let atts: Vec<Attempt> = (0..10u32)
        .flat_map(|h| {
            (1..=100u16).map(move |p| {
                att(
                    i64::from(h) * 100_000 + i64::from(p) * 1000,
                    s,
                    host(h),
                    p,
                    Outcome::Rejected,
                    false,
                )
            })
        })
        .collect();
    let (ev, _) = run(cfg.clone(), atts);
    let start = ev.iter().find(|e| e.phase == Phase::Start).unwrap();
    assert_eq!(start.detection.kind, ScanKind::Vertical);
    let changes: Vec<&ScanEvent> = ev.iter().filter(|e| e.phase == Phase::KindChange).collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let c = changes[0];
    assert_eq!(c.previous_kind, Some(ScanKind::Vertical));
    assert_eq!(c.detection.kind, ScanKind::Block);
    let p = cfg.block_ports as u16;
    assert_eq!(c.trigger.map(|g| (g.dst, g.dport)), Some((host(9), p)));
    assert_eq!(c.time, 9 * 100_000 + i64::from(p) * 1000);
    assert_eq!(ends(&ev)[0].kind, ScanKind::Block);
    assert!(ev
        .iter()
        .all(|e| e.phase == Phase::KindChange || e.previous_kind.is_none()));
}

/// A slow vertical scan: one probe every 7 s for 35 minutes.
fn slow_scan() -> Vec<Attempt> {
    let s = addr("198.18.0.2");
    let t = addr("198.19.1.10");
    (1..=300u16)
        .map(|p| att(i64::from(p) * 7 * SEC, s, t, p, Outcome::Rejected, false))
        .collect()
}

#[test]
fn long_slow_scan_gets_an_update_every_minute_while_it_grows() {
    let mut d = Detector::new(DetectConfig::default()).unwrap();
    let mut ev = Vec::new();
    for a in &slow_scan() {
        d.on_attempt(a, &mut ev);
        d.advance(a.time, &mut ev);
    }
    // The clock runs on after the last probe (at 2100 s), to past the end.
    for t in 2101..=3000 {
        d.advance(t * SEC, &mut ev);
    }
    d.finish(&mut ev);
    let told: Vec<&ScanEvent> = ev
        .iter()
        .filter(|e| matches!(e.phase, Phase::Start | Phase::Update))
        .collect();
    let gaps: Vec<Micros> = told.windows(2).map(|w| w[1].time - w[0].time).collect();
    // Never more than a minute without news while it probes, and mostly
    // exactly a minute (doubling updates come in between, at attempts).
    assert!(gaps.iter().all(|&g| g > 0 && g <= 60 * SEC), "{gaps:?}");
    let minutes = gaps.iter().filter(|&&g| g == 60 * SEC).count();
    assert!(minutes >= 25, "{minutes} periodic updates: {gaps:?}");
    // Each points at the last attempt before it, and carries the probes so
    // far.
    for e in &told {
        let g = e.trigger.unwrap();
        let since = e.time - g.time;
        assert!(
            since >= 0 && (since <= 7 * SEC || g.time == 2100 * SEC),
            "{e:?}"
        );
        assert_eq!(e.detection.probes, (g.time / (7 * SEC)) as u64);
    }
    // After the last probe (at 2100 s): one last update, then silence
    // until the end, 10 minutes later.
    let last = told.last().unwrap();
    assert!(last.time >= 2100 * SEC && last.time - 2100 * SEC <= 60 * SEC);
    let end = ev.last().unwrap();
    assert_eq!((end.phase, end.time), (Phase::End, 2700 * SEC));
}

#[test]
fn deferred_events_are_the_same_whenever_the_clock_is_advanced() {
    // Events due at a time are stamped with it: advancing after every
    // attempt, or only now and then, gives the same events.
    let mut atts = slow_scan();
    let s = addr("198.18.0.2");
    let t = addr("198.19.1.10");
    atts.extend(
        vertical_with_doors(s, t, &[150, 160, 170, 280])
            .into_iter()
            .map(|mut a| {
                a.src = addr("198.18.0.3");
                a
            }),
    );
    atts.sort();
    let (every, _) = run(DetectConfig::default(), atts.clone());
    let mut d = Detector::new(DetectConfig::default()).unwrap();
    let mut rare = Vec::new();
    for (i, a) in atts.iter().enumerate() {
        d.on_attempt(a, &mut rare);
        if i % 50 == 0 {
            d.advance(a.time, &mut rare);
        }
    }
    d.finish(&mut rare);
    let key = |e: &ScanEvent| (e.detection.scanner, e.time, e.phase.name());
    let mut every: Vec<_> = every.iter().map(|e| (key(e), e.clone())).collect();
    let mut rare: Vec<_> = rare.iter().map(|e| (key(e), e.clone())).collect();
    every.sort_by(|a, b| a.0.cmp(&b.0));
    rare.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(every.len(), rare.len());
    for (a, b) in every.iter().zip(&rare) {
        assert_eq!(a.1, b.1);
    }
}

#[test]
fn a_scan_resuming_after_a_pause_is_told_at_its_first_new_probe() {
    // 40 probes a second apart, quiet for 5 minutes, then 10 more: the
    // update after the pause is stamped at the first new probe, and holds
    // it and nothing later.
    let s = addr("198.18.0.2");
    let t = addr("198.19.1.10");
    let pause = 40 * SEC + 300 * SEC;
    let atts: Vec<Attempt> = (1..=50u16)
        .map(|p| {
            let at = i64::from(p) * SEC + if p > 40 { 300 * SEC } else { 0 };
            att(at, s, t, p, Outcome::Rejected, false)
        })
        .collect();
    let (ev, _) = run(DetectConfig::default(), atts);
    let resumed: Vec<&ScanEvent> = ev
        .iter()
        .filter(|e| e.phase == Phase::Update && e.time > 40 * SEC)
        .collect();
    assert!(!resumed.is_empty(), "{ev:?}");
    let first = resumed[0];
    assert_eq!(first.time, pause + SEC);
    assert_eq!(first.detection.probes, 41);
    assert_eq!(first.detection.ts_last, pause + SEC);
}

fn udp(t: Micros, src: Addr, dst: Addr, port: u16, answered: bool) -> Attempt {
    Attempt {
        proto: proto::UDP,
        probe: ProbeKind::Udp,
        ..att(
            t,
            src,
            dst,
            port,
            if answered {
                Outcome::Answered
            } else {
                Outcome::Unanswered
            },
            false,
        )
    }
}

#[test]
fn resolver_with_most_servers_failing_is_quiet_while_a_sweep_like_it_is_not() {
    // A resolver: a new authoritative server every second for five
    // minutes, 60% of them silent; the ones that answer are asked again
    // and again (four queries a second in all).
    let r = addr("10.1.0.53");
    let good = |i: u32| i % 5 >= 3;
    let mut atts = Vec::new();
    for i in 0..300u32 {
        let t = i64::from(i) * SEC;
        atts.push(udp(t, r, host(i), 53, good(i)));
        for k in 1..4u32 {
            let j = (i * 7 + k * 13) % (i + 1);
            let j = (0..=j).rev().find(|&j| good(j)).unwrap_or(3).min(i);
            if good(j) {
                atts.push(udp(t + i64::from(k) * 250_000, r, host(j), 53, true));
            }
        }
    }
    let (ev, _) = run(DetectConfig::default(), atts);
    assert!(ev.is_empty(), "{:?}", ends(&ev));
    // The same first contacts without the repeated conversations: a UDP
    // sweep of port 53 that 40% answered. Still a scan.
    let s = addr("203.0.113.53");
    let atts = (0..300u32)
        .map(|i| udp(i64::from(i) * SEC, s, host(i), 53, good(i)))
        .collect();
    let (ev, _) = run(DetectConfig::default(), atts);
    let d = ends(&ev);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].kind, ScanKind::Horizontal);
}

#[test]
fn polled_services_that_are_down_are_an_outage_not_a_scan() {
    // A health checker: 30 services on 8080 every 10 s for 10 minutes,
    // checks carrying a request and its answer; the first 18 are down
    // (refused), the others up.
    let c = addr("10.1.0.9");
    let mut atts = Vec::new();
    for round in 0..60i64 {
        for i in 0..30u32 {
            let t = round * 10 * SEC + i64::from(i) * 300_000;
            let up = i >= 18;
            let o = if up {
                Outcome::Answered
            } else {
                Outcome::Rejected
            };
            atts.push(att(t, c, host(i), 8080, o, up));
        }
    }
    let (ev, _) = run(DetectConfig::default(), atts);
    assert!(ev.is_empty(), "{:?}", ends(&ev));
    // The first round alone, never repeated: 18 refused first contacts in
    // a row on one port, caught by TRW once they have settled.
    let s = addr("203.0.113.9");
    let mut atts: Vec<Attempt> = (0..30u32)
        .map(|i| {
            let up = i >= 18;
            let o = if up {
                Outcome::Answered
            } else {
                Outcome::Rejected
            };
            att(i64::from(i) * 300_000, s, host(i), 8080, o, up)
        })
        .collect();
    // Its next (failed) contact, after TRW_SETTLE, is when it is judged.
    atts.push(att(
        TRW_SETTLE + 10 * SEC,
        s,
        host(40),
        8080,
        Outcome::Rejected,
        false,
    ));
    let (ev, _) = run(DetectConfig::default(), atts);
    let d = ends(&ev);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].detector.contains("trw"), "{}", d[0].detector);
}

#[test]
fn trw_shape_on_one_port_among_a_p2p_clients_many_is_not_a_scan() {
    // Peers on random ports, 8 of them on 51413, every first contact
    // silent: the failures on 51413 are a small part of the source's.
    let c = addr("10.1.0.66");
    let atts = (0..60u32)
        .map(|i| {
            let port = if i % 7 == 0 {
                51_413
            } else {
                10_000 + i as u16 * 577
            };
            att(
                i64::from(i) * 5 * SEC,
                c,
                host(i),
                port,
                Outcome::Unanswered,
                false,
            )
        })
        .collect();
    let (ev, _) = run(DetectConfig::default(), atts);
    assert!(ev.is_empty(), "{:?}", ends(&ev));
}

#[test]
fn a_contact_entry_is_72_bytes() {
    // The pipeline's CONTACT_WORST_BYTES (211 at 7/16 load, with the
    // per-target count) rests on this: key, counts, and the first probe's
    // header facts and source port for tool attribution.
    assert_eq!(
        std::mem::size_of::<(crate::Contact, crate::ContactInfo)>(),
        72
    );
}

/// Every event of a record tells the ports seen up to it and names their
/// set from them: a record keeps both between events while its ports do
/// not change, and must not hand an event the list of an earlier one. A
/// vertical scan over nmap's top 100 TCP ports, in their order, with a
/// door open now and then (each an event of its own, between updates).
#[test]
fn each_event_tells_the_ports_seen_so_far() {
    let s = addr("198.18.0.2");
    let t = addr("198.19.1.10");
    let top: Vec<u16> = crate::nmap_top::TCP[..100].to_vec();
    let atts: Vec<Attempt> = top
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let o = if i % 7 == 3 {
                Outcome::Answered
            } else {
                Outcome::Rejected
            };
            att(i as Micros * 1000 + 1000, s, t, p, o, false)
        })
        .collect();
    let (ev, _) = run(DetectConfig::default(), atts.clone());
    assert!(ev.len() >= 6, "{} events", ev.len());
    for e in &ev {
        let d = &e.detection;
        let mut seen: Vec<u16> = atts
            .iter()
            .filter(|a| a.time <= d.ts_last)
            .map(|a| a.dport)
            .collect();
        seen.sort_unstable();
        assert_eq!(d.ports, seen, "{:?} at {}", e.phase, d.ts_last);
        assert_eq!(d.port_count, seen.len() as u64);
        assert_eq!(d.port_set, crate::tool::port_set(proto::TCP, &seen));
    }
    let last = &ev[ev.len() - 1].detection;
    assert_eq!(
        (last.port_count, last.port_set.as_str()),
        (100, "nmap-top-100")
    );
    // Events with the same ports as the one before them (the open doors
    // found between updates) and events with more ports both occur.
    let counts: Vec<u64> = ev.iter().map(|e| e.detection.port_count).collect();
    assert!(counts.windows(2).any(|w| w[0] == w[1]), "{counts:?}");
    assert!(counts.windows(2).any(|w| w[0] < w[1]), "{counts:?}");
}

/// What a sweep forgets, and so a later verdict, depends on packet time
/// alone: the same attempts give the same scans however often the
/// detector is told that time moved on (the shard tells it at every step
/// of the workers' watermarks, which depend on the thread count). Here a
/// busy source of two days ago (its contacts overflowed into a sketch,
/// which no window can vouch for once it is older than the window) is
/// still held when its real scan starts unless a sweep came in between;
/// sweeping at whatever watermark came first made the scan depend on
/// those steps (one step for the whole input, as one worker gives, kept
/// the old sketch through the scan).
#[test]
fn a_scan_after_a_quiet_spell_is_the_same_whatever_the_watermark_steps() {
    let src = addr("203.0.113.9");
    let cfg = DetectConfig {
        max_contacts: 16,
        ..DetectConfig::default()
    };
    let mut atts: Vec<Attempt> = (0..40u32)
        .map(|i| {
            att(
                i64::from(i) * SEC,
                src,
                host(i),
                443,
                Outcome::Answered,
                true,
            )
        })
        .collect();
    let start = 2 * 86_400 * SEC + 30 * SEC;
    let target = host(500);
    atts.extend((0..30u16).map(|p| {
        att(
            start + i64::from(p) * SEC,
            src,
            target,
            1000 + p,
            Outcome::Rejected,
            false,
        )
    }));
    let last = atts.last().map_or(0, |a| a.time);
    let steps: [&[Micros]; 4] = [
        // At each attempt.
        &[],
        // Only once, after the last attempt (one worker, one batch).
        &[last],
        // Also once in the quiet spell (as a worker's watermark might).
        &[86_400 * SEC + 3_600 * SEC, last],
        // Just before the scan and within it.
        &[start - 1, start + 5 * SEC + 17, start + 12 * SEC, last],
    ];
    let mut seen = Vec::new();
    for (k, steps) in steps.iter().enumerate() {
        let mut d = Detector::new(cfg.clone()).unwrap();
        let mut ev = Vec::new();
        let mut steps = steps.iter().copied().peekable();
        for a in &atts {
            while let Some(t) = steps.next_if(|&t| t < a.time) {
                d.advance(t, &mut ev);
            }
            d.on_attempt(a, &mut ev);
            if k == 0 {
                d.advance(a.time, &mut ev);
            }
        }
        for t in steps {
            d.advance(t, &mut ev);
        }
        d.finish(&mut ev);
        let got: Vec<(Addr, ScanKind, u64, u64)> = ends(&ev)
            .iter()
            .map(|e| (e.scanner, e.kind, e.probes, e.dst_count))
            .collect();
        seen.push(got);
    }
    // The scan is found (with the 16-contact cap, from its 26 latest
    // probes), and the same whatever the steps: sweeping at the first
    // watermark past a minute found nothing at all with the single step.
    assert!(
        matches!(seen[0][..], [(s, ScanKind::Vertical, p, 1)] if s == src && p >= 20),
        "{seen:?}"
    );
    assert_eq!(seen[1], seen[0], "one step");
    assert_eq!(seen[2], seen[0], "a step in the quiet spell");
    assert_eq!(seen[3], seen[0], "steps within the scan");
}
