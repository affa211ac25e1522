//! Detector settings, with the defaults documented in the README. Every field
//! can be set in the `[detect]` table of the TOML config file and by a flag.
//! [`DetectConfig::validate`] checks them and parses the allow-lists; what it
//! rejects is a [`ConfigError`] naming the setting and the offending value.

use crate::MAX_WINDOWS;
use scanwatch_model::{proto, Addr, Micros};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A detector setting that cannot be used. Each variant names what is wrong
/// and carries the offending value; the message is one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// An address prefix that does not parse (`spec` is the text given).
    #[error("{problem} in {spec:?}")]
    BadCidr { spec: String, problem: CidrProblem },
    /// An allow-list service (`CIDR`, `CIDR:port`, `CIDR:port/proto`,
    /// `[CIDR]:port`) that does not parse.
    #[error("{problem} in {spec:?}")]
    BadService {
        spec: String,
        problem: ServiceProblem,
    },
    /// An entry of `allow_scanners` or `allow_services` (`list`) is bad.
    #[error("detect.{list}: {error}")]
    AllowList {
        list: &'static str,
        error: Box<ConfigError>,
    },
    #[error("detect.windows: at least one window is needed")]
    NoWindows,
    /// Each window has its own detector bit in a scan record, beside TRW's:
    /// more windows than bits would make their names collide.
    #[error("detect.windows: {count} windows given, at most {max} are supported")]
    TooManyWindows { count: usize, max: usize },
    #[error("detect.windows: bad window {window:?}: seconds must be positive")]
    WindowZeroSeconds { window: Window },
    #[error("detect.windows: bad window {window:?}: horizontal and vertical must be at least 1")]
    WindowThreshold { window: Window },
    /// `answered_weight` or `min_failed_share` outside 0..=1.
    #[error("detect.{name} must be between 0 and 1, not {value}")]
    ShareOutOfRange { name: &'static str, value: f64 },
    #[error(
        "detect: TRW needs 0 < theta1 < theta0 < 1 and 0 < alpha < beta < 1 \
         (theta0 = {theta0}, theta1 = {theta1}, alpha = {alpha}, beta = {beta})"
    )]
    Trw {
        theta0: f64,
        theta1: f64,
        alpha: f64,
        beta: f64,
    },
    #[error("detect.{name} must be at least {min}, not {value}")]
    CapTooSmall {
        name: &'static str,
        value: usize,
        min: usize,
    },
    #[error("detect.{name} is at most {max}, not {value}")]
    CapTooLarge {
        name: &'static str,
        value: usize,
        max: usize,
    },
}

/// What is wrong with an address prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrProblem {
    Address,
    PrefixLength,
}

impl fmt::Display for CidrProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CidrProblem::Address => "bad address",
            CidrProblem::PrefixLength => "bad prefix length",
        })
    }
}

/// What is wrong with an allow-list service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceProblem {
    MissingBracket,
    Port,
    Protocol,
}

impl fmt::Display for ServiceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServiceProblem::MissingBracket => "missing ]",
            ServiceProblem::Port => "bad port",
            ServiceProblem::Protocol => "bad protocol",
        })
    }
}

/// One sliding window and the distinct-target counts that flag a scan in it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub seconds: u64,
    /// Failed targets on one (protocol, port) that make a horizontal scan.
    pub horizontal: f64,
    /// Failed ports on one target that make a vertical scan.
    pub vertical: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Windows checked at once; longer ones have higher thresholds so slow
    /// scans are caught without more false alarms.
    pub windows: Vec<Window>,
    /// A block scan: at least `block_hosts` targets each probed on at least
    /// `block_ports` ports (within one window).
    pub block_hosts: u32,
    pub block_ports: u32,
    /// Weight of a contact that was answered but carried no data (a connect
    /// scan of an open port, an echo reply) next to a refused or ignored one
    /// (1.0). Conversations (answered with data) weigh 0.
    pub answered_weight: f64,
    /// Share of a key's targets that must have failed for it to count as a
    /// scan: a busy client whose contacts mostly succeed is not a scanner.
    pub min_failed_share: f64,
    /// Threshold random walk (Jung et al. 2004) on first contacts.
    pub trw: bool,
    pub trw_theta0: f64,
    pub trw_theta1: f64,
    pub trw_alpha: f64,
    pub trw_beta: f64,
    /// TRW alone flags only once the failures have a shape: this many failed
    /// targets on one port, or failed ports on one target.
    pub trw_min_targets: u32,
    /// A scan ends after this long (packet time) without a probe.
    pub scan_idle_secs: u64,
    /// Most sources tracked per detector shard; the least suspicious are
    /// evicted first.
    pub max_sources: usize,
    /// Most distinct (target, protocol, port) contacts kept per source.
    pub max_contacts: usize,
    /// Most contacts kept per shard, all sources together: many sources
    /// each with many contacts cannot add up past this (the least
    /// suspicious sources are evicted first).
    pub max_contacts_total: usize,
    /// Most distinct targets and open doors kept per scan record (counts stay
    /// exact up to this, then are lower bounds).
    pub max_scan_targets: usize,
    /// Sources never flagged (CIDR list), e.g. your own vulnerability scanner.
    pub allow_scanners: Vec<String>,
    /// Services whose contacts never count ("CIDR", "CIDR:port" or
    /// "CIDR:port/proto"), e.g. a health-checked pool.
    pub allow_services: Vec<String>,
    /// Our own networks (CIDR list), as Suricata's `HOME_NET`: a scan's
    /// direction (inbound, outbound, internal, external) is read from it.
    /// Default [`DEFAULT_HOME_NET`].
    pub home_net: Vec<String>,
}

