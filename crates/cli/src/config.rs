//! The TOML config file: every option of `scanwatch run`, the flags that
//! override it, and `scanwatch config check|show`.
//!
//! Three sections, each optional, unknown keys are errors:
//!
//! ```toml
//! [run]                        # every other option of `run`, named as its flag
//! read = ["pcaps/"]            # or interfaces = ["eth0"]
//! output = "/var/lib/scanwatch"
//! sensor = "edge-1"
//! format = "parquet"
//! max_memory_mib = 2048
//!
//! [flow]
//! attempt_timeout_secs = 5.0   # an unanswered probe resolves after this long
//! tcp_idle_secs = 300.0
//! udp_idle_secs = 60.0
//! max_flows = 2000000          # all workers together
//!
//! [detect]                     # every field of DetectConfig, see README
//! block_hosts = 10
//! allow_scanners = ["10.0.0.5/32"]
//! home_net = ["10.0.0.0/8"]
//! [[detect.windows]]
//! seconds = 300
//! horizontal = 20
//! vertical = 20
//! ```
//!
//! A flag given on the command line wins over the file; a list flag
//! (`-i`, `-r`, `--window`, `--allow-scanner`, `--allow-service`,
//! `--home-net`) replaces the file's list. Relative paths are read from the
//! working directory, as the flags' are.
//!
//! `config check` reports every problem as `FILE:LINE:COL: key: message`.
//! Syntax errors and serde's type and unknown-key errors carry the span of
//! the offending key or value; the file is then parsed again with that entry
//! blanked out, so each one is reported once and the rest is still checked.
//! Problems found after parsing (a bad CIDR, a window under 1, a read path
//! that does not exist) are located by walking the spanned document
//! (`toml::de::DeTable`) to the key or list element they name.

use anyhow::{Context, Result};
use scanwatch_detect::{ConfigError, DetectConfig};
use scanwatch_pipeline::{FlowConfig, GivenCaps};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// The `[run]` section: the options of `scanwatch run` that are not flow or
/// detector settings, named as their flags. `None` is "not in the file".
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSettings {
    /// Live interfaces (`-i`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<String>>,
    /// Capture files or folders (`-r`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<Vec<PathBuf>>,
    /// BPF filter expression (the trailing words of `run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// BPF filter read from this file (`-F`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_file: Option<PathBuf>,
    /// Output folder (`-w`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    /// Alerts file or `-` (`--alerts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
    /// `arrow` or `parquet`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_flows: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<usize>,
    /// Capture threads per live interface (PACKET_FANOUT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_threads: Option<usize>,
    /// Drop root privileges to this user (`-Z`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `false` as `-p`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promiscuous: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snaplen: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_mib: Option<i32>,
    /// Seconds between stats lines; 0 turns them off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_every: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder_window_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_mib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_part_rows: Option<u64>,
    /// Where flow records go: `table` and/or `zeek-json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows_format: Option<Vec<String>>,
    /// Seconds between new parts (wall clock); 0 turns it off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate_secs: Option<u64>,
    /// Delete hour partitions older than this many days (`--retain-days`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_days: Option<f64>,
    /// Keep flows and detections within this many GiB (`--retain-gib`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_gib: Option<f64>,
}

// A new option of `run` gets a key above, a check in
// `RunSettings::problems`, a line in `run::resolve` (the file's value when
// the flag is not given) and one in `run::show`.

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowSettings {
    pub attempt_timeout_secs: f64,
    pub data_wait_secs: f64,
    pub tcp_idle_secs: f64,
    pub tcp_attempt_idle_secs: f64,
    pub tcp_linger_secs: f64,
    pub udp_idle_secs: f64,
    pub icmp_idle_secs: f64,
    pub other_idle_secs: f64,
    /// All workers together; `None` (not in the file) lets `--max-memory`
    /// decide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_flows: Option<usize>,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            attempt_timeout_secs: 5.0,
            data_wait_secs: 5.0,
            tcp_idle_secs: 300.0,
            tcp_attempt_idle_secs: 10.0,
            tcp_linger_secs: 2.0,
            udp_idle_secs: 60.0,
            icmp_idle_secs: 60.0,
            other_idle_secs: 60.0,
            max_flows: None,
        }
    }
}

