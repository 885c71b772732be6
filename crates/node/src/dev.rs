//! Dev mode: a local Anvil with ferry's own messaging contract, so that a newcomer sees
//! messages flow in the first minute.

use crate::{L1Config, NodeError};
use alloy::{
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, U256, hex},
    providers::{Provider, ProviderBuilder},
};
use ferry_contracts::FerryMessaging;
use std::{net::SocketAddr, path::PathBuf};
use tracing::info;

const LOG_TARGET: &str = "ferry::node::dev";

/// The local chain of dev mode; Anvil stops when this is dropped.
#[derive(Debug)]
pub(crate) struct DevChain {
    anvil: AnvilInstance,
    contract: Address,
}

/// `$ANVIL_PATH`, else `anvil` from `PATH`.
fn anvil_binary() -> PathBuf {
    std::env::var_os("ANVIL_PATH").map_or_else(|| PathBuf::from("anvil"), PathBuf::from)
}

impl DevChain {
    /// Starts Anvil (a block a second), deploys the contract and sends `messages` messages.
    pub(crate) async fn start(messages: u64) -> Result<Self, NodeError> {
        let binary = anvil_binary();
        let anvil = Anvil::at(&binary).block_time(1).try_spawn().map_err(|error| {
            NodeError::Dev(format!(
                "cannot start anvil ({}): {error}; install it with scripts/install-tools.sh \
                 and set ANVIL_PATH, or put anvil on PATH",
                binary.display()
            ))
        })?;
        let wallet = anvil.wallet().ok_or_else(|| NodeError::Dev("anvil has no keys".into()))?;
        let provider = ProviderBuilder::new().wallet(wallet).connect_http(anvil.endpoint_url());
        let contract = FerryMessaging::deploy(&provider)
            .await
            .map_err(|error| NodeError::Dev(format!("cannot deploy the contract: {error}")))?;
        let mut last = None;
        for i in 0..messages {
            let pending = contract
                .sendMessageToL2(U256::from(0x1234), U256::from(0x5678), vec![U256::from(i)])
                .value(U256::from(i + 1))
                .send()
                .await
                .map_err(|error| NodeError::Dev(format!("cannot send a message: {error}")))?;
            last = Some(pending);
        }
        if let Some(pending) = last {
            // All of them are in the same block or earlier ones: wait for that block.
            pending
                .get_receipt()
                .await
                .map_err(|error| NodeError::Dev(format!("a message was not mined: {error}")))?;
        }
        let head = provider.get_block_number().await.unwrap_or_default();
        info!(target: LOG_TARGET, contract = %contract.address(), messages, head, "Dev chain ready");
        Ok(Self { contract: *contract.address(), anvil })
    }

    /// Where the node reads: the WebSocket endpoint, so new heads are pushed.
    pub(crate) fn l1_config(&self) -> L1Config {
        L1Config {
            rpc_urls: vec![self.anvil.ws_endpoint()],
            contract: self.contract,
            chain_id: Some(self.anvil.chain_id()),
        }
    }

    /// Tells the newcomer where everything is and how to send more messages.
    pub(crate) fn print_banner(
        &self,
        public: SocketAddr,
        admin: SocketAddr,
        metrics: Option<SocketAddr>,
    ) {
        let key = self.anvil.keys().first().map(|key| hex::encode_prefixed(key.to_bytes()));
        let metrics = metrics.map_or_else(
            || "off (--metrics.addr)".to_owned(),
            |addr| format!("http://{addr}/metrics"),
        );
        println!(
            "\nferry dev mode\n\
             \x20 L1 (anvil)      {http} / {ws}\n\
             \x20 contract        {contract}\n\
             \x20 public RPC      http://{public}   (messaging_status)\n\
             \x20 admin RPC       http://{admin}   (messaging_getCheckpoint / setCheckpoint / resetCheckpoint)\n\
             \x20 metrics         {metrics}\n\n\
             Send a message:\n\
             \x20 cast send {contract} \"sendMessageToL2(uint256,uint256,uint256[])\" 0x1234 0x5678 \"[1,2,3]\" \\\n\
             \x20   --value 1 --rpc-url {http} --private-key {key}\n\n\
             Watch it arrive and move the checkpoint:\n\
             \x20 ferry status --rpc.addr {public}\n\
             \x20 ferry checkpoint get --admin.addr {admin}\n\
             \x20 ferry checkpoint set --block 0 --dry-run --admin.addr {admin}\n",
            http = self.anvil.endpoint(),
            ws = self.anvil.ws_endpoint(),
            contract = self.contract,
            key = key.unwrap_or_default(),
        );
    }
}
