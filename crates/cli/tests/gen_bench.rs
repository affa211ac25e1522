//! `scanwatch gen` and `scanwatch bench` checked against each other and
//! against `scanwatch eval`: the generator's truth file is what detection
//! then finds; bench's counts match a hand count of the file, and its rates
//! fit the wall time measured around it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanwatch"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scanwatch-genbench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gen(dir: &Path, seed: u32) -> (PathBuf, u64) {
    let pcap = dir.join("mix.pcap");
    let o = bin()
        .args(["gen", "--flows", "20000", "--seed", &seed.to_string(), "-o"])
        .arg(&pcap)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // "scanwatch gen: 171492 packets, ..."
    let packets = err
        .split("scanwatch gen: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count in {err}"));
    (pcap, packets)
}

#[test]
fn gen_is_deterministic_by_seed_and_its_truth_is_what_eval_finds() {
    let d = tmp("truth");
    let (a, _) = gen(&d.join("a").tap_mkdir(), 4);
    let (b, _) = gen(&d.join("b").tap_mkdir(), 4);
    let (c, _) = gen(&d.join("c").tap_mkdir(), 5);
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(bytes(&a), bytes(&b), "same seed, same bytes");
    assert_ne!(bytes(&a), bytes(&c), "another seed, other bytes");

    let truth = std::fs::read_to_string(a.with_extension("pcap.truth.csv")).unwrap();
    let kinds: std::collections::BTreeSet<&str> = truth
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(2))
        .filter(|k| *k != "none")
        .collect();
    assert!(
        ["horizontal", "vertical", "block"]
            .iter()
            .all(|k| kinds.contains(k)),
        "{truth}"
    );
    let o = bin()
        .args(["eval", "--strict", "--json", "--truth"])
        .arg(a.with_extension("pcap.truth.csv"))
        .arg(&a)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let t = &v["total"];
    let scanners = t["scanners"].as_u64().unwrap();
    assert!(scanners >= 7, "{t}");
    assert_eq!(t["found"], t["scanners"], "{t}");
    assert_eq!(t["right_kind"], t["scanners"], "{t}");
    assert_eq!(t["false_alarms"].as_u64(), Some(0), "{t}");
}

