//! Retention: which hour partitions of an output tree to delete, and
//! deleting them, so a sensor left running does not fill its disk.
//!
//! The tree is the one [`crate::PartitionedWriter`] writes:
//! `DIR/<table>/[sensor=NAME/]date=YYYY-MM-DD/hour=HH/part-*`, tables
//! `flows` and `detections`, plus days merged by `scanwatch compact`, which
//! sit at `date=YYYY-MM-DD/hour=all` and count as the day's last hour. The
//! clock is packet time, as the partitions are: `--retain-days N` removes
//! an hour once all of it is more than N×24 hours older than the newest
//! packet, so a replay removes the same partitions at any speed.
//! `--retain-gib N` removes whole hours, oldest first, until both tables
//! together fit: flows hours first, down to the newest flows hour, and only
//! then detections (small, and what an analyst keeps). A partition holding a
//! part being written (`.tmp`) or an hour a writer has open is never
//! touched, nor a hidden folder (a name beginning with `.`, as compaction's
//! staging folders). The walk has a fixed depth and a cap on the entries it
//! reads.

use crate::{io_err, SinkError};
use std::fs;
use std::path::{Path, PathBuf};

/// The tables retention looks at, in the order they are given up.
pub const TABLES: [&str; 2] = ["flows", "detections"];

/// Most `sensor=`-style levels above `date=`.
const MAX_PREFIX_DEPTH: usize = 2;
/// Most directory entries one walk reads (a bound on the work, far above a
/// year of hourly partitions of a few sensors).
const MAX_ENTRIES: usize = 2_000_000;

/// What to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Retention {
    /// Keep this many days (×24 hours) of packet time before the newest.
    pub days: Option<f64>,
    /// Keep the two tables within this many bytes together.
    pub max_bytes: Option<u64>,
}

impl Retention {
    pub fn is_set(&self) -> bool {
        self.days.is_some() || self.max_bytes.is_some()
    }
}

/// One hour partition (or compacted day) of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// `flows` or `detections`.
    pub table: &'static str,
    /// The `hour=` folder.
    pub path: PathBuf,
    /// Hours since the epoch (a compacted day: its last hour).
    pub hour: i64,
    pub files: u64,
    pub bytes: u64,
    /// A part is being written here (`.tmp`).
    pub busy: bool,
}

/// Why a partition was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Age,
    Size,
}

/// A partition removed, for the log line and the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub partition: Partition,
    pub reason: Reason,
}

impl Removal {
    /// One line for stderr: what, how many files and bytes, why.
    pub fn line(&self, root: &Path) -> String {
        let p = &self.partition;
        let rel = p.path.strip_prefix(root).unwrap_or(&p.path);
        let why = match self.reason {
            Reason::Age => "older than --retain-days",
            Reason::Size => "over --retain-gib",
        };
        format!(
            "retention: removed {} ({} files, {} bytes; {why})",
            rel.display(),
            p.files,
            p.bytes
        )
    }
}

/// Days since 1970-01-01 of a civil date (Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The day (days since the epoch) of a `date=YYYY-MM-DD` folder name.
pub fn parse_date_dir(name: &str) -> Option<i64> {
    let d = name.strip_prefix("date=")?;
    let mut it = d.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let day: u32 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(y, m, day))
}

/// Every `date=` folder of `table_root` (through at most
/// [`MAX_PREFIX_DEPTH`] `key=value` levels), with its day; hidden folders
/// are skipped. Sorted by path.
pub fn date_dirs(table_root: &Path) -> Result<Vec<(PathBuf, i64)>, SinkError> {
    let mut out = Vec::new();
    let mut budget = MAX_ENTRIES;
    collect_dates(table_root, 0, &mut out, &mut budget)?;
    out.sort();
    Ok(out)
}

