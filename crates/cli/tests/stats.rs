//! What a long run tells as it goes, and how it lets logrotate move its
//! files: periodic stats on a file run (rates per interval), alerts on
//! stdout kept apart from the stats lines and warnings, and SIGHUP
//! reopening `alerts.jsonl` and `stats.jsonl` after they were moved away.
//!
//! Both feed a capture through `-r -` slowly, as a long replay would arrive,
//! so the run lasts a few seconds of wall time whatever the machine's speed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
mod common;
use common::*;

fn pcap(name: &str) -> PathBuf {
    root().join("pcaps").join(name)
}

/// A classic little-endian pcap: its 24-byte header and its records.
fn records(path: &Path) -> (Vec<u8>, Vec<Vec<u8>>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian µs pcap");
    let mut v = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let incl = u32::from_le_bytes(b[i + 8..i + 12].try_into().unwrap()) as usize;
        v.push(b[i..i + 16 + incl].to_vec());
        i += 16 + incl;
    }
    assert_eq!(i, b.len(), "whole records");
    (b[..24].to_vec(), v)
}

/// The record with its time moved `secs` later.
fn shifted(rec: &[u8], secs: u32) -> Vec<u8> {
    let mut r = rec.to_vec();
    let t = u32::from_le_bytes(r[..4].try_into().unwrap()) + secs;
    r[..4].copy_from_slice(&t.to_le_bytes());
    r
}

fn lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits (at most `secs`) until `f` holds.
fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Closes stdin and waits for the run to end (at most 60 s, else killed).
fn finish(mut child: Child) -> std::process::Output {
    drop(child.stdin.take());
    let pid = child.id();
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("scanwatch (pid {pid}) did not end within 60 s of the end of its input");
}

#[test]
fn stats_on_a_file_run_are_per_interval_and_readable() {
    let d = tmpdir("stats");
    let out = d.join("out");
    let (head, recs) = records(&pcap("nmap_syn_vertical_1-1000.pcap"));
    let mut child = bin()
        .args(["run", "--threads", "1", "-r", "-", "-w"])
        .arg(&out)
        .args(["--stats-every", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(&head).unwrap();
        // Three parts 1.3 s apart: at least two stats lines in between.
        for part in recs.chunks(recs.len().div_ceil(3)) {
            for r in part {
                stdin.write_all(r).unwrap();
            }
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(1300));
        }
    }
    let o = finish(child);
    assert!(o.status.success(), "{}", text(&o));
    let stats = lines(&out.join("stats.jsonl"));
    let periodic = stats.iter().filter(|s| s["kind"] == "periodic").count();
    assert!(periodic >= 2, "{stats:?}");
    assert_eq!(stats.last().unwrap()["kind"], "exit", "{stats:?}");
    for s in &stats {
        for f in [
            "timestamp",
            "packet_time",
            "received",
            "received_bytes",
            "kernel_received",
            "kernel_dropped",
            "if_dropped",
            "queue_drops",
            "skipped_at_start",
            "flows_active",
            "flows_ended",
            "flows_evicted",
            "sources_evicted",
            "outliers",
            "active_scans",
            "active_scans_by_direction",
            "detections",
        ] {
            assert!(!s[f].is_null(), "{f} missing: {s}");
        }
        for f in [
            "secs",
            "packets",
            "bytes",
            "packets_per_sec",
            "bytes_per_sec",
        ] {
            assert!(s["interval"][f].is_number(), "interval.{f} missing: {s}");
        }
    }
    // Rates are per interval: each record's packets are the growth of the
    // total since the record before, and they add up to the whole capture.
    let mut before = 0;
    let mut sum = 0;
    for s in &stats {
        let total = s["received"].as_u64().unwrap();
        let step = s["interval"]["packets"].as_u64().unwrap();
        assert_eq!(total - before, step, "{s}");
        before = total;
        sum += step;
    }
    assert_eq!(sum, recs.len() as u64);
    assert!(
        stats
            .iter()
            .filter(|s| s["interval"]["packets"].as_u64() > Some(0))
            .count()
            >= 2,
        "the packets came in at least two intervals: {stats:?}"
    );
    // The line for a person is on stderr, with the same facts.
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("scanwatch: stats "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("packets/s") && line.contains("flows active") && line.contains("packet time"),
        "{line}"
    );
}

