//! `scanwatch compact DIR [--day D] [--table T]`: merges a closed day's
//! hourly parts (Arrow or Parquet) into few Parquet files, each sorted by
//! source address then time, with small row groups, so that Parquet
//! statistics make "everything from this scanner" a few row groups.
//!
//! A compacted day is `<table>/[sensor=…/]date=D/hour=all/part-NNNNN.parquet`
//! (the same Hive levels, so readers of the tree read hourly and compacted
//! days together; `hour` is then a string column). Files are cut every
//! `--rows-per-file` rows in time order, each sorted on its own, so the
//! memory used is bounded by one file's rows. The new day is built beside
//! the old in a hidden folder `.compact-date=D` (pyarrow, DuckDB and Spark
//! skip names beginning with `.`), checked to hold the same number of rows,
//! then swapped in with one `renameat2(RENAME_EXCHANGE)`, so a reader sees
//! the old day or the new one, never both nor neither; the old is then
//! removed. Safe beside a running sensor: the current day (UTC wall clock)
//! and any day with a part being written (`.tmp`) are refused, a day whose
//! files change while it is compacted is left as it was, and no other day
//! is touched.

use anyhow::{bail, Context, Result};
use arrow_array::{Array, RecordBatch, StringArray, StructArray, TimestampMicrosecondArray};
use arrow_array::{ArrayRef, UInt32Array};
use clap::Args;
use parquet::arrow::ArrowWriter;
use scanwatch_sink::retention::{date_dirs, parse_date_dir};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CompactArgs {
    /// An output folder of `scanwatch run` (its `flows/` and `detections/`).
    pub dir: PathBuf,
    /// Only this day (YYYY-MM-DD); without it, every closed day not yet
    /// compacted.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub day: Option<String>,
    /// Only this table.
    #[arg(long, value_name = "TABLE", value_parser = ["flows", "detections"])]
    pub table: Option<String>,
    /// Rows per output file.
    #[arg(long, value_name = "ROWS", default_value_t = 1_000_000)]
    pub rows_per_file: usize,
    /// Rows per Parquet row group (its statistics are what a reader skips by).
    #[arg(long, value_name = "ROWS", default_value_t = 16_384)]
    pub row_group_rows: usize,
}

/// What happened to one day of one table.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Compacted {
        files_in: usize,
        files_out: usize,
        rows: u64,
    },
    AlreadyCompact,
    Busy,
}

/// Folder of a compacted day's files.
const ALL: &str = "hour=all";

fn today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    secs.div_euclid(86_400)
}

