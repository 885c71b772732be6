//! `--metrics.*`, `--ready.*` and `--log.*`: what the node tells orchestrators and operators
//! about itself.

use clap::{Args, ValueEnum};
use serde::Deserialize;
use std::net::SocketAddr;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Metrics, readiness and logs.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Observability")]
pub struct ObserveArgs {
    /// Prometheus metrics, /health and /ready on this address. [default: off]
    #[arg(long = "metrics.addr", env = "FERRY_METRICS_ADDR", value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// /ready answers 200 while the node is at most this many blocks behind the safe head.
    /// [default: 10]
    #[arg(long = "ready.max-lag", env = "FERRY_READY_MAX_LAG", value_name = "BLOCKS")]
    pub ready_max_lag: Option<u64>,

    /// Log format; the level comes from RUST_LOG (default info). [default: text]
    #[arg(long = "log.format", env = "FERRY_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAddr {
    pub(super) addr: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileReady {
    pub(super) max_lag: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLog {
    pub(super) format: Option<LogFormat>,
}
