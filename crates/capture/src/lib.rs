//! Where packets come from: the first stage of scanwatch.
//!
//! A [`PacketSource`] hands out one [`RawPacket`] at a time, borrowed from the
//! source's own buffer (no copy, no allocation per packet). Files are read by
//! a pure-Rust reader ([`FileSource`]: classic pcap in either byte order with
//! µs or ns stamps, pcapng with several interfaces and link types, gzip by
//! magic bytes, a directory, stdin; several inputs merged by packet time),
//! which measures faster than libpcap's and reports exactly where a file is
//! cut. Live interfaces go through libpcap ([`LiveSource`], the `pcap` crate)
//! with a BPF filter, snap length, promiscuous switch, kernel buffer and read
//! timeout.
//!
//! Everything here returns typed [`CaptureError`]s; turning them into one line
//! for the operator is the binary's job.

mod file;
mod live;

pub use file::{FileSource, Format, MAX_OPEN_FILES, MAX_OPEN_FILES_ENV};
pub use live::{LiveOptions, LiveSource, MAX_CAPTURE_THREADS};
use scanwatch_model::Micros;
use std::path::PathBuf;

/// One captured packet, borrowed from the source until the next call.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    pub ts: Micros,
    /// Length on the wire; `data.len()` is what was captured.
    pub wire_len: u32,
    pub link_type: u32,
    pub data: &'a [u8],
}

/// Counters a live source can report (libpcap's `pcap_stats`; on a
/// loopback interface, where the kernel counts each packet twice, halved).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub received: u64,
    pub kernel_dropped: u64,
    pub if_dropped: u64,
    /// Packets a fanout member left out because they were stamped before
    /// its group was complete (see [`LiveSource::open_fanout`]): the
    /// moment the capture started, not a loss during it.
    pub skipped_at_start: u64,
}

/// What [`PacketSource::next_packet`] can say besides "here is a packet".
pub enum Next<'a> {
    Packet(RawPacket<'a>),
    /// A live source's read timeout expired with no packet: a chance to
    /// flush batches and advance the clock.
    Idle,
    /// A live source's ring ran empty: nothing to do but ask again.
    Again,
    /// No more packets.
    End,
}

/// A stream of packets: files or an interface.
pub trait PacketSource: Send {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError>;
    /// A short name for messages (`file.pcap`, `eth0`).
    fn name(&self) -> String;
    /// Kernel counters, for live sources.
    fn live_stats(&mut self) -> Option<LiveStats> {
        None
    }
    /// Bytes consumed so far and the total, for a progress bar.
    fn progress(&self) -> Option<(u64, u64)> {
        None
    }
    fn is_live(&self) -> bool {
        false
    }
    /// Whether packets may trickle in: a pipe or stdin rather than a file
    /// read at disk speed. The capture stage then hands packets on in
    /// smaller groups, so a slow writer's packets are not held back.
    fn is_stream(&self) -> bool {
        false
    }
    /// Where the packet last returned came from: the index of its input
    /// (see [`PacketSource::input_name`]) and its 1-based number there.
    /// `None` when the source is one stream (the caller counts).
    fn position(&self) -> Option<(u32, u64)> {
        None
    }
    /// The name of input `i` of [`PacketSource::position`].
    fn input_name(&self, _i: u32) -> String {
        self.name()
    }
    /// Inputs found damaged since the last call (cut, corrupt, not a
    /// capture), each once; the source went on with the others.
    fn problems(&mut self) -> Vec<InputProblem> {
        Vec::new()
    }
}

/// One input that could not be read whole; the rest of the stream was read.
#[derive(Debug)]
pub struct InputProblem {
    pub path: PathBuf,
    pub error: CaptureError,
}

impl InputProblem {
    /// A cut file: its packets before the cut were read.
    pub fn is_truncation(&self) -> bool {
        self.error.is_truncation()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a capture file (unknown magic {magic:02x?}; expected pcap, pcapng or gzip)"
    )]
    NotACapture { path: PathBuf, magic: Vec<u8> },
    #[error("{path}: file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: truncated at byte {offset} (inside {what}); {packets} packets before the cut were read")]
    Truncated {
        path: PathBuf,
        offset: u64,
        what: &'static str,
        packets: u64,
    },
    #[error("{path}: corrupt at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{path}: no capture files in directory")]
    EmptyDir { path: PathBuf },
    #[error("{count} capture files would have to be open at once (their times overlap), more than the cap of {cap}; merge some of them first (mergecap) or read them in separate runs")]
    TooManyOpen { count: usize, cap: usize },
    #[error("{iface}: no such interface (list them with `ip link`)")]
    NoSuchInterface { iface: String },
    #[error("{iface}: no permission to capture; run as root or grant the capability: sudo setcap cap_net_raw,cap_net_admin=eip {exe}")]
    Permission { iface: String, exe: String },
    #[error("{iface}: invalid BPF filter {filter:?}: {reason}")]
    BadFilter {
        iface: String,
        filter: String,
        reason: String,
    },
    #[error("{iface}: {reason}")]
    Live { iface: String, reason: String },
}

impl CaptureError {
    /// A cut file still yielded packets; the caller keeps them, warns, and
    /// exits non-zero at the end (as tcpdump does).
    pub fn is_truncation(&self) -> bool {
        matches!(self, CaptureError::Truncated { .. })
    }
}

/// Largest captured length we accept in one record: larger is corruption.
pub const MAX_CAPLEN: u32 = 256 * 1024;