pub fn main(a: CompactArgs) -> Result<ExitCode> {
    if !a.dir.is_dir() {
        bail!(
            "{}: not a folder (give the -w folder of scanwatch run)",
            a.dir.display()
        );
    }
    let want = match &a.day {
        Some(d) => Some(
            parse_date_dir(&format!("date={d}"))
                .with_context(|| format!("--day {d:?}: give a date as YYYY-MM-DD"))?,
        ),
        None => None,
    };
    if want == Some(today()) {
        bail!(
            "--day {}: that is the current day (UTC), still being written; compact closed days",
            a.day.as_deref().unwrap_or_default()
        );
    }
    let tables: Vec<&str> = match &a.table {
        Some(t) => vec![t.as_str()],
        None => vec!["flows", "detections"],
    };
    let opts = (a.rows_per_file.max(1), a.row_group_rows.max(1));
    let mut found = false;
    for table in tables {
        for (date_dir, day) in date_dirs(&a.dir.join(table))? {
            if want.is_some_and(|w| w != day) || (want.is_none() && day >= today()) {
                continue;
            }
            found = true;
            let rel = date_dir.strip_prefix(&a.dir).unwrap_or(&date_dir);
            match compact_day(&date_dir, opts)? {
                Outcome::Compacted {
                    files_in,
                    files_out,
                    rows,
                } => eprintln!(
                    "scanwatch compact: {}: {files_in} files -> {files_out}, {rows} rows",
                    rel.display()
                ),
                Outcome::AlreadyCompact => {
                    eprintln!(
                        "scanwatch compact: {}: already compacted, nothing to do",
                        rel.display()
                    )
                }
                Outcome::Busy if want.is_some() => bail!(
                    "{}: a part is being written there (.tmp); compact a closed day",
                    rel.display()
                ),
                Outcome::Busy => eprintln!(
                    "scanwatch compact: {}: skipped, a part is being written there (.tmp)",
                    rel.display()
                ),
            }
        }
    }
    if !found {
        match &a.day {
            Some(d) => bail!("{}: no day {d} in the output", a.dir.display()),
            None => eprintln!("scanwatch compact: no closed day to compact"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The hour folders of a day and their data files; `None` if a part is
/// being written. Sorted, so files come in time order.
fn day_files(date_dir: &Path) -> Result<Option<Vec<(PathBuf, u64)>>> {
    let mut files = Vec::new();
    let ctx = |p: &Path| format!("{}", p.display());
    for h in fs::read_dir(date_dir).with_context(|| ctx(date_dir))? {
        let h = h.with_context(|| ctx(date_dir))?;
        let name = h.file_name();
        if !name.to_string_lossy().starts_with("hour=") || !h.path().is_dir() {
            continue;
        }
        for f in fs::read_dir(h.path()).with_context(|| ctx(&h.path()))? {
            let f = f.with_context(|| ctx(&h.path()))?;
            let name = f.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                return Ok(None);
            }
            if name.starts_with('.') || !(name.ends_with(".arrow") || name.ends_with(".parquet")) {
                continue;
            }
            let len = f.metadata().with_context(|| ctx(&f.path()))?.len();
            files.push((f.path(), len));
        }
    }
    files.sort();
    Ok(Some(files))
}

/// Batches of one part, read as they are needed.
type Batches = Box<dyn Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>>;

/// A part's schema (with its metadata: table, schema version) and a reader
/// of its batches.
fn read_batches(path: &Path) -> Result<(arrow_schema::SchemaRef, Batches)> {
    let f = File::open(path).with_context(|| format!("{}", path.display()))?;
    let ctx = || format!("{}", path.display());
    if path.extension().is_some_and(|e| e == "parquet") {
        let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .with_context(ctx)?;
        let schema = b.schema().clone();
        Ok((schema, Box::new(b.build().with_context(ctx)?)))
    } else {
        let r = arrow_ipc::reader::FileReader::try_new(f, None).with_context(ctx)?;
        Ok((r.schema(), Box::new(r)))
    }
}

/// The sort key columns of a batch: source address and time.
fn keys(b: &RecordBatch) -> Result<(StringArray, TimestampMicrosecondArray)> {
    let col = |c: Option<&ArrayRef>, name: &str| -> Result<ArrayRef> {
        c.cloned()
            .with_context(|| format!("no column {name}: not a scanwatch table"))
    };
    let (addr, ts) = if let Some(id) = b.column_by_name("id") {
        let id = id
            .as_any()
            .downcast_ref::<StructArray>()
            .context("column id is not a struct")?;
        (
            col(id.column_by_name("orig_h"), "id.orig_h")?,
            col(b.column_by_name("ts"), "ts")?,
        )
    } else {
        (
            col(b.column_by_name("scanner"), "scanner")?,
            col(b.column_by_name("ts_first"), "ts_first")?,
        )
    };
    let addr = addr
        .as_any()
        .downcast_ref::<StringArray>()
        .context("address column is not a string")?
        .clone();
    let ts = ts
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .context("time column is not a timestamp")?
        .clone();
    Ok((addr, ts))
}

/// One batch of `chunk`'s rows, sorted by (address, time), rows of equal
/// keys in their order.
fn sorted(chunk: &[RecordBatch]) -> Result<RecordBatch> {
    let schema = chunk[0].schema();
    let all = arrow_select::concat::concat_batches(&schema, chunk).context("joining batches")?;
    let (addr, ts) = keys(&all)?;
    let mut idx: Vec<u32> = (0..all.num_rows() as u32).collect();
    idx.sort_by(|&i, &j| {
        let (i, j) = (i as usize, j as usize);
        (addr.value(i), ts.value(i)).cmp(&(addr.value(j), ts.value(j)))
    });
    arrow_select::take::take_record_batch(&all, &UInt32Array::from(idx)).context("sorting rows")
}

fn write_file(path: &Path, batch: &RecordBatch, row_group: usize) -> Result<()> {
    let ctx = || format!("{}", path.display());
    let schema = batch.schema();
    let props = scanwatch_sink::parquet_properties(&schema)
        .into_builder()
        .set_max_row_group_row_count(Some(row_group))
        .build();
    let f = File::create(path).with_context(ctx)?;
    let mut w = ArrowWriter::try_new(f, schema, Some(props)).with_context(ctx)?;
    w.write(batch).with_context(ctx)?;
    let f = w.into_inner().with_context(ctx)?;
    f.sync_all().with_context(ctx)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("{}", dir.display()))
}

/// Swaps two folders in one step (Linux `renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &Path, b: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let ca = CString::new(a.as_os_str().as_bytes())?;
        let cb = CString::new(b.as_os_str().as_bytes())?;
        // SAFETY: two valid NUL-terminated paths relative to the working
        // folder; the call reads them and touches no other memory of ours.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("swapping {} and {}", a.display(), b.display()));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        bail!("compact needs Linux (renameat2 RENAME_EXCHANGE)")
    }
}

