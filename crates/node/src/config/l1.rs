//! `--l1.*` and how L1 is read: the endpoint, the contract, the start block, confirmations,
//! polling, ranges and the header window.

use super::{
    ConfigError,
    text::{DurationText, FromText},
};
use alloy::primitives::Address;
use clap::Args;
use ferry_messaging::{Confirmations, L1Mode, VerifyLogs};
use serde::Deserialize;
use std::time::Duration;

/// Where L1 is and how it is read.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "L1")]
pub struct L1Args {
    /// L1 JSON-RPC endpoints, comma-separated: http://, https://, ws:// or wss:// (WebSocket
    /// pushes new heads). With several, `--l1.mode` says how they share the work.
    #[arg(
        id = "l1_rpc_url",
        long = "l1.rpc-url",
        env = "FERRY_L1_RPC_URL",
        value_name = "URL[,URL...]",
        value_parser = parse_url,
        value_delimiter = ','
    )]
    pub rpc_url: Option<Vec<String>>,

    /// With several endpoints: `failover` (one answers; the next healthy one takes over on
    /// errors, a lagging head or an answer the others contradict, and the first is taken
    /// back once it recovers) or `quorum` (every request to all; an answer counts when
    /// `--l1.quorum` of them give it). [default: failover, or quorum when --l1.quorum is given]
    #[arg(id = "l1_mode", long = "l1.mode", env = "FERRY_L1_MODE", value_name = "MODE", value_parser = ["failover", "quorum"])]
    pub mode: Option<String>,

    /// Endpoints that must give the same answer (headers, logs) before it counts, in quorum
    /// mode. [default: a majority of them]
    #[arg(id = "l1_quorum", long = "l1.quorum", env = "FERRY_L1_QUORUM", value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub quorum: Option<u64>,

    /// Blocks an endpoint's head may lag the best one's before failover moves away from it.
    /// [default: 10]
    #[arg(
        id = "l1_max_head_lag",
        long = "l1.max-head-lag",
        env = "FERRY_L1_MAX_HEAD_LAG",
        value_name = "BLOCKS"
    )]
    pub max_head_lag: Option<u64>,

    /// How the logs of each range are proven against their blocks: `bloom` (each block's
    /// logsBloom; omissions it reveals are read from proven receipts), `receipts` (every
    /// candidate block's receipts, proven against its receiptsRoot) or `off`. [default: bloom]
    #[arg(
        id = "l1_verify_logs",
        long = "l1.verify-logs",
        env = "FERRY_L1_VERIFY_LOGS",
        value_name = "MODE"
    )]
    pub verify_logs: Option<VerifyLogs>,

    /// Disagreements in a row between the endpoints (no quorum; in failover, no majority
    /// behind the active endpoint) after which ingestion shows halted (it goes on by itself
    /// once enough of them agree). [default: 10]
    #[arg(id = "l1_disagreement_halt", long = "l1.disagreement-halt", env = "FERRY_L1_DISAGREEMENT_HALT", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub disagreement_halt: Option<u32>,

    /// How long one L1 request may take before it counts as failed (retried, and in failover
    /// mode a reason to move to the next endpoint): a provider that accepts a request and never
    /// answers must not stall ingestion. [default: 30s]
    #[arg(id = "l1_request_timeout", long = "l1.request-timeout", env = "FERRY_L1_REQUEST_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub request_timeout: Option<Duration>,

    /// The most calls sent to each endpoint per second, every call of a batch counted (as
    /// hosted providers count them): the node paces itself under its plan's limit instead of
    /// being refused with 429 and backing off. [default: no limit]
    #[arg(id = "l1_max_rps", long = "l1.max-rps", env = "FERRY_L1_MAX_RPS", value_name = "CALLS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rps: Option<u32>,

    /// Address of the L1 messaging contract (StarknetMessaging's LogMessageToL2 surface).
    #[arg(
        id = "l1_contract",
        long = "l1.contract",
        env = "FERRY_L1_CONTRACT",
        value_name = "ADDRESS"
    )]
    pub contract: Option<Address>,

    /// Expected L1 chain id; the node refuses to start if the endpoint reports another.
    /// [default: whatever the endpoint reports]
    #[arg(id = "l1_chain_id", long = "l1.chain-id", env = "FERRY_L1_CHAIN_ID", value_name = "ID")]
    pub chain_id: Option<u64>,

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
}

/// Where L1 is, for a node that is not in dev mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L1Config {
    /// The endpoints (one or more).
    pub rpc_urls: Vec<String>,
    /// The messaging contract.
    pub contract: Address,
    /// The expected chain id, if given.
    pub chain_id: Option<u64>,
}

/// How L1 answers are trusted, in dev mode too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L1Trust {
    /// How several endpoints share the work.
    pub mode: L1Mode,
    /// Blocks an endpoint's head may lag before failover moves away from it.
    pub max_head_lag: u64,
    /// How logs are proven against their blocks.
    pub verify_logs: VerifyLogs,
    /// Disagreements in a row before quorum mode shows a halt.
    pub disagreement_halt: u32,
    /// How long one L1 request may take.
    pub request_timeout: Duration,
    /// The most calls sent to each endpoint per second, if limited.
    pub max_rps: Option<u32>,
}

