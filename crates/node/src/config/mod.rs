//! The node's configuration: flags, `FERRY_*` environment variables and an optional TOML
//! file, in that order of precedence, resolved into one [`NodeConfig`]. One file per section,
//! as the flags are named: `l1.rs` (`--l1.*` and how L1 is read), `rpc.rs` (`--rpc.*`),
//! `admin.rs` (`--admin.*`), `observe.rs` (`--metrics.*`, `--ready.*`, `--log.*`), `sink.rs`
//! (`--sink.*`); `file.rs` is the TOML file, `error.rs` what can be wrong.

mod admin;
mod error;
mod file;
mod ha;
mod l1;
mod observe;
mod rpc;
mod sink;
#[cfg(test)]
mod tests;
mod text;

pub use admin::AdminArgs;
pub use error::ConfigError;
pub use ha::{HaArgs, HaSettings};
pub use l1::{L1Args, L1Config, L1Trust};
pub use observe::{LogFormat, ObserveArgs};
pub use rpc::RpcArgs;
pub use sink::SinkArgs;

use clap::Args;
use ferry_messaging::Confirmations;
use file::{FileConfig, read_file};
use std::{net::SocketAddr, path::PathBuf, time::Duration};
use text::{DurationText, FromText};

/// The node's options as given on the command line or in the environment; what is not given
/// comes from `--config`, then from the defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct NodeArgs {
    /// TOML file with any of the options below, keyed as the flags are (`[l1] rpc-url = ..`);
    /// flags and FERRY_* variables win over it.
    #[arg(long, env = "FERRY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where L1 is and how it is read.
    #[command(flatten)]
    pub l1: L1Args,

    /// Directory of the node's database. [default: ./ferry-data; a temporary one with --dev]
    #[arg(long, env = "FERRY_DATADIR", value_name = "DIR")]
    pub datadir: Option<PathBuf>,

    /// The public listener.
    #[command(flatten)]
    pub rpc: RpcArgs,

    /// The admin listener.
    #[command(flatten)]
    pub admin: AdminArgs,

    /// Metrics, readiness and logs.
    #[command(flatten)]
    pub observe: ObserveArgs,

    /// The NATS JetStream sink.
    #[command(flatten)]
    pub sink: SinkArgs,

    /// High availability.
    #[command(flatten)]
    pub ha: HaArgs,

    /// Start a local Anvil, deploy ferry's messaging contract on it and run against it.
    #[arg(long, env = "FERRY_DEV", conflicts_with_all = ["l1_rpc_url", "l1_contract", "l1_chain_id"])]
    pub dev: bool,

    /// In dev mode, messages to send right after deploying. [default: 3]
    #[arg(long = "dev.messages", env = "FERRY_DEV_MESSAGES", value_name = "N", requires = "dev")]
    pub dev_messages: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// L1; `None` in dev mode, where the node starts its own chain.
    pub l1: Option<L1Config>,
    /// How L1 answers are trusted (dev mode too).
    pub l1_trust: L1Trust,
    /// First block to read when no checkpoint is stored.
    pub from_block: u64,
    /// How far behind the head to read.
    pub confirmations: Confirmations,
    /// Head polling interval over HTTP.
    pub poll_interval: Duration,
    /// Largest eth_getLogs range.
    pub max_block_range: u64,
    /// Depth of the header window below the head.
    pub reorg_window: u64,
    /// Database directory; `None` in dev mode without `--datadir` (a temporary one).
    pub datadir: Option<PathBuf>,
    /// Public listener.
    pub rpc_addr: SocketAddr,
    /// Bounds on both listeners.
    pub rpc_limits: ferry_rpc::Limits,
    /// The `Host` and `Origin` values the public listener answers.
    pub public_access: ferry_rpc::AccessRules,
    /// The `Host` and `Origin` values the admin listener answers.
    pub admin_access: ferry_rpc::AccessRules,
    /// Admin listener.
    pub admin_addr: SocketAddr,
    /// The admin listener's JWT secret file.
    pub admin_jwt_secret: Option<PathBuf>,
    /// Metrics, /health and /ready.
    pub metrics_addr: Option<SocketAddr>,
    /// /ready's largest lag in blocks.
    pub ready_max_lag: u64,
    /// Log format.
    pub log_format: LogFormat,
    /// Dev mode: messages to send after deploying; `None` outside dev mode.
    pub dev_messages: Option<u64>,
    /// The NATS JetStream sink, when configured.
    pub sink: Option<ferry_sink::SinkConfig>,
    /// /ready fails while the sink lags by more entries than this.
    pub sink_ready_max_lag: Option<u64>,
    /// The high-availability group, when the node joins one.
    pub ha: Option<HaSettings>,
}