/// Packets and wire bytes (the records' original lengths) of a classic pcap
/// file, counted here by walking its record headers: a count independent of
/// scanwatch's readers.
fn pcap_counts(path: &Path) -> (u64, u64) {
    let data = std::fs::read(path).unwrap();
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let le = match magic {
        0xA1B2_C3D4 | 0xA1B2_3C4D => true,
        0xD4C3_B2A1 | 0x4D3C_B2A1 => false,
        m => panic!("{}: not a classic pcap (magic {m:#x})", path.display()),
    };
    let u32_at = |off: usize| {
        let b: [u8; 4] = data[off..off + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let (mut off, mut packets, mut bytes) = (24usize, 0u64, 0u64);
    while off + 16 <= data.len() {
        let caplen = u32_at(off + 8) as usize;
        bytes += u64::from(u32_at(off + 12));
        packets += 1;
        off += 16 + caplen;
    }
    assert_eq!(off, data.len(), "{}: ends inside a record", path.display());
    (packets, bytes)
}

#[test]
fn bench_counts_match_a_hand_count_and_its_rates_fit_the_wall_time() {
    let d = tmp("bench");
    let (pcap, gen_packets) = gen(&d, 9);
    let (packets, bytes) = pcap_counts(&pcap);
    assert_eq!(gen_packets, packets, "gen's own count against the file");
    let truth = std::fs::read_to_string(pcap.with_extension("pcap.truth.csv")).unwrap();
    let scanners = truth
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2).is_some_and(|k| k != "none"))
        .count() as u64;
    assert!(scanners > 0, "{truth}");

    let cpu0 = children_cpu_seconds();
    let t0 = std::time::Instant::now();
    let o = bin()
        .args(["bench", "--json", "--threads-list", "1,2", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    // Every duration bench reports lies inside this one.
    let wall = t0.elapsed().as_secs_f64();
    let child_cpu = children_cpu_seconds() - cpu0;
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let f = |x: &serde_json::Value, k: &str| x[k].as_f64().unwrap_or_else(|| panic!("{k} in {x}"));

    // A rate is finite and positive, no packet takes less than a nanosecond,
    // and the time it implies for the hand-counted packets and bytes fits
    // in the wall time measured here; returns that implied time.
    let implied_seconds = |x: &serde_json::Value| {
        let (pps, gbps) = (f(x, "packets_per_sec"), f(x, "gbit_per_sec"));
        assert!(pps.is_finite() && pps > 0.0 && pps < 1e9, "{x}");
        assert!(gbps.is_finite() && gbps > 0.0, "{x}");
        let by_packets = packets as f64 / pps;
        let by_bytes = bytes as f64 * 8.0 / (gbps * 1e9);
        assert!(by_packets > 0.0 && by_packets <= wall, "wall {wall} s: {x}");
        // Both rates are over one duration: their quotient is the mean
        // packet size of the hand count.
        assert!(
            (by_bytes - by_packets).abs() <= 1e-6 * by_packets,
            "bytes/s and packets/s disagree with {bytes} bytes in {packets} packets: {x}"
        );
        by_packets
    };

    let plain = &v["plain_read"];
    assert_eq!(plain["packets"].as_u64(), Some(packets), "{v}");
    assert_eq!(plain["bytes"].as_u64(), Some(bytes), "{v}");
    let mut total = implied_seconds(plain);
    let runs = v["pipeline"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let mut stage_cpu = 0.0;
    for (r, threads) in runs.iter().zip([1u64, 2]) {
        // CPU per stage: one capture thread (one input), one output thread,
        // a flow worker per thread asked for, the default two shards; each
        // thread's own time, so the busiest is at most the stage's sum,
        // and the stages add up to the total.
        let c = &r["cpu_seconds"];
        for (stage, n) in [
            ("capture", 1),
            ("flow", threads),
            ("detect", 2),
            ("output", 1),
        ] {
            let s = &c[stage];
            assert_eq!(s["threads"].as_u64(), Some(n), "{stage}: {c}");
            assert_eq!(s["unread"].as_u64(), Some(0), "{stage}: {c}");
            let (sum, busiest) = (f(s, "seconds"), f(s, "busiest_seconds"));
            assert!(sum > 0.0 && busiest > 0.0 && busiest <= sum, "{stage}: {c}");
        }
        let parts: f64 = ["capture", "flow", "detect", "output"]
            .iter()
            .map(|k| f(&c[*k], "seconds"))
            .sum();
        assert!((parts - f(c, "total")).abs() < 1e-9, "{c}");
        stage_cpu += parts;
    }
    // The threads' CPU is part of the process's, as the kernel counted it
    // for the child (getrusage; a tick of slack for its rounding).
    assert!(
        stage_cpu <= child_cpu + 0.02,
        "stages {stage_cpu} s of CPU, the process {child_cpu} s: {v}"
    );
    for r in runs {
        assert_eq!(r["packets"].as_u64(), Some(packets), "{r}");
        assert_eq!(r["bytes"].as_u64(), Some(bytes), "{r}");
        total += implied_seconds(r);
        let ratio = f(r, "ratio_to_plain_read");
        assert!(ratio.is_finite() && ratio > 0.0, "{r}");
        let l = &r["latency_us"];
        let (p50, p99, p999, max) = (f(l, "p50"), f(l, "p99"), f(l, "p999"), f(l, "max"));
        assert!(0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max, "{l}");
        assert!(
            max <= wall * 1e6,
            "a batch cannot wait longer than the process ran ({wall} s): {r}"
        );
        // Every scanner of the truth file is detected at least once, and
        // the same file gives the same results whatever the thread count.
        assert!(r["detections"].as_u64().unwrap() >= scanners, "{r}");
        assert!(r["flows"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["flows"], runs[0]["flows"], "{v}");
        assert_eq!(r["detections"], runs[0]["detections"], "{v}");
    }
    // The three timed runs are sequential inside the process.
    assert!(
        total <= wall,
        "runs take {total} s of a {wall} s process: {v}"
    );
    assert!(v["peak_rss_bytes"].as_u64().unwrap() > 0);
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// Every alert line (sorted) and every detections row (scanner, kind, id,
/// counts, sources; sorted) of a run of `pcap` at `threads`.
fn run_rows(pcap: &Path, out: &Path, threads: u32) -> (Vec<String>, Vec<String>) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::UInt64Type;
    use arrow_array::Array;
    let _ = std::fs::remove_dir_all(out);
    let o = bin()
        .args(["run", "-q", "--threads", &threads.to_string(), "-r"])
        .arg(pcap)
        .arg("-w")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut alerts: Vec<String> = std::fs::read_to_string(out.join("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    alerts.sort();
    let mut rows = Vec::new();
    let mut stack = vec![out.join("detections")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let r = arrow_ipc::reader::FileReader::try_new(std::fs::File::open(&p).unwrap(), None)
                .unwrap();
            for b in r {
                let b = b.unwrap();
                let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
                let probes = b
                    .column_by_name("probes")
                    .unwrap()
                    .as_primitive::<UInt64Type>()
                    .clone();
                let sources = b
                    .column_by_name("sources")
                    .unwrap()
                    .as_list::<i32>()
                    .clone();
                let (scanner, kind, id) = (s("scanner"), s("kind"), s("detection_id"));
                for i in 0..b.num_rows() {
                    let src = sources.value(i);
                    let src = src.as_string::<i32>();
                    let list: Vec<&str> = (0..src.len()).map(|k| src.value(k)).collect();
                    rows.push(format!(
                        "{} {} {} {} {}",
                        scanner.value(i),
                        kind.value(i),
                        id.value(i),
                        probes.value(i),
                        list.join(",")
                    ));
                }
            }
        }
    }
    rows.sort();
    (alerts, rows)
}

#[test]
fn distributed_profile_is_one_distributed_record_the_same_at_1_2_and_4_threads() {
    let d = tmp("distributed");
    let pcap = d.join("dist.pcap");
    let o = bin()
        .args([
            "gen",
            "--profile",
            "distributed",
            "--flows",
            "20000",
            "--seed",
            "7",
            "-o",
        ])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let one = run_rows(&pcap, &d.join("t1"), 1);
    // One record: the five sources together, none flagged alone, and not
    // the 50 clients of the server with closed ports either.
    let sources = "198.18.0.31,198.18.0.32,198.18.0.33,198.18.0.34,198.18.0.35";
    assert_eq!(one.1.len(), 1, "{:#?}", one.1);
    let row = &one.1[0];
    assert!(
        row.contains(" distributed ") && row.ends_with(&format!(" 60 {sources}")),
        "{row}"
    );
    assert!(one.0.iter().all(|l| l.contains("\"kind\":\"distributed\"")));
    assert!(one.0.iter().any(|l| l.contains(&format!(
        "\"sources\":[\"{}\"]",
        sources.replace(',', "\",\"")
    ))));
    for threads in [2, 4] {
        let other = run_rows(&pcap, &d.join(format!("t{threads}")), threads);
        assert_eq!(one, other, "{threads} threads");
    }
    // And eval scores each source as found, with the right kind.
    let o = bin()
        .args(["eval", "--strict", "--json", "--truth"])
        .arg(pcap.with_extension("pcap.truth.csv"))
        .arg(&pcap)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["total"]["scanners"], 5, "{v}");
    assert_eq!(v["total"]["right_kind"], 5, "{v}");
    assert_eq!(v["total"]["false_alarms"], 0, "{v}");
}

/// CPU seconds (user and system) of this process's children that have
/// ended and been waited for.
fn children_cpu_seconds() -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter for getrusage.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is valid and writable for the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    assert_eq!(rc, 0, "getrusage");
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}
