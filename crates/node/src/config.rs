//! The node's configuration: flags, `FERRY_*` environment variables and an optional TOML
//! file, in that order of precedence, resolved into one [`NodeConfig`].

use alloy::primitives::Address;
use clap::{Args, ValueEnum};
use ferry_messaging::Confirmations;
use serde::Deserialize;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

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

/// The node's options as given on the command line or in the environment; what is not given
/// comes from `--config`, then from the defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct NodeArgs {
    /// TOML file with any of the options below, keyed as the flags are (`[l1] rpc-url = ..`);
    /// flags and FERRY_* variables win over it.
    #[arg(long, env = "FERRY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// L1 JSON-RPC endpoint: http://, https://, ws:// or wss:// (WebSocket pushes new heads).
    #[arg(long = "l1.rpc-url", env = "FERRY_L1_RPC_URL", value_name = "URL", value_parser = parse_url)]
    pub l1_rpc_url: Option<String>,

    /// Address of the L1 messaging contract (StarknetMessaging's LogMessageToL2 surface).
    #[arg(long = "l1.contract", env = "FERRY_L1_CONTRACT", value_name = "ADDRESS")]
    pub l1_contract: Option<Address>,

    /// Expected L1 chain id; the node refuses to start if the endpoint reports another.
    /// [default: whatever the endpoint reports]
    #[arg(long = "l1.chain-id", env = "FERRY_L1_CHAIN_ID", value_name = "ID")]
    pub l1_chain_id: Option<u64>,

    /// First L1 block to read when no checkpoint is stored (decimal or 0x hex). [default: 0]
    #[arg(long = "from-block", env = "FERRY_FROM_BLOCK", value_name = "BLOCK", value_parser = parse_quantity, allow_hyphen_values = true)]
    pub from_block: Option<u64>,

    /// Blocks to stay behind the head, or `safe` / `finalized` to follow those tags. [default: 0]
    #[arg(long, env = "FERRY_CONFIRMATIONS", value_name = "N|safe|finalized")]
    pub confirmations: Option<Confirmations>,

    /// How often to poll for a new head over HTTP (`500ms`, `2s`). [default: 1s]
    #[arg(long = "poll-interval", env = "FERRY_POLL_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    pub poll_interval: Option<Duration>,

    /// Largest eth_getLogs block range; halved automatically when the provider refuses one.
    /// [default: 1000]
    #[arg(long = "max-block-range", env = "FERRY_MAX_BLOCK_RANGE", value_name = "BLOCKS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_block_range: Option<u64>,

    /// Blocks below the head whose headers are kept (from the finalized block if that is
    /// deeper): a reorg inside this window is healed by rewinding to its common ancestor; a
    /// deeper one halts ingestion until an operator moves the checkpoint. [default: 128]
    #[arg(long = "reorg-window", env = "FERRY_REORG_WINDOW", value_name = "BLOCKS", value_parser = clap::value_parser!(u64).range(1..))]
    pub reorg_window: Option<u64>,

    /// Directory of the node's database. [default: ./ferry-data; a temporary one with --dev]
    #[arg(long, env = "FERRY_DATADIR", value_name = "DIR")]
    pub datadir: Option<PathBuf>,

    /// Public JSON-RPC listener (status, messages). [default: 127.0.0.1:5050]
    #[arg(long = "rpc.addr", env = "FERRY_RPC_ADDR", value_name = "ADDR")]
    pub rpc_addr: Option<SocketAddr>,

    /// Connections the public listener accepts at once (HTTP and WebSocket). [default: 256]
    #[arg(long = "rpc.max-connections", env = "FERRY_RPC_MAX_CONNECTIONS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rpc_max_connections: Option<u32>,

    /// Subscriptions open at once, over all connections. [default: 1024]
    #[arg(long = "rpc.max-subscriptions", env = "FERRY_RPC_MAX_SUBSCRIPTIONS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rpc_max_subscriptions: Option<u32>,

    /// Subscriptions open at once from one IP address. [default: 64]
    #[arg(long = "rpc.max-subscriptions-per-peer", env = "FERRY_RPC_MAX_SUBSCRIPTIONS_PER_PEER", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rpc_max_subscriptions_per_peer: Option<u32>,

    /// Most bytes of log entries in one page or notification (a larger single entry goes
    /// alone). [default: 4194304]
    #[arg(long = "rpc.max-page-bytes", env = "FERRY_RPC_MAX_PAGE_BYTES", value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1024..))]
    pub rpc_max_page_bytes: Option<u32>,

    /// How long either listener keeps an HTTP/2 connection without a request (`30s`, `2m`);
    /// an HTTP/1 connection waits 10 s for its next request's headers. [default: 120s]
    #[arg(long = "rpc.idle-timeout", env = "FERRY_RPC_IDLE_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub rpc_idle_timeout: Option<Duration>,

    /// Host names the public listener answers, comma-separated, besides IP addresses; `*`
    /// for any. A request with another `Host` (DNS rebinding) gets HTTP 403. [default: localhost]
    #[arg(
        long = "rpc.vhosts",
        env = "FERRY_RPC_VHOSTS",
        value_name = "HOSTS",
        value_delimiter = ','
    )]
    pub rpc_vhosts: Option<Vec<String>>,

    /// Browser origins (`https://app.example`) allowed to call the public listener,
    /// comma-separated; `*` for any. A request from another page gets HTTP 403. [default: none]
    #[arg(
        long = "rpc.cors",
        env = "FERRY_RPC_CORS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub rpc_cors: Option<Vec<String>>,

    /// Admin JSON-RPC listener (checkpoint get/set/reset); loopback only unless a JWT secret
    /// is set. [default: 127.0.0.1:5051]
    #[arg(long = "admin.addr", env = "FERRY_ADMIN_ADDR", value_name = "ADDR")]
    pub admin_addr: Option<SocketAddr>,

    /// File holding the admin listener's 32-byte JWT secret in hex (as an Engine API's
    /// jwt.hex); every admin request then needs an HS256 bearer token.
    #[arg(long = "admin.jwt-secret", env = "FERRY_ADMIN_JWT_SECRET", value_name = "FILE")]
    pub admin_jwt_secret: Option<PathBuf>,

    /// Host names the admin listener answers, comma-separated, besides loopback addresses and
    /// its own; a request with another `Host` gets HTTP 403. [default: localhost]
    #[arg(
        long = "admin.vhosts",
        env = "FERRY_ADMIN_VHOSTS",
        value_name = "HOSTS",
        value_delimiter = ','
    )]
    pub admin_vhosts: Option<Vec<String>>,

    /// Browser origins allowed to call the admin listener, comma-separated. Any web page can
    /// reach 127.0.0.1, so the default allows none. [default: none]
    #[arg(
        long = "admin.origins",
        env = "FERRY_ADMIN_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub admin_origins: Option<Vec<String>>,

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

    /// Publish the log to NATS JetStream at this URL (`nats://host:4222`; several servers
    /// comma-separated). [default: off]
    #[arg(long = "sink.nats-url", env = "FERRY_SINK_NATS_URL", value_name = "URL")]
    pub sink_nats_url: Option<String>,

    /// The JetStream stream, created if missing. [default: FERRY]
    #[arg(long = "sink.stream", env = "FERRY_SINK_STREAM", value_name = "NAME")]
    pub sink_stream: Option<String>,

    /// Subjects are `<prefix>.message`, `.removed`, `.reincluded`, `.stateChanged`.
    /// [default: ferry.log]
    #[arg(long = "sink.subject-prefix", env = "FERRY_SINK_SUBJECT_PREFIX", value_name = "PREFIX")]
    pub sink_subject_prefix: Option<String>,

    /// A NATS credentials file (`.creds`). [default: none]
    #[arg(long = "sink.credentials", env = "FERRY_SINK_CREDENTIALS", value_name = "FILE")]
    pub sink_credentials: Option<PathBuf>,

    /// Replicas of the stream when the sink creates it (1 to 5, at most the cluster's
    /// servers). [default: 1]
    #[arg(long = "sink.replicas", env = "FERRY_SINK_REPLICAS", value_name = "N")]
    pub sink_replicas: Option<usize>,

    /// /ready answers 503 while the stream is more than this many entries behind the store
    /// (or the sink is down). [default: the sink does not count for /ready]
    #[arg(long = "sink.ready-max-lag", env = "FERRY_SINK_READY_MAX_LAG", value_name = "ENTRIES")]
    pub sink_ready_max_lag: Option<u64>,

    /// Start a local Anvil, deploy ferry's messaging contract on it and run against it.
    #[arg(long, env = "FERRY_DEV", conflicts_with_all = ["l1_rpc_url", "l1_contract", "l1_chain_id"])]
    pub dev: bool,

    /// In dev mode, messages to send right after deploying. [default: 3]
    #[arg(long = "dev.messages", env = "FERRY_DEV_MESSAGES", value_name = "N", requires = "dev")]
    pub dev_messages: Option<u64>,
}

