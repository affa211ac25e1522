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
        })
    }
}

impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        if !self.ready {
            use std::os::fd::AsRawFd;
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
        })
    }

    fn is_live(&self) -> bool {
        true
    }
}
