//! Live capture through libpcap (the `pcap` crate).
//!
//! The read timeout is short (100 ms) but not zero: with TPACKET_V3 a zero
//! timeout would let an idle ring block forever, and immediate mode would give
//! up the kernel's block batching. On timeout the source says [`Next::Idle`]
//! so that the pipeline can flush partial batches and advance its clock.

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
        Ok(LiveSource {
            iface: iface.into(),
            cap,
            link_type,
        })
    }
}

impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
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
            Err(pcap::Error::TimeoutExpired) => Ok(Next::Idle),
            Err(pcap::Error::NoMorePackets) => Ok(Next::End),
            Err(e) => Err(classify(&self.iface, e)),
        }
    }

    fn name(&self) -> String {
        self.iface.clone()
    }

    fn live_stats(&mut self) -> Option<LiveStats> {
        self.cap.stats().ok().map(|s| LiveStats {
            received: u64::from(s.received),
            kernel_dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }

    fn is_live(&self) -> bool {
        true
    }
}
