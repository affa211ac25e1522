//! Retention and compaction through the binary, on a generated capture of
//! about 3.5 days of packet time (the pytest `tests/test_retention.py`
//! compares rows with pyarrow and runs a writer beside `compact`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_scanwatch");
const START: i64 = 1_790_000_000;

fn sw(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run scanwatch")
}

fn ok(args: &[&str]) -> Output {
    let out = sw(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scanwatch-retention-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// (table, date, hour) of every partition of a tree, sorted.
fn partitions(out: &Path) -> Vec<(String, String, String)> {
    let mut v = Vec::new();
    for table in ["flows", "detections"] {
        let Ok(days) = std::fs::read_dir(out.join(table)) else {
            continue;
        };
        for d in days.flatten() {
            let date = d.file_name().to_string_lossy().into_owned();
            for h in std::fs::read_dir(d.path()).expect("date dir").flatten() {
                let hour = h.file_name().to_string_lossy().into_owned();
                v.push((table.to_string(), date.clone(), hour));
            }
        }
    }
    v.sort();
    v
}

/// Hours since the epoch of `date=YYYY-MM-DD`, `hour=HH`.
fn hour_index(date: &str, hour: &str) -> i64 {
    let d: Vec<i64> = date[5..]
        .split('-')
        .map(|x| x.parse().expect("date"))
        .collect();
    let days = scanwatch_sink::retention::days_from_civil(d[0], d[1] as u32, d[2] as u32);
    days * 24 + hour[5..].parse::<i64>().expect("hour")
}

/// The newest packet time (µs) of a classic little-endian µs pcap.
fn last_packet_us(pcap: &Path) -> i64 {
    let b = std::fs::read(pcap).expect("pcap");
    let (mut off, mut newest) = (24usize, 0i64);
    let u32_at = |o: usize| i64::from(u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]));
    while off + 16 <= b.len() {
        newest = newest.max(u32_at(off) * 1_000_000 + u32_at(off + 4));
        off += 16 + u32_at(off + 8) as usize;
    }
    newest
}

#[test]
fn retain_days_removes_exactly_the_hours_older_than_the_window() {
    let d = tmp("days");
    let pcap = d.join("g.pcap");
    let (p, full, kept) = (pcap.to_str().expect("utf8"), d.join("full"), d.join("kept"));
    ok(&[
        "gen",
        "-o",
        p,
        "--flows",
        "1500",
        "--active",
        "10",
        "--rate",
        "0.005",
        "--start",
        &START.to_string(),
    ]);
    ok(&["run", "-q", "-r", p, "-w", full.to_str().expect("utf8")]);
    let out = ok(&[
        "run",
        "-q",
        "-r",
        p,
        "-w",
        kept.to_str().expect("utf8"),
        "--retain-days",
        "1.5",
    ]);
    let all = partitions(&full);
    let cutoff = last_packet_us(&pcap) - 36 * 3_600_000_000;
    let (gone, left): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|(_, date, hour)| (hour_index(date, hour) + 1) * 3_600_000_000 <= cutoff);
    assert!(gone.len() > 20 && left.len() > 20, "{} gone", gone.len());
    assert_eq!(partitions(&kept), left);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = stderr
        .lines()
        .filter(|l| l.contains("retention: removed"))
        .count();
    assert_eq!(lines, gone.len(), "{stderr}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn compact_refuses_a_day_with_a_part_being_written_then_merges_it() {
    let d = tmp("compact");
    let pcap = d.join("g.pcap");
    let p = pcap.to_str().expect("utf8");
    let out = d.join("out");
    let o = out.to_str().expect("utf8");
    ok(&[
        "gen",
        "-o",
        p,
        "--flows",
        "600",
        "--active",
        "10",
        "--rate",
        "0.005",
        "--start",
        &START.to_string(),
    ]);
    ok(&["run", "-q", "-r", p, "-w", o]);
    let day = out.join("flows/date=2026-09-22");
    let hours = std::fs::read_dir(&day).expect("day").count();
    assert!(hours > 1);
    let tmp_part = day.join("hour=05/part-00009.arrow.tmp");
    std::fs::write(&tmp_part, b"").expect("tmp part");
    let r = sw(&["compact", o, "--day", "2026-09-22", "--table", "flows"]);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(".tmp"), "{err}");
    assert_eq!(std::fs::read_dir(&day).expect("day").count(), hours);
    std::fs::remove_file(&tmp_part).expect("rm tmp");
    ok(&["compact", o, "--day", "2026-09-22", "--table", "flows"]);
    let left: Vec<_> = std::fs::read_dir(&day)
        .expect("day")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["hour=all".to_string()]);
    // The other days and the detections of that day are as they were.
    assert!(out.join("flows/date=2026-09-21/hour=23").is_dir());
    if let Ok(rd) = std::fs::read_dir(out.join("detections/date=2026-09-22")) {
        assert!(rd.flatten().all(|e| e.file_name() != "hour=all"));
    }
    let again = ok(&["compact", o, "--day", "2026-09-22", "--table", "flows"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already compacted"));
    let _ = std::fs::remove_dir_all(&d);
}