#[test]
fn sighup_after_a_move_writes_new_alerts_and_stats_files() {
    let d = tmpdir("hup");
    let out = d.join("out");
    let (alerts, stats) = (out.join("alerts.jsonl"), out.join("stats.jsonl"));
    let (moved_alerts, moved_stats) = (d.join("alerts.jsonl.1"), d.join("stats.jsonl.1"));
    let (head, recs) = records(&pcap("nmap_syn_vertical_1-1000.pcap"));
    // First the scan, and a few of its probes again 10 s later: packet time
    // moves on, so its flows end and the start alert comes out while the
    // input is still open. After the move and HUP, the same scan again an
    // hour later: a second scan, the first having ended (--scan-idle 60).
    const LATER: u32 = 3600;
    let part1: Vec<Vec<u8>> = recs
        .iter()
        .cloned()
        .chain(recs[..50].iter().map(|r| shifted(r, 10)))
        .collect();
    let part2: Vec<Vec<u8>> = recs.iter().map(|r| shifted(r, LATER)).collect();
    let mut child = bin()
        .args(["run", "--threads", "1", "-r", "-", "-w"])
        .arg(&out)
        .args([
            "--stats-every",
            "1",
            "--reorder-window",
            "0",
            "--scan-idle",
            "60",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(&head).unwrap();
        for r in &part1 {
            stdin.write_all(r).unwrap();
        }
        stdin.flush().unwrap();
    }
    // The first scan's start alert, and a stats record, are out.
    assert!(
        wait_for(30, || !lines(&alerts).is_empty()
            && !lines(&stats).is_empty()),
        "no alert or stats line while the input is open"
    );
    // As logrotate does: move the files, then HUP.
    std::fs::rename(&alerts, &moved_alerts).unwrap();
    std::fs::rename(&stats, &moved_stats).unwrap();
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    // The reopen makes the file again at once, before any new alert.
    assert!(
        wait_for(10, || alerts.exists()),
        "alerts.jsonl not reopened"
    );
    {
        let stdin = child.stdin.as_mut().unwrap();
        for r in &part2 {
            stdin.write_all(r).unwrap();
        }
        stdin.flush().unwrap();
    }
    // A stats record lands in the new stats.jsonl while the run goes on.
    assert!(
        wait_for(10, || !lines(&stats).is_empty()),
        "no new stats.jsonl"
    );
    let o = finish(child);
    assert!(o.status.success(), "{}", text(&o));

    // Packet time where the second copy starts.
    let t0 = u32::from_le_bytes(recs[0][..4].try_into().unwrap());
    let second = scanwatch_model::eve_timestamp(i64::from(t0 + LATER) * 1_000_000);
    let old = lines(&moved_alerts);
    let new = lines(&alerts);
    assert!(!old.is_empty() && !new.is_empty(), "{old:?}\n{new:?}");
    for a in &old {
        let ts = a["timestamp"].as_str().unwrap();
        assert!(
            ts < second.as_str(),
            "an alert after the move in the moved file: {a}"
        );
    }
    assert!(
        new.iter()
            .any(|a| a["timestamp"].as_str().unwrap() >= second.as_str()),
        "the second scan's alerts are in the new alerts.jsonl: {new:?}"
    );
    // Nothing lost or doubled: the moved and new files hold every alert once.
    let again = d.join("again");
    let mut whole = bin()
        .args(["run", "--threads", "1", "-r", "-", "-w"])
        .arg(&again)
        .args(["--reorder-window", "0", "--scan-idle", "60", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let stdin = whole.stdin.as_mut().unwrap();
        stdin.write_all(&head).unwrap();
        for r in part1.iter().chain(&part2) {
            stdin.write_all(r).unwrap();
        }
    }
    let w = finish(whole);
    assert!(w.status.success(), "{}", text(&w));
    assert_eq!(
        old.len() + new.len(),
        lines(&again.join("alerts.jsonl")).len()
    );
    // Stats: the moved file kept its records, the new one has the rest,
    // ending with the exit record.
    let (old_stats, new_stats) = (lines(&moved_stats), lines(&stats));
    assert!(!old_stats.is_empty());
    assert_eq!(new_stats.last().unwrap()["kind"], "exit", "{new_stats:?}");
}

#[test]
fn alerts_on_stdout_stay_alone_with_stats_lines_and_warnings() {
    let d = tmpdir("clean");
    let out = d.join("out");
    let (head, recs) = records(&pcap("nmap_syn_vertical_1-1000.pcap"));
    // A packet dated 1970: an outlier, so a warning is printed too.
    let mut stale = recs[0].clone();
    stale[..4].copy_from_slice(&0u32.to_le_bytes());
    let mut child = bin()
        .args(["run", "--threads", "1", "-r", "-", "-w"])
        .arg(&out)
        .args(["--alerts", "-", "--stats-every", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(&head).unwrap();
        let half = recs.len() / 2;
        for r in &recs[..half] {
            stdin.write_all(r).unwrap();
        }
        stdin.write_all(&stale).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2300));
        for r in &recs[half..] {
            stdin.write_all(r).unwrap();
        }
    }
    let o = finish(child);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    // Everything a person reads went to stderr...
    assert!(err.contains("scanwatch: stats "), "{err}");
    assert!(
        err.contains("scanwatch: warning: 1 packets left out"),
        "{err}"
    );
    assert!(err.contains("vertical tcp scan"), "{err}");
    // ...and stdout is alert lines only, each one JSON (as `jq -c .` wants).
    assert!(!stdout.is_empty());
    for l in stdout.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{stdout}"));
        assert!(v["src_ip"].is_string() && v["event_type"] != "stats", "{l}");
    }
}
