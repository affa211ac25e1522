//! The committed broken captures of `pcaps/broken/` (made by
//! `scripts/make-broken.py`): each one's exit code, message, and what was
//! kept, as its row of `pcaps/broken/expect.csv` says (the table the replay
//! test and `tests/test_output.py` read too).

use scanwatch_fuzz_bodies::broken;
use std::process::Command;
mod common;
use common::*;

/// Packets, IP packets, undecodable packets and flows from the summary line.
fn summary(stderr: &str) -> Option<[u64; 4]> {
    let line = stderr.lines().find(|l| l.contains(" packets ("))?;
    let num_before = |word: &str| -> Option<u64> {
        let i = line.find(word)?;
        let head = line[..i].trim_end();
        let start = head
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |j| j + 1);
        head[start..].parse().ok()
    };
    Some([
        num_before(" packets (")?,
        num_before(" IP,")?,
        num_before(" undecodable")?,
        num_before(" flows;")?,
    ])
}

#[test]
fn every_broken_file_has_a_row_and_every_row_a_file() {
    let rows: Vec<String> = broken::cases()
        .unwrap()
        .into_iter()
        .map(|c| c.file)
        .collect();
    let mut sorted = rows.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), rows.len(), "a file has two rows: {rows:?}");
    assert_eq!(
        broken::files_on_disk().unwrap(),
        sorted,
        "pcaps/broken/ against pcaps/broken/expect.csv"
    );
}

#[test]
fn every_broken_file_behaves_as_its_row_says() {
    let cases = broken::cases().unwrap();
    assert!(!cases.is_empty());
    for c in &cases {
        let out = std::env::temp_dir().join(format!(
            "scanwatch-broken-{}-{}",
            std::process::id(),
            c.file
        ));
        let _ = std::fs::remove_dir_all(&out);
        let o = Command::new(env!("CARGO_BIN_EXE_scanwatch"))
            .arg("run")
            .arg("-r")
            .arg(c.path())
            .arg("-w")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let ctx = format!("{}: status {:?}\n{err}", c.file, o.status.code());
        assert!(!err.contains("panicked"), "{ctx}");
        assert_eq!(o.status.code(), Some(c.exit), "{ctx}");
        assert!(err.contains(&c.message), "{ctx}");
        match c.counts {
            None => {
                // Nothing readable: a single line, nothing written.
                assert_eq!(err.trim().lines().count(), 1, "{ctx}");
                assert!(walk(&out.join("flows")).is_empty(), "{ctx}");
            }
            Some(n) => {
                let counts = [n.packets, n.ip, n.undecodable, n.flows];
                assert_eq!(summary(&err), Some(counts), "{ctx}");
                // What was read is written, under final names only.
                let files = walk(&out.join("flows"));
                assert_eq!(files.len(), 1, "{ctx} {files:?}");
                assert!(files[0].extension().is_some_and(|e| e == "arrow"), "{ctx}");
                let bytes = std::fs::read(&files[0]).unwrap();
                assert!(
                    bytes.starts_with(b"ARROW1") && bytes.ends_with(b"ARROW1"),
                    "{ctx}"
                );
            }
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}