impl FlowSettings {
    /// Each problem of the section: the key and what is wrong with it.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (name, s) in [
            ("attempt_timeout_secs", self.attempt_timeout_secs),
            ("data_wait_secs", self.data_wait_secs),
            ("tcp_idle_secs", self.tcp_idle_secs),
            ("tcp_attempt_idle_secs", self.tcp_attempt_idle_secs),
            ("tcp_linger_secs", self.tcp_linger_secs),
            ("udp_idle_secs", self.udp_idle_secs),
            ("icmp_idle_secs", self.icmp_idle_secs),
            ("other_idle_secs", self.other_idle_secs),
        ] {
            if !(s.is_finite() && s > 0.0) {
                out.push((name, "must be a positive number of seconds".into()));
            }
        }
        if self.max_flows.is_some_and(|m| m < 1024) {
            out.push(("max_flows", "must be at least 1024".into()));
        }
        out
    }

    pub fn to_config(&self) -> Result<FlowConfig> {
        if let Some((name, msg)) = self.problems().into_iter().next() {
            anyhow::bail!("flow.{name} {msg}");
        }
        let us = |s: f64| (s * 1e6) as i64;
        Ok(FlowConfig {
            attempt_timeout: us(self.attempt_timeout_secs),
            data_wait: us(self.data_wait_secs),
            tcp_idle: us(self.tcp_idle_secs),
            tcp_attempt_idle: us(self.tcp_attempt_idle_secs),
            tcp_linger: us(self.tcp_linger_secs),
            udp_idle: us(self.udp_idle_secs),
            icmp_idle: us(self.icmp_idle_secs),
            other_idle: us(self.other_idle_secs),
            max_flows: self.max_flows.unwrap_or(FlowConfig::default().max_flows),
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub run: RunSettings,
    pub flow: FlowSettings,
    pub detect: DetectConfig,
    /// The caps the file sets explicitly (a key that is present, whatever
    /// its value).
    #[serde(skip)]
    pub caps: GivenCaps,
}

pub fn load(path: Option<&Path>) -> Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    parse(&text).map_err(|e| {
        // The first problem, located, as `config check` would print it.
        let first = check_text(&text)
            .into_iter()
            .next()
            .map(|p| p.line(path))
            .unwrap_or_else(|| format!("{}: {e:#}", path.display()));
        anyhow::anyhow!("bad config: {first} (see scanwatch config check)")
    })
}

/// A bad value that came from the config file (its problem's key and
/// message are in the error's) becomes that problem's `FILE:LINE:COL` line; any other
/// error (a flag's) is returned as it is.
pub fn locate(path: Option<&Path>, e: anyhow::Error) -> anyhow::Error {
    let Some(path) = path else { return e };
    let Ok(text) = std::fs::read_to_string(path) else {
        return e;
    };
    let said = format!("{e:#}");
    match check_text(&text).into_iter().find(|p| {
        let key = p.key.split('[').next().unwrap_or(&p.key);
        p.at.is_some() && said.contains(key) && said.contains(&p.message)
    }) {
        Some(p) => anyhow::anyhow!("bad config: {}", p.line(path)),
        None => e,
    }
}

/// Parses a config file's text.
pub fn parse(text: &str) -> Result<FileConfig> {
    let mut c: FileConfig = toml::from_str(text)?;
    // `[detect]` deserializes into the detector's own settings, where a cap
    // that is absent takes its default: whether the key is there is read
    // from the document.
    let doc: toml::Table = toml::from_str(text)?;
    let detect_key = |k: &str| -> Option<usize> {
        let v = doc.get("detect")?.as_table()?.get(k)?;
        v.as_integer().and_then(|i| usize::try_from(i).ok())
    };
    c.caps = GivenCaps {
        max_flows: c.flow.max_flows,
        max_sources_per_shard: detect_key("max_sources"),
        max_contacts_per_shard: detect_key("max_contacts_total"),
    };
    Ok(c)
}

/// Limits shared by `run`'s flags and the `[run]` keys.
pub const DAY_MS: u64 = 86_400_000;
pub const MIN_MEMORY_MIB: u64 = 256;

/// Whether a sensor name may be used as a path level.
pub fn sensor_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl RunSettings {
    /// Each problem of the section: the key (with a list index when one
    /// element is at fault) and what is wrong.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut bad = |k: &str, m: String| out.push((k.to_string(), m));
        if let Some(read) = &self.read {
            for (i, p) in read.iter().enumerate() {
                if p.as_os_str() != "-" && !p.exists() {
                    bad(
                        &format!("read[{i}]"),
                        format!("{}: no such file or folder", p.display()),
                    );
                }
            }
        }
        if let (Some(r), Some(i)) = (&self.read, &self.interfaces) {
            if !r.is_empty() && !i.is_empty() {
                bad(
                    "read",
                    "read and interfaces cannot be mixed in one run".into(),
                );
            }
        }
        if let Some(f) = &self.filter_file {
            if !f.is_file() {
                bad("filter_file", format!("{}: no such file", f.display()));
            }
            if self.filter.is_some() {
                bad("filter_file", "give filter or filter_file, not both".into());
            }
        }
        if let Some(f) = &self.format {
            if f != "arrow" && f != "parquet" {
                bad(
                    "format",
                    format!("{f:?}: expected \"arrow\" or \"parquet\""),
                );
            }
        }
        if let Some(n) = &self.sensor {
            if !sensor_name_ok(n) {
                bad(
                    "sensor",
                    format!("{n:?}: use 1-64 letters, digits, '-', '_' or '.'"),
                );
            }
        }
        if self.threads.is_some_and(|t| !(1..=256).contains(&t)) {
            bad("threads", "must be between 1 and 256".into());
        }
        if self
            .capture_threads
            .is_some_and(|t| !(1..=scanwatch_capture::MAX_CAPTURE_THREADS).contains(&t))
        {
            bad("capture_threads", "must be between 1 and 64".into());
        }
        if self.shards.is_some_and(|s| !(1..=64).contains(&s)) {
            bad("shards", "must be between 1 and 64".into());
        }
        if self.max_memory_mib.is_some_and(|m| m < MIN_MEMORY_MIB) {
            bad(
                "max_memory_mib",
                format!("must be at least {MIN_MEMORY_MIB} MiB"),
            );
        }
        if self.reorder_window_ms.is_some_and(|m| m > DAY_MS) {
            bad(
                "reorder_window_ms",
                format!("is at most a day ({DAY_MS} ms)"),
            );
        }
        if self.snaplen.is_some_and(|s| s <= 0) {
            bad("snaplen", "must be positive".into());
        }
        if self.buffer_mib.is_some_and(|s| s <= 0) {
            bad("buffer_mib", "must be positive".into());
        }
        if self.max_part_rows == Some(0) {
            bad("max_part_rows", "must be positive".into());
        }
        if let Some(v) = &self.flows_format {
            if v.is_empty() {
                bad(
                    "flows_format",
                    "give \"table\", \"zeek-json\" or both".into(),
                );
            }
            for (i, f) in v.iter().enumerate() {
                if f != "table" && f != "zeek-json" {
                    bad(
                        &format!("flows_format[{i}]"),
                        format!("{f:?}: expected \"table\" or \"zeek-json\""),
                    );
                }
            }
        }
        for (key, v) in [
            ("retain_days", self.retain_days),
            ("retain_gib", self.retain_gib),
        ] {
            if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                bad(key, "give a number above 0".into());
            }
        }
        if self.user.as_deref() == Some("") {
            bad("user", "must not be empty".into());
        }
        out
    }
}

