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
    pub max_flows: usize,
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
            max_flows: 2_000_000,
        }
    }
}

impl FlowSettings {
    pub fn to_config(&self) -> Result<scanwatch_flow::FlowConfig> {
        let us = |name: &str, s: f64| -> Result<i64> {
            anyhow::ensure!(
                s.is_finite() && s > 0.0,
                "flow.{name} must be a positive number of seconds"
            );
            Ok((s * 1e6) as i64)
        };
        anyhow::ensure!(
            self.max_flows >= 1024,
            "flow.max_flows must be at least 1024"
        );
        Ok(scanwatch_flow::FlowConfig {
            attempt_timeout: us("attempt_timeout_secs", self.attempt_timeout_secs)?,
            data_wait: us("data_wait_secs", self.data_wait_secs)?,
            tcp_idle: us("tcp_idle_secs", self.tcp_idle_secs)?,
            tcp_attempt_idle: us("tcp_attempt_idle_secs", self.tcp_attempt_idle_secs)?,
            tcp_linger: us("tcp_linger_secs", self.tcp_linger_secs)?,
            udp_idle: us("udp_idle_secs", self.udp_idle_secs)?,
            icmp_idle: us("icmp_idle_secs", self.icmp_idle_secs)?,
            other_idle: us("other_idle_secs", self.other_idle_secs)?,
            max_flows: self.max_flows,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub flow: FlowSettings,
    pub detect: DetectConfig,
}

pub fn load(path: Option<&Path>) -> Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: bad config", path.display()))
}