fn collect_dates(
    dir: &Path,
    depth: usize,
    out: &mut Vec<(PathBuf, i64)>,
    budget: &mut usize,
) -> Result<(), SinkError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for e in rd.flatten() {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Some(day) = parse_date_dir(&name) {
            out.push((e.path(), day));
        } else if depth < MAX_PREFIX_DEPTH && name.contains('=') {
            collect_dates(&e.path(), depth + 1, out, budget)?;
        }
    }
    Ok(())
}

/// The files of one partition folder: (count, bytes, a `.tmp` among them).
/// Hidden names are left out.
fn partition_files(dir: &Path) -> (u64, u64, bool) {
    let (mut files, mut bytes, mut busy) = (0, 0, false);
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten().take(MAX_ENTRIES) {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                busy = true;
            }
            if name.starts_with('.') {
                continue;
            }
            if let Ok(m) = e.metadata() {
                if m.is_file() {
                    files += 1;
                    bytes += m.len();
                } else {
                    // Something we did not write: leave it alone.
                    busy = true;
                }
            }
        }
    }
    (files, bytes, busy)
}

/// Every partition of the two tables under `out_dir`.
pub fn partitions(out_dir: &Path) -> Result<Vec<Partition>, SinkError> {
    let mut parts = Vec::new();
    for table in TABLES {
        for (date_dir, day) in date_dirs(&out_dir.join(table))? {
            let rd = match fs::read_dir(&date_dir) {
                Ok(rd) => rd,
                Err(_) => continue,
            };
            for e in rd.flatten().take(MAX_ENTRIES) {
                let name = e.file_name();
                let name = name.to_string_lossy();
                let Some(h) = name.strip_prefix("hour=") else {
                    continue;
                };
                let hour = if h == "all" {
                    23
                } else {
                    match h.parse::<i64>() {
                        Ok(h) if (0..24).contains(&h) => h,
                        _ => continue,
                    }
                };
                let path = e.path();
                if !path.is_dir() {
                    continue;
                }
                let (files, bytes, busy) = partition_files(&path);
                parts.push(Partition {
                    table,
                    path,
                    hour: day * 24 + hour,
                    files,
                    bytes,
                    busy,
                });
            }
        }
    }
    Ok(parts)
}

/// Which partitions to remove, oldest first. `now` is the packet clock
/// (µs); `open` the hours (since the epoch) the writers have open.
pub fn plan(parts: &[Partition], policy: &Retention, now: i64, open: &[i64]) -> Vec<Removal> {
    let keep = |p: &Partition| p.busy || open.contains(&p.hour);
    let mut order: Vec<&Partition> = parts.iter().collect();
    // Oldest first; at one hour, flows before detections.
    order.sort_by(|a, b| {
        (a.hour, a.table != "flows", &a.path).cmp(&(b.hour, b.table != "flows", &b.path))
    });
    let mut out = Vec::new();
    let mut gone = vec![false; order.len()];
    if let Some(days) = policy.days {
        let keep_us = (days * 86_400e6) as i64;
        for (i, p) in order.iter().enumerate() {
            let end = (p.hour + 1).saturating_mul(3_600_000_000);
            if end <= now.saturating_sub(keep_us) && !keep(p) {
                gone[i] = true;
                out.push(Removal {
                    partition: (*p).clone(),
                    reason: Reason::Age,
                });
            }
        }
    }
    if let Some(max) = policy.max_bytes {
        let mut total: u64 = order
            .iter()
            .zip(&gone)
            .filter(|(_, g)| !**g)
            .map(|(p, _)| p.bytes)
            .sum();
        for table in TABLES {
            // The newest partition of the table stays.
            let newest = order
                .iter()
                .zip(&gone)
                .filter(|(p, g)| p.table == table && !**g)
                .map(|(p, _)| p.hour)
                .max();
            for (i, p) in order.iter().enumerate() {
                if total <= max {
                    break;
                }
                if gone[i] || p.table != table || Some(p.hour) == newest || keep(p) {
                    continue;
                }
                gone[i] = true;
                total -= p.bytes;
                out.push(Removal {
                    partition: (*p).clone(),
                    reason: Reason::Size,
                });
            }
        }
    }
    out
}