/// One problem of a config file: where (byte span of the key or value, if
/// known), which key, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub span: Option<Range<usize>>,
    /// 1-based line and column of the span's start.
    pub at: Option<(usize, usize)>,
    pub key: String,
    pub message: String,
}

impl Problem {
    /// `FILE:LINE:COL: key: message`.
    pub fn line(&self, file: &Path) -> String {
        let at = self
            .at
            .map(|(l, c)| format!(":{l}:{c}"))
            .unwrap_or_default();
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.key)
        };
        format!("{}{at}: {key}{}", file.display(), self.message)
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A spanned entry of the document: its dotted path, key span and value
/// span.
struct Entry {
    path: String,
    key: Range<usize>,
    value: Range<usize>,
}

fn entries(table: &DeTable<'_>, prefix: &str, out: &mut Vec<Entry>) {
    for (k, v) in table.iter() {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        out.push(Entry {
            path: path.clone(),
            key: k.span(),
            value: v.span(),
        });
        match v.get_ref() {
            DeValue::Table(t) => entries(t, &path, out),
            DeValue::Array(a) => {
                for (i, e) in a.iter().enumerate() {
                    if let DeValue::Table(t) = e.get_ref() {
                        entries(t, &format!("{path}[{i}]"), out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The span of `section.key` or `section.key[index]`, if in the document.
fn find(doc: &DeTable<'_>, section: &str, key: &str, index: Option<usize>) -> Option<Range<usize>> {
    let sec = doc.get(section)?;
    let Some(DeValue::Table(t)) = Some(sec.get_ref()) else {
        return None;
    };
    let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref() == key) else {
        return Some(doc.iter().find(|(k, _)| k.get_ref() == section)?.0.span());
    };
    match (index, v.get_ref()) {
        (Some(i), DeValue::Array(a)) => a.get(i).map(|e| e.span()).or(Some(k.span())),
        _ => Some(k.span()),
    }
}

/// Every problem of a config file's text, in the order found: syntax, then
/// types and unknown keys, then values.
pub fn check_text(text: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let located = |span: Option<Range<usize>>, key: String, message: String| Problem {
        at: span.as_ref().map(|s| line_col(text, s.start)),
        span,
        key,
        message,
    };
    let (doc, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for e in errors {
            out.push(located(
                e.span(),
                String::new(),
                e.message().trim().to_string(),
            ));
        }
        return out;
    }
    let doc = doc.into_inner();
    let mut all = Vec::new();
    entries(&doc, "", &mut all);
    // Serde's errors, one at a time: each offending entry is blanked out
    // (spaces, newlines kept, so spans still hold) and the text parsed
    // again.
    let mut masked = text.to_string();
    let mut seen: Vec<Range<usize>> = Vec::new();
    // Unknown tables: their keys are not reported again one by one.
    let mut unknown_tables: Vec<String> = Vec::new();
    let config = loop {
        match toml::from_str::<FileConfig>(&masked) {
            Ok(c) => break Some(c),
            Err(e) => {
                let span = e.span();
                // The innermost entry whose key or value holds the span.
                let hit = span.as_ref().and_then(|s| {
                    all.iter()
                        .filter(|en| {
                            let holds = |r: &Range<usize>| r.start <= s.start && s.end <= r.end;
                            holds(&en.key) || holds(&en.value)
                        })
                        .max_by_key(|en| en.key.start)
                });
                let msg = e.message().trim().to_string();
                let msg = msg
                    .split(", expected one of")
                    .next()
                    .unwrap_or(&msg)
                    .to_string();
                let path = hit.map(|h| h.path.clone()).unwrap_or_default();
                if !unknown_tables
                    .iter()
                    .any(|t| path.starts_with(&format!("{t}.")))
                {
                    out.push(located(span.clone(), path.clone(), msg));
                }
                let Some(h) = hit else { break None };
                if all
                    .iter()
                    .any(|en| en.path.starts_with(&format!("{path}.")))
                {
                    unknown_tables.push(path);
                }
                // From the line's start when only a table header's `[` or
                // a dotted key's first parts come before the key.
                let line_start = text[..h.key.start].rfind('\n').map_or(0, |n| n + 1);
                let start = if text[line_start..h.key.start]
                    .chars()
                    .all(|c| c.is_alphanumeric() || " \t[._-".contains(c))
                {
                    line_start
                } else {
                    h.key.start
                };
                let end = h.value.end.max(h.key.end);
                if seen.contains(&(start..end)) || seen.len() > 64 {
                    break None;
                }
                seen.push(start..end);
                masked = masked
                    .char_indices()
                    .map(|(i, c)| {
                        if (start..end).contains(&i) && c != '\n' {
                            ' '
                        } else {
                            c
                        }
                    })
                    .collect();
                if DeTable::parse(&masked).is_err() {
                    break None;
                }
            }
        }
    };
    let Some(config) = config else {
        return out;
    };
    for (key, message) in config.run.problems() {
        let (name, index) = split_index(&key);
        out.push(located(
            find(&doc, "run", name, index),
            format!("run.{key}"),
            message,
        ));
    }
    for (key, message) in config.flow.problems() {
        out.push(located(
            find(&doc, "flow", key, None),
            format!("flow.{key}"),
            message,
        ));
    }
    for (key, index, message) in detect_problems(&config.detect) {
        let path = match index {
            Some(i) => format!("detect.{key}[{i}]"),
            None => format!("detect.{key}"),
        };
        out.push(located(find(&doc, "detect", key, index), path, message));
    }
    // In the file's order; a problem with no place last.
    out.sort_by_key(|p| p.at.unwrap_or((usize::MAX, 0)));
    out
}

fn split_index(key: &str) -> (&str, Option<usize>) {
    match key.split_once('[') {
        Some((k, rest)) => (k, rest.trim_end_matches(']').parse().ok()),
        None => (key, None),
    }
}

/// Every problem of the detector settings (as `DetectConfig::validate`
/// finds them, one at a time), each with the key and list index at fault.
/// The value at fault is put back to its default (or its list element
/// removed) before validating again.
fn detect_problems(d: &DetectConfig) -> Vec<(&'static str, Option<usize>, String)> {
    let mut d = d.clone();
    let dflt = DetectConfig::default();
    let mut out = Vec::new();
    // Index into the file's list of a removed element's successors.
    let mut removed: Vec<(&'static str, usize)> = Vec::new();
    let file_index = |removed: &[(&str, usize)], list: &str, i: usize| {
        let mut i = i;
        let mut gone: Vec<usize> = removed
            .iter()
            .filter(|r| r.0 == list)
            .map(|r| r.1)
            .collect();
        gone.sort_unstable();
        for g in gone {
            if g <= i {
                i += 1;
            }
        }
        i
    };
    for _ in 0..64 {
        let Err(e) = d.validate() else { break };
        // The key is printed before the message: not twice.
        let msg = e.to_string();
        let msg = match msg.strip_prefix("detect") {
            Some(rest) => rest
                .split_once(": ")
                .filter(|(k, _)| !k.contains(' '))
                .map_or(rest.trim_start_matches('.'), |(_, m)| m)
                .to_string(),
            None => msg,
        };
        let (key, index): (&'static str, Option<usize>) = match &e {
            ConfigError::AllowList { list, error } => {
                let spec = match error.as_ref() {
                    ConfigError::BadCidr { spec, .. } | ConfigError::BadService { spec, .. } => {
                        spec.clone()
                    }
                    _ => String::new(),
                };
                let v = match *list {
                    "allow_scanners" => &mut d.allow_scanners,
                    "allow_services" => &mut d.allow_services,
                    _ => &mut d.home_net,
                };
                let Some(i) = v.iter().position(|s| *s == spec) else {
                    out.push((*list, None, msg));
                    break;
                };
                v.remove(i);
                let fi = file_index(&removed, list, i);
                removed.push((*list, fi));
                (*list, Some(fi))
            }
            ConfigError::NoWindows | ConfigError::TooManyWindows { .. } => {
                d.windows = dflt.windows.clone();
                ("windows", None)
            }
            ConfigError::WindowZeroSeconds { window } | ConfigError::WindowThreshold { window } => {
                let Some(i) = d.windows.iter().position(|w| w == window) else {
                    out.push(("windows", None, msg));
                    break;
                };
                d.windows.remove(i);
                if d.windows.is_empty() {
                    d.windows = dflt.windows.clone();
                }
                let fi = file_index(&removed, "windows", i);
                removed.push(("windows", fi));
                ("windows", Some(fi))
            }
            ConfigError::ShareOutOfRange { name, .. } => {
                match *name {
                    "answered_weight" => d.answered_weight = dflt.answered_weight,
                    _ => d.min_failed_share = dflt.min_failed_share,
                }
                (*name, None)
            }
            ConfigError::CapTooSmall { name, .. } | ConfigError::CapTooLarge { name, .. } => {
                match *name {
                    "max_sources" => d.max_sources = dflt.max_sources,
                    "max_contacts" => d.max_contacts = dflt.max_contacts,
                    "max_contacts_total" => d.max_contacts_total = dflt.max_contacts_total,
                    _ => d.max_scan_targets = dflt.max_scan_targets,
                }
                (*name, None)
            }
            ConfigError::Trw { .. } => {
                // Which of the four is at fault depends on the others: the
                // first one the file changed from its default.
                let key = if d.trw_theta0 != dflt.trw_theta0 {
                    "trw_theta0"
                } else if d.trw_theta1 != dflt.trw_theta1 {
                    "trw_theta1"
                } else if d.trw_alpha != dflt.trw_alpha {
                    "trw_alpha"
                } else {
                    "trw_beta"
                };
                d.trw_theta0 = dflt.trw_theta0;
                d.trw_theta1 = dflt.trw_theta1;
                d.trw_alpha = dflt.trw_alpha;
                d.trw_beta = dflt.trw_beta;
                (key, None)
            }
            _ => {
                out.push(("", None, msg));
                break;
            }
        };
        out.push((key, index, msg));
    }
    out
}

/// `scanwatch config check FILE`: prints every problem, one per line, and
/// exits 1 when there is any.
pub fn check_file(path: &Path) -> Result<std::process::ExitCode> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut problems = check_text(&text);
    if problems.is_empty() {
        // What the keys do together, as `run` sees it (e.g. the threads and
        // the memory budget).
        let mut a = crate::eval::blank_run_args();
        a.config = Some(path.to_path_buf());
        if let Err(e) = crate::run::resolve(a, None).and_then(|a| crate::run::pipeline_config(&a)) {
            problems.push(Problem {
                span: None,
                at: None,
                key: String::new(),
                message: format!("{e:#}"),
            });
        }
    }
    for p in &problems {
        println!("{}", p.line(path));
    }
    if problems.is_empty() {
        eprintln!("{}: ok", path.display());
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        eprintln!("{}: {} problem(s)", path.display(), problems.len());
        Ok(std::process::ExitCode::from(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_in_the_file_is_given_even_at_its_default_value() {
        let c = parse("[flow]\nmax_flows = 2000000\n[detect]\nmax_sources = 500000\n").unwrap();
        assert_eq!(
            c.caps,
            GivenCaps {
                max_flows: Some(2_000_000),
                max_sources_per_shard: Some(500_000),
                max_contacts_per_shard: None,
            }
        );
        assert_eq!(c.flow.to_config().unwrap().max_flows, 2_000_000);
    }

    #[test]
    fn caps_absent_from_the_file_are_not_given() {
        let c = parse("[flow]\ntcp_idle_secs = 100.0\n").unwrap();
        assert_eq!(c.caps, GivenCaps::default());
        assert!(parse("[flow]\nmax_flows = 10\n")
            .unwrap()
            .flow
            .to_config()
            .is_err());
    }

    fn places(text: &str) -> Vec<(usize, usize, String)> {
        check_text(text)
            .into_iter()
            .map(|p| {
                let (l, c) = p.at.unwrap_or((0, 0));
                (l, c, p.key)
            })
            .collect()
    }

    #[test]
    fn each_type_error_and_unknown_key_is_reported_once_in_file_order() {
        let text = "detect.block_hosts = \"x\"\n[run]\nsensr = 1\n[flow]\nudp_idle_secs = true\nbogus = 2\n[nope]\na = 1\nb = 2\n";
        assert_eq!(
            places(text),
            [
                (1, 22, "detect.block_hosts".to_string()),
                (3, 1, "run.sensr".into()),
                (5, 17, "flow.udp_idle_secs".into()),
                (6, 1, "flow.bogus".into()),
                (7, 2, "nope".into()),
            ]
        );
    }

    #[test]
    fn bad_list_elements_are_named_by_their_index_in_the_file() {
        let text = "[detect]\nhome_net = [\"x\", \"10.0.0.0/8\", \"y\"]\nallow_scanners = [\n  \"10.0.0.1/32\",\n  \"10.0.0.1/99\",\n]\n";
        assert_eq!(
            places(text),
            [
                (2, 13, "detect.home_net[0]".to_string()),
                (2, 32, "detect.home_net[2]".into()),
                (5, 3, "detect.allow_scanners[1]".into()),
            ]
        );
    }

    #[test]
    fn a_good_file_has_no_problem_and_columns_count_characters() {
        assert_eq!(check_text("[run]\nsensor = \"é\"\n").len(), 1);
        assert!(check_text("[run]\nsensor = \"edge-1\"\n[detect]\nblock_hosts = 4\n").is_empty());
        assert_eq!(line_col("ab\néé x", 8), (2, 4));
    }
}