impl L1Args {
    /// The L1 endpoint and contract, required outside dev mode.
    pub(super) fn resolve(
        &self,
        file: &FileL1,
        dev: bool,
    ) -> Result<Option<L1Config>, ConfigError> {
        if dev {
            return Ok(None);
        }
        let rpc_urls = match self.rpc_url.clone() {
            Some(urls) => urls,
            None => {
                let urls = file.rpc_url.clone().ok_or(ConfigError::Missing {
                    flag: "--l1.rpc-url",
                    env: "FERRY_L1_RPC_URL",
                    key: "l1.rpc-url",
                })?;
                let urls = urls.0;
                for url in &urls {
                    parse_url(url).map_err(|reason| ConfigError::InvalidValue {
                        key: "l1.rpc-url",
                        value: url.clone(),
                        reason,
                    })?;
                }
                urls
            }
        };
        if rpc_urls.is_empty() {
            return Err(ConfigError::InvalidValue {
                key: "l1.rpc-url",
                value: String::new(),
                reason: "give at least one endpoint".to_owned(),
            });
        }
        let contract = self.contract.or(file.contract).ok_or(ConfigError::Missing {
            flag: "--l1.contract",
            env: "FERRY_L1_CONTRACT",
            key: "l1.contract",
        })?;
        Ok(Some(L1Config { rpc_urls, contract, chain_id: self.chain_id.or(file.chain_id) }))
    }

    /// How L1 answers are trusted: the mode (with its quorum, a majority of `endpoints` by
    /// default), the head lag, the proof of logs, the disagreement limit.
    pub(super) fn trust(&self, file: &FileL1, endpoints: usize) -> Result<L1Trust, ConfigError> {
        let quorum = self.quorum.or(file.quorum);
        let mode = match self.mode.clone().or(file.mode.clone()).as_deref() {
            Some("failover") => {
                if let Some(quorum) = quorum {
                    return Err(ConfigError::Conflict {
                        first: "--l1.mode",
                        second: "--l1.quorum",
                        value: format!("failover and {quorum}"),
                        reason: "a quorum applies to quorum mode only",
                    });
                }
                L1Mode::Failover
            }
            Some("quorum") => L1Mode::Quorum(quorum.map_or(endpoints / 2 + 1, |k| k as usize)),
            None if quorum.is_some() => L1Mode::Quorum(quorum.map_or(1, |k| k as usize)),
            None => L1Mode::Failover,
            Some(other) => {
                return Err(ConfigError::InvalidValue {
                    key: "l1.mode",
                    value: other.to_owned(),
                    reason: "must be failover or quorum".to_owned(),
                });
            }
        };
        if let L1Mode::Quorum(k) = mode
            && (k == 0 || k > endpoints.max(1))
        {
            return Err(ConfigError::InvalidValue {
                key: "l1.quorum",
                value: k.to_string(),
                reason: format!("must be 1 to the number of endpoints ({endpoints})"),
            });
        }
        let verify_logs = match (self.verify_logs, &file.verify_logs) {
            (Some(mode), _) => mode,
            (None, Some(text)) => text.parse().map_err(|reason| ConfigError::InvalidValue {
                key: "l1.verify-logs",
                value: text.clone(),
                reason,
            })?,
            (None, None) => VerifyLogs::default(),
        };
        Ok(L1Trust {
            mode,
            max_head_lag: self.max_head_lag.or(file.max_head_lag).unwrap_or(10),
            verify_logs,
            disagreement_halt: self.disagreement_halt.or(file.disagreement_halt).unwrap_or(10),
            request_timeout: self
                .request_timeout
                .or(file.request_timeout.as_ref().map(|FromText(DurationText(value))| *value))
                .unwrap_or(Duration::from_secs(30)),
            max_rps: match (self.max_rps, file.max_rps) {
                (Some(rps), _) => Some(rps),
                (None, Some(0)) => {
                    return Err(ConfigError::InvalidValue {
                        key: "l1.max-rps",
                        value: "0".to_owned(),
                        reason: "must be at least 1 call per second".to_owned(),
                    });
                }
                (None, rps) => rps,
            },
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileL1 {
    pub(super) rpc_url: Option<OneOrMany>,
    pub(super) contract: Option<Address>,
    pub(super) chain_id: Option<u64>,
    pub(super) mode: Option<String>,
    pub(super) quorum: Option<u64>,
    pub(super) max_head_lag: Option<u64>,
    pub(super) verify_logs: Option<String>,
    pub(super) disagreement_halt: Option<u32>,
    pub(super) request_timeout: Option<FromText<DurationText>>,
    pub(super) max_rps: Option<u32>,
}

/// One URL or a list of them (`rpc-url = "http://a"` or `rpc-url = ["http://a", "http://b"]`).
#[derive(Debug, Clone, Default)]
pub(super) struct OneOrMany(pub(super) Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(Self(match Raw::deserialize(deserializer)? {
            Raw::One(url) => url.split(',').map(|url| url.trim().to_owned()).collect(),
            Raw::Many(urls) => urls,
        }))
    }
}

pub(super) fn parse_url(text: &str) -> Result<String, String> {
    // A list may be written with spaces after its commas.
    let text = text.trim();
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
    super::parse_duration(text)
}
