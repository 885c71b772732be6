//! Chains to measure against: built once on Anvil and saved with --dump-state for reuse.

use alloy::{
    node_bindings::AnvilInstance,
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use ferry_contracts::FerryMessaging;
use std::path::PathBuf;

/// A running Anvil with the messaging contract and `messages` messages (one transaction per
/// block, [`per_transaction`] messages each), loaded from a state file made on first use.
pub(crate) struct BenchChain {
    pub(crate) anvil: AnvilInstance,
    pub(crate) contract: Address,
    pub(crate) head: u64,
}

/// Anvil's options for the benchmark chains. Under Prague (Anvil's default) every block
/// writes the EIP-2935 history contract and Anvil keeps a state per block, so mining slows
/// down with the length of the chain; Cancun without kept states mines at a steady pace and
/// still serves every block, receipt and log. The state file is written once, at the end
/// (`--state-interval`): rewriting a growing file every minute would dominate the build.
pub(crate) const CHAIN_ARGS: [&str; 5] =
    ["--gas-limit", "100000000", "--hardfork", "cancun", "--prune-history"];

/// 100 messages per transaction up to 100,000 messages (the reference chain: 1,000
/// blocks), 1,000 beyond. Anvil's time per block grows with the contract's storage (each
/// message stores its hash), so a 1,000,000-message chain at 100 per block would take
/// hours to build; at 1,000 per block it takes minutes.
pub(crate) const fn per_transaction(messages: u64) -> u64 {
    if messages > 100_000 { 1_000 } else { 100 }
}

fn state_file(messages: u64) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("chain-cancun-{messages}.json"))
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
            // Written aside and renamed once complete: an interrupted build leaves no state
            // file that looks finished.
            let partial = state.with_extension("partial");
            let partial_arg = partial.to_str().unwrap().to_owned();
            let anvil = ferry_test_support::anvil_builder()
                .args(["--dump-state", &partial_arg, "--state-interval", "86400"])
                .args(CHAIN_ARGS)
                .try_spawn()
                .unwrap();
            let provider = wallet_provider(&anvil);
            let contract = FerryMessaging::deploy(provider).await.unwrap();
            let mut pending = Vec::new();
            let per_transaction = per_transaction(messages);
            for _ in 0..messages.div_ceil(per_transaction) {
                let call = contract.sendMessagesToL2(
                    U256::from(0x1234),
                    U256::from(0x5678),
                    vec![U256::from(1), U256::from(2)],
                    U256::from(per_transaction),
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
            drop(anvil); // SIGTERM, and waits: Anvil writes the state file as it exits
            std::fs::rename(&partial, &state).unwrap();
        }
        // Loading a saved chain takes Anvil seconds per 100 MB of state (1.7 GB for
        // 1,000,000 messages), far beyond the default start-up timeout.
        let load_timeout = std::fs::metadata(&state).map_or(0, |meta| meta.len() / 1_000_000);
        let anvil = ferry_test_support::anvil_builder()
            .args(["--load-state", &state_arg])
            .args(CHAIN_ARGS)
            .timeout(10_000 + load_timeout * 300)
            .try_spawn()
            .unwrap();
        let provider = wallet_provider(&anvil);
        let head = provider.get_block_number().await.unwrap();
        // The first contract deployed by Anvil's first account.
        let contract = alloy::primitives::address!("0x5FbDB2315678afecb367f032d93F642f64180aa3");
        let next_nonce =
            FerryMessaging::new(contract, provider).l1ToL2MessageNonce().call().await.unwrap();
        assert_eq!(next_nonce, U256::from(messages), "{state_arg} holds another chain: delete it");
        Self { anvil, contract, head }
    }
}
