//! Where results go: Arrow IPC files under a Hive-style layout, and
//! JSON-lines alerts.
//!
//! [`PartitionedWriter`] writes one table (`flows` or `detections`) under
//! `ROOT/<table>/[sensor=NAME/]date=YYYY-MM-DD/hour=HH/part-NNNNN.arrow` (or
//! `.parquet`), the partition chosen by each row's packet time. Both formats
//! carry the table's schema version in their file metadata
//! (`scanwatch.schema_version`). A part is written as `….arrow.tmp` and
//! renamed only after its footer is written and the file synced, so a file
//! under its final name is always complete, even after `kill -9`. Parts
//! rotate at the hour (packet time), at a row cap, and on request (SIGHUP).
//!
//! [`AlertWriter`] appends one Suricata EVE `alert` line per scan event
//! (module `eve`), flushed at once so a tail sees it live.

use arrow_array::RecordBatch;
use arrow_ipc::writer::FileWriter;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use scanwatch_model::{civil_clamped, Micros};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod eve;
pub mod retention;
pub mod zeek;
pub use zeek::ConnLog;

pub use arrow_array::RecordBatch as Batch;
pub use eve::{
    all_signatures, eve_proto, severity, signature, signature_id, AlertEvent, AlertTrigger,
    SensorInfo, CATEGORY, GID, LIST_CAP, MAX_LINE, REV,
};
pub use retention::{Removal, Retention};
pub use scanwatch_schema::{
    detection_schema, flow_schema, DetectionBatchBuilder, FlowBatchBuilder, TableBuilder,
    SCHEMA_VERSION,
};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: writing Arrow: {source}")]
    Arrow {
        path: PathBuf,
        source: arrow_schema::ArrowError,
    },
    #[error("{path}: writing Parquet: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
}

impl SinkError {
    /// The file system is full, or the user's quota is used up (ENOSPC,
    /// EDQUOT): a state that passes when space is freed, not a broken
    /// output.
    pub fn is_disk_full(&self) -> bool {
        match self {
            SinkError::Io { source, .. } => {
                source.kind() == io::ErrorKind::StorageFull
                    || matches!(source.raw_os_error(), Some(28 | 122))
            }
            _ => false,
        }
    }
}

/// The file format of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Arrow IPC file format (`.arrow`): fastest to write, memory-mapped reads.
    #[default]
    Arrow,
    /// Parquet (`.parquet`, Snappy): what Spark, Trino and DuckDB read best.
    Parquet,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Arrow => "arrow",
            Format::Parquet => "parquet",
        }
    }
}

/// Parquet properties for our tables: Snappy, row groups of 128k rows, and
/// the schema's own metadata (table name, schema version) as file metadata.
pub fn parquet_properties(schema: &arrow_schema::Schema) -> WriterProperties {
    let kv: Vec<KeyValue> = schema
        .metadata()
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_key_value_metadata(Some(kv))
        .build()
}

