//! Detector settings, with the defaults documented in the README. Every field
//! can be set in the `[detect]` table of the TOML config file and by a flag.

use scanwatch_model::{proto, Addr, Micros};
use serde::Deserialize;

/// One sliding window and the distinct-target counts that flag a scan in it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub seconds: u64,
    /// Failed targets on one (protocol, port) that make a horizontal scan.
    pub horizontal: f64,
    /// Failed ports on one target that make a vertical scan.
    pub vertical: f64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let addr: Addr = a
            .trim()
            .parse()
            .map_err(|_| format!("bad address in {s:?}"))?;
        let max = if addr.is_v4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("bad prefix length in {s:?}"))?,
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
    pub fn parse(s: &str) -> Result<Service, String> {
        let (net, rest) = if let Some(stripped) = s.strip_prefix('[') {
            let (n, r) = stripped
                .split_once(']')
                .ok_or_else(|| format!("missing ] in {s:?}"))?;
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
                let port = p.parse::<u16>().map_err(|_| format!("bad port in {s:?}"))?;
                let pr = match pr {
                    Some(x) => {
                        Some(proto::from_name(x).ok_or_else(|| format!("bad protocol in {s:?}"))?)
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

    /// Checks ranges and parses the allow-lists.
    pub fn validate(&self) -> Result<(Vec<Cidr>, Vec<Service>), String> {
        if self.windows.is_empty() {
            return Err("detect.windows: at least one window is needed".into());
        }
        for w in &self.windows {
            if w.seconds == 0 || w.horizontal < 1.0 || w.vertical < 1.0 {
                return Err(format!("detect.windows: bad window {w:?}"));
            }
        }
        if !(0.0..=1.0).contains(&self.answered_weight)
            || !(0.0..=1.0).contains(&self.min_failed_share)
        {
            return Err("detect: answered_weight and min_failed_share are between 0 and 1".into());
        }
        if !(self.trw_theta1 > 0.0
            && self.trw_theta1 < self.trw_theta0
            && self.trw_theta0 < 1.0
            && self.trw_alpha > 0.0
            && self.trw_beta < 1.0
            && self.trw_alpha < self.trw_beta)
        {
            return Err(
                "detect: TRW needs 0 < theta1 < theta0 < 1 and 0 < alpha < beta < 1".into(),
            );
        }
        if self.max_sources == 0
            || self.max_contacts < 16
            || self.max_contacts_total < 16
            || self.max_scan_targets == 0
        {
            return Err(
                "detect: max_sources, max_contacts (>= 16) and max_scan_targets must be positive"
                    .into(),
            );
        }
        if self.max_scan_targets > 1 << 24 {
            return Err("detect: max_scan_targets is at most 16777216".into());
        }
        let scanners = self
            .allow_scanners
            .iter()
            .map(|s| Cidr::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let services = self
            .allow_services
            .iter()
            .map(|s| Service::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((scanners, services))
    }
}

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
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(DetectConfig::default().validate().is_ok());
    }
}
