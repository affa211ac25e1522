//! The TCP flags byte ([`TcpFlags`]) and the questions scanwatch asks of it.
//!
//! The decoder stores the header's 13th byte as it is; the flow table asks
//! what the packet is (an opening SYN, a SYN-ACK, a reset, a close, which
//! probe shape a first packet has) only through the predicates here, so
//! that every stage reads a flag combination the same way.

use crate::ProbeKind;

/// TCP flag bits as they sit in the header's 13th byte (NS, in the 12th, is
/// not kept). Any byte is a valid value: unknown combinations are kept as
/// they came off the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct TcpFlags(u8);

impl TcpFlags {
    pub const NONE: TcpFlags = TcpFlags(0);
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// The flags of a header's 13th byte.
    #[inline]
    pub const fn from_bits(bits: u8) -> TcpFlags {
        TcpFlags(bits)
    }

    /// The byte as it goes into a header.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Every flag of `other` is set.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// At least one flag of `other` is set.
    #[inline]
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Both flag sets together.
    #[inline]
    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }

    #[inline]
    pub const fn syn(self) -> bool {
        self.intersects(Self::SYN)
    }

    #[inline]
    pub const fn ack(self) -> bool {
        self.intersects(Self::ACK)
    }

    #[inline]
    pub const fn rst(self) -> bool {
        self.intersects(Self::RST)
    }

    #[inline]
    pub const fn fin(self) -> bool {
        self.intersects(Self::FIN)
    }

    /// A SYN that opens a connection: SYN set, neither ACK nor RST (other
    /// flags, FIN included, do not matter).
    #[inline]
    pub const fn is_opening_syn(self) -> bool {
        self.0 & (Self::SYN.0 | Self::ACK.0 | Self::RST.0) == Self::SYN.0
    }

    /// SYN and ACK both set: the second packet of a handshake.
    #[inline]
    pub const fn is_syn_ack(self) -> bool {
        self.contains(Self::SYN.union(Self::ACK))
    }

    /// A reply to someone's SYN (a SYN-ACK or any RST): as a flow's first
    /// packet, backscatter rather than a probe.
    #[inline]
    pub const fn is_syn_ack_or_rst(self) -> bool {
        self.is_syn_ack() || self.rst()
    }

    /// FIN or RST: the sender is closing the connection.
    #[inline]
    pub const fn is_fin_or_rst(self) -> bool {
        self.intersects(Self::FIN.union(Self::RST))
    }

    /// A plain acknowledgement: ACK without SYN, FIN or RST (Zeek's `A`
    /// history letter, when it carries no payload).
    #[inline]
    pub const fn is_bare_ack(self) -> bool {
        self.0 & (Self::ACK.0 | Self::SYN.0 | Self::FIN.0 | Self::RST.0) == Self::ACK.0
    }

    /// FIN, PSH and URG all set: nmap's Xmas probe.
    #[inline]
    pub const fn is_xmas(self) -> bool {
        self.contains(Self::FIN.union(Self::PSH).union(Self::URG))
    }

    /// None of FIN, SYN, RST, PSH, ACK, URG set (ECE and CWR aside): nmap's
    /// NULL probe.
    #[inline]
    pub const fn is_null(self) -> bool {
        self.0 & 0x3f == 0
    }

    /// The probe a flow's first packet with these flags is, by its flags
    /// alone: `None` for backscatter (a SYN-ACK or a RST); a SYN; with ACK,
    /// nmap's Maimon (FIN+ACK) or ACK probe; without, Xmas (FIN+PSH+URG),
    /// FIN, NULL (none of FIN, PSH, URG), and Xmas for the remaining PSH/URG
    /// shapes. An ACK that carries data is a flow already under way rather
    /// than a probe: the caller, which knows the payload, says so.
    #[inline]
    pub const fn probe_shape(self) -> Option<ProbeKind> {
        if self.is_syn_ack_or_rst() {
            None
        } else if self.syn() {
            Some(ProbeKind::Syn)
        } else if self.ack() {
            if self.fin() {
                Some(ProbeKind::Maimon)
            } else {
                Some(ProbeKind::Ack)
            }
        } else if self.is_xmas() {
            Some(ProbeKind::Xmas)
        } else if self.fin() {
            Some(ProbeKind::Fin)
        } else if self.is_null() {
            Some(ProbeKind::Null)
        } else {
            Some(ProbeKind::Xmas)
        }
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;

    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.union(rhs)
    }
}

impl std::ops::BitOrAssign for TcpFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        *self = self.union(rhs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9293 §3.1: the control bits of byte 13, lowest first.
    #[test]
    fn flag_bits_sit_where_the_header_has_them() {
        let names = [
            TcpFlags::FIN,
            TcpFlags::SYN,
            TcpFlags::RST,
            TcpFlags::PSH,
            TcpFlags::ACK,
            TcpFlags::URG,
            TcpFlags::ECE,
            TcpFlags::CWR,
        ];
        for (bit, f) in names.iter().enumerate() {
            assert_eq!(f.bits(), 1 << bit);
        }
        assert_eq!((TcpFlags::SYN | TcpFlags::ACK).bits(), 0x12);
    }

    /// Each predicate against its definition written out over the bits, for
    /// every byte.
    #[test]
    fn predicates_match_their_definitions_on_every_byte() {
        for b in 0..=255u8 {
            let f = TcpFlags::from_bits(b);
            let (fin, syn, rst, psh, ack, urg) = (
                b & 1 != 0,
                b & 2 != 0,
                b & 4 != 0,
                b & 8 != 0,
                b & 16 != 0,
                b & 32 != 0,
            );
            assert_eq!(f.is_opening_syn(), syn && !ack && !rst, "{b:#04x}");
            assert_eq!(f.is_syn_ack(), syn && ack, "{b:#04x}");
            assert_eq!(f.is_syn_ack_or_rst(), (syn && ack) || rst, "{b:#04x}");
            assert_eq!(f.is_fin_or_rst(), fin || rst, "{b:#04x}");
            assert_eq!(f.is_bare_ack(), ack && !syn && !fin && !rst, "{b:#04x}");
            assert_eq!(f.is_xmas(), fin && psh && urg, "{b:#04x}");
            assert_eq!(
                f.is_null(),
                !(fin || syn || rst || psh || ack || urg),
                "{b:#04x}"
            );
        }
    }

    /// The shapes nmap sends (`-sS`, `-sF`, `-sN`, `-sX`, `-sA`, `-sM`),
    /// with ECN bits set or not, and the replies that are no probe.
    #[test]
    fn probe_shapes_of_nmap_scans_and_of_backscatter() {
        use ProbeKind::*;
        let cases = [
            (0x02, Some(Syn)),
            (0xc2, Some(Syn)),
            (0x01, Some(Fin)),
            (0x00, Some(Null)),
            (0xc0, Some(Null)),
            (0x29, Some(Xmas)),
            (0x08, Some(Xmas)),
            (0x20, Some(Xmas)),
            (0x10, Some(Ack)),
            (0x11, Some(Maimon)),
            (0x12, None),
            (0x04, None),
            (0x14, None),
            (0x06, None),
        ];
        for (b, want) in cases {
            assert_eq!(TcpFlags::from_bits(b).probe_shape(), want, "{b:#04x}");
        }
    }
}
