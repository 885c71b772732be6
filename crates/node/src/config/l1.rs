//! `--l1.*` and how L1 is read: the endpoint, the contract, the start block, confirmations,
//! polling, ranges and the header window.

use super::ConfigError;
use alloy::primitives::Address;
use clap::Args;
use ferry_messaging::Confirmations;
use serde::Deserialize;
use std::time::Duration;

/// Where L1 is and how it is read.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "L1")]
pub struct L1Args {
    /// L1 JSON-RPC endpoint: http://, https://, ws:// or wss:// (WebSocket pushes new heads).
    #[arg(id = "l1_rpc_url", long = "l1.rpc-url", env = "FERRY_L1_RPC_URL", value_name = "URL", value_parser = parse_url)]
    pub rpc_url: Option<String>,

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
    /// The endpoint.
    pub rpc_url: String,
    /// The messaging contract.
    pub contract: Address,
    /// The expected chain id, if given.
    pub chain_id: Option<u64>,
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
        let rpc_url = match self.rpc_url.clone() {
            Some(url) => url,
            None => {
                let url = file.rpc_url.clone().ok_or(ConfigError::Missing {
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
        let contract = self.contract.or(file.contract).ok_or(ConfigError::Missing {
            flag: "--l1.contract",
            env: "FERRY_L1_CONTRACT",
            key: "l1.contract",
        })?;
        Ok(Some(L1Config { rpc_url, contract, chain_id: self.chain_id.or(file.chain_id) }))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileL1 {
    pub(super) rpc_url: Option<String>,
    pub(super) contract: Option<Address>,
    pub(super) chain_id: Option<u64>,
}

pub(super) fn parse_url(text: &str) -> Result<String, String> {
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
