//! How a scan was made: the technique's final form (`syn` or `connect`),
//! the tool that sent it, its rate, its order and its port set, read from
//! the probes' own headers over the whole scan record.
//!
//! A [`Tally`] rides in each scan record and counts, per probe, the header
//! facts of its [`ProbePrint`] (marks, window, options, TTL, payload) and
//! the source-port pattern; it keeps the first [`ORDER_SAMPLE`] probes to
//! see their order. [`Tally::verdict`] applies one rule per tool, each
//! written from the tool's documented or observed behaviour and each with
//! a capture it was checked on (see the tests and `pcaps/truth.csv`):
//!
//! * **masscan** — the IP ID is `target address ^ target port ^ sequence`
//!   (low 16 bits), its SYN cookie scheme (`templ-pkt.c`);
//! * **zmap** — the IP ID is 54321, a constant of its probe modules;
//! * **mirai-like** — the sequence number equals the target's address
//!   (Mirai's `scanner.c`), on telnet ports;
//! * **hping3** — a bare TCP header (no options) with a small fixed window
//!   and the source port going up by one per probe (its default `-s`
//!   behaviour); for UDP the same source-port walk with no payload;
//! * **nmap** — raw probes with nmap's fixed windows (1024, 2048, 3072,
//!   4096: `scan_engine_raw.cc`), a lone MSS option on SYNs, the same
//!   source port for most probes; UDP probes from one source port; ICMP
//!   echo requests without data; a `connect()` scan closed by a reset right
//!   after the handshake, in shuffled port order, over nmap's top ports or
//!   a range.
//!
//! Anything else is `unknown`, with the facts that were seen as evidence.

use crate::nmap_top;
use scanwatch_model::print::{mark, opt};
use scanwatch_model::{proto, Addr, Attempt, Micros, Outcome, ProbeKind, ProbePrint, Technique};

/// Probes whose order and source ports are kept.
pub(crate) const ORDER_SAMPLE: usize = 256;

/// Distinct windows counted (the rest go to `other_windows`).
const WINDOWS: usize = 4;

/// Header facts over a scan record's probes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    probes: u32,
    /// Per mark bit (DF, 54321, from-target, seq-is-target, zero).
    marks: [u32; 5],
    windows: [(u16, u32); WINDOWS],
    other_windows: u32,
    /// Probes without TCP options, with MSS alone, with an OS-like layout
    /// (SACK, timestamps or window scale).
    no_opts: u32,
    mss_only: u32,
    os_opts: u32,
    ttl_min: u8,
    ttl_max: u8,
    /// TTLs seen, one bit each.
    ttls: [u64; 4],
    /// TCP probes with one of nmap's windows (1024, 2048, 3072, 4096).
    nmap_win: u32,
    /// SYNs with zmap 4's option layout (MSS, window scale, SACK: three
    /// options) and window 65535.
    zmap4: u32,
    /// Completed handshakes the originator closed without a FIN or data.
    abortive_closes: u32,
    /// UDP/ICMP probes without payload.
    empty: u32,
    /// Answered SYNs, and those whose originator completed the handshake.
    answered_syn: u32,
    handshakes: u32,
    first_probe: Micros,
    last_probe: Micros,
    /// (probe time, target, port, source port) of the first probes.
    sample: Vec<(Micros, Addr, u16, u16)>,
    /// What the verdict reads from the sample in probe order, for the
    /// sample's length it was made at (the sample only grows, and stops
    /// at [`ORDER_SAMPLE`]): a record's events no longer sort it again
    /// each time.
    facts: std::cell::RefCell<Option<SampleFacts>>,
}

/// The sample's facts ([`Tally::sample_facts`]).
#[derive(Clone, Copy, Debug)]
struct SampleFacts {
    len: usize,
    same_sport: f64,
    sport_up: f64,
    order: &'static str,
    /// The first probe (in probe order) went to an IPv4 target.
    first_v4: bool,
}

/// What [`Tally::verdict`] says.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub technique: Technique,
    pub tool: &'static str,
    pub evidence: Vec<String>,
    pub rate_pps: f64,
    pub order: &'static str,
    pub port_set: String,
}

