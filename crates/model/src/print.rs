//! What a probe's own headers say about the program that sent it.
//!
//! Scanners build their probes by hand, and each leaves marks a normal
//! operating system does not: masscan's IP ID derived from the target,
//! zmap's fixed IP ID 54321, Mirai's sequence number equal to the target
//! address, nmap's 1024-byte window with a lone MSS option, hping3's bare
//! header with a small window. A [`ProbePrint`] keeps those header facts of
//! a flow's first packet in six bytes (the decoder fills it, the flow
//! table keeps it with the pending probe, the [`crate::Attempt`] carries
//! it), and tool attribution reads them over a whole scan (detect crate,
//! module `tool`). Checks that need the target's address or port (the
//! derived IP IDs and sequence numbers) are made here, once, as `marks`.

/// Header facts of one packet (a probe: the first packet of its flow).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbePrint {
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// TCP: the options' layout ([`opt`] bits and the option count in the
    /// top three bits); 0 for no options or not TCP.
    pub opts: u8,
    /// [`mark`] bits.
    pub marks: u8,
    /// UDP or ICMP: payload bytes, 255 for 255 or more. 0 for TCP.
    pub plen: u8,
    /// TCP window (unscaled, as sent).
    pub win: u16,
}

/// Bits of [`ProbePrint::opts`]: the TCP options present.
pub mod opt {
    pub const MSS: u8 = 1;
    pub const WSCALE: u8 = 2;
    pub const SACK_OK: u8 = 4;
    pub const TIMESTAMP: u8 = 8;
    /// Any other option kind (not NOP or end of list).
    pub const OTHER: u8 = 16;
    /// The top three bits: how many options (NOP and end not counted),
    /// at most 7.
    pub const COUNT_SHIFT: u8 = 5;
}

/// Bits of [`ProbePrint::marks`].
pub mod mark {
    /// IPv4 "don't fragment" set.
    pub const DF: u8 = 1;
    /// IP ID is 54321 (zmap's fixed value).
    pub const IPID_54321: u8 = 2;
    /// IP ID equals the low 16 bits of target address ^ target port ^
    /// sequence number (masscan's `ip_them ^ port_them ^ seqno`).
    pub const IPID_FROM_TARGET: u8 = 4;
    /// TCP sequence number equals the target's IPv4 address (Mirai).
    pub const SEQ_IS_TARGET: u8 = 8;
    /// IP ID is 0.
    pub const IPID_ZERO: u8 = 16;
    /// UDP from a service port (below 1024) to a higher one, shaped like
    /// that service's reply (see `scanwatch_decode::udp_reply_shaped`: a DNS
    /// or NetBIOS response header, an NTP server's mode, a Kerberos reply,
    /// any payload from a reflection-prone service). Such a datagram whose
    /// request was not seen (asymmetric routing, a reflection attack's
    /// responses) is no probe; an empty one, a request, or anything from
    /// another low port (`nmap -sU -g 53`, `-g 88`, `-g 20`) is.
    pub const UDP_REPLY: u8 = 32;
}

impl ProbePrint {
    /// The TCP options' layout code of an options block (the bytes after
    /// the 20-byte header). Stops at end-of-list or a malformed length.
    pub fn tcp_options(mut o: &[u8]) -> u8 {
        let mut bits = 0u8;
        let mut count = 0u8;
        // At most 40 bytes of options: the loop ends within 40 steps.
        while let Some(&kind) = o.first() {
            let len = match kind {
                0 => break,
                1 => {
                    o = &o[1..];
                    continue;
                }
                _ => match o.get(1) {
                    Some(&l) if l >= 2 && usize::from(l) <= o.len() => usize::from(l),
                    _ => break,
                },
            };
            bits |= match kind {
                2 => opt::MSS,
                3 => opt::WSCALE,
                4 => opt::SACK_OK,
                8 => opt::TIMESTAMP,
                _ => opt::OTHER,
            };
            count = (count + 1).min(7);
            o = &o[len..];
        }
        bits | (count << opt::COUNT_SHIFT)
    }

    /// Options present (without the count).
    pub fn opt_bits(&self) -> u8 {
        self.opts & ((1 << opt::COUNT_SHIFT) - 1)
    }

    /// Number of TCP options.
    pub fn opt_count(&self) -> u8 {
        self.opts >> opt::COUNT_SHIFT
    }

    /// The marks of a TCP probe to `dst_v4` (the IPv4 target as a
    /// big-endian number, `None` for IPv6) and `dport` with sequence
    /// number `seq`, and the packet's IP ID.
    pub fn tcp_marks(ip_id: u16, dst_v4: Option<u32>, dport: u16, seq: u32) -> u8 {
        let mut m = 0;
        if let Some(d) = dst_v4 {
            if ip_id == (d ^ u32::from(dport) ^ seq) as u16 {
                m |= mark::IPID_FROM_TARGET;
            }
            if seq == d {
                m |= mark::SEQ_IS_TARGET;
            }
        }
        m | Self::ip_marks(ip_id, dst_v4.is_some())
    }

    /// The marks any IPv4 packet's ID gives.
    pub fn ip_marks(ip_id: u16, v4: bool) -> u8 {
        if !v4 {
            return 0;
        }
        match ip_id {
            54321 => mark::IPID_54321,
            0 => mark::IPID_ZERO,
            _ => 0,
        }
    }

    /// The option layout as text, e.g. `mss,sack,ts,ws` (`none` without
    /// options).
    pub fn opts_text(&self) -> String {
        let b = self.opt_bits();
        let mut v = Vec::new();
        for (bit, name) in [
            (opt::MSS, "mss"),
            (opt::SACK_OK, "sack"),
            (opt::TIMESTAMP, "ts"),
            (opt::WSCALE, "ws"),
            (opt::OTHER, "other"),
        ] {
            if b & bit != 0 {
                v.push(name);
            }
        }
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(",")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_layouts() {
        // Linux: MSS, SACK_OK, TS, NOP, WS.
        let linux = [
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let p = ProbePrint {
            opts: ProbePrint::tcp_options(&linux),
            ..Default::default()
        };
        assert_eq!(p.opt_count(), 4);
        assert_eq!(p.opts_text(), "mss,sack,ts,ws");
        let nmap = [2, 4, 0x05, 0xb4];
        let p = ProbePrint {
            opts: ProbePrint::tcp_options(&nmap),
            ..Default::default()
        };
        assert_eq!((p.opt_count(), p.opts_text().as_str()), (1, "mss"));
        assert_eq!(ProbePrint::tcp_options(&[]), 0);
        // A length past the end stops the walk; a zero length too.
        assert_eq!(ProbePrint::tcp_options(&[2, 40, 1]), 0);
        assert_eq!(ProbePrint::tcp_options(&[1, 1, 9, 0, 2, 4]), 0);
    }

    #[test]
    fn marks_from_target() {
        let dst = u32::from_be_bytes([198, 19, 1, 13]);
        let seq = 0x1234_5678;
        let id = (dst ^ 80 ^ seq) as u16;
        assert_eq!(
            ProbePrint::tcp_marks(id, Some(dst), 80, seq),
            mark::IPID_FROM_TARGET
        );
        assert_eq!(
            ProbePrint::tcp_marks(54321, Some(dst), 80, dst),
            mark::IPID_54321 | mark::SEQ_IS_TARGET
        );
        assert_eq!(ProbePrint::tcp_marks(54321, None, 80, 1), 0);
    }
}
