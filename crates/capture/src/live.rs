//! Live capture through libpcap (the `pcap` crate).
//!
//! The handle is non-blocking and we wait on its file descriptor with
//! `poll(2)` ourselves. With TPACKET_V3, libpcap's own read timeout only
//! retires a *partly filled* block: on a link with no traffic at all,
//! `pcap_next_ex` blocks forever, so neither the packet clock nor Ctrl-C
//! would get through. `poll` returns after `timeout_ms` on a silent link
//! (the source then says [`Next::Idle`] so that the pipeline flushes partial
//! batches and advances its clock) and is never restarted after a signal.
//! The kernel block timeout (the same `timeout_ms`) still bounds how long a
//! packet waits in a partly filled block, so the ring keeps its batching.

use crate::{CaptureError, LiveStats, Next, PacketSource, RawPacket};
use scanwatch_model::Micros;
use std::os::fd::AsRawFd;

// linux/if_packet.h (stable kernel ABI).
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_FANOUT_HASH: u32 = 0;
const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
/// Most capture threads per interface.
pub const MAX_CAPTURE_THREADS: usize = 64;

/// How to open an interface; the defaults are tcpdump's.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub snaplen: i32,
    pub promisc: bool,
    /// Kernel buffer in bytes.
    pub buffer_size: i32,
    pub timeout_ms: i32,
    pub filter: Option<String>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: 262_144,
            promisc: true,
            buffer_size: 64 << 20,
            timeout_ms: 100,
            filter: None,
        }
    }
}

pub struct LiveSource {
    iface: String,
    cap: pcap::Capture<pcap::Active>,
    link_type: u32,
    timeout_ms: i32,
    /// `poll` said the ring has packets; read until it runs dry.
    ready: bool,
    /// A loopback interface: the kernel counts each packet twice (once as
    /// it leaves, once as it comes back in; libpcap skips the outgoing
    /// copy), so its received and dropped counts are halved.
    loopback: bool,
    /// A member of a fanout group: packets stamped before the whole group
    /// had joined may have reached every member (a socket gets all packets
    /// until it joins), so they are skipped and counted, never doubled.
    skip_before: Micros,
    /// Packets skipped by `skip_before`.
    skipped: u64,
}

fn classify(iface: &str, e: pcap::Error) -> CaptureError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "scanwatch".into());
        CaptureError::Permission {
            iface: iface.into(),
            exe,
        }
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        CaptureError::NoSuchInterface {
            iface: iface.into(),
        }
    } else {
        CaptureError::Live {
            iface: iface.into(),
            reason: msg,
        }
    }
}

impl LiveSource {
    pub fn open(iface: &str, opts: &LiveOptions) -> Result<LiveSource, CaptureError> {
        let inactive = pcap::Capture::from_device(iface).map_err(|e| classify(iface, e))?;
        let mut cap = inactive
            .snaplen(opts.snaplen)
            .promisc(opts.promisc)
            .buffer_size(opts.buffer_size)
            .timeout(opts.timeout_ms)
            .open()
            .map_err(|e| classify(iface, e))?;
        if let Some(f) = &opts.filter {
            cap.filter(f, true).map_err(|e| CaptureError::BadFilter {
                iface: iface.into(),
                filter: f.clone(),
                reason: e.to_string(),
            })?;
        }
        let link_type = cap.get_datalink().0 as u32;
        let cap = cap.setnonblock().map_err(|e| classify(iface, e))?;
        let loopback = pcap::Device::list()
            .map(|l| l.iter().any(|d| d.name == iface && d.flags.is_loopback()))
            .unwrap_or(false);
        Ok(LiveSource {
            iface: iface.into(),
            cap,
            link_type,
            timeout_ms: opts.timeout_ms.max(1),
            ready: false,
            loopback,
            skip_before: Micros::MIN,
            skipped: 0,
        })
    }