impl Tally {
    pub(crate) fn add(&mut self, a: &Attempt) {
        let answered_syn = a.probe == ProbeKind::Syn && a.outcome == Outcome::Answered;
        let tech = Technique::of_probe(a.probe, a.proto);
        self.add_probe(
            a.proto,
            tech,
            answered_syn,
            (a.handshake, a.abortive),
            &a.print,
            (a.probe_ts, a.dst, a.dport, a.sport),
        );
    }

    /// Counts one probe: its protocol and technique family, whether it was
    /// an answered SYN and its handshake completed, its header facts, and
    /// (probe time, target, port, source port).
    pub(crate) fn add_probe(
        &mut self,
        ip_proto: u8,
        tech: Technique,
        answered: bool,
        (handshake, abortive): (bool, bool),
        p: &ProbePrint,
        (probe_ts, dst, dport, sport): (Micros, Addr, u16, u16),
    ) {
        if self.probes == 0 {
            self.ttl_min = p.ttl;
            self.ttl_max = p.ttl;
            self.first_probe = probe_ts;
            self.last_probe = probe_ts;
        }
        self.probes += 1;
        for (i, bit) in [
            mark::DF,
            mark::IPID_54321,
            mark::IPID_FROM_TARGET,
            mark::SEQ_IS_TARGET,
            mark::IPID_ZERO,
        ]
        .into_iter()
        .enumerate()
        {
            self.marks[i] += u32::from(p.marks & bit != 0);
        }
        self.ttls[usize::from(p.ttl / 64)] |= 1 << (p.ttl % 64);
        self.ttl_min = self.ttl_min.min(p.ttl);
        self.ttl_max = self.ttl_max.max(p.ttl);
        self.first_probe = self.first_probe.min(probe_ts);
        self.last_probe = self.last_probe.max(probe_ts);
        if ip_proto == proto::TCP {
            match self
                .windows
                .iter_mut()
                .find(|(w, n)| *n == 0 || *w == p.win)
            {
                Some(slot) => {
                    slot.0 = p.win;
                    slot.1 += 1;
                }
                None => self.other_windows += 1,
            }
            self.nmap_win += u32::from(matches!(p.win, 1024 | 2048 | 3072 | 4096));
            let bits = p.opt_bits();
            self.zmap4 += u32::from(
                p.win == 65535
                    && bits == opt::MSS | opt::WSCALE | opt::SACK_OK
                    && p.opt_count() == 3,
            );
            if bits == 0 {
                self.no_opts += 1;
            } else if bits == opt::MSS {
                self.mss_only += 1;
            } else if bits & (opt::SACK_OK | opt::TIMESTAMP | opt::WSCALE) != 0 {
                self.os_opts += 1;
            }
            if tech == Technique::Syn && answered {
                self.answered_syn += 1;
                self.handshakes += u32::from(handshake);
                self.abortive_closes += u32::from(handshake && abortive);
            }
        } else {
            self.empty += u32::from(p.plen == 0);
        }
        if self.sample.len() < ORDER_SAMPLE {
            self.sample.push((probe_ts, dst, dport, sport));
        }
    }

    fn share(&self, n: u32) -> f64 {
        if self.probes == 0 {
            0.0
        } else {
            f64::from(n) / f64::from(self.probes)
        }
    }

    /// The commonest window and its share of the TCP probes.
    fn main_window(&self) -> Option<(u16, f64)> {
        self.windows
            .iter()
            .filter(|(_, n)| *n > 0)
            .max_by_key(|(w, n)| (*n, std::cmp::Reverse(*w)))
            .map(|&(w, n)| (w, self.share(n)))
    }

    /// The sample in probe order.
    fn ordered(&self) -> Vec<(Micros, Addr, u16, u16)> {
        let mut s = self.sample.clone();
        s.sort_unstable();
        s
    }

    /// The facts of the sample in probe order, made again only when it
    /// has grown.
    fn sample_facts(&self) -> SampleFacts {
        let mut c = self.facts.borrow_mut();
        if let Some(f) = *c {
            if f.len == self.sample.len() {
                return f;
            }
        }
        let s = self.ordered();
        let (same_sport, sport_up) = Self::sport_pattern(&s);
        let f = SampleFacts {
            len: s.len(),
            same_sport,
            sport_up,
            order: Self::order(&s),
            first_v4: s.first().is_none_or(|x| x.1.is_v4()),
        };
        *c = Some(f);
        f
    }

