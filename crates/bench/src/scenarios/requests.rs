//! `requests`: the L1 calls per 1,000 blocks and per 100,000 messages, dense, sparse, empty and
//! at the head, for each way of proving logs (`--l1.verify-logs`).

use super::start_node_verifying;
use crate::chain::{BenchChain, wallet_provider};
use alloy::{
    node_bindings::AnvilInstance,
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ext::AnvilApi},
};
use ferry_contracts::FerryMessaging::{self, FerryMessagingInstance};
use ferry_messaging::VerifyLogs;
use ferry_primitives::Position;
use std::time::Duration;

/// One row of the requests table: the calls a node made to catch up from block 0 to `head`.
fn requests_row(
    (what, mode): (&str, VerifyLogs),
    blocks: u64,
    messages: u64,
    counts: &crate::proxy::Counts,
) {
    let get = |method: &str| counts.get(method).copied().unwrap_or(0);
    let (logs, headers) = (get("eth_getLogs"), get("eth_getBlockByNumber"));
    let all: u64 = counts.values().sum();
    let others: Vec<String> = counts
        .iter()
        .filter(|(method, _)| {
            !matches!(
                method.as_str(),
                "eth_getLogs" | "eth_getBlockByNumber" | "eth_getBlockReceipts"
            )
        })
        .map(|(method, count)| format!("{method} {count}"))
        .collect();
    let per = |count: u64, unit: u64, of: u64| {
        if of == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}", count as f64 * unit as f64 / of as f64)
        }
    };
    let receipts = get("eth_getBlockReceipts");
    println!(
        "| {what} | {mode} | {blocks} | {messages} | {logs} | {headers} | {receipts} | {} | {all} | {} | {} |",
        others.join(", "),
        per(all, 1_000, blocks),
        per(all, 100_000, messages),
    );
}

/// Catches a fresh node proving logs as `mode` says up to `head` through a counting proxy;
/// the calls it made.
async fn count_catchup(
    url: &str,
    contract: Address,
    head: u64,
    mode: VerifyLogs,
) -> crate::proxy::Counts {
    let proxy = crate::proxy::CountingProxy::start(url.to_owned()).await;
    let poll = Duration::from_secs(1);
    let node = start_node_verifying(proxy.url(), contract, 1_000, poll, mode).await;
    node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
    node.stop().await;
    proxy.take()
}

/// The requests table, a row per chain and way of proving logs.
pub(crate) async fn requests(modes: &[VerifyLogs]) {
    println!("\n## L1 requests (calls a provider bills), counted by a proxy in front of Anvil\n");
    println!(
        "| chain | --l1.verify-logs | blocks | messages | eth_getLogs | eth_getBlockByNumber | eth_getBlockReceipts | other calls | all | all per 1,000 blocks | all per 100,000 messages |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let dense = BenchChain::with_messages(100_000).await;
    for &mode in modes {
        let counts = count_catchup(&dense.anvil.endpoint(), dense.contract, dense.head, mode).await;
        let what = "dense: 100 messages in every block, catch-up";
        requests_row((what, mode), dense.head + 1, 100_000, &counts);
    }
    drop(dense);

    let sparse = SparseChain::mine().await;
    for &mode in modes {
        let (url, contract) = (sparse.anvil.endpoint(), *sparse.contract.address());
        let counts = count_catchup(&url, contract, sparse.head, mode).await;
        let what = "sparse: one message every 100 blocks, catch-up";
        requests_row((what, mode), sparse.head + 1, 100, &counts);
    }
    for &mode in modes {
        at_head(&sparse, mode).await;
    }
    drop(sparse);

    empty_rows(modes).await;
}

/// A chain of one message every 100 blocks, 100 messages: catching it up is mostly headers
/// and empty ranges, the other extreme from the dense chain.
struct SparseChain {
    anvil: AnvilInstance,
    provider: DynProvider,
    contract: FerryMessagingInstance<DynProvider>,
    head: u64,
}

impl SparseChain {
    /// Built once for two rows: the catch-up over it, then following its head, which
    /// continues the same chain.
    async fn mine() -> Self {
        let anvil = ferry_test_support::anvil(&crate::chain::CHAIN_ARGS);
        let provider = wallet_provider(&anvil);
        let contract = FerryMessaging::deploy(provider.clone()).await.unwrap();
        let mut chain = Self { anvil, provider, contract, head: 0 };
        for _ in 0..100 {
            chain.send().await;
            chain.provider.anvil_mine(Some(99), None).await.unwrap();
        }
        chain.head = chain.provider.get_block_number().await.unwrap();
        chain
    }

    /// One message in a block of its own: Anvil mines a block per transaction.
    async fn send(&self) {
        let call = self.contract.sendMessageToL2(U256::from(1), U256::from(2), vec![U256::from(3)]);
        call.send().await.unwrap().get_receipt().await.unwrap();
    }
}

/// Following the head: each block is mined once the node has read the one before, one in
/// ten with a message; polling every 20 ms, so the count includes a poll or two per block.
/// Then the calls of 2 s idle at the head: what polling alone costs.
async fn at_head(chain: &SparseChain, mode: VerifyLogs) {
    let contract = *chain.contract.address();
    // Each mode's run continues the chain the one before grew.
    let head = chain.provider.get_block_number().await.unwrap();
    let proxy = crate::proxy::CountingProxy::start(chain.anvil.endpoint()).await;
    let poll = Duration::from_millis(20);
    let node = start_node_verifying(proxy.url(), contract, 1_000, poll, mode).await;
    node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
    proxy.take();
    const HEAD_BLOCKS: u64 = 200;
    for block in 1..=HEAD_BLOCKS {
        if block % 10 == 0 {
            chain.send().await;
        } else {
            chain.provider.anvil_mine(Some(1), None).await.unwrap();
        }
        node.wait_cursor(|cursor| cursor == Position::block_start(head + block + 1)).await;
    }
    let counts = proxy.take();
    requests_row(
        ("at the head: one block at a time, 1 in 10 with a message (polling every 20 ms)", mode),
        HEAD_BLOCKS,
        HEAD_BLOCKS / 10,
        &counts,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = proxy.take();
    println!(
        "\nIdle at the head, {mode} (nothing mined for 2 s, polling every 20 ms, about 100 polls): {} calls ({:?}).\n",
        idle.values().sum::<u64>(),
        idle
    );
    node.stop().await;
}

/// 10,000 blocks and no message: the least a catch-up can cost per block.
async fn empty_rows(modes: &[VerifyLogs]) {
    let anvil = ferry_test_support::anvil(&crate::chain::CHAIN_ARGS);
    let provider = wallet_provider(&anvil);
    let contract = FerryMessaging::deploy(provider.clone()).await.unwrap();
    provider.anvil_mine(Some(10_000), None).await.unwrap();
    let head = provider.get_block_number().await.unwrap();
    for &mode in modes {
        let counts = count_catchup(&anvil.endpoint(), *contract.address(), head, mode).await;
        requests_row(("empty: no message at all, catch-up", mode), head + 1, 0, &counts);
    }
}
