//! `scanwatch eval`: runs detection on capture files and scores it against a
//! truth file in the format of the corpus's `truth.csv`
//! (`pcap,scanner_ip,scan_type,…`, optionally `technique` and `tool`). An
//! address with no horizontal/vertical/block/distributed row for a file is
//! not a scanner in that file: flagging it is a false alarm. A row may list
//! several addresses (space-separated): the scanner and its decoys, or a
//! distributed scan's sources. Besides found and kind it scores the
//! technique (from the `technique` column, or read from the `command`
//! column's flags) and the tool (the `tool` column's first word, when it is
//! one the detector can name), each counted over the rows that say.

use crate::run::{detection_line, pipeline_config, RunArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use scanwatch_capture::{FileSource, PacketSource};
use scanwatch_model::Addr;
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

/// One scanner row of a truth file.
#[derive(Debug, Clone, Default)]
pub struct TruthRow {
    /// The scanner first; decoys or the sources of a distributed scan
    /// after it (none of them is a false alarm).
    pub addrs: Vec<Addr>,
    /// `horizontal`, `vertical`, `block` or `distributed`.
    pub kind: String,
    /// From the `technique` column, or read from the command; `None` when
    /// neither says.
    pub technique: Option<String>,
    /// The tool's bare name when the truth knows it.
    pub tool: Option<String>,
}

/// Truth per file name: its scanner rows.
pub type Truth = BTreeMap<String, Vec<TruthRow>>;

/// Kinds a truth row may name.
const KINDS: [&str; 4] = ["horizontal", "vertical", "block", "distributed"];

/// Tools the detector can name.
const TOOLS: [&str; 6] = [
    "nmap",
    "masscan",
    "zmap",
    "hping3",
    "unicornscan",
    "mirai-like",
];

/// The technique a scanner command line shows (nmap's `-s?`/`-P?` flags,
/// masscan, hping3's `-S`/`--udp`/`-1`), or `None`.
pub fn technique_of_command(cmd: &str) -> Option<String> {
    let words: Vec<&str> = cmd
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .collect();
    let has = |w: &str| words.contains(&w);
    let starts = |p: &str| words.iter().any(|x| x.starts_with(p));
    let t = if has("-sS") || cmd.contains("SYN scan") {
        "syn"
    } else if has("-sT") {
        "connect"
    } else if has("-sU") || starts("-PU") || has("--udp") {
        "udp"
    } else if has("-sF") {
        "fin"
    } else if has("-sN") {
        "null"
    } else if has("-sX") {
        "xmas"
    } else if has("-sA") {
        "ack"
    } else if starts("-PS")
        || (cmd.contains("masscan") && !cmd.contains("--ping"))
        || (cmd.contains("hping3") && has("-S"))
    {
        "syn"
    } else if has("-6") && has("-sn") {
        "icmpv6-echo"
    } else if has("-sn") || has("-PE") || (cmd.contains("hping3") && has("-1")) {
        "icmp-echo"
    } else {
        return None;
    };
    Some(t.to_string())
}

/// The tool column's bare name when it is one the detector knows.
fn tool_of(cell: &str) -> Option<String> {
    let first = cell.split_whitespace().next()?.to_ascii_lowercase();
    TOOLS.contains(&first.as_str()).then_some(first)
}

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
    let (tech_col, tool_col, cmd_col) = (col("technique"), col("tool"), col("command"));
    let mut truth = Truth::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = csv_fields(line);
        let get = |i: usize| f.get(i).map(|s| s.trim()).unwrap_or("");
        let file = get(pc).to_string();
        let entry = truth.entry(file).or_default();
        let kind = get(ty);
        if !KINDS.contains(&kind) {
            continue;
        }
        let mut addrs = Vec::new();
        for a in get(ip).split(|c: char| c.is_whitespace() || c == ';') {
            if a.is_empty() {
                continue;
            }
            addrs.push(a.parse::<Addr>().with_context(|| {
                format!("{}: line {}: bad address {a:?}", path.display(), n + 2)
            })?);
        }
        if addrs.is_empty() {
            bail!("{}: line {}: no scanner address", path.display(), n + 2);
        }
        let technique = match tech_col.map(get) {
            Some(t) if !t.is_empty() && t != "-" => Some(t.to_string()),
            _ => cmd_col.map(get).and_then(technique_of_command),
        };
        entry.push(TruthRow {
            addrs,
            kind: kind.to_string(),
            technique,
            tool: tool_col.map(get).and_then(tool_of),
        });
    }
    Ok(truth)
}

#[derive(Default, Debug, Clone, Copy)]
struct Score {
    scanners: u32,
    found: u32,
    right_kind: u32,
    false_alarms: u32,
    /// Rows whose technique (tool) the truth knows, and those right.
    technique_known: u32,
    technique_right: u32,
    tool_known: u32,
    tool_right: u32,
}