/// Removes one partition's files and folder, then its `date=` folder if
/// that is left empty. A file that appears meanwhile (another writer) keeps
/// the folder: `rmdir` only removes empty ones.
pub fn remove(p: &Partition) -> Result<(), SinkError> {
    let rd = fs::read_dir(&p.path).map_err(io_err(&p.path))?;
    for e in rd.flatten().take(MAX_ENTRIES) {
        let name = e.file_name();
        if name.to_string_lossy().ends_with(".tmp") {
            continue;
        }
        let path = e.path();
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    let _ = fs::remove_dir(&p.path);
    if let Some(date_dir) = p.path.parent() {
        let _ = fs::remove_dir(date_dir);
    }
    Ok(())
}

/// Plans and removes; returns what was removed (a partition that could
/// not be removed ends the pass with its error).
pub fn enforce(
    out_dir: &Path,
    policy: &Retention,
    now: i64,
    open: &[i64],
) -> Result<Vec<Removal>, SinkError> {
    if !policy.is_set() {
        return Ok(Vec::new());
    }
    let parts = partitions(out_dir)?;
    let plan = plan(&parts, policy, now, open);
    for r in &plan {
        remove(&r.partition)?;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(table: &'static str, hour: i64, bytes: u64) -> Partition {
        Partition {
            table,
            path: PathBuf::from(format!("{table}/{hour}")),
            hour,
            files: 1,
            bytes,
            busy: false,
        }
    }

    fn hours(r: &[Removal]) -> Vec<(&'static str, i64)> {
        r.iter()
            .map(|r| (r.partition.table, r.partition.hour))
            .collect()
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(parse_date_dir("date=2026-11-30"), Some(20_787));
        assert_eq!(parse_date_dir("date=2026-13-01"), None);
        assert_eq!(parse_date_dir("hour=03"), None);
    }

    #[test]
    fn age_removes_hours_wholly_older_than_the_window() {
        let parts: Vec<_> = (0..10).map(|h| part("flows", h, 10)).collect();
        let policy = Retention {
            days: Some(2.0 / 24.0),
            max_bytes: None,
        };
        // Clock at 9:30: keep from 7:30, so hours 0..=6 go (7 ends at 8:00).
        let now = 9 * 3_600_000_000 + 1_800_000_000;
        let r = plan(&parts, &policy, now, &[]);
        assert_eq!(hours(&r), (0..7).map(|h| ("flows", h)).collect::<Vec<_>>());
        // An open hour and a busy partition stay.
        let mut parts = parts;
        parts[2].busy = true;
        let r = plan(&parts, &policy, now, &[4]);
        assert_eq!(
            hours(&r),
            vec![
                ("flows", 0),
                ("flows", 1),
                ("flows", 3),
                ("flows", 5),
                ("flows", 6)
            ]
        );
    }

    #[test]
    fn size_takes_flows_down_to_the_newest_hour_before_detections() {
        let mut parts: Vec<_> = (0..4).map(|h| part("flows", h, 100)).collect();
        parts.extend((0..4).map(|h| part("detections", h, 1)));
        let policy = Retention {
            days: None,
            max_bytes: Some(150),
        };
        let r = plan(&parts, &policy, 0, &[]);
        assert_eq!(
            hours(&r),
            vec![("flows", 0), ("flows", 1), ("flows", 2)],
            "104 bytes left"
        );
        let policy = Retention {
            days: None,
            max_bytes: Some(101),
        };
        let r = plan(&parts, &policy, 0, &[]);
        assert_eq!(
            hours(&r),
            vec![
                ("flows", 0),
                ("flows", 1),
                ("flows", 2),
                ("detections", 0),
                ("detections", 1),
                ("detections", 2)
            ]
        );
    }
}