    /// Source-port facts over the sample in probe order: the share of
    /// probes from the commonest source port, and the share of steps where
    /// it went up a little (1 to 16).
    fn sport_pattern(s: &[(Micros, Addr, u16, u16)]) -> (f64, f64) {
        if s.len() < 2 {
            return (1.0, 0.0);
        }
        let mut ports: Vec<u16> = s.iter().map(|x| x.3).collect();
        // The sample is the first probes as they resolved (answers come
        // before timeouts), so it can miss some probes in between: a walk
        // of +1 per probe shows as small rising steps.
        let steps = s
            .windows(2)
            .filter(|w| (1..=16).contains(&w[1].3.wrapping_sub(w[0].3)))
            .count();
        ports.sort_unstable();
        let mut best = 0;
        let mut run = 0;
        for i in 0..ports.len() {
            run = if i > 0 && ports[i] == ports[i - 1] {
                run + 1
            } else {
                1
            };
            best = best.max(run);
        }
        let n = s.len() as f64;
        (best as f64 / n, steps as f64 / (n - 1.0))
    }

    /// `sequential` when most steps go to the next port of the same target
    /// or the next address on the same port; `random` otherwise (too few
    /// probes: `unknown`).
    fn order(s: &[(Micros, Addr, u16, u16)]) -> &'static str {
        if s.len() < 8 {
            return "unknown";
        }
        let next = s
            .windows(2)
            .filter(|w| {
                let (a, b) = (&w[0], &w[1]);
                (a.1 == b.1 && b.2 == a.2.wrapping_add(1))
                    || (a.2 == b.2 && b.1.to_u128() == a.1.to_u128().wrapping_add(1))
            })
            .count();
        if next as f64 >= 0.7 * (s.len() - 1) as f64 {
            "sequential"
        } else {
            "random"
        }
    }

    /// The record's verdict: `family` is the technique its probes share
    /// (a SYN family may turn out to be `connect`), `port_set` what
    /// [`port_set`] names its ports (made by the caller, which may keep it
    /// while the ports do not change).
    pub(crate) fn verdict(&self, family: Technique, ip_proto: u8, port_set: String) -> Verdict {
        let f = self.sample_facts();
        let (same_sport, sport_up) = (f.same_sport, f.sport_up);
        let mut ev: Vec<String> = Vec::new();
        // Connect: the originator acknowledged most SYN-ACKs, or (nothing
        // answered) its SYNs carry the operating system's option layout.
        let technique = if family == Technique::Syn
            && ((self.answered_syn > 0 && self.handshakes * 2 > self.answered_syn)
                || (self.answered_syn == 0 && self.share(self.os_opts) >= 0.8))
        {
            Technique::Connect
        } else {
            family
        };
        let tcp = ip_proto == proto::TCP;
        let window = self.main_window();
        let raw = technique != Technique::Connect;
        let ttl_kinds: u32 = self.ttls.iter().map(|w| w.count_ones()).sum();
        // nmap draws each raw probe's TTL from 37..=59 (`tcpip.cc`): many
        // values in a band 22 wide (less the hops to the sensor).
        let ttl_random = ttl_kinds >= 5 && self.ttl_max - self.ttl_min <= 22 && self.ttl_max <= 59;
        let tool = if tcp && self.share(self.marks[2]) >= 0.8 {
            ev.push("ip_id=dst^dport^seq".into());
            "masscan"
        } else if self.share(self.marks[1]) >= 0.8 {
            ev.push("ip_id=54321".into());
            "zmap"
        } else if tcp && raw && self.share(self.zmap4) >= 0.8 && self.ttl_max <= 64 {
            ev.push("window=65535".into());
            ev.push("options mss,ws,sack (zmap 4)".into());
            "zmap"
        } else if tcp && self.share(self.marks[3]) >= 0.8 {
            ev.push("seq=target address".into());
            "mirai-like"
        } else if sport_up >= 0.7
            && f.len >= 8
            && ((tcp
                && raw
                && self.share(self.no_opts) >= 0.9
                && window.is_some_and(|(w, sh)| w <= 512 && sh >= 0.9))
                || (ip_proto == proto::UDP && self.share(self.empty) >= 0.9))
        {
            if let (true, Some((w, _))) = (tcp, window) {
                ev.push(format!("window={w}"));
                ev.push("no tcp options".into());
            } else {
                ev.push("empty payload".into());
            }
            ev.push("sport+1 per probe".into());
            "hping3"
        } else if tcp
            && raw
            && self.share(self.nmap_win) >= 0.8
            && (family != Technique::Syn || self.share(self.mss_only) >= 0.8)
        {
            if let Some((w, _)) = window {
                ev.push(format!("window={w}"));
            }
            ev.push(if family == Technique::Syn {
                "mss-only options".into()
            } else {
                "no tcp options".into()
            });
            if ttl_random {
                ev.push(format!("ttl random {}-{}", self.ttl_min, self.ttl_max));
            }
            if same_sport >= 0.5 {
                ev.push("fixed sport".into());
            }
            "nmap"
        } else if !tcp && (ttl_random || self.ttl_min == 255 && f.len > 0 && !f.first_v4) {
            ev.push(format!("ttl random {}-{}", self.ttl_min, self.ttl_max));
            if matches!(family, Technique::IcmpEcho | Technique::Icmpv6Echo)
                && self.share(self.empty) >= 0.9
            {
                ev.push("echo without data".into());
            }
            if same_sport >= 0.8 {
                ev.push("fixed sport".into());
            }
            "nmap"
        } else if matches!(family, Technique::IcmpEcho | Technique::Icmpv6Echo)
            && self.share(self.empty) >= 0.9
        {
            ev.push("echo without data".into());
            "nmap"
        } else if technique == Technique::Connect
            && self.handshakes > 0
            && self.abortive_closes * 5 >= self.handshakes * 4
        {
            ev.push("connect() closed without a FIN".into());
            "nmap"
        } else {
            "unknown"
        };
        if tool == "unknown" {
            if let Some((w, _)) = window {
                ev.push(format!("window={w}"));
            }
            if self.probes > 0 {
                ev.push(format!("ttl={}-{}", self.ttl_min, self.ttl_max));
            }
        }
        let secs = (self.last_probe - self.first_probe) as f64 / 1e6;
        let rate_pps = if self.probes > 1 && secs > 0.0 {
            ((f64::from(self.probes) / secs) * 10.0).round() / 10.0
        } else {
            0.0
        };
        Verdict {
            technique,
            tool,
            evidence: ev,
            rate_pps,
            order: f.order,
            port_set,
        }
    }
}