impl Score {
    fn add(&mut self, o: &Score) {
        self.scanners += o.scanners;
        self.found += o.found;
        self.right_kind += o.right_kind;
        self.false_alarms += o.false_alarms;
        self.technique_known += o.technique_known;
        self.technique_right += o.technique_right;
        self.tool_known += o.tool_known;
        self.tool_right += o.tool_right;
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "scanners": self.scanners, "found": self.found,
            "right_kind": self.right_kind, "false_alarms": self.false_alarms,
            "technique_known": self.technique_known, "technique_right": self.technique_right,
            "tool_known": self.tool_known, "tool_right": self.tool_right,
        })
    }
}

/// What the detector said about one address: kinds, techniques, tools.
#[derive(Default)]
struct Got {
    kinds: BTreeSet<String>,
    techniques: BTreeSet<String>,
    tools: BTreeSet<String>,
}

/// Scores one file's detections against its truth rows. A source is
/// scored once, whatever the number of its records (one per technique);
/// a distributed row is found by a distributed record naming any of its
/// sources; decoys and a distributed scan's sources are no false alarms.
fn score(expected: &[TruthRow], detections: &[scanwatch_model::Detection]) -> (Score, Vec<String>) {
    let mut got: BTreeMap<Addr, Got> = BTreeMap::new();
    for d in detections {
        let mut who = vec![d.scanner];
        who.extend(d.sources.iter().copied());
        for a in who {
            let g = got.entry(a).or_default();
            g.kinds.insert(d.kind.name().to_string());
            g.techniques.insert(d.technique.name().to_string());
            g.tools.insert(d.tool.clone());
        }
    }
    let mut s = Score {
        scanners: expected.len() as u32,
        ..Score::default()
    };
    let mut notes = Vec::new();
    for row in expected {
        let label = row.addrs[0];
        let g = if row.kind == "distributed" {
            row.addrs
                .iter()
                .find_map(|a| got.get(a).filter(|g| g.kinds.contains("distributed")))
        } else {
            got.get(&label)
        };
        let Some(g) = g else {
            notes.push(format!("  missed: {label} ({})", row.kind));
            continue;
        };
        s.found += 1;
        if g.kinds.contains(&row.kind) {
            s.right_kind += 1;
        } else {
            notes.push(format!(
                "  wrong kind: {label} is {}, flagged {:?}",
                row.kind, g.kinds
            ));
        }
        if let Some(t) = &row.technique {
            s.technique_known += 1;
            if g.techniques.contains(t) {
                s.technique_right += 1;
            } else {
                notes.push(format!(
                    "  wrong technique: {label} is {t}, flagged {:?}",
                    g.techniques
                ));
            }
        }
        if let Some(t) = &row.tool {
            s.tool_known += 1;
            if g.tools.contains(t) {
                s.tool_right += 1;
            } else {
                notes.push(format!(
                    "  wrong tool: {label} is {t}, flagged {:?}",
                    g.tools
                ));
            }
        }
    }
    let listed: BTreeSet<Addr> = expected
        .iter()
        .flat_map(|r| r.addrs.iter().copied())
        .collect();
    for addr in got.keys() {
        if !listed.contains(addr) {
            s.false_alarms += 1;
            notes.push(format!("  false alarm: {addr}"));
        }
    }
    (s, notes)
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
    let header = |a: &str, b: &str, c: &str, d: &str, e: &str, f: &str, g: &str| {
        println!("{a:<52} {b:>8} {c:>8} {d:>10} {e:>7} {f:>9} {g:>6}")
    };
    header(
        "file",
        "scanners",
        "found",
        "right kind",
        "false+",
        "technique",
        "tool",
    );
    let frac = |r: u32, k: u32| format!("{r}/{k}");
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
        let (s, notes) = score(&expected, &summary.detections);
        header(
            &name,
            &s.scanners.to_string(),
            &s.found.to_string(),
            &s.right_kind.to_string(),
            &s.false_alarms.to_string(),
            &frac(s.technique_right, s.technique_known),
            &frac(s.tool_right, s.tool_known),
        );
        for n in &notes {
            println!("{n}");
        }
        if a.verbose {
            for d in &summary.detections {
                println!("    {}", detection_line(d));
            }
        }
        total.add(&s);
        rows.push((name, s));
    }
    header(
        &format!("TOTAL ({} files)", files.len()),
        &total.scanners.to_string(),
        &total.found.to_string(),
        &total.right_kind.to_string(),
        &total.false_alarms.to_string(),
        &frac(total.technique_right, total.technique_known),
        &frac(total.tool_right, total.tool_known),
    );
    let pct = |r: u32, k: u32| {
        if k == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * f64::from(r) / f64::from(k))
        }
    };
    println!(
        "technique accuracy {} of {} rows that say; tool accuracy {} of {} rows whose tool is known",
        pct(total.technique_right, total.technique_known),
        total.technique_known,
        pct(total.tool_right, total.tool_known),
        total.tool_known
    );
    if a.json {
        let v = serde_json::json!({
            "files": rows.iter().map(|(n, s)| {
                let mut j = s.json();
                j["file"] = serde_json::json!(n);
                j
            }).collect::<Vec<_>>(),
            "total": total.json(),
        });
        println!("{v}");
    }
    let perfect = total.found == total.scanners
        && total.right_kind == total.scanners
        && total.false_alarms == 0
        && total.technique_right == total.technique_known
        && total.tool_right == total.tool_known;
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