/// The home network when none is given: the private (RFC 1918),
/// unique-local (RFC 4193) and loopback ranges. Suricata's default
/// `HOME_NET` is the three RFC 1918 blocks; loopback and unique-local are
/// added because traffic on them is this site's own by definition.
pub const DEFAULT_HOME_NET: [&str; 6] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "fc00::/7",
    "::1/128",
];

/// The lists of a [`DetectConfig`], parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lists {
    pub allow_scanners: Vec<Cidr>,
    pub allow_services: Vec<Service>,
    pub home_net: Vec<Cidr>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            windows: vec![
                Window {
                    seconds: 300,
                    horizontal: 20.0,
                    vertical: 20.0,
                },
                Window {
                    seconds: 3600,
                    horizontal: 40.0,
                    vertical: 40.0,
                },
                Window {
                    seconds: 86_400,
                    horizontal: 100.0,
                    vertical: 100.0,
                },
            ],
            block_hosts: 10,
            block_ports: 5,
            answered_weight: 0.5,
            min_failed_share: 0.5,
            trw: true,
            trw_theta0: 0.8,
            trw_theta1: 0.2,
            trw_alpha: 0.01,
            trw_beta: 0.99,
            trw_min_targets: 5,
            scan_idle_secs: 600,
            max_sources: 500_000,
            max_contacts: 4096,
            max_contacts_total: 4_000_000,
            max_scan_targets: 65_536,
            allow_scanners: Vec::new(),
            allow_services: Vec::new(),
            home_net: DEFAULT_HOME_NET.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// An address prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub net: Addr,
    pub bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, ConfigError> {
        let bad = |problem| ConfigError::BadCidr {
            spec: s.to_string(),
            problem,
        };
        let (a, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let addr: Addr = a.trim().parse().map_err(|_| bad(CidrProblem::Address))?;
        let max = if addr.is_v4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| bad(CidrProblem::PrefixLength))?,
            None => max,
        };
        Ok(Cidr {
            net: addr.prefix(bits),
            bits,
        })
    }

    pub fn contains(&self, a: Addr) -> bool {
        a.is_v4() == self.net.is_v4() && a.prefix(self.bits) == self.net
    }
}

/// A service on the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub net: Cidr,
    pub port: Option<u16>,
    pub proto: Option<u8>,
}

impl Service {
    /// `CIDR`, `CIDR:port` or `CIDR:port/proto`; IPv6 as `[CIDR]:port`.
    pub fn parse(s: &str) -> Result<Service, ConfigError> {
        let bad = |problem| ConfigError::BadService {
            spec: s.to_string(),
            problem,
        };
        let (net, rest) = if let Some(stripped) = s.strip_prefix('[') {
            let (n, r) = stripped
                .split_once(']')
                .ok_or_else(|| bad(ServiceProblem::MissingBracket))?;
            (n, r.strip_prefix(':'))
        } else if s.matches(':').count() == 1 {
            let (n, r) = s.split_once(':').unwrap_or((s, ""));
            (n, Some(r))
        } else {
            (s, None)
        };
        let (port, proto_) = match rest {
            None | Some("") => (None, None),
            Some(r) => {
                let (p, pr) = match r.split_once('/') {
                    Some((p, pr)) => (p, Some(pr)),
                    None => (r, None),
                };
                let port = p.parse::<u16>().map_err(|_| bad(ServiceProblem::Port))?;
                let pr = match pr {
                    Some(x) => {
                        Some(proto::from_name(x).ok_or_else(|| bad(ServiceProblem::Protocol))?)
                    }
                    None => None,
                };
                (Some(port), pr)
            }
        };
        Ok(Service {
            net: Cidr::parse(net)?,
            port,
            proto: proto_,
        })
    }

