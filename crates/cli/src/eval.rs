//! `scanwatch eval`: runs detection on capture files and scores it against a
//! truth file in the format of the corpus's `truth.csv`
//! (`pcap,scanner_ip,scan_type,…`). An address with no
//! horizontal/vertical/block/distributed row for a file is not a scanner in
//! that file: flagging it (as a scanner, or as a source of a distributed
//! scan) is a false alarm.

use crate::run::{detection_line, pipeline_config, RunArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use scanwatch_capture::{FileSource, PacketSource};
use scanwatch_model::{Addr, ScanKind};
use scanwatch_pipeline::Counters;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Truth file: pcap,scanner_ip,scan_type,… (extra columns ignored).
    #[arg(long, value_name = "CSV")]
    pub truth: PathBuf,
    /// Capture files or directories to score (a directory: every capture
    /// file in it that the truth file names or not).
    #[arg(required = true, value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// Print every detection.
    #[arg(short, long)]
    pub verbose: bool,
    /// Exit 1 unless every scanner is found with the right kind and nothing
    /// else is flagged.
    #[arg(long)]
    pub strict: bool,
    /// Print the scores as JSON.
    #[arg(long)]
    pub json: bool,
    /// Flow worker threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// TOML config file, as for `run`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Splits one CSV line with RFC 4180 quoting.
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Truth per file name: scanner → kinds.
pub type Truth = BTreeMap<String, BTreeMap<Addr, BTreeSet<ScanKind>>>;

pub fn load_truth(path: &Path) -> Result<Truth> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut lines = text.lines();
    let header = csv_fields(lines.next().unwrap_or_default());
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(pc), Some(ip), Some(ty)) = (col("pcap"), col("scanner_ip"), col("scan_type")) else {
        bail!(
            "{}: needs the columns pcap, scanner_ip, scan_type",
            path.display()
        );
    };
    let mut truth = Truth::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = csv_fields(line);
        let get = |i: usize| f.get(i).map(|s| s.trim()).unwrap_or("");
        let file = get(pc).to_string();
        let entry = truth.entry(file).or_default();
        if let Some(kind) = ScanKind::from_name(get(ty)) {
            let addr: Addr = get(ip).parse().with_context(|| {
                format!(
                    "{}: line {}: bad address {:?}",
                    path.display(),
                    n + 2,
                    get(ip)
                )
            })?;
            entry.entry(addr).or_default().insert(kind);
        }
    }
    Ok(truth)
}

#[derive(Default, Debug, Clone, Copy)]
struct Score {
    scanners: u32,
    found: u32,
    right_kind: u32,
    false_alarms: u32,
}

pub fn main(a: EvalArgs) -> Result<ExitCode> {
    let truth = load_truth(&a.truth)?;
    let run_args = RunArgs {
        threads: a.threads,
        config: a.config.clone(),
        ..blank_run_args()
    };
    let mut files = Vec::new();
    for f in &a.files {
        if f.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(f)
                .with_context(|| format!("{}", f.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "pcap" | "pcapng" | "gz"))
                })
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(f.clone());
        }
    }
    let mut total = Score::default();
    let mut rows = Vec::new();
    println!(
        "{:<52} {:>8} {:>8} {:>10} {:>7}",
        "file", "scanners", "found", "right kind", "false+"
    );
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let expected = truth.get(&name).cloned().unwrap_or_default();
        let mut cfg = pipeline_config(&run_args)?;
        cfg.collect = true;
        let src: Box<dyn PacketSource> =
            Box::new(FileSource::open(std::slice::from_ref(file), None)?);
        let summary = scanwatch_pipeline::run(vec![src], cfg, Arc::new(Counters::default()))?;
        let mut got: BTreeMap<Addr, BTreeSet<ScanKind>> = BTreeMap::new();
        for d in &summary.detections {
            if d.kind == ScanKind::Distributed {
                // Every source of a distributed scan is flagged by it: a
                // false alarm unless the file's truth names it.
                for s in &d.sources {
                    got.entry(*s).or_default().insert(d.kind);
                }
            }
            got.entry(d.scanner).or_default().insert(d.kind);
        }
        let mut s = Score {
            scanners: expected.len() as u32,
            ..Score::default()
        };
        let mut notes = Vec::new();
        for (addr, kinds) in &expected {
            match got.get(addr) {
                Some(g) => {
                    s.found += 1;
                    if kinds.iter().any(|k| g.contains(k)) {
                        s.right_kind += 1;
                    } else {
                        notes.push(format!(
                            "  wrong kind: {addr} is {:?}, flagged {:?}",
                            kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
                            g.iter().map(|k| k.name()).collect::<Vec<_>>()
                        ));
                    }
                }
                None => notes.push(format!("  missed: {addr}")),
            }
        }
        for addr in got.keys() {
            if !expected.contains_key(addr) {
                s.false_alarms += 1;
                notes.push(format!("  false alarm: {addr}"));
            }
        }
        println!(
            "{:<52} {:>8} {:>8} {:>10} {:>7}",
            name, s.scanners, s.found, s.right_kind, s.false_alarms
        );
        for n in &notes {
            println!("{n}");
        }
        if a.verbose {
            for d in &summary.detections {
                println!("    {}", detection_line(d));
            }
        }
        total.scanners += s.scanners;
        total.found += s.found;
        total.right_kind += s.right_kind;
        total.false_alarms += s.false_alarms;
        rows.push((name, s));
    }
    println!(
        "{:<52} {:>8} {:>8} {:>10} {:>7}",
        format!("TOTAL ({} files)", files.len()),
        total.scanners,
        total.found,
        total.right_kind,
        total.false_alarms
    );
    if a.json {
        let v = serde_json::json!({
            "files": rows.iter().map(|(n, s)| serde_json::json!({
                "file": n, "scanners": s.scanners, "found": s.found,
                "right_kind": s.right_kind, "false_alarms": s.false_alarms,
            })).collect::<Vec<_>>(),
            "total": {
                "scanners": total.scanners, "found": total.found,
                "right_kind": total.right_kind, "false_alarms": total.false_alarms,
            }
        });
        println!("{v}");
    }
    let perfect = total.found == total.scanners
        && total.right_kind == total.scanners
        && total.false_alarms == 0;
    Ok(if a.strict && !perfect {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn blank_run_args() -> RunArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        r: RunArgs,
    }
    Wrap::parse_from(["eval"]).r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes() {
        assert_eq!(
            csv_fields(r#"a.pcap,1.2.3.4,block,tcp,"x,y","21,22",nmap,"nmap -p ""1"""#),
            vec![
                "a.pcap",
                "1.2.3.4",
                "block",
                "tcp",
                "x,y",
                "21,22",
                "nmap",
                "nmap -p \"1\""
            ]
        );
    }
}