    /// Opens `threads` handles on `iface` joined in one `PACKET_FANOUT`
    /// group (hash mode, which is symmetric: both directions of a flow
    /// reach the same handle; with `PACKET_FANOUT_FLAG_DEFRAG`, so the
    /// kernel reassembles IPv4 fragments before hashing and every piece of
    /// a datagram reaches one handle, as one packet). Each handle is an
    /// ordinary libpcap handle (TPACKET_V3 ring) whose AF_PACKET socket
    /// joins the group after activation. `group_seed` picks the group id
    /// (the pid, say); ids already taken in this network namespace are
    /// skipped. One thread opens a plain handle, no group.
    pub fn open_fanout(
        iface: &str,
        opts: &LiveOptions,
        threads: usize,
        group_seed: u32,
    ) -> Result<Vec<LiveSource>, CaptureError> {
        if threads == 0 || threads > MAX_CAPTURE_THREADS {
            return Err(CaptureError::Live {
                iface: iface.into(),
                reason: format!(
                    "capture threads must be between 1 and {MAX_CAPTURE_THREADS}, not {threads}"
                ),
            });
        }
        if threads == 1 {
            return Ok(vec![LiveSource::open(iface, opts)?]);
        }
        let mut handles = (0..threads)
            .map(|_| LiveSource::open(iface, opts))
            .collect::<Result<Vec<_>, _>>()?;
        for h in &handles {
            check_af_packet(iface, h.cap.as_raw_fd())?;
        }
        // The first member creates the group: try a few ids in case one is
        // taken (by another scanwatch, Suricata, ...) in this namespace.
        let mut id = None;
        let mut last = 0;
        for k in 0..32u32 {
            let g = (group_seed.wrapping_add(k.wrapping_mul(40_503)) & 0xffff) as u16;
            match join_fanout(handles[0].cap.as_raw_fd(), g) {
                Ok(()) => {
                    id = Some(g);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let Some(id) = id else {
            return Err(fanout_error(iface, last));
        };
        for h in &handles[1..] {
            join_fanout(h.cap.as_raw_fd(), id).map_err(|e| fanout_error(iface, e))?;
        }
        let joined = wall_micros();
        for (k, h) in handles.iter_mut().enumerate() {
            h.skip_before = joined;
            h.iface = format!("{iface}#{k}");
        }
        Ok(handles)
    }

    /// Packets skipped because they were stamped before the fanout group
    /// was complete (see [`LiveSource::open_fanout`]).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// Fanout needs the packet socket libpcap opened on Linux; say so plainly
/// where the handle is something else.
fn check_af_packet(iface: &str, fd: libc::c_int) -> Result<(), CaptureError> {
    let mut dom: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: dom and len are valid for the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut dom as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r != 0 || dom != libc::AF_PACKET {
        return Err(CaptureError::Live {
            iface: iface.into(),
            reason: "several capture threads need a Linux AF_PACKET socket (PACKET_FANOUT); this handle is not one: use --capture-threads 1".into(),
        });
    }
    Ok(())
}

fn join_fanout(fd: libc::c_int, id: u16) -> Result<(), i32> {
    let arg: u32 = u32::from(id) | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
    // SAFETY: arg is a valid u32 for the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            PACKET_FANOUT,
            (&arg as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

fn fanout_error(iface: &str, errno: i32) -> CaptureError {
    CaptureError::Live {
        iface: iface.into(),
        reason: format!(
            "cannot join the capture threads in a PACKET_FANOUT group ({}); the kernel may lack fanout: use --capture-threads 1",
            std::io::Error::from_raw_os_error(errno)
        ),
    }
}

fn wall_micros() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as Micros)
        .unwrap_or(0)
}

impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        if !self.ready {
            let mut pfd = libc::pollfd {
                fd: self.cap.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, the count says so.
            let n = unsafe { libc::poll(&mut pfd, 1, self.timeout_ms) };
            if n <= 0 {
                // Timeout, or a signal (EINTR): let the caller look around.
                return Ok(Next::Idle);
            }
            if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
                return Err(CaptureError::Live {
                    iface: self.iface.clone(),
                    reason: "the interface went away (poll error)".into(),
                });
            }
            self.ready = true;
        }
        match self.cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec;
                if ts < self.skip_before {
                    self.skipped += 1;
                    return Ok(Next::Again);
                }
                Ok(Next::Packet(RawPacket {
                    ts,
                    wire_len: p.header.len,
                    link_type: self.link_type,
                    data: p.data,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.ready = false;
                Ok(Next::Again)
            }
            Err(pcap::Error::NoMorePackets) => Ok(Next::End),
            Err(e) => Err(classify(&self.iface, e)),
        }
    }

    fn name(&self) -> String {
        self.iface.clone()
    }

    fn live_stats(&mut self) -> Option<LiveStats> {
        // Loopback: both copies of a packet were counted (see `loopback`);
        // a dropped copy may be the outgoing one libpcap would have
        // skipped, so halved drops are the packets lost, on average.
        let per_packet = if self.loopback { 2 } else { 1 };
        self.cap.stats().ok().map(|s| LiveStats {
            received: u64::from(s.received) / per_packet,
            kernel_dropped: u64::from(s.dropped).div_ceil(per_packet),
            if_dropped: u64::from(s.if_dropped),
            skipped_at_start: self.skipped,
        })
    }

    fn is_live(&self) -> bool {
        true
    }
}
