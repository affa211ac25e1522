//! `scanwatch convert IN OUT`: every `part-*.arrow` under IN becomes the
//! same path under OUT with `.parquet`, schema and metadata kept (written
//! as `.tmp` and renamed, like the live writer). Other files (alerts.jsonl,
//! stats.jsonl) are copied.

use anyhow::{bail, Context, Result};
use arrow_ipc::reader::FileReader;
use clap::Args;
use parquet::arrow::ArrowWriter;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// An output folder of `scanwatch run` (Arrow IPC files).
    pub input: PathBuf,
    /// Where the Parquet tree goes (created; may be the same as INPUT, then
    /// the .parquet files sit next to the .arrow ones).
    pub output: PathBuf,
}

/// Every file below `d`, depth first (order not sorted). Hidden names
/// (`.compact-…` staging folders of `scanwatch compact`) are skipped, as
/// the Hive readers do.
pub fn walk(d: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in fs::read_dir(d).with_context(|| format!("{}", d.display()))? {
        let p = e?.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn convert_one(src: &Path, dst: &Path) -> Result<u64> {
    let f = File::open(src).with_context(|| format!("{}", src.display()))?;
    let reader = FileReader::try_new(f, None)
        .with_context(|| format!("{}: not a complete Arrow IPC file", src.display()))?;
    let schema = reader.schema();
    let tmp = dst.with_extension("parquet.tmp");
    let out = File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    let props = scanwatch_sink::parquet_properties(&schema);
    let mut w = ArrowWriter::try_new(out, schema.clone(), Some(props))
        .with_context(|| format!("{}", tmp.display()))?;
    let mut rows = 0u64;
    for b in reader {
        let b = b.with_context(|| format!("{}", src.display()))?;
        rows += b.num_rows() as u64;
        w.write(&b).with_context(|| format!("{}", tmp.display()))?;
    }
    // into_inner writes the footer, then hands the file back.
    let file = w
        .into_inner()
        .with_context(|| format!("{}", tmp.display()))?;
    file.sync_all()
        .with_context(|| format!("{}", tmp.display()))?;
    fs::rename(&tmp, dst).with_context(|| format!("{}", dst.display()))?;
    Ok(rows)
}

pub fn main(a: ConvertArgs) -> Result<ExitCode> {
    if !a.input.is_dir() {
        bail!(
            "{}: not a folder (give the -w folder of scanwatch run)",
            a.input.display()
        );
    }
    let mut files = Vec::new();
    walk(&a.input, &mut files)?;
    files.sort();
    let (mut parts, mut rows) = (0u64, 0u64);
    for src in &files {
        let rel = src.strip_prefix(&a.input).unwrap_or(src);
        let name = rel.to_string_lossy();
        if name.ends_with(".tmp") || name.ends_with(".parquet") {
            continue;
        }
        let dst = a.output.join(rel);
        if let Some(dir) = dst.parent() {
            fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        }
        if src.extension().is_some_and(|e| e == "arrow") {
            rows += convert_one(src, &dst.with_extension("parquet"))?;
            parts += 1;
        } else if a.output != a.input {
            fs::copy(src, &dst).with_context(|| format!("{}", dst.display()))?;
        }
    }
    if parts == 0 {
        bail!("{}: no .arrow files found", a.input.display());
    }
    eprintln!(
        "scanwatch convert: {parts} files, {rows} rows -> {}",
        a.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
