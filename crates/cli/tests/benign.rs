//! The busy benign hosts of DESIGN §4 (`scanwatch gen --profile …`) through
//! the real pipeline (`scanwatch eval`): at every failure share from 0 to
//! 60% and 20 seeds each, the busy host is never flagged (nor anything else
//! in its traffic), while the real scan hidden in the same traffic is found
//! with the right kind.

use std::path::{Path, PathBuf};
use std::process::Command;

const PROFILES: [&str; 8] = [
    "resolver",
    "mta",
    "link-checker",
    "nat-gateway",
    "bittorrent",
    "ntp-client",
    "health-check",
    "monitoring-poller",
];

const SHARES: [&str; 7] = ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6"];

const SEEDS: u64 = 20;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanwatch"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scanwatch-benign-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes one capture and returns its truth rows (header left off).
fn gen(dir: &Path, profile: &str, share: &str, seed: u64, extra: &[&str]) -> Vec<String> {
    let pcap = dir.join(format!("{profile}-{share}-{seed:02}.pcap"));
    let o = bin()
        .args(["gen", "--profile", profile, "--fail-share", share])
        .args(["--seed", &seed.to_string()])
        .args(extra)
        .arg("-o")
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let truth = pcap.with_extension("pcap.truth.csv");
    let rows = std::fs::read_to_string(&truth).unwrap();
    std::fs::remove_file(&truth).unwrap();
    rows.lines().skip(1).map(str::to_string).collect()
}

/// `scanwatch eval --json` over a directory: per file (name, scanners,
/// found, right kind, false alarms).
fn eval(dir: &Path, rows: &[String]) -> Vec<(String, u64, u64, u64, u64)> {
    let truth = dir.join("truth.csv");
    let mut text = String::from("pcap,scanner_ip,scan_type,protocol,targets,ports,tool,command\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(&truth, text).unwrap();
    let o = bin()
        .args(["eval", "--json", "--truth"])
        .arg(&truth)
        .arg(dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let n = |k: &str| f[k].as_u64().unwrap();
            (
                f["file"].as_str().unwrap().to_string(),
                n("scanners"),
                n("found"),
                n("right_kind"),
                n("false_alarms"),
            )
        })
        .collect()
}

#[test]
fn busy_benign_hosts_are_quiet_and_the_scan_hidden_in_them_is_found() {
    let d = tmp("matrix");
    let jobs: Vec<(&str, &str, u64)> = PROFILES
        .iter()
        .flat_map(|p| {
            SHARES
                .iter()
                .flat_map(move |s| (1..=SEEDS).map(move |seed| (*p, *s, seed)))
        })
        .collect();
    // Two writers at once (the machine's cores); the detector runs once
    // over all of them.
    let rows: Vec<String> = std::thread::scope(|sc| {
        let (a, b) = jobs.split_at(jobs.len() / 2);
        let d = &d;
        let hs: Vec<_> = [a, b]
            .into_iter()
            .map(|part| {
                sc.spawn(move || {
                    part.iter()
                        .flat_map(|(p, s, seed)| gen(d, p, s, *seed, &[]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    // Each file: the busy host's `none` row and one scanner.
    assert_eq!(rows.len(), 2 * jobs.len());
    let files = eval(&d, &rows);
    assert_eq!(files.len(), jobs.len());
    let mut bad = Vec::new();
    for (name, scanners, found, right, false_alarms) in &files {
        assert_eq!(*scanners, 1, "{name}");
        if *found != 1 || *right != 1 || *false_alarms != 0 {
            bad.push(format!(
                "{name}: found {found}, right kind {right}, false alarms {false_alarms}"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {}:\n{}",
        bad.len(),
        files.len(),
        bad.join("\n")
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn busy_profiles_are_deterministic_and_the_hidden_scan_can_be_left_out() {
    let d = tmp("det");
    for p in PROFILES {
        let a = d.join("a").join(p);
        let b = d.join("b").join(p);
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        gen(&a, p, "0.4", 7, &[]);
        gen(&b, p, "0.4", 7, &[]);
        let bytes = |dir: &Path| std::fs::read(dir.join(format!("{p}-0.4-07.pcap"))).unwrap();
        assert_eq!(bytes(&a), bytes(&b), "{p}: same seed, same bytes");
        let alone = d.join("alone").join(p);
        std::fs::create_dir_all(&alone).unwrap();
        let rows = gen(&alone, p, "0.4", 7, &["--hidden-scan", "false"]);
        assert_eq!(rows.len(), 1, "{p}: {rows:?}");
        assert!(rows[0].contains(",none,"), "{p}: {rows:?}");
        let files = eval(&alone, &rows);
        assert_eq!(files.len(), 1);
        assert_eq!((files[0].1, files[0].4), (0, 0), "{p}: {files:?}");
    }
    let o = bin()
        .args(["gen", "--profile", "resolver", "--fail-share", "0.7", "-o"])
        .arg(d.join("x.pcap"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("0.0 to 0.6"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&d);
}
