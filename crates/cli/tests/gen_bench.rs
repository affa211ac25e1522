//! `scanwatch gen` and `scanwatch bench` checked against each other and
//! against `scanwatch eval`: the generator's truth file is what detection
//! then finds, and bench's figures add up.

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

#[test]
fn bench_figures_are_consistent() {
    let d = tmp("bench");
    let (pcap, packets) = gen(&d, 9);
    let o = bin()
        .args(["bench", "--json", "--threads-list", "1,2", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let f = |x: &serde_json::Value, k: &str| x[k].as_f64().unwrap_or_else(|| panic!("{k} in {x}"));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0);

    let plain = &v["plain_read"];
    assert_eq!(plain["packets"].as_u64(), Some(packets), "{v}");
    let runs = v["pipeline"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert_eq!(r["packets"].as_u64(), Some(packets), "{r}");
        assert_eq!(r["bytes"], plain["bytes"], "{r}");
        assert!(
            close(f(r, "packets_per_sec"), f(r, "packets") / f(r, "seconds")),
            "{r}"
        );
        assert!(
            close(
                f(r, "gbit_per_sec"),
                f(r, "bytes") * 8.0 / f(r, "seconds") / 1e9
            ),
            "{r}"
        );
        assert!(
            close(
                f(r, "ratio_to_plain_read"),
                f(r, "packets_per_sec") / f(plain, "packets_per_sec")
            ),
            "{r}"
        );
        let l = &r["latency_us"];
        let (p50, p99, p999, max) = (f(l, "p50"), f(l, "p99"), f(l, "p999"), f(l, "max"));
        assert!(0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max, "{l}");
        assert!(
            max <= f(r, "seconds") * 1e6 + 1.0,
            "a batch cannot wait longer than the run: {r}"
        );
        // Same file, same results, whatever the thread count.
        assert_eq!(r["flows"], runs[0]["flows"], "{v}");
        assert_eq!(r["detections"], runs[0]["detections"], "{v}");
    }
    assert!(close(
        f(plain, "packets_per_sec"),
        f(plain, "packets") / f(plain, "seconds")
    ));
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