fn parquet_err(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> SinkError + '_ {
    move |e| match e {
        parquet::errors::ParquetError::External(inner) => match inner.downcast::<io::Error>() {
            Ok(source) => SinkError::Io {
                path: path.to_path_buf(),
                source: *source,
            },
            Err(inner) => SinkError::Parquet {
                path: path.to_path_buf(),
                source: parquet::errors::ParquetError::External(inner),
            },
        },
        source => SinkError::Parquet {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// An open part's writer, in either format, with the bytes handed to it
/// since its file's writeback was last started.
enum PartWriter {
    Arrow(FileWriter<BufWriter<File>>, usize),
    Parquet(ArrowWriter<File>, usize),
}

/// Writeback of a part is started every this many bytes written, so that
/// the disk works while the pipeline does, and the `fsync` that closes the
/// part finds little left to write (it was 70 ms of a 0.75 s run writing
/// 234 MB of flows).
const WRITEBACK_EVERY: usize = 8 << 20;

/// Asks the kernel to start writing `f`'s dirty pages now, without waiting
/// for them (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`; a no-op
/// elsewhere). Durability still comes from the `fsync` at close.
fn start_writeback(f: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; offset 0 and length 0 mean the
        // whole file. The call only schedules I/O and touches no memory of
        // ours.
        unsafe {
            libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = f;
}

impl PartWriter {
    fn create(
        format: Format,
        path: &Path,
        schema: &arrow_schema::SchemaRef,
    ) -> Result<PartWriter, SinkError> {
        let f = File::create(path).map_err(io_err(path))?;
        Ok(match format {
            Format::Arrow => PartWriter::Arrow(
                FileWriter::try_new(BufWriter::with_capacity(64 << 10, f), schema)
                    .map_err(arrow_err(path))?,
                0,
            ),
            Format::Parquet => PartWriter::Parquet(
                ArrowWriter::try_new(f, schema.clone(), Some(parquet_properties(schema)))
                    .map_err(parquet_err(path))?,
                0,
            ),
        })
    }

    fn write(&mut self, path: &Path, batch: &RecordBatch) -> Result<(), SinkError> {
        let (file, since) = match self {
            PartWriter::Arrow(w, since) => {
                w.write(batch).map_err(arrow_err(path))?;
                (w.get_ref().get_ref(), since)
            }
            PartWriter::Parquet(w, since) => {
                w.write(batch).map_err(parquet_err(path))?;
                (w.inner(), since)
            }
        };
        *since += batch.get_array_memory_size();
        if *since >= WRITEBACK_EVERY {
            *since = 0;
            start_writeback(file);
        }
        Ok(())
    }

    /// Writes the footer and returns the file, not yet synced.
    fn finish(self, path: &Path) -> Result<File, SinkError> {
        match self {
            PartWriter::Arrow(mut w, _) => {
                w.finish().map_err(arrow_err(path))?;
                let buf = w.into_inner().map_err(arrow_err(path))?;
                buf.into_inner().map_err(|e| SinkError::Io {
                    path: path.to_path_buf(),
                    source: e.into_error(),
                })
            }
            // into_inner writes the footer, then hands the file back.
            PartWriter::Parquet(w, _) => w.into_inner().map_err(parquet_err(path)),
        }
    }
}

/// An Arrow error; an I/O error inside it (disk full, folder gone) is
/// reported as the plain I/O error it is.
fn arrow_err(path: &Path) -> impl FnOnce(arrow_schema::ArrowError) -> SinkError + '_ {
    move |e| match e {
        arrow_schema::ArrowError::IoError(_, source) => SinkError::Io {
            path: path.to_path_buf(),
            source,
        },
        source => SinkError::Arrow {
            path: path.to_path_buf(),
            source,
        },
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Rotation and batching.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Rows per record batch.
    pub batch_rows: usize,
    /// A part is closed after this many rows (size cap).
    pub max_part_rows: u64,
    /// Most parts open at once (one per hour partition being written).
    pub max_open: usize,
    /// Extra Hive levels before `date=` (e.g. `sensor=NAME`).
    pub prefix: Vec<String>,
    pub format: Format,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            batch_rows: 65_536,
            max_part_rows: 5_000_000,
            max_open: 4,
            prefix: Vec::new(),
            format: Format::Arrow,
        }
    }
}

struct OpenPart<B> {
    hour: i64,
    builder: B,
    writer: Option<PartWriter>,
    tmp: PathBuf,
    path: PathBuf,
    rows: u64,
}

/// One table written as hour-partitioned Arrow IPC files.
pub struct PartitionedWriter<B: TableBuilder + Default> {
    root: PathBuf,
    opts: SinkOptions,
    open: Vec<OpenPart<B>>,
    /// Completed files, in the order they were finished.
    pub finished: Vec<PathBuf>,
    pub rows: u64,
    /// Rows of parts given up because they could not be written (counted
    /// in `rows` too).
    pub lost_rows: u64,
}

impl<B: TableBuilder + Default> PartitionedWriter<B> {
    /// `root` is `DIR/<table>`; it is created, and its writability checked,
    /// here, so that a bad output folder is reported before any work.
    pub fn new(root: PathBuf, opts: SinkOptions) -> Result<Self, SinkError> {
        fs::create_dir_all(&root).map_err(io_err(&root))?;
        let probe = root.join(".scanwatch-write-test");
        File::create(&probe).map_err(io_err(&root))?;
        let _ = fs::remove_file(&probe);
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(PartitionedWriter {
            root,
            opts,
            open: Vec::new(),
            finished: Vec::new(),
            rows: 0,
            lost_rows: 0,
        })
    }

    /// The open part for `hour`, opening one (and closing the oldest open
    /// one past `max_open`) if needed.
    fn part_for(&mut self, hour: i64) -> Result<usize, SinkError> {
        if let Some(i) = self.open.iter().position(|p| p.hour == hour) {
            return Ok(i);
        }
        if self.open.len() >= self.opts.max_open {
            // Close the oldest hour.
            let oldest = self
                .open
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.hour)
                .map(|(i, _)| i)
                .unwrap_or(0);
            let p = self.open.swap_remove(oldest);
            self.close_part(p)?;
        }
        let part = self.new_part(hour)?;
        self.open.push(part);
        Ok(self.open.len() - 1)
    }

    /// Adds one row, partitioned by its packet time `ts`.
    pub fn push(&mut self, row: &B::Row, ts: Micros) -> Result<(), SinkError> {
        let idx = self.part_for(ts.div_euclid(3_600_000_000))?;
        let part = &mut self.open[idx];
        part.builder.append(row);
        part.rows += 1;
        self.rows += 1;
        if part.builder.len() >= self.opts.batch_rows {
            flush_batch(part, self.opts.format)?;
        }
        if part.rows >= self.opts.max_part_rows {
            let p = self.open.swap_remove(idx);
            self.close_part(p)?;
        }
        Ok(())
    }

    /// Adds a batch built elsewhere (a flow worker), all of whose rows
    /// belong to `hour` (µs since the epoch / 3.6e9).
    pub fn push_batch(&mut self, hour: i64, batch: &RecordBatch) -> Result<(), SinkError> {
        let idx = self.part_for(hour)?;
        let part = &mut self.open[idx];
        flush_batch(part, self.opts.format)?;
        write_batch(part, batch, self.opts.format)?;
        part.rows += batch.num_rows() as u64;
        self.rows += batch.num_rows() as u64;
        if part.rows >= self.opts.max_part_rows {
            let p = self.open.swap_remove(idx);
            self.close_part(p)?;
        }
        Ok(())
    }

    fn new_part(&self, hour: i64) -> Result<OpenPart<B>, SinkError> {
        let c = civil_clamped(hour * 3_600_000_000);
        let mut dir = self.root.clone();
        for p in &self.opts.prefix {
            dir.push(p);
        }
        dir.push(format!("date={:04}-{:02}-{:02}", c.year, c.month, c.day));
        dir.push(format!("hour={:02}", c.hour));
        // The output folder itself is made once, at the start; if it is gone
        // now, someone removed it (or unmounted it): stop, do not quietly
        // write a new tree where no one expects it.
        if !self.root.is_dir() {
            return Err(SinkError::Io {
                path: self.root.clone(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "No such file or directory (the output folder was removed while scanwatch ran)",
                ),
            });
        }
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        // Next free part number in this partition (earlier runs may have
        // written some).
        let mut n = 0u32;
        for e in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(num) = name
                .strip_prefix("part-")
                .and_then(|r| r.split('.').next())
                .and_then(|d| d.parse::<u32>().ok())
            {
                n = n.max(num + 1);
            }
        }
        let ext = self.opts.format.extension();
        let path = dir.join(format!("part-{n:05}.{ext}"));
        let tmp = dir.join(format!("part-{n:05}.{ext}.tmp"));
        // Reserve the name now so two parts of one run never collide.
        File::create(&tmp).map_err(io_err(&tmp))?;
        Ok(OpenPart {
            hour,
            builder: B::default(),
            writer: None,
            tmp,
            path,
            rows: 0,
        })
    }

    /// Gives up every open part after a write failed (a full disk): their
    /// files are removed (so their space is free again) and their rows
    /// counted in [`PartitionedWriter::lost_rows`]. The next row starts a
    /// new part.
    pub fn abandon_open(&mut self) {
        for p in std::mem::take(&mut self.open) {
            self.lost_rows += p.rows;
            let _ = fs::remove_file(&p.tmp);
        }
    }

    fn close_part(&mut self, p: OpenPart<B>) -> Result<(), SinkError> {
        let tmp = p.tmp.clone();
        let rows = p.rows;
        let r = self.finish_part(p);
        if r.is_err() {
            // A part that cannot be finished is garbage: free its space.
            let _ = fs::remove_file(&tmp);
            self.lost_rows += rows;
        }
        r
    }

    fn finish_part(&mut self, mut p: OpenPart<B>) -> Result<(), SinkError> {
        flush_batch(&mut p, self.opts.format)?;
        let Some(w) = p.writer.take() else {
            let _ = fs::remove_file(&p.tmp);
            return Ok(());
        };
        let file = w.finish(&p.tmp)?;
        file.sync_all().map_err(io_err(&p.tmp))?;
        fs::rename(&p.tmp, &p.path).map_err(io_err(&p.path))?;
        // The rename, and the partition folders it may have been the first
        // file of, are durable too: fsync the folders up to the table's.
        let mut dir = p.path.parent();
        while let Some(d) = dir {
            sync_dir(d)?;
            if d == self.root {
                break;
            }
            dir = d.parent();
        }
        self.finished.push(p.path);
        Ok(())
    }

    /// Finishes every open part (rotation on SIGHUP, or the end).
    pub fn rotate(&mut self) -> Result<(), SinkError> {
        let parts = std::mem::take(&mut self.open);
        let mut first_err = None;
        for p in parts {
            if let Err(e) = self.close_part(p) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The hours (since the epoch) of the parts open now, which retention
    /// leaves alone.
    pub fn open_hours(&self) -> Vec<i64> {
        self.open.iter().map(|p| p.hour).collect()
    }

    /// Closes parts whose hour ended before `ts` (packet time).
    pub fn close_before(&mut self, ts: Micros) -> Result<(), SinkError> {
        let hour = ts.div_euclid(3_600_000_000);
        while let Some(i) = self.open.iter().position(|p| p.hour < hour - 1) {
            let p = self.open.swap_remove(i);
            self.close_part(p)?;
        }
        Ok(())
    }
}

/// Makes a folder's entries (a rename, a new file or folder) durable.
fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn flush_batch<B: TableBuilder>(p: &mut OpenPart<B>, format: Format) -> Result<(), SinkError> {
    if p.builder.is_empty() {
        return Ok(());
    }
    let batch = p.builder.finish().map_err(arrow_err(&p.tmp))?;
    write_batch(p, &batch, format)
}

fn write_batch<B>(
    p: &mut OpenPart<B>,
    batch: &RecordBatch,
    format: Format,
) -> Result<(), SinkError> {
    if p.writer.is_none() {
        p.writer = Some(PartWriter::create(format, &p.tmp, &batch.schema())?);
    }
    if let Some(w) = p.writer.as_mut() {
        w.write(&p.tmp, batch)?;
    }
    Ok(())
}

impl<B: TableBuilder + Default> Drop for PartitionedWriter<B> {
    fn drop(&mut self) {
        // Best effort on an error path: whatever was written is finished.
        let _ = self.rotate();
    }
}

/// JSON-lines alerts, to a file or stdout. A line is written whole or not
/// at all: when a write fails (a full disk), the file is cut back to its
/// last whole line and the alerts that were buffered are counted in
/// [`AlertWriter::dropped`]; the writer goes on with the next ones. A file
/// whose last line was cut (a crash, a full disk in an older run) has that
/// tail moved to `<file>.cut` when it is opened, never appended to. The
/// file and its folder are synced at each reopen (rotation) and at the end.
pub struct AlertWriter {
    out: AlertTarget,
    path: PathBuf,
    /// Lines not yet written, whole.
    buf: Vec<u8>,
    buffered: u64,
    line: Vec<u8>,
    sensor: SensorInfo,
    /// When the oldest alert not yet written was buffered.
    buffered_since: Option<Instant>,
    pub written: u64,
    /// Alerts lost because they could not be written (a full disk).
    pub dropped: u64,
    /// Bytes of a cut last line moved aside to `<file>.cut` at opening.
    pub repaired: u64,
}

enum AlertTarget {
    Stdout(io::Stdout),
    File(File),
}

/// Buffered alert bytes that trigger a write even before a flush.
const ALERT_BUF: usize = 64 << 10;

impl AlertWriter {
    /// `path` of `-` means stdout.
    pub fn open(path: &Path) -> Result<AlertWriter, SinkError> {
        let mut repaired = 0;
        let out = Self::open_target(path, &mut repaired)?;
        Ok(AlertWriter {
            out,
            path: path.to_path_buf(),
            buf: Vec::with_capacity(ALERT_BUF),
            buffered: 0,
            line: Vec::with_capacity(4096),
            sensor: SensorInfo::default(),
            buffered_since: None,
            written: 0,
            dropped: 0,
            repaired,
        })
    }

    /// The sensor's name and interface, for every line's `host` and
    /// `in_iface`.
    pub fn with_sensor(mut self, sensor: SensorInfo) -> AlertWriter {
        self.sensor = sensor;
        self
    }

    /// Buffers one alert line; [`AlertWriter::flush`] writes what is
    /// buffered. The caller flushes whenever it has nothing more waiting, so
    /// a live alert leaves at once and a replay writes in large blocks.
    pub fn write(&mut self, ev: &AlertEvent<'_>) -> Result<(), SinkError> {
        eve::write_line(&mut self.line, ev, &self.sensor);
        self.buffered_since.get_or_insert_with(Instant::now);
        self.buf.extend_from_slice(&self.line);
        self.buffered += 1;
        self.written += 1;
        if self.buf.len() >= ALERT_BUF {
            self.write_out()?;
        }
        Ok(())
    }

    /// Whether buffered alerts should be written now: some are buffered,
    /// and nothing else waits (`idle`) or the oldest has waited `max_wait`.
    pub fn due(&self, idle: bool, max_wait: Duration) -> bool {
        self.buffered_since
            .is_some_and(|t| idle || t.elapsed() >= max_wait)
    }

    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.buffered_since = None;
        self.write_out()
    }

    /// Writes the buffered lines. On a failure the file is cut back to
    /// where it was (no partial line stays), the lines are counted as
    /// dropped, and the error is returned.
    fn write_out(&mut self) -> Result<(), SinkError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = match &mut self.out {
            AlertTarget::Stdout(o) => o.write_all(&self.buf).and_then(|()| o.flush()),
            AlertTarget::File(f) => append_whole(f, &self.buf),
        };
        self.buf.clear();
        let n = std::mem::take(&mut self.buffered);
        if r.is_err() {
            self.written -= n;
            self.dropped += n;
        }
        r.map_err(io_err(&self.path))
    }

    /// Writes what is buffered, syncs and closes the file and opens its
    /// path again (appending, created if it was moved away), as
    /// `logrotate` expects on SIGHUP. Stdout is left as it is. The
    /// buffered alerts go to the old file, the next ones to the new one.
    pub fn reopen(&mut self) -> Result<(), SinkError> {
        self.flush()?;
        if self.path == Path::new("-") {
            return Ok(());
        }
        self.sync()?;
        let mut repaired = 0;
        // The old file is closed as it drops.
        self.out = Self::open_target(&self.path, &mut repaired)?;
        self.repaired += repaired;
        Ok(())
    }

    /// Makes the file and its folder entry durable (a file only).
    pub fn sync(&mut self) -> Result<(), SinkError> {
        if let AlertTarget::File(f) = &self.out {
            f.sync_data().map_err(io_err(&self.path))?;
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                sync_dir(dir)?;
            }
        }
        Ok(())
    }

    /// Stdout for `-`, else the file at `path`, opened to append (and its
    /// folder made), its cut last line (if any) moved aside first.
    fn open_target(path: &Path, repaired: &mut u64) -> Result<AlertTarget, SinkError> {
        if path == Path::new("-") {
            return Ok(AlertTarget::Stdout(io::stdout()));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        *repaired += move_cut_tail(&mut f, path).map_err(io_err(path))?;
        Ok(AlertTarget::File(f))
    }
}

