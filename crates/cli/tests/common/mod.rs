//! Helpers the integration tests share: the binary, the repository root,
//! a fresh scratch folder, a process's output as text, a folder's files.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanwatch"))
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An empty folder of this test process, `name` apart.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scanwatch-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file below `d`, sorted.
pub fn walk(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(walk(&p));
            } else {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// Each scan's last alert in `alerts` (JSON lines) as one line of its facts:
/// scanner, kind, proto, dst_count, port_count, probes, answered, rejected,
/// unanswered, open doors; sorted.
pub fn scan_ends(alerts: &str) -> Vec<String> {
    let mut v: Vec<String> = alerts
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|a| a["alert"]["context"]["scan"]["phase"] == "end")
        .map(|a| {
            let s = &a["alert"]["context"]["scan"];
            format!(
                "{} {} {} {} {} {} {} {} {} {}",
                a["src_ip"],
                s["kind"],
                s["proto"],
                s["dst_count"],
                s["port_count"],
                s["probes"],
                s["answered"],
                s["rejected"],
                s["unanswered"],
                s["open"]
            )
        })
        .collect();
    v.sort();
    v
}