fn compact_day(date_dir: &Path, (rows_per_file, row_group): (usize, usize)) -> Result<Outcome> {
    let ctx = |p: &Path| format!("{}", p.display());
    let parent = date_dir.parent().context("a date folder has a parent")?;
    let name = date_dir
        .file_name()
        .context("a date folder has a name")?
        .to_string_lossy()
        .into_owned();
    let staging = parent.join(format!(".compact-{name}"));
    // A staging folder left by an interrupted compaction: either an
    // unfinished new day or an old one already swapped out; the visible day
    // is whole either way.
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| ctx(&staging))?;
    }
    let Some(files) = day_files(date_dir)? else {
        return Ok(Outcome::Busy);
    };
    let only_all = files.iter().all(|(p, _)| {
        p.parent()
            .and_then(|h| h.file_name())
            .is_some_and(|h| h == ALL)
    });
    if files.is_empty() || only_all {
        return Ok(Outcome::AlreadyCompact);
    }
    let out_dir = staging.join(ALL);
    fs::create_dir_all(&out_dir).with_context(|| ctx(&out_dir))?;
    let built = build(&files, &out_dir, rows_per_file, row_group);
    let (rows_in, rows_out, files_out) = match built {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // The day must be as it was read, and whole in the new files.
    let now = day_files(date_dir)?;
    if now.as_ref() != Some(&files) || rows_in != rows_out {
        let _ = fs::remove_dir_all(&staging);
        bail!(
            "{}: the day changed while it was compacted (a sensor still writes it); left as it was",
            date_dir.display()
        );
    }
    sync_dir(&out_dir)?;
    sync_dir(&staging)?;
    exchange(&staging, date_dir)?;
    sync_dir(parent)?;
    fs::remove_dir_all(&staging).with_context(|| ctx(&staging))?;
    Ok(Outcome::Compacted {
        files_in: files.len(),
        files_out,
        rows: rows_out,
    })
}

/// Reads `files` in order and writes sorted files of about
/// `rows_per_file` rows into `out_dir`: (rows read, rows written, files).
fn build(
    files: &[(PathBuf, u64)],
    out_dir: &Path,
    rows_per_file: usize,
    row_group: usize,
) -> Result<(u64, u64, usize)> {
    let (mut rows_in, mut rows_out, mut n) = (0u64, 0u64, 0usize);
    let mut chunk: Vec<RecordBatch> = Vec::new();
    let mut chunk_rows = 0usize;
    let mut schema: Option<arrow_schema::SchemaRef> = None;
    let flush = |chunk: &mut Vec<RecordBatch>, n: &mut usize| -> Result<u64> {
        if chunk.is_empty() {
            return Ok(0);
        }
        let b = sorted(chunk)?;
        chunk.clear();
        write_file(
            &out_dir.join(format!("part-{:05}.parquet", *n)),
            &b,
            row_group,
        )?;
        *n += 1;
        Ok(b.num_rows() as u64)
    };
    for (path, _) in files {
        let (file_schema, batches) = read_batches(path)?;
        let first = schema.get_or_insert(file_schema.clone()).clone();
        for b in batches {
            let b = b.with_context(|| format!("{}", path.display()))?;
            if first.fields() != b.schema().fields() || first.metadata() != file_schema.metadata() {
                bail!(
                    "{}: other columns than the day's first part (another schema version); not compacted",
                    path.display()
                );
            }
            // Keep the first part's metadata (table, schema version).
            let b = b.with_schema(first.clone()).context("schema")?;
            rows_in += b.num_rows() as u64;
            chunk_rows += b.num_rows();
            chunk.push(b);
            if chunk_rows >= rows_per_file {
                rows_out += flush(&mut chunk, &mut n)?;
                chunk_rows = 0;
            }
        }
    }
    rows_out += flush(&mut chunk, &mut n)?;
    Ok((rows_in, rows_out, n))
}