fn parse_url(text: &str) -> Result<String, String> {
    let scheme = text.split("://").next().unwrap_or_default();
    match scheme {
        "http" | "https" | "ws" | "wss" if text.len() > scheme.len() + 3 => Ok(text.to_owned()),
        _ => Err(format!("{text:?} is not an http://, https://, ws:// or wss:// URL")),
    }
}

fn parse_quantity(text: &str) -> Result<u64, String> {
    ferry_primitives::quantity::parse(text).map_err(|error| error.to_string())
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a duration like 500ms or 2s: {error}"))?;
    if duration.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(duration)
}

/// The TOML file: the same options, keyed as the flags are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    #[serde(default)]
    l1: FileL1,
    from_block: Option<u64>,
    confirmations: Option<FromText<Confirmations>>,
    poll_interval: Option<FromText<DurationText>>,
    max_block_range: Option<u64>,
    reorg_window: Option<u64>,
    datadir: Option<PathBuf>,
    #[serde(default)]
    rpc: FileRpc,
    #[serde(default)]
    admin: FileAdmin,
    #[serde(default)]
    metrics: FileAddr,
    #[serde(default)]
    ready: FileReady,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    sink: FileSink,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSink {
    nats_url: Option<String>,
    stream: Option<String>,
    subject_prefix: Option<String>,
    credentials: Option<PathBuf>,
    replicas: Option<usize>,
    ready_max_lag: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileL1 {
    rpc_url: Option<String>,
    contract: Option<Address>,
    chain_id: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileRpc {
    addr: Option<SocketAddr>,
    max_connections: Option<u32>,
    max_subscriptions: Option<u32>,
    max_subscriptions_per_peer: Option<u32>,
    max_page_bytes: Option<u32>,
    idle_timeout: Option<FromText<DurationText>>,
    vhosts: Option<Vec<String>>,
    cors: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAddr {
    addr: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileAdmin {
    addr: Option<SocketAddr>,
    jwt_secret: Option<PathBuf>,
    vhosts: Option<Vec<String>>,
    origins: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileReady {
    max_lag: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    format: Option<LogFormat>,
}

/// A value written as text in the file and parsed like its flag.
#[derive(Debug)]
struct FromText<T>(T);

impl<'de, T: std::str::FromStr<Err = String>> Deserialize<'de> for FromText<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Number(number) => number.to_string(),
        };
        text.parse().map(Self).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug)]
struct DurationText(Duration);

impl std::str::FromStr for DurationText {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_duration(text).map(Self)
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The `--config` file is not valid.
    #[error("invalid config file {path}: {reason}")]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the key and line.
        reason: String,
    },
    /// A required option is not given anywhere.
    #[error("{flag} is required (or {env}, or {key} in the config file), unless --dev is used")]
    Missing {
        /// The flag.
        flag: &'static str,
        /// Its environment variable.
        env: &'static str,
        /// Its key in the file.
        key: &'static str,
    },
    /// A value from the file is not acceptable.
    #[error("invalid value {value:?} for {key} in the config file: {reason}")]
    InvalidValue {
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
    /// Two options that cannot go together.
    #[error("{first} and {second} are both {value}: {reason}")]
    Conflict {
        /// One option.
        first: &'static str,
        /// The other.
        second: &'static str,
        /// Their shared value.
        value: String,
        /// Why that does not work.
        reason: &'static str,
    },
}

/// Where L1 is, for a node that is not in dev mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L1Config {
    /// The endpoint.
    pub rpc_url: String,
    /// The messaging contract.
    pub contract: Address,
    /// The expected chain id, if given.
    pub chain_id: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// L1; `None` in dev mode, where the node starts its own chain.
    pub l1: Option<L1Config>,
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
}

impl NodeArgs {
    /// Merges flags and environment (already in `self`) over the `--config` file over the
    /// defaults, and checks the result.
    pub fn resolve(&self) -> Result<NodeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let public_access = access_rules(
            self.rpc_vhosts.clone().or(file.rpc.vhosts.clone()),
            self.rpc_cors.clone().or(file.rpc.cors.clone()),
        );
        let admin_access = access_rules(
            self.admin_vhosts.clone().or(file.admin.vhosts.clone()),
            self.admin_origins.clone().or(file.admin.origins.clone()),
        );
        let config = NodeConfig {
            l1: self.l1(&file)?,
            from_block: self.from_block.or(file.from_block).unwrap_or(0),
            confirmations: self
                .confirmations
                .or(file.confirmations.map(|FromText(value)| value))
                .unwrap_or_default(),
            poll_interval: self
                .poll_interval
                .or(file.poll_interval.map(|FromText(DurationText(value))| value))
                .unwrap_or(Duration::from_secs(1)),
            max_block_range: at_least_one(
                "max-block-range",
                self.max_block_range.or(file.max_block_range).unwrap_or(1_000),
            )?,
            reorg_window: at_least_one(
                "reorg-window",
                self.reorg_window
                    .or(file.reorg_window)
                    .unwrap_or(ferry_messaging::DEFAULT_REORG_WINDOW),
            )?,
            datadir: self
                .datadir
                .clone()
                .or(file.datadir.clone())
                .or_else(|| (!self.dev).then(|| PathBuf::from("ferry-data"))),
            rpc_addr: self
                .rpc_addr
                .or(file.rpc.addr)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5050))),
            rpc_limits: self.rpc_limits(&file.rpc)?,
            public_access,
            admin_access,
            admin_addr: self
                .admin_addr
                .or(file.admin.addr)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5051))),
            admin_jwt_secret: self.admin_jwt_secret.clone().or(file.admin.jwt_secret),
            metrics_addr: self.metrics_addr.or(file.metrics.addr),
            ready_max_lag: self.ready_max_lag.or(file.ready.max_lag).unwrap_or(10),
            log_format: self.log_format.or(file.log.format).unwrap_or_default(),
            dev_messages: self.dev.then(|| self.dev_messages.unwrap_or(3)),
            sink: self.sink(&file.sink)?,
            sink_ready_max_lag: self.sink_ready_max_lag.or(file.sink.ready_max_lag),
        };
        config.check()?;
        Ok(config)
    }

    /// The L1 endpoint and contract, required outside dev mode.
    fn l1(&self, file: &FileConfig) -> Result<Option<L1Config>, ConfigError> {
        if self.dev {
            return Ok(None);
        }
        let rpc_url = match self.l1_rpc_url.clone() {
            Some(url) => url,
            None => {
                let url = file.l1.rpc_url.clone().ok_or(ConfigError::Missing {
                    flag: "--l1.rpc-url",
                    env: "FERRY_L1_RPC_URL",
                    key: "l1.rpc-url",
                })?;
                parse_url(&url).map_err(|reason| ConfigError::InvalidValue {
                    key: "l1.rpc-url",
                    value: url,
                    reason,
                })?
            }
        };
        let contract = self.l1_contract.or(file.l1.contract).ok_or(ConfigError::Missing {
            flag: "--l1.contract",
            env: "FERRY_L1_CONTRACT",
            key: "l1.contract",
        })?;
        Ok(Some(L1Config { rpc_url, contract, chain_id: self.l1_chain_id.or(file.l1.chain_id) }))
    }

    /// The sink, when a NATS URL is given.
    fn sink(&self, file: &FileSink) -> Result<Option<ferry_sink::SinkConfig>, ConfigError> {
        let Some(url) = self.sink_nats_url.clone().or(file.nats_url.clone()) else {
            return Ok(None);
        };
        let mut sink = ferry_sink::SinkConfig::new(url);
        if let Some(stream) = self.sink_stream.clone().or(file.stream.clone()) {
            sink.stream = stream;
        }
        if let Some(prefix) = self.sink_subject_prefix.clone().or(file.subject_prefix.clone()) {
            sink.subject_prefix = prefix;
        }
        sink.credentials = self.sink_credentials.clone().or(file.credentials.clone());
        let replicas = self.sink_replicas.or(file.replicas).unwrap_or(1);
        if !(1..=5).contains(&replicas) {
            return Err(ConfigError::InvalidValue {
                key: "sink.replicas",
                value: replicas.to_string(),
                reason: "must be 1 to 5".to_owned(),
            });
        }
        sink.replicas = replicas;
        Ok(Some(sink))
    }

    /// The listeners' bounds: the flags over the file over `Limits::default()`.
    fn rpc_limits(&self, file: &FileRpc) -> Result<ferry_rpc::Limits, ConfigError> {
        let defaults = ferry_rpc::Limits::default();
        let max_page_bytes = match self.rpc_max_page_bytes.or(file.max_page_bytes) {
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
                self.rpc_max_connections
                    .or(file.max_connections)
                    .unwrap_or(defaults.max_connections),
            )?,
            max_subscriptions_total: at_least_one(
                "rpc.max-subscriptions",
                self.rpc_max_subscriptions
                    .or(file.max_subscriptions)
                    .unwrap_or(defaults.max_subscriptions_total),
            )?,
            max_subscriptions_per_peer: at_least_one(
                "rpc.max-subscriptions-per-peer",
                self.rpc_max_subscriptions_per_peer
                    .or(file.max_subscriptions_per_peer)
                    .unwrap_or(defaults.max_subscriptions_per_peer),
            )?,
            max_page_bytes,
            idle_timeout: self
                .rpc_idle_timeout
                .or(file.idle_timeout.as_ref().map(|FromText(DurationText(value))| *value))
                .unwrap_or(defaults.idle_timeout),
            ..defaults
        })
    }
}

