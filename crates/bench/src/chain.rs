//! Chains to measure against: built once on Anvil and saved with --dump-state for reuse.

use alloy::{
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use ferry_contracts::FerryMessaging;
use std::path::PathBuf;

/// `$ANVIL_PATH`, or the one scripts/install-tools.sh put under .tools/.
pub(crate) fn anvil_path() -> PathBuf {
    ferry_messaging::test_utils::anvil_path()
}

/// A running Anvil with the messaging contract and `messages` messages (100 per transaction,
/// one transaction per block), loaded from a state file made on first use.
pub(crate) struct BenchChain {
    pub(crate) anvil: AnvilInstance,
    pub(crate) contract: Address,
    pub(crate) head: u64,
}

fn state_file(messages: u64) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("chain-{messages}.json"))
}

pub(crate) fn wallet_provider(anvil: &AnvilInstance) -> DynProvider {
    ProviderBuilder::new()
        .wallet(anvil.wallet().unwrap())
        .connect_http(anvil.endpoint_url())
        .erased()
}

impl BenchChain {
    pub(crate) async fn with_messages(messages: u64) -> Self {
        let state = state_file(messages);
        let state_arg = state.to_str().unwrap().to_owned();
        if !state.exists() {
            eprintln!("building a chain of {messages} messages (saved to {state_arg})");
            let anvil = Anvil::at(anvil_path())
                .args(["--dump-state", &state_arg, "--gas-limit", "100000000"])
                .try_spawn()
                .unwrap();
            let provider = wallet_provider(&anvil);
            let contract = FerryMessaging::deploy(provider).await.unwrap();
            let mut pending = Vec::new();
            for _ in 0..messages.div_ceil(100) {
                let call = contract.sendMessagesToL2(
                    U256::from(0x1234),
                    U256::from(0x5678),
                    vec![U256::from(1), U256::from(2)],
                    U256::from(100),
                );
                pending.push(call.send().await.unwrap());
                if pending.len() == 50 {
                    for tx in pending.drain(..) {
                        tx.get_receipt().await.unwrap();
                    }
                }
            }
            for tx in pending {
                tx.get_receipt().await.unwrap();
            }
            drop(anvil); // SIGTERM: Anvil writes the state file
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let anvil = Anvil::at(anvil_path())
            .args(["--load-state", &state_arg, "--gas-limit", "100000000"])
            .try_spawn()
            .unwrap();
        let provider = wallet_provider(&anvil);
        let head = provider.get_block_number().await.unwrap();
        // The first contract deployed by Anvil's first account.
        let contract = alloy::primitives::address!("0x5FbDB2315678afecb367f032d93F642f64180aa3");
        Self { anvil, contract, head }
    }
}
