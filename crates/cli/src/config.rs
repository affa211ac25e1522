//! The TOML config file and the flags that override it.
//!
//! ```toml
//! [flow]
//! attempt_timeout_secs = 5.0   # an unanswered probe resolves after this long
//! tcp_idle_secs = 300.0
//! udp_idle_secs = 60.0
//! max_flows = 2000000          # all workers together
//!
//! [detect]                     # every field of DetectConfig, see README
//! block_hosts = 10
//! allow_scanners = ["10.0.0.5/32"]
//! [[detect.windows]]
//! seconds = 300
//! horizontal = 20
//! vertical = 20
//! ```

use anyhow::{Context, Result};
use scanwatch_detect::DetectConfig;
use scanwatch_pipeline::{FlowConfig, GivenCaps};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowSettings {
    pub attempt_timeout_secs: f64,
    pub data_wait_secs: f64,
    pub tcp_idle_secs: f64,
    pub tcp_attempt_idle_secs: f64,
    pub tcp_linger_secs: f64,
    pub udp_idle_secs: f64,
    pub icmp_idle_secs: f64,
    pub other_idle_secs: f64,
    /// All workers together; `None` (not in the file) lets `--max-memory`
    /// decide.
    pub max_flows: Option<usize>,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            attempt_timeout_secs: 5.0,
            data_wait_secs: 5.0,
            tcp_idle_secs: 300.0,
            tcp_attempt_idle_secs: 10.0,
            tcp_linger_secs: 2.0,
            udp_idle_secs: 60.0,
            icmp_idle_secs: 60.0,
            other_idle_secs: 60.0,
            max_flows: None,
        }
    }
}

impl FlowSettings {
    pub fn to_config(&self) -> Result<FlowConfig> {
        let us = |name: &str, s: f64| -> Result<i64> {
            anyhow::ensure!(
                s.is_finite() && s > 0.0,
                "flow.{name} must be a positive number of seconds"
            );
            Ok((s * 1e6) as i64)
        };
        anyhow::ensure!(
            self.max_flows.is_none_or(|m| m >= 1024),
            "flow.max_flows must be at least 1024"
        );
        Ok(FlowConfig {
            attempt_timeout: us("attempt_timeout_secs", self.attempt_timeout_secs)?,
            data_wait: us("data_wait_secs", self.data_wait_secs)?,
            tcp_idle: us("tcp_idle_secs", self.tcp_idle_secs)?,
            tcp_attempt_idle: us("tcp_attempt_idle_secs", self.tcp_attempt_idle_secs)?,
            tcp_linger: us("tcp_linger_secs", self.tcp_linger_secs)?,
            udp_idle: us("udp_idle_secs", self.udp_idle_secs)?,
            icmp_idle: us("icmp_idle_secs", self.icmp_idle_secs)?,
            other_idle: us("other_idle_secs", self.other_idle_secs)?,
            max_flows: self.max_flows.unwrap_or(FlowConfig::default().max_flows),
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub flow: FlowSettings,
    pub detect: DetectConfig,
    /// The caps the file sets explicitly (a key that is present, whatever
    /// its value).
    #[serde(skip)]
    pub caps: GivenCaps,
}

pub fn load(path: Option<&Path>) -> Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    parse(&text).with_context(|| format!("{}: bad config", path.display()))
}

/// Parses a config file's text.
pub fn parse(text: &str) -> Result<FileConfig> {
    let mut c: FileConfig = toml::from_str(text)?;
    // `[detect]` deserializes into the detector's own settings, where a cap
    // that is absent takes its default: whether the key is there is read
    // from the document.
    let doc: toml::Table = toml::from_str(text)?;
    let detect_key = |k: &str| -> Option<usize> {
        let v = doc.get("detect")?.as_table()?.get(k)?;
        v.as_integer().and_then(|i| usize::try_from(i).ok())
    };
    c.caps = GivenCaps {
        max_flows: c.flow.max_flows,
        max_sources_per_shard: detect_key("max_sources"),
        max_contacts_per_shard: detect_key("max_contacts_total"),
    };
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_in_the_file_is_given_even_at_its_default_value() {
        let c = parse("[flow]\nmax_flows = 2000000\n[detect]\nmax_sources = 500000\n").unwrap();
        assert_eq!(
            c.caps,
            GivenCaps {
                max_flows: Some(2_000_000),
                max_sources_per_shard: Some(500_000),
                max_contacts_per_shard: None,
            }
        );
        assert_eq!(c.flow.to_config().unwrap().max_flows, 2_000_000);
    }

    #[test]
    fn caps_absent_from_the_file_are_not_given() {
        let c = parse("[flow]\ntcp_idle_secs = 100.0\n").unwrap();
        assert_eq!(c.caps, GivenCaps::default());
        assert!(parse("[flow]\nmax_flows = 10\n")
            .unwrap()
            .flow
            .to_config()
            .is_err());
    }
}