/// `value`, unless it is zero: counts and sizes that must be at least 1.
fn at_least_one<T: PartialEq + From<u8>>(key: &'static str, value: T) -> Result<T, ConfigError> {
    if value == T::from(0) {
        return Err(ConfigError::InvalidValue {
            key,
            value: "0".to_owned(),
            reason: "must be at least 1".to_owned(),
        });
    }
    Ok(value)
}

/// Host and Origin rules from the lists given, each defaulting on its own.
fn access_rules(
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

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::ReadFile { path: path.to_owned(), source })?;
    toml::from_str(&text).map_err(|error| ConfigError::InvalidFile {
        path: path.to_owned(),
        reason: error.to_string().trim().replace('\n', " "),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::Parser;

    const CONTRACT: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(std::iter::once("ferry").chain(args.iter().copied()))
            .map_err(|error| error.to_string())
    }

    fn resolve(args: &[&str]) -> Result<NodeConfig, String> {
        parse(args)?.node.resolve().map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_fill_what_is_not_given() {
        let config =
            resolve(&["--l1.rpc-url", "http://127.0.0.1:8545", "--l1.contract", CONTRACT]).unwrap();
        assert_eq!(config.l1.as_ref().unwrap().contract, CONTRACT.parse::<Address>().unwrap());
        assert_eq!(config.confirmations, Confirmations::Blocks(0));
        assert_eq!(config.poll_interval, Duration::from_secs(1));
        assert_eq!(config.max_block_range, 1_000);
        assert_eq!(config.reorg_window, 128);
        assert_eq!(config.rpc_addr, "127.0.0.1:5050".parse().unwrap());
        assert_eq!(config.admin_addr, "127.0.0.1:5051".parse().unwrap());
        assert_eq!(config.rpc_limits, ferry_rpc::Limits::default());
        assert_eq!(config.public_access, ferry_rpc::AccessRules::default());
        assert_eq!(config.admin_access.hosts, ferry_rpc::Allowed::Only(vec!["localhost".into()]));
        assert_eq!(config.admin_access.origins, ferry_rpc::Allowed::None);
        assert_eq!(config.datadir, Some(PathBuf::from("ferry-data")));
        assert_eq!(config.dev_messages, None);
    }

    #[test]
    fn missing_values_name_the_flag_the_variable_and_the_key() {
        let error = resolve(&["--l1.contract", CONTRACT]).unwrap_err();
        assert!(error.contains("--l1.rpc-url is required"), "{error}");
        assert!(error.contains("FERRY_L1_RPC_URL") && error.contains("l1.rpc-url"), "{error}");
        let error = resolve(&["--l1.rpc-url", "ws://127.0.0.1:8545"]).unwrap_err();
        assert!(error.contains("--l1.contract is required"), "{error}");
    }

    #[test]
    fn bad_values_name_the_flag_and_the_value() {
        let base = ["--l1.rpc-url", "http://127.0.0.1:8545", "--l1.contract", CONTRACT];
        let cases: &[(&[&str], &str)] = &[
            (&["--from-block", "-5"], "-5"),
            (&["--from-block", "12.5"], "12.5"),
            (&["--confirmations", "soon"], "soon"),
            (&["--poll-interval", "fast"], "fast"),
            (&["--poll-interval", "0s"], "0s"),
            (&["--max-block-range", "0"], "0"),
            (&["--reorg-window", "0"], "0"),
            (&["--rpc.max-connections", "0"], "0"),
            (&["--rpc.max-subscriptions", "many"], "many"),
            (&["--rpc.max-subscriptions-per-peer", "0"], "0"),
            (&["--rpc.max-page-bytes", "10"], "10"),
            (&["--rpc.idle-timeout", "soon"], "soon"),
            (&["--rpc.addr", "localhost"], "localhost"),
            (&["--log.format", "xml"], "xml"),
        ];
        for (extra, value) in cases {
            let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
            let error = resolve(&args).unwrap_err();
            assert!(error.contains(extra[0]) && error.contains(value), "{extra:?}: {error}");
        }
        let error =
            resolve(&["--l1.rpc-url", "ftp://example.org", "--l1.contract", CONTRACT]).unwrap_err();
        assert!(error.contains("--l1.rpc-url") && error.contains("ftp://example.org"), "{error}");
        let error = resolve(&["--l1.rpc-url", "http://x", "--l1.contract", "0x1234"]).unwrap_err();
        assert!(error.contains("--l1.contract") && error.contains("0x1234"), "{error}");
    }

    #[test]
    fn conflicting_values_are_refused_naming_both() {
        let error = parse(&["--dev", "--l1.rpc-url", "http://127.0.0.1:8545"]).unwrap_err();
        assert!(error.contains("--dev") && error.contains("--l1.rpc-url"), "{error}");
        let error = parse(&["--dev.messages", "3"]).unwrap_err();
        assert!(error.contains("--dev"), "{error}");
        let error =
            resolve(&["--dev", "--rpc.addr", "127.0.0.1:7000", "--admin.addr", "127.0.0.1:7000"])
                .unwrap_err();
        assert!(
            error.contains("--rpc.addr")
                && error.contains("--admin.addr")
                && error.contains("127.0.0.1:7000"),
            "{error}"
        );
    }

    #[test]
    fn the_sink_comes_from_flags_over_the_file_and_is_off_without_a_url() {
        assert_eq!(resolve(&["--dev"]).unwrap().sink, None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(
            &path,
            "[sink]\nnats-url = \"nats://a:4222,nats://b:4222\"\nstream = \"LOG\"\nreplicas = 3\n\
             ready-max-lag = 50\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let config = resolve(&["--dev", "--config", path, "--sink.stream", "MINE"]).unwrap();
        let sink = config.sink.unwrap();
        assert_eq!(
            (sink.url.as_str(), sink.stream.as_str()),
            ("nats://a:4222,nats://b:4222", "MINE")
        );
        assert_eq!((sink.replicas, sink.subject_prefix.as_str()), (3, "ferry.log"));
        assert_eq!(config.sink_ready_max_lag, Some(50));
        let error =
            resolve(&["--dev", "--sink.nats-url", "nats://x", "--sink.replicas", "7"]).unwrap_err();
        assert!(error.contains("sink.replicas") && error.contains('7'), "{error}");
    }

    #[test]
    fn the_file_fills_in_under_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(
            &path,
            format!(
                "from-block = 77\nconfirmations = \"safe\"\npoll-interval = \"250ms\"\nreorg-window = 300\n\
                 [l1]\nrpc-url = \"wss://l1.example\"\ncontract = \"{CONTRACT}\"\nchain-id = 11155111\n\
                 [rpc]\nmax-subscriptions = 5000\nidle-timeout = \"30s\"\nvhosts = [\"*\"]\n\
                 cors = [\"https://Dash.example/\"]\n\
                 [admin]\naddr = \"127.0.0.1:6001\"\n[log]\nformat = \"json\"\n"
            ),
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let config =
            resolve(&["--config", path, "--from-block", "0x10", "--rpc.max-connections", "2000"])
                .unwrap();
        let limits = config.rpc_limits;
        assert_eq!((limits.max_connections, limits.max_subscriptions_total), (2_000, 5_000));
        assert_eq!(limits.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.public_access.hosts, ferry_rpc::Allowed::Any);
        assert_eq!(
            config.public_access.origins,
            ferry_rpc::Allowed::Only(vec!["https://dash.example".into()])
        );
        assert_eq!(config.admin_access.origins, ferry_rpc::Allowed::None);
        let l1 = config.l1.unwrap();
        assert_eq!((l1.rpc_url.as_str(), l1.chain_id), ("wss://l1.example", Some(11155111)));
        assert_eq!(config.from_block, 16, "the flag wins over the file");
        assert_eq!(config.confirmations, Confirmations::Safe);
        assert_eq!(config.poll_interval, Duration::from_millis(250));
        assert_eq!(config.reorg_window, 300);
        assert_eq!(config.admin_addr, "127.0.0.1:6001".parse().unwrap());
        assert_eq!(config.log_format, LogFormat::Json);

        std::fs::write(dir.path().join("bad.toml"), "[l1]\nrpc-urll = \"http://x\"\n").unwrap();
        let bad = dir.path().join("bad.toml");
        let error = resolve(&["--config", bad.to_str().unwrap()]).unwrap_err();
        assert!(error.contains("rpc-urll") && error.contains("bad.toml"), "{error}");
        std::fs::write(&bad, "[rpc]\nmax-connections = 0\n").unwrap();
        let l1 = ["--l1.rpc-url", "http://127.0.0.1:8545", "--l1.contract", CONTRACT];
        let error = resolve(&[&l1[..], &["--config", bad.to_str().unwrap()]].concat()).unwrap_err();
        assert!(error.contains("rpc.max-connections") && error.contains("at least 1"), "{error}");
        std::fs::write(&bad, "confirmations = \"soon\"\n").unwrap();
        let error = resolve(&["--config", bad.to_str().unwrap()]).unwrap_err();
        assert!(error.contains("soon"), "{error}");
        let error = resolve(&["--config", "/nonexistent/ferry.toml"]).unwrap_err();
        assert!(error.contains("/nonexistent/ferry.toml"), "{error}");
    }

    #[test]
    fn host_and_origin_lists_are_comma_separated_and_star_allows_any() {
        let config = resolve(&[
            "--dev",
            "--admin.vhosts",
            "Node.Internal,ops.internal",
            "--admin.origins",
            "https://ops.example",
            "--rpc.cors",
            "*",
            "--rpc.max-subscriptions-per-peer",
            "8",
        ])
        .unwrap();
        assert_eq!(
            config.admin_access.hosts,
            ferry_rpc::Allowed::Only(vec!["node.internal".into(), "ops.internal".into()])
        );
        assert_eq!(
            config.admin_access.origins,
            ferry_rpc::Allowed::Only(vec!["https://ops.example".into()])
        );
        assert_eq!(config.public_access.origins, ferry_rpc::Allowed::Any);
        assert_eq!(config.public_access.hosts, ferry_rpc::AccessRules::default().hosts);
        assert_eq!(config.rpc_limits.max_subscriptions_per_peer, 8);
    }

    #[test]
    fn dev_mode_needs_no_l1_and_sends_three_messages_by_default() {
        let config = resolve(&["--dev"]).unwrap();
        assert_eq!((config.l1, config.datadir, config.dev_messages), (None, None, Some(3)));
        assert_eq!(resolve(&["--dev", "--dev.messages", "0"]).unwrap().dev_messages, Some(0));
    }

    #[test]
    fn operator_commands_parse_their_values() {
        let cli = parse(&["checkpoint", "set", "--block", "0x3e8", "--dry-run", "--json"]).unwrap();
        match cli.command {
            Some(crate::Command::Checkpoint {
                action: crate::CheckpointCommand::Set { block, index, time, dry_run, if_at },
                admin,
            }) => {
                assert_eq!((block, index, dry_run, admin.json), (Some(1_000), None, true, true));
                assert_eq!((time, if_at), (None, None));
            }
            other => panic!("{other:?}"),
        }
        let if_at =
            |value: &str| match parse(&["checkpoint", "set", "--block", "1", "--if-at", value])
                .map(|cli| cli.command)
            {
                Ok(Some(crate::Command::Checkpoint {
                    action: crate::CheckpointCommand::Set { if_at, .. },
                    ..
                })) => Ok(if_at),
                Ok(other) => panic!("{other:?}"),
                Err(error) => Err(error),
            };
        use ferry_primitives::Position;
        assert_eq!(if_at("162"), Ok(Some(Some(Position::block_start(162)))));
        assert_eq!(if_at("0xa2:3"), Ok(Some(Some(Position::new(162, 3)))));
        assert_eq!(if_at("none"), Ok(Some(None)));
        let error = if_at("162:x").unwrap_err();
        assert!(error.contains("--if-at") && error.contains("index \"x\""), "{error}");
        let error = parse(&["checkpoint", "set", "--block", "-1"]).unwrap_err();
        assert!(error.contains("--block") && error.contains("-1"), "{error}");
        assert!(parse(&["checkpoint", "set"]).unwrap_err().contains("--block"));
        let cli = parse(&["checkpoint", "set", "--time", "2026-11-30T12:00:00Z"]).unwrap();
        match cli.command {
            Some(crate::Command::Checkpoint {
                action: crate::CheckpointCommand::Set { block, time, .. },
                ..
            }) => {
                assert_eq!((block, time), (None, Some(ferry_rpc::Timestamp(1_796_040_000))));
            }
            other => panic!("{other:?}"),
        }
        let error = parse(&["checkpoint", "set", "--time", "noon"]).unwrap_err();
        assert!(error.contains("--time") && error.contains("noon"), "{error}");
        let both = parse(&["checkpoint", "set", "--time", "5", "--block", "5"]).unwrap_err();
        assert!(both.contains("cannot be used with"), "{both}");
    }
}
