//! TCP endpoint states and Zeek's `conn_state`, following the logic of Zeek's
//! `base/protocols/conn/main.zeek` (`conn_state()`), so the codes mean what
//! analysts already know them to mean.

use scanwatch_model::{proto, ConnState, TcpFlags};

/// One side of a flow. TCP uses the first seven, as Zeek's analyzer does;
/// UDP and the rest only `Inactive`/`Active`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Inactive,
    SynSent,
    SynAckSent,
    /// Seen sending, but not from the start of the connection.
    Partial,
    Established,
    Closed,
    Reset,
    /// A non-TCP endpoint that sent something.
    Active,
}

impl Endpoint {
    pub fn is_done(self) -> bool {
        matches!(self, Endpoint::Closed | Endpoint::Reset)
    }

    pub fn is_established(self) -> bool {
        self == Endpoint::Established
    }

    fn inactive(self) -> bool {
        matches!(self, Endpoint::Inactive | Endpoint::Partial)
    }
}

/// Moves `me` (the sender) and, where the handshake completes, `peer`.
pub fn tcp_step(me: &mut Endpoint, peer: &mut Endpoint, flags: TcpFlags, payload: u32) {
    let (syn, ack, rst, fin) = (flags.syn(), flags.ack(), flags.rst(), flags.fin());
    if rst {
        *me = Endpoint::Reset;
        return;
    }
    if *me == Endpoint::Reset {
        return;
    }
    if syn {
        if ack {
            if matches!(*me, Endpoint::Inactive | Endpoint::SynSent) {
                *me = Endpoint::SynAckSent;
            }
        } else if *me == Endpoint::Inactive {
            *me = Endpoint::SynSent;
        }
        if fin {
            *me = Endpoint::Closed;
        }
        return;
    }
    if ack || payload > 0 {
        match *me {
            Endpoint::Inactive => *me = Endpoint::Partial,
            Endpoint::SynSent | Endpoint::SynAckSent => {
                if matches!(
                    *peer,
                    Endpoint::SynSent | Endpoint::SynAckSent | Endpoint::Established
                ) {
                    *me = Endpoint::Established;
                    if *peer != Endpoint::Established {
                        *peer = Endpoint::Established;
                    }
                }
            }
            _ => {}
        }
    }
    if fin {
        *me = Endpoint::Closed;
    } else if *me == Endpoint::Inactive {
        *me = Endpoint::Partial;
    }
}

/// Zeek's conn_state for a finished flow.
pub fn conn_state(
    ip_proto: u8,
    os: Endpoint,
    rs: Endpoint,
    history: &[u8],
    orig_bytes: u64,
    resp_bytes: u64,
) -> ConnState {
    use Endpoint::*;
    match ip_proto {
        proto::TCP => {
            let o_inactive = os.inactive();
            let r_inactive = rs.inactive();
            if rs == Reset {
                if matches!(os, SynSent | SynAckSent)
                    || (os == Reset && orig_bytes == 0 && resp_bytes == 0)
                {
                    ConnState::REJ
                } else if o_inactive {
                    ConnState::RSTRH
                } else {
                    ConnState::RSTR
                }
            } else if os == Reset {
                if r_inactive {
                    if syn_then_reset(history) {
                        ConnState::RSTOS0
                    } else {
                        ConnState::OTH
                    }
                } else {
                    ConnState::RSTO
                }
            } else if rs == Closed && os == Closed {
                ConnState::SF
            } else if os == Closed {
                if r_inactive {
                    ConnState::SH
                } else {
                    ConnState::S2
                }
            } else if rs == Closed {
                if o_inactive {
                    ConnState::SHR
                } else {
                    ConnState::S3
                }
            } else if os == SynSent && rs == Inactive {
                ConnState::S0
            } else if os == Established && rs == Established {
                ConnState::S1
            } else {
                ConnState::OTH
            }
        }
        proto::UDP => match (os == Active, rs == Active) {
            (true, true) => ConnState::SF,
            (true, false) => ConnState::S0,
            (false, true) => ConnState::SHR,
            (false, false) => ConnState::OTH,
        },
        _ => ConnState::OTH,
    }
}

/// Zeek's `/\^?S[^HAFGIQ]*R.*/` on the history: an originator SYN, nothing
/// from the handshake or close after it, then an originator RST.
fn syn_then_reset(history: &[u8]) -> bool {
    let h = history.strip_prefix(b"^").unwrap_or(history);
    let Some(rest) = h.strip_prefix(b"S") else {
        return false;
    };
    for &c in rest {
        match c {
            b'R' => return true,
            b'H' | b'A' | b'F' | b'G' | b'I' | b'Q' => return false,
            _ => {}
        }
    }
    false
}