/// The sizes of nmap's top-port lists that name a port set.
const TOP_SIZES: [usize; 8] = [10, 20, 50, 100, 200, 300, 500, 1000];

static TCP_TOPS: std::sync::OnceLock<Vec<Vec<u16>>> = std::sync::OnceLock::new();
static UDP_TOPS: std::sync::OnceLock<Vec<Vec<u16>>> = std::sync::OnceLock::new();

/// nmap's N most open ports for each of [`TOP_SIZES`], sorted, made once:
/// sorting a thousand ports again at every event of a thousand-port scan
/// was a quarter of its verdict.
fn sorted_tops(
    cell: &'static std::sync::OnceLock<Vec<Vec<u16>>>,
    top: &[u16],
) -> &'static [Vec<u16>] {
    cell.get_or_init(|| {
        TOP_SIZES
            .iter()
            .map(|&n| {
                let mut v = top[..n.min(top.len())].to_vec();
                v.sort_unstable();
                v
            })
            .collect()
    })
}

/// `all` (60,000 ports or more), `nmap-top-N` (at least 95% of the ports
/// among nmap's N most open ones, and at least 80% of N probed, for N in
/// 10, 20, 50, 100, 200, 300, 500, 1000), or `custom`.
pub(crate) fn port_set(ip_proto: u8, ports: &[u16]) -> String {
    if ports.len() >= 60_000 {
        return "all".into();
    }
    let tops: &[Vec<u16>] = match ip_proto {
        proto::TCP => sorted_tops(&TCP_TOPS, &nmap_top::TCP),
        proto::UDP => sorted_tops(&UDP_TOPS, &nmap_top::UDP),
        _ => return "custom".into(),
    };
    for (n, set) in TOP_SIZES.into_iter().zip(tops) {
        if ports.len() * 5 < n * 4 || ports.len() > n + n / 20 {
            continue;
        }
        let inside = ports
            .iter()
            .filter(|p| set.binary_search(p).is_ok())
            .count();
        if inside * 100 >= ports.len() * 95 {
            return format!("nmap-top-{n}");
        }
    }
    "custom".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_sets_are_named_from_nmaps_lists() {
        let top100: Vec<u16> = nmap_top::TCP[..100].to_vec();
        assert_eq!(port_set(proto::TCP, &top100), "nmap-top-100");
        let top1000: Vec<u16> = nmap_top::TCP.to_vec();
        assert_eq!(port_set(proto::TCP, &top1000), "nmap-top-1000");
        // A few missing (unanswered, or cut short) still names the set.
        assert_eq!(port_set(proto::TCP, &top1000[..950]), "nmap-top-1000");
        let range: Vec<u16> = (1..=1000).collect();
        assert_eq!(port_set(proto::TCP, &range), "custom");
        let all: Vec<u16> = (0..=65535).collect();
        assert_eq!(port_set(proto::TCP, &all), "all");
        let udp: Vec<u16> = nmap_top::UDP[..20].to_vec();
        assert_eq!(port_set(proto::UDP, &udp), "nmap-top-20");
        assert_eq!(port_set(proto::TCP, &udp), "custom");
    }

    fn probe(t: Micros, port: u16, sport: u16, win: u16, opts: u8, ttl: u8) -> Attempt {
        Attempt {
            time: t + 1000,
            src: Addr::from_v4([198, 18, 0, 2]),
            dst: Addr::from_v4([198, 19, 1, 10]),
            proto: proto::TCP,
            dport: port,
            sport,
            probe_ts: t,
            probe: ProbeKind::Syn,
            outcome: Outcome::Rejected,
            data: false,
            flow_id: 0,
            print: ProbePrint {
                ttl,
                opts,
                win,
                ..ProbePrint::default()
            },
            handshake: false,
            abortive: false,
        }
    }

    #[test]
    fn rules_read_whole_scans() {
        let mss = ProbePrint::tcp_options(&[2, 4, 5, 180]);
        // nmap: window 1024, MSS alone, one source port, TTL 37-59.
        let mut t = Tally::default();
        for i in 0..100u16 {
            t.add(&probe(
                i64::from(i) * 100,
                (i * 7919) % 1000 + 1,
                40_000,
                1024,
                mss,
                37 + (i % 23) as u8,
            ));
        }
        let v = t.verdict(Technique::Syn, proto::TCP, String::new());
        assert_eq!(
            (v.tool, v.technique, v.order),
            ("nmap", Technique::Syn, "random")
        );
        assert!(v.evidence.iter().any(|e| e == "fixed sport"));
        assert_eq!(v.rate_pps, 10_101.0);
        // hping3: bare header, window 512, source port +1, ports in order.
        let mut t = Tally::default();
        for i in 0..100u16 {
            t.add(&probe(i64::from(i) * 100, i + 1, 2000 + i, 512, 0, 64));
        }
        let v = t.verdict(Technique::Syn, proto::TCP, String::new());
        assert_eq!((v.tool, v.order), ("hping3", "sequential"));
        // The same with an OS stack's SYN and varied ports: nobody we know.
        let linux = ProbePrint::tcp_options(&[
            2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        let mut t = Tally::default();
        for i in 0..100u16 {
            t.add(&probe(
                i64::from(i) * 100,
                i + 1,
                30_000 + i * 977,
                64240,
                linux,
                64,
            ));
        }
        let v = t.verdict(Technique::Syn, proto::TCP, String::new());
        // Nothing answered and the SYNs are the OS's: a connect() scan.
        assert_eq!((v.tool, v.technique), ("unknown", Technique::Connect));
    }
}