    pub fn matches(&self, dst: Addr, port: u16, p: u8) -> bool {
        self.net.contains(dst)
            && self.port.is_none_or(|x| x == port)
            && self.proto.is_none_or(|x| x == p)
    }
}

impl DetectConfig {
    pub fn scan_idle(&self) -> Micros {
        (self.scan_idle_secs as i64).saturating_mul(1_000_000)
    }

    /// The longest window (5 min with none): how long a contact counts.
    pub fn longest_window(&self) -> Micros {
        self.windows
            .iter()
            .map(|w| w.seconds as i64 * 1_000_000)
            .max()
            .unwrap_or(300_000_000)
    }

    /// Checks ranges and parses the allow-lists and the home network.
    pub fn validate(&self) -> Result<Lists, ConfigError> {
        if self.windows.is_empty() {
            return Err(ConfigError::NoWindows);
        }
        if self.windows.len() > MAX_WINDOWS {
            return Err(ConfigError::TooManyWindows {
                count: self.windows.len(),
                max: MAX_WINDOWS,
            });
        }
        for w in &self.windows {
            if w.seconds == 0 {
                return Err(ConfigError::WindowZeroSeconds { window: w.clone() });
            }
            if w.horizontal < 1.0 || w.vertical < 1.0 {
                return Err(ConfigError::WindowThreshold { window: w.clone() });
            }
        }
        for (name, value) in [
            ("answered_weight", self.answered_weight),
            ("min_failed_share", self.min_failed_share),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::ShareOutOfRange { name, value });
            }
        }
        if !(self.trw_theta1 > 0.0
            && self.trw_theta1 < self.trw_theta0
            && self.trw_theta0 < 1.0
            && self.trw_alpha > 0.0
            && self.trw_beta < 1.0
            && self.trw_alpha < self.trw_beta)
        {
            return Err(ConfigError::Trw {
                theta0: self.trw_theta0,
                theta1: self.trw_theta1,
                alpha: self.trw_alpha,
                beta: self.trw_beta,
            });
        }
        for (name, value, min) in [
            ("max_sources", self.max_sources, 1),
            ("max_contacts", self.max_contacts, 16),
            ("max_contacts_total", self.max_contacts_total, 16),
            ("max_scan_targets", self.max_scan_targets, 1),
        ] {
            if value < min {
                return Err(ConfigError::CapTooSmall { name, value, min });
            }
        }
        if self.max_scan_targets > MAX_SCAN_TARGETS {
            return Err(ConfigError::CapTooLarge {
                name: "max_scan_targets",
                value: self.max_scan_targets,
                max: MAX_SCAN_TARGETS,
            });
        }
        let in_list = |list| {
            move |error| ConfigError::AllowList {
                list,
                error: Box::new(error),
            }
        };
        let scanners = self
            .allow_scanners
            .iter()
            .map(|s| Cidr::parse(s).map_err(in_list("allow_scanners")))
            .collect::<Result<Vec<_>, _>>()?;
        let services = self
            .allow_services
            .iter()
            .map(|s| Service::parse(s).map_err(in_list("allow_services")))
            .collect::<Result<Vec<_>, _>>()?;
        let home_net = self
            .home_net
            .iter()
            .map(|s| Cidr::parse(s).map_err(in_list("home_net")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Lists {
            allow_scanners: scanners,
            allow_services: services,
            home_net,
        })
    }
}

