//! Capture files: classic pcap and pcapng, plain or gzip-compressed, one file,
//! a list of files, a directory or stdin — one packet stream in packet-time
//! order, so flow state carries across files.
//!
//! Several inputs are merged by timestamp, as `mergecap` does: each input is
//! ranked by its first packet's time (then its path), opened only when the
//! merged stream reaches that time and closed at its end, and the reader
//! holding the oldest next packet hands it out (ties go to the lower rank,
//! never to the command-line position). At most [`MAX_OPEN_FILES`] inputs
//! are open at once. A damaged input (cut, corrupt, not a capture) is
//! reported as an [`InputProblem`] and the others are still read.
//!
//! The reader keeps one growable buffer per file and parses records in place:
//! a packet's bytes are handed out as a slice of that buffer. Every length
//! read from the file is checked before it is used (records over
//! [`MAX_CAPLEN`], pcapng blocks with impossible lengths), and a file that
//! ends inside a record reports [`CaptureError::Truncated`] with the offset,
//! after every whole record before the cut has been returned.

use crate::{CaptureError, InputProblem, Next, PacketSource, RawPacket, MAX_CAPLEN};
use scanwatch_model::Micros;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Largest pcapng block we accept (a packet block holds at most MAX_CAPLEN
/// bytes of packet plus options).
const MAX_BLOCK: u32 = MAX_CAPLEN + 64 * 1024;

/// Which container a file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
}

#[derive(Clone, Copy)]
struct Iface {
    link_type: u32,
    /// Timestamp units per second (10^6 by default).
    units_per_sec: u64,
    offset_sec: i64,
    snaplen: u32,
}

enum State {
    Pcap {
        swapped: bool,
        nanos: bool,
        link_type: u32,
    },
    Pcapng {
        swapped: bool,
        ifaces: Vec<Iface>,
    },
}

/// Where one record's packet sits in the reader's buffer.
///
/// Written field by field as each record is read and read back at once
/// when the packet is handed on: a load wider than the stores it spans
/// stalls on store forwarding (a third of `next_packet` on the bulk
/// reference file). So the wire length and link type share one word, and
/// the order is fixed so that the time and that word, which the handed-on
/// packet has side by side, are not side by side here to be copied as one.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Rec {
    ts: Micros,
    at: usize,
    /// Wire length (low half) and link type (high half).
    wire_link: u64,
    len: usize,
}

impl Rec {
    #[inline(always)]
    fn new(ts: Micros, wire: u32, link_type: u32, at: usize, len: usize) -> Rec {
        Rec {
            ts,
            wire_link: u64::from(wire) | (u64::from(link_type) << 32),
            at,
            len,
        }
    }

    #[inline(always)]
    fn wire(&self) -> u32 {
        self.wire_link as u32
    }

    #[inline(always)]
    fn link_type(&self) -> u32 {
        (self.wire_link >> 32) as u32
    }
}

struct Reader {
    path: PathBuf,
    input: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset (uncompressed) of `buf[start]`.
    offset: u64,
    eof: bool,
    state: State,
    packets: u64,
}

impl Reader {
    fn io_err(&self, e: io::Error) -> CaptureError {
        CaptureError::Io {
            path: self.path.clone(),
            source: e,
        }
    }

