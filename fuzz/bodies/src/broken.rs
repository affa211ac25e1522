//! The expected behaviour of `scanwatch run -r FILE` on each broken capture
//! of `pcaps/broken/`, read from `pcaps/broken/expect.csv`: the one table
//! that `crates/cli/tests/broken.rs` (the command), the replay test
//! (the in-memory reader) and `tests/test_output.py` (pyarrow) check.
//!
//! Columns: `file`, `exit` (the command's status; 1 exactly when reading
//! stops at an error), `message` (a part of the error line, empty when
//! none), and the summary's `packets`, `ip`, `undecodable`, `flows` (all
//! empty when nothing could be read). No field holds a comma or a quote.

use std::path::{Path, PathBuf};

/// The summary counts of a run that read something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Packets read (the reader handed out this many).
    pub packets: u64,
    /// Of which IPv4/IPv6 packets (in flows).
    pub ip: u64,
    pub undecodable: u64,
    pub flows: u64,
}

/// One row of `expect.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub file: String,
    pub exit: i32,
    pub message: String,
    /// None when nothing could be read.
    pub counts: Option<Counts>,
}

impl Case {
    pub fn path(&self) -> PathBuf {
        dir().join(&self.file)
    }
}

/// `pcaps/broken/` of this checkout.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pcaps/broken")
}

/// The table's own file name, and the folder's notes: the only files of
/// `pcaps/broken/` that are not broken captures.
pub const NOT_CAPTURES: [&str; 2] = ["expect.csv", "README.md"];

/// Every file of `pcaps/broken/` but [`NOT_CAPTURES`], sorted by name.
pub fn files_on_disk() -> Result<Vec<String>, String> {
    let d = dir();
    let rd = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    let mut v: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !NOT_CAPTURES.contains(&n.as_str()))
        .collect();
    v.sort();
    Ok(v)
}

/// The rows of `pcaps/broken/expect.csv`, in file order.
pub fn cases() -> Result<Vec<Case>, String> {
    let path = dir().join("expect.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines().enumerate();
    const HEADER: &str = "file,exit,message,packets,ip,undecodable,flows";
    match lines.next() {
        Some((_, h)) if h == HEADER => {}
        other => {
            return Err(format!(
                "{}: header must be {HEADER}, is {other:?}",
                path.display()
            ))
        }
    }
    let mut cases = Vec::new();
    for (i, line) in lines.filter(|(_, l)| !l.is_empty()) {
        let at = || format!("{} line {}", path.display(), i + 1);
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 7 || line.contains('"') {
            return Err(format!("{}: want 7 plain fields: {line}", at()));
        }
        let num = |s: &str| {
            s.parse::<u64>()
                .map_err(|e| format!("{}: {s:?}: {e}", at()))
        };
        let counts = if f[3..].iter().all(|s| s.is_empty()) {
            None
        } else {
            Some(Counts {
                packets: num(f[3])?,
                ip: num(f[4])?,
                undecodable: num(f[5])?,
                flows: num(f[6])?,
            })
        };
        cases.push(Case {
            file: f[0].to_string(),
            exit: f[1]
                .parse()
                .map_err(|e| format!("{}: exit {:?}: {e}", at(), f[1]))?,
            message: f[2].to_string(),
            counts,
        });
    }
    Ok(cases)
}