impl NodeArgs {
    /// Merges flags and environment (already in `self`) over the `--config` file over the
    /// defaults, and checks the result.
    pub fn resolve(&self) -> Result<NodeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let public_access = rpc::access_rules(
            self.rpc.vhosts.clone().or(file.rpc.vhosts.clone()),
            self.rpc.cors.clone().or(file.rpc.cors.clone()),
        );
        let admin_access = rpc::access_rules(
            self.admin.vhosts.clone().or(file.admin.vhosts.clone()),
            self.admin.origins.clone().or(file.admin.origins.clone()),
        );
        let l1 = self.l1.resolve(&file.l1, self.dev)?;
        let sink = self.sink.resolve(&file.sink)?;
        let ha = self.ha.resolve(&file.ha, sink.is_some())?;
        let config = NodeConfig {
            l1: l1.clone(),
            l1_trust: self.l1.trust(&file.l1, l1.as_ref().map_or(1, |l1| l1.rpc_urls.len()))?,
            from_block: self.l1.from_block.or(file.from_block).unwrap_or(0),
            confirmations: self
                .l1
                .confirmations
                .or(file.confirmations.map(|FromText(value)| value))
                .unwrap_or_default(),
            poll_interval: self
                .l1
                .poll_interval
                .or(file.poll_interval.map(|FromText(DurationText(value))| value))
                .unwrap_or(Duration::from_secs(1)),
            max_block_range: at_least_one(
                "max-block-range",
                self.l1.max_block_range.or(file.max_block_range).unwrap_or(1_000),
            )?,
            reorg_window: at_least_one(
                "reorg-window",
                self.l1
                    .reorg_window
                    .or(file.reorg_window)
                    .unwrap_or(ferry_messaging::DEFAULT_REORG_WINDOW),
            )?,
            datadir: self
                .datadir
                .clone()
                .or(file.datadir.clone())
                .or_else(|| (!self.dev).then(|| PathBuf::from("ferry-data"))),
            rpc_addr: self
                .rpc
                .addr
                .or(file.rpc.addr)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5050))),
            rpc_limits: self.rpc.limits(&file.rpc)?,
            public_access,
            admin_access,
            admin_addr: self
                .admin
                .addr
                .or(file.admin.addr)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5051))),
            admin_jwt_secret: self.admin.jwt_secret.clone().or(file.admin.jwt_secret),
            metrics_addr: self.observe.metrics_addr.or(file.metrics.addr),
            ready_max_lag: self.observe.ready_max_lag.or(file.ready.max_lag).unwrap_or(10),
            log_format: self.observe.log_format.or(file.log.format).unwrap_or_default(),
            dev_messages: self.dev.then(|| self.dev_messages.unwrap_or(3)),
            sink,
            sink_ready_max_lag: self.sink.ready_max_lag.or(file.sink.ready_max_lag),
            ha,
        };
        config.check()?;
        Ok(config)
    }
}

/// `value`, unless it is zero: counts and sizes that must be at least 1.
pub(super) fn at_least_one<T: PartialEq + From<u8>>(
    key: &'static str,
    value: T,
) -> Result<T, ConfigError> {
    if value == T::from(0) {
        return Err(ConfigError::InvalidValue {
            key,
            value: "0".to_owned(),
            reason: "must be at least 1".to_owned(),
        });
    }
    Ok(value)
}

pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a duration like 500ms or 2s: {error}"))?;
    if duration.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(duration)
}

impl NodeConfig {
    fn check(&self) -> Result<(), ConfigError> {
        let listeners = [
            ("--rpc.addr", Some(self.rpc_addr)),
            ("--admin.addr", Some(self.admin_addr)),
            ("--metrics.addr", self.metrics_addr),
        ];
        for (i, (first, a)) in listeners.iter().enumerate() {
            for (second, b) in &listeners[i + 1..] {
                if let (Some(a), Some(b)) = (a, b)
                    && a == b
                    && a.port() != 0
                {
                    return Err(ConfigError::Conflict {
                        first,
                        second,
                        value: a.to_string(),
                        reason: "each listener needs its own address",
                    });
                }
            }
        }
        Ok(())
    }
}