/// Appends `bytes` to `f` whole or not at all: after a failed write (a
/// full disk) the file is cut back to its length before it.
pub(crate) fn append_whole(f: &mut File, bytes: &[u8]) -> io::Result<()> {
    let before = f.metadata().map(|m| m.len());
    let r = f.write_all(bytes);
    if r.is_err() {
        if let Ok(len) = before {
            let _ = f.set_len(len);
        }
    }
    r
}

/// If `f` does not end with a newline, moves its last (cut) line to
/// `<path>.cut` and truncates `f` after its last whole line. Returns the
/// bytes moved.
fn move_cut_tail(f: &mut File, path: &Path) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))?;
    f.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(0);
    }
    // Find the last newline, reading backwards in blocks.
    let mut end = len;
    let mut keep = 0u64;
    let mut block = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut block[..n])?;
        if let Some(i) = block[..n].iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    let mut tail = Vec::with_capacity((len - keep) as usize);
    f.seek(SeekFrom::Start(keep))?;
    f.take(len - keep).read_to_end(&mut tail)?;
    tail.push(b'\n');
    let mut cut_name = path.as_os_str().to_owned();
    cut_name.push(".cut");
    let mut cut = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(PathBuf::from(cut_name))?;
    cut.write_all(&tail)?;
    cut.sync_data()?;
    f.set_len(keep)?;
    Ok(len - keep)
}

#[cfg(test)]
mod tests;
