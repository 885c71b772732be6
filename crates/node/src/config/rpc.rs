//! `--rpc.*`: the public listener's address, its bounds, and the hosts and origins it
//! answers.

use super::{
    ConfigError, at_least_one, parse_duration,
    text::{DurationText, FromText},
};
use clap::Args;
use serde::Deserialize;
use std::{net::SocketAddr, time::Duration};

/// The public JSON-RPC listener.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Public RPC")]
pub struct RpcArgs {
    /// Public JSON-RPC listener (status, messages). [default: 127.0.0.1:5050]
    #[arg(id = "rpc_addr", long = "rpc.addr", env = "FERRY_RPC_ADDR", value_name = "ADDR")]
    pub addr: Option<SocketAddr>,

    /// Connections the public listener accepts at once (HTTP and WebSocket). [default: 256]
    #[arg(id = "rpc_max_connections", long = "rpc.max-connections", env = "FERRY_RPC_MAX_CONNECTIONS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Subscriptions open at once, over all connections. [default: 1024]
    #[arg(id = "rpc_max_subscriptions", long = "rpc.max-subscriptions", env = "FERRY_RPC_MAX_SUBSCRIPTIONS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_subscriptions: Option<u32>,

    /// Subscriptions open at once from one IP address. [default: 64]
    #[arg(id = "rpc_max_subscriptions_per_peer", long = "rpc.max-subscriptions-per-peer", env = "FERRY_RPC_MAX_SUBSCRIPTIONS_PER_PEER", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_subscriptions_per_peer: Option<u32>,

    /// Most bytes of log entries in one page or notification (a larger single entry goes
    /// alone). [default: 4194304]
    #[arg(id = "rpc_max_page_bytes", long = "rpc.max-page-bytes", env = "FERRY_RPC_MAX_PAGE_BYTES", value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_page_bytes: Option<u32>,

    /// How long either listener keeps an HTTP/2 connection without a request (`30s`, `2m`);
    /// an HTTP/1 connection waits 10 s for its next request's headers. [default: 120s]
    #[arg(id = "rpc_idle_timeout", long = "rpc.idle-timeout", env = "FERRY_RPC_IDLE_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// Host names the public listener answers, comma-separated, besides IP addresses; `*`
    /// for any. A request with another `Host` (DNS rebinding) gets HTTP 403. [default: localhost]
    #[arg(
        id = "rpc_vhosts",
        long = "rpc.vhosts",
        env = "FERRY_RPC_VHOSTS",
        value_name = "HOSTS",
        value_delimiter = ','
    )]
    pub vhosts: Option<Vec<String>>,

    /// Browser origins (`https://app.example`) allowed to call the public listener,
    /// comma-separated; `*` for any. A request from another page gets HTTP 403. [default: none]
    #[arg(
        id = "rpc_cors",
        long = "rpc.cors",
        env = "FERRY_RPC_CORS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub cors: Option<Vec<String>>,
}

impl RpcArgs {
    /// The listeners' bounds: the flags over the file over `Limits::default()`.
    pub(super) fn limits(&self, file: &FileRpc) -> Result<ferry_rpc::Limits, ConfigError> {
        let defaults = ferry_rpc::Limits::default();
        let max_page_bytes = match self.max_page_bytes.or(file.max_page_bytes) {
            Some(bytes) if bytes < 1024 => {
                return Err(ConfigError::InvalidValue {
                    key: "rpc.max-page-bytes",
                    value: bytes.to_string(),
                    reason: "must be at least 1024".to_owned(),
                });
            }
            bytes => bytes.unwrap_or(defaults.max_page_bytes),
        };
        Ok(ferry_rpc::Limits {
            max_connections: at_least_one(
                "rpc.max-connections",
                self.max_connections.or(file.max_connections).unwrap_or(defaults.max_connections),
            )?,
            max_subscriptions_total: at_least_one(
                "rpc.max-subscriptions",
                self.max_subscriptions
                    .or(file.max_subscriptions)
                    .unwrap_or(defaults.max_subscriptions_total),
            )?,
            max_subscriptions_per_peer: at_least_one(
                "rpc.max-subscriptions-per-peer",
                self.max_subscriptions_per_peer
                    .or(file.max_subscriptions_per_peer)
                    .unwrap_or(defaults.max_subscriptions_per_peer),
            )?,
            max_page_bytes,
            idle_timeout: self
                .idle_timeout
                .or(file.idle_timeout.as_ref().map(|FromText(DurationText(value))| *value))
                .unwrap_or(defaults.idle_timeout),
            ..defaults
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileRpc {
    pub(super) addr: Option<SocketAddr>,
    pub(super) max_connections: Option<u32>,
    pub(super) max_subscriptions: Option<u32>,
    pub(super) max_subscriptions_per_peer: Option<u32>,
    pub(super) max_page_bytes: Option<u32>,
    pub(super) idle_timeout: Option<FromText<DurationText>>,
    pub(super) vhosts: Option<Vec<String>>,
    pub(super) cors: Option<Vec<String>>,
}

/// Host and Origin rules from the lists given, each defaulting on its own.
pub(super) fn access_rules(
    hosts: Option<Vec<String>>,
    origins: Option<Vec<String>>,
) -> ferry_rpc::AccessRules {
    let defaults = ferry_rpc::AccessRules::default();
    ferry_rpc::AccessRules {
        hosts: hosts.map_or(defaults.hosts, |hosts| ferry_rpc::Allowed::from_list(&hosts)),
        origins: origins
            .map_or(defaults.origins, |origins| ferry_rpc::Allowed::from_list(&origins)),
    }
}