    /// Makes at least `n` bytes available from `start`; false at end of
    /// input with fewer.
    #[inline]
    fn fill(&mut self, n: usize) -> Result<bool, CaptureError> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        self.fill_slow(n)
    }

    #[cold]
    #[inline(never)]
    fn fill_slow(&mut self, n: usize) -> Result<bool, CaptureError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < n {
            self.buf.resize(n.next_power_of_two(), 0);
        }
        while self.end < n && !self.eof {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_err(e)),
            }
        }
        Ok(self.end - self.start >= n)
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    #[inline]
    fn u32_at(&self, at: usize, swapped: bool) -> u32 {
        let i = self.start + at;
        // One look at the bytes and one bounds check (callers made them
        // available with `fill`; the slice is 4 bytes, so never the zeros).
        let b: [u8; 4] = self.buf[i..i + 4].try_into().unwrap_or([0; 4]);
        if swapped {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    #[inline]
    fn u16_at(&self, at: usize, swapped: bool) -> u16 {
        let i = self.start + at;
        let b: [u8; 2] = self.buf[i..i + 2].try_into().unwrap_or([0; 2]);
        if swapped {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn truncated(&self, what: &'static str) -> CaptureError {
        CaptureError::Truncated {
            path: self.path.clone(),
            offset: self.offset,
            what,
            packets: self.packets,
        }
    }

    fn corrupt(&self, reason: String) -> CaptureError {
        CaptureError::Corrupt {
            path: self.path.clone(),
            offset: self.offset,
            reason,
        }
    }

    /// Opens `path` (or stdin for `-`), unwraps gzip, and reads the file
    /// header.
    fn open(path: &Path, read_bytes: Arc<AtomicU64>, buf: usize) -> Result<Reader, CaptureError> {
        let raw: Box<dyn Read + Send> = if path == Path::new("-") {
            Box::new(Counting {
                inner: io::stdin(),
                n: read_bytes,
            })
        } else {
            let f = File::open(path).map_err(|e| CaptureError::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
            Box::new(Counting {
                inner: f,
                n: read_bytes,
            })
        };
        Reader::from_input(path, raw, buf)
    }

    /// `buf` is the initial buffer size (it grows for a larger record).
    fn from_input(
        path: &Path,
        raw: Box<dyn Read + Send>,
        buf: usize,
    ) -> Result<Reader, CaptureError> {
        let mut r = Reader {
            path: path.to_path_buf(),
            input: raw,
            buf: vec![0; buf],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            state: State::Pcap {
                swapped: false,
                nanos: false,
                link_type: 1,
            },
            packets: 0,
        };
        if !r.fill(2)? {
            if r.end == 0 {
                return Err(CaptureError::Empty {
                    path: path.to_path_buf(),
                });
            }
            return Err(r.truncated("file header"));
        }
        if r.buf[..2] == GZIP_MAGIC {
            let pending = r.buf[r.start..r.end].to_vec();
            let input = std::mem::replace(&mut r.input, Box::new(io::empty()));
            let chained = io::Cursor::new(pending).chain(input);
            r.input = Box::new(flate2::read::MultiGzDecoder::new(chained));
            r.start = 0;
            r.end = 0;
            r.eof = false;
            if !r.fill(4)? {
                return Err(if r.end == 0 {
                    CaptureError::Empty {
                        path: path.to_path_buf(),
                    }
                } else {
                    r.truncated("file header")
                });
            }
        }
        r.read_header()?;
        Ok(r)
    }

    fn read_header(&mut self) -> Result<(), CaptureError> {
        if !self.fill(4)? {
            return Err(self.truncated("file header"));
        }
        let magic_le = self.u32_at(0, false);
        let (swapped, nanos) = match magic_le {
            PCAP_MAGIC_US => (false, false),
            PCAP_MAGIC_NS => (false, true),
            m if m.swap_bytes() == PCAP_MAGIC_US => (true, false),
            m if m.swap_bytes() == PCAP_MAGIC_NS => (true, true),
            PCAPNG_SHB => {
                self.state = State::Pcapng {
                    swapped: false,
                    ifaces: Vec::new(),
                };
                return Ok(());
            }
            _ => {
                let n = (self.end - self.start).min(4);
                return Err(CaptureError::NotACapture {
                    path: self.path.clone(),
                    magic: self.buf[self.start..self.start + n].to_vec(),
                });
            }
        };
        if !self.fill(24)? {
            return Err(self.truncated("pcap global header"));
        }
        let link_type = self.u32_at(20, swapped) & 0x0fff_ffff;
        self.state = State::Pcap {
            swapped,
            nanos,
            link_type,
        };
        self.consume(24);
        Ok(())
    }

    /// The next packet; its bytes stay at `buf[at..at + len]` until the
    /// next call.
    #[inline]
    fn next(&mut self) -> Result<Option<Rec>, CaptureError> {
        let mut rec = Rec::default();
        Ok(self.next_into(&mut rec)?.then_some(rec))
    }

    /// [`Reader::next`] written into `rec` (false at the end, `rec` left
    /// as it was).
    #[inline]
    fn next_into(&mut self, rec: &mut Rec) -> Result<bool, CaptureError> {
        match self.state {
            State::Pcap {
                swapped,
                nanos,
                link_type,
            } => self.next_pcap(swapped, nanos, link_type, rec),
            State::Pcapng { .. } => Ok(match self.next_pcapng()? {
                Some(r) => {
                    *rec = r;
                    true
                }
                None => false,
            }),
        }
    }

    /// Written into the input's slot: returned through memory, the
    /// record's fields were stored one by one and read back as wide words
    /// before the stores had landed (a store-forwarding stall: 38% of
    /// `next_packet` on the bulk reference file).
    #[inline(always)]
    fn next_pcap(
        &mut self,
        swapped: bool,
        nanos: bool,
        link_type: u32,
        rec: &mut Rec,
    ) -> Result<bool, CaptureError> {
        if !self.fill(16)? {
            if self.end == self.start {
                return Ok(false);
            }
            return Err(self.truncated("record header"));
        }
        // One bounds check for the whole record header.
        let h: [u8; 16] = match self.buf[self.start..self.start + 16].try_into() {
            Ok(h) => h,
            Err(_) => return Err(self.truncated("record header")),
        };
        let word = |i: usize| word_at(&h, i, swapped);
        let sec = i64::from(word(0));
        let frac = i64::from(word(4));
        let caplen = word(8);
        let wire = word(12);
        if caplen > MAX_CAPLEN {
            return Err(self.corrupt(format!(
                "record claims {caplen} captured bytes (more than {MAX_CAPLEN})"
            )));
        }
        let need = 16 + caplen as usize;
        if !self.fill(need)? {
            return Err(self.truncated("packet data"));
        }
        let ts = sec * 1_000_000 + if nanos { frac / 1000 } else { frac };
        let at = self.start + 16;
        self.consume(need);
        self.packets += 1;
        *rec = Rec::new(ts, wire.max(caplen), link_type, at, caplen as usize);
        Ok(true)
    }

    fn next_pcapng(&mut self) -> Result<Option<Rec>, CaptureError> {
        loop {
            if !self.fill(12)? {
                if self.end == self.start {
                    return Ok(None);
                }
                return Err(self.truncated("pcapng block header"));
            }
            let raw_type = self.u32_at(0, false);
            if raw_type == PCAPNG_SHB {
                // Section header: byte order comes from its magic.
                let bom = self.u32_at(8, false);
                let swapped = match bom {
                    PCAPNG_BOM => false,
                    b if b.swap_bytes() == PCAPNG_BOM => true,
                    _ => return Err(self.corrupt(format!("bad pcapng byte-order magic {bom:#x}"))),
                };
                let len = self.u32_at(4, swapped);
                self.check_block_len(len)?;
                if !self.fill(len as usize)? {
                    return Err(self.truncated("pcapng section header"));
                }
                self.state = State::Pcapng {
                    swapped,
                    ifaces: Vec::new(),
                };
                self.consume(len as usize);
                continue;
            }
            let State::Pcapng { swapped, .. } = self.state else {
                return Ok(None);
            };
            let btype = self.u32_at(0, swapped);
            let len = self.u32_at(4, swapped);
            self.check_block_len(len)?;
            if !self.fill(len as usize)? {
                return Err(self.truncated("pcapng block"));
            }
            let trailer = self.u32_at(len as usize - 4, swapped);
            if trailer != len {
                return Err(self.corrupt(format!(
                    "pcapng block length {len} does not match its trailer {trailer}"
                )));
            }
            match btype {
                1 => {
                    let iface = self.parse_idb(len as usize, swapped)?;
                    if let State::Pcapng { ifaces, .. } = &mut self.state {
                        if ifaces.len() >= 65_536 {
                            return Err(self.corrupt("more than 65536 interfaces".into()));
                        }
                        ifaces.push(iface);
                    }
                    self.consume(len as usize);
                }
                6 | 2 => {
                    // Enhanced (6) or obsolete (2) packet block.
                    if len < 32 {
                        return Err(self.corrupt(format!("packet block too short ({len} bytes)")));
                    }
                    // One bounds check for the fixed part of the block.
                    let h: [u8; 28] = match self.buf[self.start..self.start + 28].try_into() {
                        Ok(h) => h,
                        Err(_) => return Err(self.truncated("pcapng block")),
                    };
                    let word = |i: usize| word_at(&h, i, swapped);
                    let iface_id = if btype == 6 {
                        word(8)
                    } else {
                        let b = [h[8], h[9]];
                        u32::from(if swapped {
                            u16::from_be_bytes(b)
                        } else {
                            u16::from_le_bytes(b)
                        })
                    };
                    let (hi, lo, caplen, wire) = (word(12), word(16), word(20), word(24));
                    if 28 + caplen as u64 + 4 > u64::from(len) {
                        return Err(self.corrupt(format!(
                            "packet block of {len} bytes claims {caplen} captured bytes"
                        )));
                    }
                    let iface = self.iface(iface_id)?;
                    let ts = iface_ts(&iface, (u64::from(hi) << 32) | u64::from(lo));
                    let at = self.start + 28;
                    self.consume(len as usize);
                    self.packets += 1;
                    return Ok(Some(Rec::new(
                        ts,
                        wire.max(caplen),
                        iface.link_type,
                        at,
                        caplen as usize,
                    )));
                }
                3 => {
                    // Simple packet block: interface 0, no timestamp.
                    if len < 16 {
                        return Err(self.corrupt(format!("simple packet block too short ({len})")));
                    }
                    let iface = self.iface(0)?;
                    let wire = self.u32_at(8, swapped);
                    let mut caplen = (len - 16).min(wire);
                    if iface.snaplen > 0 {
                        caplen = caplen.min(iface.snaplen);
                    }
                    let at = self.start + 12;
                    self.consume(len as usize);
                    self.packets += 1;
                    return Ok(Some(Rec::new(
                        0,
                        wire,
                        iface.link_type,
                        at,
                        caplen as usize,
                    )));
                }
                _ => {
                    // Name resolution, statistics, custom and unknown blocks.
                    self.consume(len as usize);
                }
            }
        }
    }

    fn check_block_len(&self, len: u32) -> Result<(), CaptureError> {
        if len < 12 || !len.is_multiple_of(4) || len > MAX_BLOCK {
            return Err(self.corrupt(format!("invalid pcapng block length {len}")));
        }
        Ok(())
    }

    /// Inlined, with the errors out of line: called for every packet
    /// block, it built and copied the whole `Result` (34 instructions a
    /// packet on the scans 500k cut).
    #[inline(always)]
    fn iface(&self, id: u32) -> Result<Iface, CaptureError> {
        if let State::Pcapng { ifaces, .. } = &self.state {
            if let Some(i) = ifaces.get(id as usize) {
                return Ok(*i);
            }
        }
        Err(self.iface_error(id))
    }

    #[cold]
    #[inline(never)]
    fn iface_error(&self, id: u32) -> CaptureError {
        match &self.state {
            State::Pcapng { .. } => {
                self.corrupt(format!("packet refers to undeclared interface {id}"))
            }
            State::Pcap { .. } => self.corrupt("pcapng block in a pcap file".into()),
        }
    }

    fn parse_idb(&self, len: usize, swapped: bool) -> Result<Iface, CaptureError> {
        if len < 20 {
            return Err(self.corrupt(format!("interface block too short ({len})")));
        }
        let mut iface = Iface {
            link_type: u32::from(self.u16_at(8, swapped)),
            units_per_sec: 1_000_000,
            offset_sec: 0,
            snaplen: self.u32_at(12, swapped),
        };
        // Options: code(2) len(2) value padded to 4, until opt_endofopt.
        let mut at = 16usize;
        while at + 4 <= len - 4 {
            let code = self.u16_at(at, swapped);
            let olen = usize::from(self.u16_at(at + 2, swapped));
            if code == 0 || at + 4 + olen > len - 4 {
                break;
            }
            let v = self.start + at + 4;
            match (code, olen) {
                (9, 1) => {
                    let r = self.buf[v];
                    let exp = u32::from(r & 0x7f);
                    iface.units_per_sec = if r & 0x80 == 0 {
                        10u64.checked_pow(exp).unwrap_or(1_000_000)
                    } else {
                        1u64.checked_shl(exp).unwrap_or(1_000_000)
                    }
                    .max(1);
                }
                (14, 8) => {
                    let b: [u8; 8] = self.buf[v..v + 8].try_into().unwrap_or([0; 8]);
                    iface.offset_sec = if swapped {
                        i64::from_be_bytes(b)
                    } else {
                        i64::from_le_bytes(b)
                    };
                }
                _ => {}
            }
            at += 4 + olen.div_ceil(4) * 4;
        }
        Ok(iface)
    }
}

/// The 32-bit word at `i` of a header already read into an array.
#[inline]
fn word_at<const N: usize>(h: &[u8; N], i: usize, swapped: bool) -> u32 {
    let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
    if swapped {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

#[inline]
fn iface_ts(iface: &Iface, units: u64) -> Micros {
    // The common case: microseconds, no offset.
    if iface.units_per_sec == 1_000_000 && iface.offset_sec == 0 {
        return i64::try_from(units).unwrap_or(i64::MAX);
    }
    let us = if iface.units_per_sec == 1_000_000 {
        units as i128
    } else {
        (units as i128) * 1_000_000 / iface.units_per_sec as i128
    };
    (us + i128::from(iface.offset_sec) * 1_000_000)
        .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

/// A BPF program compiled for one link type. libpcap's program is plain
/// heap memory owned by this value and only used by the thread that owns the
/// source.
struct Bpf(pcap::BpfProgram);
// SAFETY: the program is only accessed through `&self` by the owning thread;
// moving it between threads moves the ownership of its instruction array.
unsafe impl Send for Bpf {}

/// How many inputs may be open at once while merging (an open input holds a
/// file descriptor and a read buffer of 256 KiB). Inputs are opened when the
/// merged stream reaches their first packet and closed at their end, so only
/// inputs whose time ranges overlap are open together; more than this is an
/// error ([`CaptureError::TooManyOpen`]).
pub const MAX_OPEN_FILES: usize = 256;

/// An environment variable that lowers [`MAX_OPEN_FILES`] (for tests).
pub const MAX_OPEN_FILES_ENV: &str = "SCANWATCH_MAX_OPEN_FILES";

/// Read buffer of a lone input, of each of several, and of the first look
/// at an input (it grows for a larger record). A lone input's was 1 MiB:
/// the kernel's copy into it (`_copy_to_iter`) was 22% of the bulk file's
/// samples, nearly half of the capture thread, as a buffer that large
/// leaves the cache between reads and every copy writes to memory. At
/// 128 KiB the copy is 4% and the capture thread's samples fall by a
/// quarter (bulk reference, 2026-12-01 21:20 UTC; 64 and 256 KiB measured
/// no better).
const BUF_ONE: usize = 128 << 10;
const BUF_MANY: usize = 256 << 10;
const BUF_PROBE: usize = 64 << 10;

/// Extensions of directory members skipped without a word: notes and data
/// files that sit beside captures, never captures themselves.
const QUIET_EXTENSIONS: &[&str] = &["md", "csv", "txt", "json"];

/// Where one input stands.
enum Slot {
    /// Not opened yet: the merged stream has not reached its first packet.
    Waiting,
    /// Open, with its next record read (its bytes in the reader's buffer).
    Open(Reader, Rec),
    /// Read to its end, damaged, or without packets.
    Done,
}

struct Input {
    path: PathBuf,
    /// Records read from it so far (its packet number, filtered or not).
    packets: u64,
    /// Time of its first packet (`Micros::MAX` when it has none).
    first: Micros,
    slot: Slot,
}

/// What the first look at an input found beyond its header.
enum Probe {
    First(Micros),
    NoPackets,
    /// The first record is already damaged.
    Damaged(CaptureError),
}

/// Capture files read as one stream of packets in packet-time order.
pub struct FileSource {
    /// Every input, in rank order: (first packet time, path).
    inputs: Vec<Input>,
    /// Inputs before this index are no longer waiting.
    next_wait: usize,
    /// Open inputs other than `head`, keyed by (next packet time, rank).
    heap: BinaryHeap<Reverse<(Micros, usize)>>,
    /// The open input holding the oldest next packet.
    head: Option<usize>,
    /// Whether `head`'s record was handed out (it moves on at the next call).
    handed: bool,
    max_open: usize,
    buf_size: usize,
    problems: Vec<InputProblem>,
    read_bytes: Arc<AtomicU64>,
    total_bytes: u64,
    filter: Option<String>,
    programs: Vec<(u32, Bpf)>,
    /// Packets the BPF filter dropped.
    pub filtered: u64,
    /// Some input is stdin, a pipe or a device (see
    /// [`PacketSource::is_stream`]): decided when the inputs are opened,
    /// before privileges are dropped.
    stream: bool,
}

impl FileSource {
    /// Files and directories as given to `-r` (`-` is stdin), merged by
    /// packet time. A directory contributes every regular file in it except
    /// hidden ones and notes (`.md`, `.csv`, `.txt`, `.json`); a member that
    /// is not a readable capture is reported by [`PacketSource::problems`]
    /// and the others are read. A file named directly that is not a capture
    /// (missing, empty, bad header) is an error here, before any packet.
    pub fn open(inputs: &[PathBuf], filter: Option<String>) -> Result<FileSource, CaptureError> {
        let cap = std::env::var(MAX_OPEN_FILES_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map_or(MAX_OPEN_FILES, |n| n.clamp(1, MAX_OPEN_FILES));
        FileSource::open_with_cap(inputs, filter, cap)
    }

    /// As [`FileSource::open`], with at most `max_open` inputs open at once.
    pub fn open_with_cap(
        inputs: &[PathBuf],
        filter: Option<String>,
        max_open: usize,
    ) -> Result<FileSource, CaptureError> {
        // (path, named in a directory)
        let mut paths: Vec<(PathBuf, bool)> = Vec::new();
        for p in inputs {
            if p.is_dir() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                    .map_err(|e| CaptureError::Io {
                        path: p.clone(),
                        source: e,
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && !quietly_skipped(p))
                    .collect();
                entries.sort();
                if entries.is_empty() {
                    return Err(CaptureError::EmptyDir { path: p.clone() });
                }
                paths.extend(entries.into_iter().map(|e| (e, true)));
            } else {
                paths.push((p.clone(), false));
            }
        }
        let total_bytes = paths
            .iter()
            .filter(|(p, _)| p != Path::new("-"))
            .filter_map(|(p, _)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let buf_size = if paths.len() == 1 { BUF_ONE } else { BUF_MANY };
        let read_bytes = Arc::new(AtomicU64::new(0));
        let mut problems = Vec::new();
        let mut list = Vec::with_capacity(paths.len());
        for (path, in_dir) in paths {
            let mut input = Input {
                path,
                packets: 0,
                first: Micros::MAX,
                slot: Slot::Done,
            };
            let probe = if input.path == Path::new("-") {
                // stdin cannot be read twice: it stays open from here on.
                Reader::open(&input.path, read_bytes.clone(), buf_size)
                    .map(|r| first_record(r, &mut input))
            } else {
                probe(&input.path)
            };
            match probe {
                Ok(Probe::First(ts)) => {
                    input.first = ts;
                    if matches!(input.slot, Slot::Done) {
                        input.slot = Slot::Waiting;
                    }
                }
                Ok(Probe::NoPackets) => {}
                Ok(Probe::Damaged(e)) => problems.push(InputProblem {
                    path: input.path.clone(),
                    error: e,
                }),
                Err(e) if in_dir => problems.push(InputProblem {
                    path: input.path.clone(),
                    error: e,
                }),
                Err(e) => return Err(e),
            }
            list.push(input);
        }
        // Rank: first packet time, then path; never the order given.
        list.sort_by(|a, b| (a.first, &a.path).cmp(&(b.first, &b.path)));
        let stream = list.iter().any(|i: &Input| {
            i.path == Path::new("-")
                || std::fs::metadata(&i.path).is_ok_and(|m| !m.file_type().is_file())
        });
        let mut src = FileSource {
            stream,
            inputs: list,
            next_wait: 0,
            heap: BinaryHeap::new(),
            head: None,
            handed: false,
            max_open: max_open.max(1),
            buf_size,
            problems,
            read_bytes,
            total_bytes,
            filter,
            programs: Vec::new(),
            filtered: 0,
        };
        for (i, input) in src.inputs.iter().enumerate() {
            if let Slot::Open(_, rec) = &input.slot {
                src.heap.push(Reverse((rec.ts, i)));
            }
        }
        // A bad filter is an error now, before any output is made: compile
        // it for Ethernet (a filter that parses at all compiles there);
        // other link types compile at their first packet.
        if src.filter.is_some() {
            src.ensure_program(1)?;
        }
        src.settle()?;
        Ok(src)
    }

    /// One capture held in memory (tests and fuzzing): the same parser as
    /// for files, gzip included. `name` is used in messages.
    pub fn from_bytes(name: &str, data: Vec<u8>) -> Result<FileSource, CaptureError> {
        let total_bytes = data.len() as u64;
        let mut input = Input {
            path: PathBuf::from(name),
            packets: 0,
            first: Micros::MAX,
            slot: Slot::Done,
        };
        let reader = Reader::from_input(&input.path, Box::new(io::Cursor::new(data)), BUF_ONE)?;
        let mut problems = Vec::new();
        if let Probe::Damaged(e) = first_record(reader, &mut input) {
            problems.push(InputProblem {
                path: input.path.clone(),
                error: e,
            });
        }
        let head = matches!(input.slot, Slot::Open(..)).then_some(0);
        Ok(FileSource {
            stream: false,
            inputs: vec![input],
            next_wait: 1,
            heap: BinaryHeap::new(),
            head,
            handed: false,
            max_open: 1,
            buf_size: BUF_ONE,
            problems,
            read_bytes: Arc::new(AtomicU64::new(0)),
            total_bytes,
            filter: None,
            programs: Vec::new(),
            filtered: 0,
        })
    }

    /// The container of the input being read.
    pub fn format(&self) -> Option<Format> {
        let h = self.head?;
        match &self.inputs[h].slot {
            Slot::Open(r, _) => Some(match r.state {
                State::Pcap { .. } => Format::Pcap,
                State::Pcapng { .. } => Format::Pcapng,
            }),
            _ => None,
        }
    }

    /// How many inputs are open now.
    fn open_count(&self) -> usize {
        self.heap.len() + usize::from(self.head.is_some())
    }

    /// (next packet time, rank) of an open input.
    #[inline]
    fn key(&self, i: usize) -> Option<(Micros, usize)> {
        match &self.inputs[i].slot {
            Slot::Open(_, rec) => Some((rec.ts, i)),
            _ => None,
        }
    }

    /// The first input, in rank order, still waiting to be opened.
    #[inline]
    fn waiting(&mut self) -> Option<usize> {
        while let Some(input) = self.inputs.get(self.next_wait) {
            if matches!(input.slot, Slot::Waiting) {
                return Some(self.next_wait);
            }
            self.next_wait += 1;
        }
        None
    }

    /// Opens every waiting input whose first packet is due, then makes the
    /// open input with the oldest next packet the head.
    #[inline]
    fn settle(&mut self) -> Result<(), CaptureError> {
        if self.heap.is_empty() && self.next_wait >= self.inputs.len() {
            // One input left open (or none): nothing to open or compare.
            return Ok(());
        }
        loop {
            let head = self.head.and_then(|h| self.key(h));
            let top = self.heap.peek().map(|r| r.0);
            let min = match (head, top) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(w) = self.waiting() else {
                break;
            };
            if min.is_some_and(|(ts, _)| self.inputs[w].first > ts) {
                break;
            }
            if self.open_count() >= self.max_open {
                let due = min.map_or(0, |(ts, _)| {
                    self.inputs[w..]
                        .iter()
                        .filter(|i| matches!(i.slot, Slot::Waiting) && i.first <= ts)
                        .count()
                });
                return Err(CaptureError::TooManyOpen {
                    count: self.open_count() + due.max(1),
                    cap: self.max_open,
                });
            }
            self.next_wait = w + 1;
            self.open_input(w);
        }
        if let Some(&Reverse(top)) = self.heap.peek() {
            match self.head.and_then(|h| self.key(h)) {
                Some(h) if h <= top => {}
                Some(h) => {
                    self.heap.pop();
                    self.heap.push(Reverse(h));
                    self.head = Some(top.1);
                }
                None => {
                    self.heap.pop();
                    self.head = Some(top.1);
                }
            }
        }
        Ok(())
    }

    /// Opens a waiting input and reads its first record onto the heap; a
    /// failure is recorded as a problem of that input.
    fn open_input(&mut self, i: usize) {
        let path = self.inputs[i].path.clone();
        match Reader::open(&path, self.read_bytes.clone(), self.buf_size) {
            Ok(r) => {
                let input = &mut self.inputs[i];
                match first_record(r, input) {
                    Probe::First(ts) => self.heap.push(Reverse((ts, i))),
                    Probe::NoPackets => {}
                    Probe::Damaged(error) => self.problems.push(InputProblem { path, error }),
                }
            }
            Err(error) => {
                self.inputs[i].slot = Slot::Done;
                self.problems.push(InputProblem { path, error });
            }
        }
    }

    /// Moves the head input to its next record, closing it at its end or
    /// at damage.
    #[inline]
    fn step_head(&mut self) {
        let Some(h) = self.head else {
            return;
        };
        let input = &mut self.inputs[h];
        let Slot::Open(r, rec) = &mut input.slot else {
            self.head = None;
            return;
        };
        match r.next_into(rec) {
            Ok(true) => {}
            Ok(false) => {
                input.slot = Slot::Done;
                self.head = None;
            }
            Err(error) => {
                input.slot = Slot::Done;
                self.head = None;
                self.problems.push(InputProblem {
                    path: input.path.clone(),
                    error,
                });
            }
        }
    }

    /// Compiles the filter for `link_type` once.
    fn ensure_program(&mut self, link_type: u32) -> Result<(), CaptureError> {
        let Some(expr) = &self.filter else {
            return Ok(());
        };
        if self.programs.iter().any(|(lt, _)| *lt == link_type) {
            return Ok(());
        }
        let bad = |e: pcap::Error| CaptureError::BadFilter {
            iface: "file".into(),
            filter: expr.clone(),
            reason: e.to_string(),
        };
        // libpcap's dead handles take DLT_ values; LINKTYPE_RAW (101) is
        // DLT_RAW (12) on Linux, the other supported types are equal.
        let dlt = if link_type == 101 {
            12
        } else {
            link_type as i32
        };
        let dead = pcap::Capture::dead(pcap::Linktype(dlt)).map_err(bad)?;
        let prog = dead.compile(expr, true).map_err(bad)?;
        self.programs.push((link_type, Bpf(prog)));
        Ok(())
    }
}

/// Reads the first record of an opened input and leaves it open on it (or
/// done when there is none).
fn first_record(mut r: Reader, input: &mut Input) -> Probe {
    match r.next() {
        Ok(Some(rec)) => {
            input.first = rec.ts;
            input.slot = Slot::Open(r, rec);
            Probe::First(rec.ts)
        }
        Ok(None) => {
            input.slot = Slot::Done;
            Probe::NoPackets
        }
        Err(e) => {
            input.slot = Slot::Done;
            Probe::Damaged(e)
        }
    }
}

/// The first look at a file: its header and first record, then closed.
fn probe(path: &Path) -> Result<Probe, CaptureError> {
    let mut r = Reader::open(path, Arc::new(AtomicU64::new(0)), BUF_PROBE)?;
    Ok(match r.next() {
        Ok(Some(rec)) => Probe::First(rec.ts),
        Ok(None) => Probe::NoPackets,
        Err(e) => Probe::Damaged(e),
    })
}

/// Directory members that are never captures: hidden files and notes.
fn quietly_skipped(p: &Path) -> bool {
    let hidden = p
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    let note = p
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| QUIET_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    hidden || note
}

impl PacketSource for FileSource {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        loop {
            if self.handed {
                self.handed = false;
                self.step_head();
            }
            self.settle()?;
            let Some(h) = self.head else {
                return Ok(Next::End);
            };
            let Some(rec) = (match &self.inputs[h].slot {
                Slot::Open(_, rec) => Some(*rec),
                _ => None,
            }) else {
                return Ok(Next::End);
            };
            self.handed = true;
            self.inputs[h].packets += 1;
            if self.filter.is_some() {
                self.ensure_program(rec.link_type())?;
                let Slot::Open(r, _) = &self.inputs[h].slot else {
                    return Ok(Next::End);
                };
                let data = &r.buf[rec.at..rec.at + rec.len];
                let pass = self
                    .programs
                    .iter()
                    .find(|(t, _)| *t == rec.link_type())
                    .is_none_or(|(_, p)| p.0.filter(data));
                if !pass {
                    self.filtered += 1;
                    continue;
                }
            }
            let Slot::Open(r, _) = &self.inputs[h].slot else {
                return Ok(Next::End);
            };
            return Ok(Next::Packet(RawPacket {
                ts: rec.ts,
                wire_len: rec.wire(),
                link_type: rec.link_type(),
                data: &r.buf[rec.at..rec.at + rec.len],
            }));
        }
    }

    fn name(&self) -> String {
        match self.inputs.len() {
            1 => self.inputs[0].path.display().to_string(),
            n => format!("{n} files"),
        }
    }

    fn progress(&self) -> Option<(u64, u64)> {
        Some((self.read_bytes.load(Ordering::Relaxed), self.total_bytes))
    }

    fn is_stream(&self) -> bool {
        self.stream
    }

    fn position(&self) -> Option<(u32, u64)> {
        let h = self.head?;
        Some((h as u32, self.inputs[h].packets))
    }

    fn input_name(&self, i: u32) -> String {
        self.inputs
            .get(i as usize)
            .map(|x| x.path.display().to_string())
            .unwrap_or_else(|| self.name())
    }

    fn problems(&mut self) -> Vec<InputProblem> {
        std::mem::take(&mut self.problems)
    }
}

#[cfg(test)]
mod tests;
