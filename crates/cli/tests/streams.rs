//! What the binary does with its output streams and bad arguments: alerts on
//! stdout carry nothing else and survive a reader that goes away; a bad
//! filter fails before any output is made.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
mod common;
use common::*;

fn pcap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../pcaps")
        .join(name)
}

#[test]
fn alerts_on_stdout_are_the_only_thing_there_and_every_line_parses() {
    let d = tmpdir("jq");
    let o = bin()
        .args(["run", "-r"])
        .arg(pcap("nmap_syn_block_20hosts_8ports.pcap"))
        .arg("-r")
        .arg(pcap("nmap_fin_vertical_top200.pcap"))
        .arg("-w")
        .arg(d.join("out"))
        .args(["--alerts", "-"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 2, "{out}");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(
            v["timestamp"].is_string() && v["src_ip"] == "198.18.0.2",
            "{l}"
        );
    }
    // The human lines went to stderr.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("block tcp scan") && err.contains("scanwatch: "),
        "{err}"
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_run_cleanly() {
    let d = tmpdir("pipe");
    // A capture with many alerts: a mixed generated capture.
    let g = d.join("g.pcap");
    let o = bin()
        .args(["gen", "--flows", "20000", "--seed", "3", "-o"])
        .arg(&g)
        .output()
        .unwrap();
    assert!(o.status.success());
    // With the stats printer running too: it must not hold the run up or
    // write to the closed pipe.
    let mut child = bin()
        .args(["run", "--threads", "1", "-r"])
        .arg(&g)
        .arg("-w")
        .arg(d.join("out"))
        .args(["--alerts", "-", "--stats-every", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        let stdout = child.stdout.take().unwrap();
        let mut r = BufReader::new(stdout);
        r.read_line(&mut first).unwrap();
        // Dropping the reader closes the pipe, as `| head -1` does.
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(first.starts_with('{'), "{first}");
    assert!(!err.contains("panicked"), "{err}");
    let code = o.status.code();
    assert!(code == Some(141) || code == Some(0), "{code:?}: {err}");
    // Whatever was written is complete: no part left under .tmp.
    let mut tmp = Vec::new();
    let mut stack = vec![d.join("out")];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            let q = e.path();
            if q.is_dir() {
                stack.push(q);
            } else if q.extension().is_some_and(|x| x == "tmp") {
                tmp.push(q);
            }
        }
    }
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn a_bad_filter_on_a_file_fails_before_any_output() {
    let d = tmpdir("bpf");
    let out = d.join("out");
    let o = bin()
        .args(["run", "-r"])
        .arg(pcap("nmap_syn_vertical_1-1000.pcap"))
        .arg("-w")
        .arg(&out)
        .args(["tcp", "port", "nonsense"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("invalid BPF filter"), "{err}");
    assert!(!err.contains("everything before"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        !out.exists(),
        "no output folder for a run that never started"
    );
}