/// Largest `max_scan_targets` accepted.
const MAX_SCAN_TARGETS: usize = 1 << 24;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_service_parsing() {
        let c = Cidr::parse("198.19.1.0/24").unwrap();
        assert!(c.contains("198.19.1.77".parse().unwrap()));
        assert!(!c.contains("198.19.2.1".parse().unwrap()));
        let s = Service::parse("10.0.0.0/8:443/tcp").unwrap();
        assert!(s.matches("10.1.2.3".parse().unwrap(), 443, proto::TCP));
        assert!(!s.matches("10.1.2.3".parse().unwrap(), 443, proto::UDP));
        let v6 = Service::parse("[2001:db8::/32]:22").unwrap();
        assert!(v6.matches("2001:db8::5".parse().unwrap(), 22, proto::TCP));
        assert!(DetectConfig::default().validate().is_ok());
    }

    #[test]
    fn bad_cidrs_and_services_name_the_problem_and_the_value() {
        assert_eq!(
            Cidr::parse("10.0.0.0/33"),
            Err(ConfigError::BadCidr {
                spec: "10.0.0.0/33".into(),
                problem: CidrProblem::PrefixLength
            })
        );
        assert_eq!(
            Cidr::parse("10.0.0.300").unwrap_err().to_string(),
            r#"bad address in "10.0.0.300""#
        );
        assert_eq!(
            Service::parse("[2001:db8::/32:22").unwrap_err().to_string(),
            r#"missing ] in "[2001:db8::/32:22""#
        );
        assert_eq!(
            Service::parse("10.0.0.0/8:http"),
            Err(ConfigError::BadService {
                spec: "10.0.0.0/8:http".into(),
                problem: ServiceProblem::Port
            })
        );
        assert_eq!(
            Service::parse("10.0.0.0/8:443/tls")
                .unwrap_err()
                .to_string(),
            r#"bad protocol in "10.0.0.0/8:443/tls""#
        );
        let cfg = DetectConfig {
            allow_services: vec!["10.0.0.0/8:443".into(), "10.0.0.0/40:1".into()],
            ..DetectConfig::default()
        };
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            r#"detect.allow_services: bad prefix length in "10.0.0.0/40""#
        );
        let cfg = DetectConfig {
            allow_scanners: vec!["scanner.example".into()],
            ..DetectConfig::default()
        };
        assert!(matches!(
            cfg.validate(),
            Err(ConfigError::AllowList { list: "allow_scanners", ref error })
                if matches!(**error, ConfigError::BadCidr { problem: CidrProblem::Address, .. })
        ));
    }

    fn windows(n: usize) -> Vec<Window> {
        (1..=n as u64)
            .map(|i| Window {
                seconds: 60 * i,
                horizontal: 20.0,
                vertical: 20.0,
            })
            .collect()
    }

    #[test]
    fn window_count_is_limited_to_the_detector_bits() {
        assert_eq!(MAX_WINDOWS, 7);
        let at_limit = DetectConfig {
            windows: windows(MAX_WINDOWS),
            ..DetectConfig::default()
        };
        assert!(at_limit.validate().is_ok());
        let over = DetectConfig {
            windows: windows(MAX_WINDOWS + 1),
            ..DetectConfig::default()
        };
        let err = over.validate().unwrap_err();
        assert_eq!(
            err,
            ConfigError::TooManyWindows {
                count: MAX_WINDOWS + 1,
                max: MAX_WINDOWS
            }
        );
        assert_eq!(
            err.to_string(),
            "detect.windows: 8 windows given, at most 7 are supported"
        );
        assert!(crate::Detector::new(over).is_err());
        let none = DetectConfig {
            windows: Vec::new(),
            ..DetectConfig::default()
        };
        assert_eq!(none.validate(), Err(ConfigError::NoWindows));
    }

    #[test]
    fn detector_names_are_distinct_at_the_window_limit() {
        let cfg = DetectConfig {
            windows: windows(MAX_WINDOWS),
            ..DetectConfig::default()
        };
        assert_eq!(
            crate::detector_names(u8::MAX, &cfg),
            "trw+window:1m+window:2m+window:3m+window:4m+window:5m+window:6m+window:7m"
        );
        for i in 0..MAX_WINDOWS {
            let bit = crate::window_bit(i);
            assert_eq!(bit, 2 << i);
            assert_eq!(
                crate::detector_names(bit, &cfg),
                format!("window:{}m", i + 1)
            );
        }
        assert_eq!(crate::detector_names(crate::DET_TRW, &cfg), "trw");
    }

    #[test]
    fn bad_windows_shares_trw_and_caps_are_named() {
        let with = |f: &dyn Fn(&mut DetectConfig)| {
            let mut c = DetectConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        let zero = Window {
            seconds: 0,
            horizontal: 20.0,
            vertical: 20.0,
        };
        assert_eq!(
            with(&|c| c.windows[1] = zero.clone()),
            ConfigError::WindowZeroSeconds {
                window: zero.clone()
            }
        );
        let low = Window {
            seconds: 60,
            horizontal: 20.0,
            vertical: 0.5,
        };
        assert_eq!(
            with(&|c| c.windows.push(low.clone())).to_string(),
            "detect.windows: bad window Window { seconds: 60, horizontal: 20.0, vertical: 0.5 }: \
             horizontal and vertical must be at least 1"
        );
        assert_eq!(
            with(&|c| c.min_failed_share = 1.5).to_string(),
            "detect.min_failed_share must be between 0 and 1, not 1.5"
        );
        assert!(matches!(
            with(&|c| c.trw_theta1 = 0.9),
            ConfigError::Trw { theta1, .. } if theta1 == 0.9
        ));
        assert_eq!(
            with(&|c| c.max_contacts = 15).to_string(),
            "detect.max_contacts must be at least 16, not 15"
        );
        assert_eq!(
            with(&|c| c.max_scan_targets = (1 << 24) + 1),
            ConfigError::CapTooLarge {
                name: "max_scan_targets",
                value: (1 << 24) + 1,
                max: 1 << 24
            }
        );
    }
}
