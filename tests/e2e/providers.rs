//! Providers that lie, drop, fork and die: logs proven against their blocks (a dropped log is
//! found, a forged one refused, and with `--l1.verify-logs off` the loss shows), several
//! endpoints (quorum and failover on two chains, a primary that goes down and comes back),
//! and one transaction replayed. Every message checked against the contract.

use crate::{
    l1proxy::{HoldAt, L1Proxy},
    reorgs::{assert_consumers_hold_the_chain, canonical, ferry_on, message_tx, plain, send},
    scenarios::{admin, caught_up, log},
    support::{Ferry, Messaging, anvil, deploy, free_addr, head, http_get},
};
use alloy::{
    node_bindings::AnvilInstance,
    primitives::{B256, U256},
    providers::{Provider, ext::AnvilApi},
    rpc::types::anvil::{ReorgOptions, TransactionData},
};
use ferry_primitives::{EntryKind, HaltCause, Origin};
use ferry_rpc_api::{AdminApiClient, NodeStatus, RefetchOptions, codes};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A chain of six messages (fees 1 to 6), each in its own block with an empty block after
/// it; every message by fee: its hash and origin.
async fn six_messages(anvil: &AnvilInstance, contract: &Messaging) -> HashMap<u64, (B256, Origin)> {
    let provider = plain(anvil);
    for fee in 1..=6 {
        send(&provider, message_tx(*contract.address(), anvil.addresses()[1], fee)).await;
        provider.anvil_mine(Some(1), None).await.unwrap();
    }
    by_fee(contract).await
}

async fn by_fee(contract: &Messaging) -> HashMap<u64, (B256, Origin)> {
    let chain = canonical(contract.provider(), *contract.address()).await;
    chain.into_iter().map(|(hash, (origin, fee))| (fee.to::<u64>(), (hash, origin))).collect()
}

/// Every `eth_getLogs` answer of `proxy` leaves out the logs of `transaction`.
fn drop_logs_of(proxy: &L1Proxy, transaction: B256) {
    let hidden = transaction.to_string();
    proxy.rewrite(
        |call| call["method"] == "eth_getLogs",
        move |_, result| {
            if let Value::Array(logs) = result {
                logs.retain(|log| log["transactionHash"].as_str() != Some(hidden.as_str()));
            }
        },
    );
}

/// The stored messages' hashes.
async fn stored_hashes(ferry: &Ferry) -> Vec<B256> {
    let entries = log(ferry).await;
    entries.iter().filter(|entry| entry.kind == EntryKind::Message).map(|e| e.hash).collect()
}

/// Two proxies in front of `anvil`, a primary and a standby, and the `--l1.rpc-url` naming
/// both in that order. Keep both bound: a dropped proxy stops serving.
async fn primary_and_standby(anvil: &AnvilInstance) -> (L1Proxy, L1Proxy, String) {
    let (primary, standby) = tokio::join!(
        L1Proxy::start(vec![anvil.endpoint()]),
        L1Proxy::start(vec![anvil.endpoint()])
    );
    let urls = format!("{},{}", primary.url(), standby.url());
    (primary, standby, urls)
}

/// The node's consumers hold the contract's chain field by field, and the store holds
/// `messages` messages: each once.
async fn holds_every_message_once(ferry: &Ferry, contract: &Messaging, messages: usize) {
    assert_consumers_hold_the_chain(ferry, contract).await;
    assert_eq!(stored_hashes(ferry).await.len(), messages, "every message once");
}

/// A counter's value in the node's metrics.
async fn metric(metrics: std::net::SocketAddr, line_start: &str) -> f64 {
    let (_, text) = http_get(metrics, "/metrics").await;
    text.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |value| value.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_the_provider_drops_is_never_lost_unless_verification_is_off() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let chain = six_messages(&anvil, &contract).await;
    // The provider drops a message in the middle and the last message of the chain: no later
    // nonce would ever show the second one missing.
    let hidden = [chain[&3], chain[&6]];
    for mode in ["bloom", "receipts", "off"] {
        let proxy = L1Proxy::start(vec![anvil.endpoint()]).await;
        for (_, origin) in hidden {
            drop_logs_of(&proxy, origin.transaction_hash);
        }
        let datadir = tempfile::tempdir().unwrap();
        let metrics = free_addr();
        let metrics_arg = metrics.to_string();
        let extra = ["--l1.verify-logs", mode, "--metrics.addr", &metrics_arg];
        let mut ferry = ferry_on(proxy.url(), *contract.address(), datadir.path(), &extra);
        caught_up(&mut ferry, &contract).await;
        let stored = stored_hashes(&ferry).await;
        if mode == "off" {
            // Taken at its word, the provider loses both: this is what the proofs prevent.
            for (hash, _) in hidden {
                assert!(!stored.contains(&hash), "off: {hash} cannot be stored");
            }
            assert_eq!(stored.len(), 4, "off: the other four are stored");
        } else {
            assert_consumers_hold_the_chain(&ferry, &contract).await;
            assert_eq!(stored.len(), 6, "{mode}: every message once");
        }
        if mode == "bloom" {
            // Both blocks were read from their proven receipts.
            let omissions = metric(metrics, "ferry_l1_omissions_total").await;
            assert!(omissions >= 2.0, "bloom: omissions counted: {omissions}");
        }
        assert!(ferry.terminate().await.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_forged_into_a_block_that_cannot_hold_it_is_refused() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let chain = six_messages(&anvil, &contract).await;
    // Block after the second message is empty: its bloom holds no log of the contract.
    let empty = chain[&2].1.block_number + 1;
    let empty_hash = contract.provider().get_block_by_number(empty.into()).await.unwrap();
    let empty_hash = empty_hash.unwrap().header.hash;
    let proxy = L1Proxy::start(vec![anvil.endpoint()]).await;
    // Every ranged answer gains a well-formed message (nonce 99) in that block, with its hash.
    proxy.rewrite(
        |call| call["method"] == "eth_getLogs" && call["params"][0]["fromBlock"].is_string(),
        move |_, result| {
            let Some(mut forged) = result.as_array().and_then(|logs| logs.first()).cloned() else {
                return;
            };
            let data = forged["data"].as_str().unwrap().to_owned();
            let nonce = format!("{:064x}", 99);
            forged["data"] = json!(format!("{}{nonce}{}", &data[..66], &data[130..]));
            forged["blockNumber"] = json!(format!("{empty:#x}"));
            forged["blockHash"] = json!(empty_hash.to_string());
            forged["transactionHash"] = json!(B256::repeat_byte(0xee).to_string());
            forged["logIndex"] = json!("0x0");
            result.as_array_mut().unwrap().push(forged);
        },
    );
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = ferry_on(proxy.url(), *contract.address(), datadir.path(), &[]);
    let status =
        ferry.wait_status("the forged log is refused", |s| s.pipeline.l1_answers_refused > 0).await;
    let forged_block = status.checkpoint.is_none_or(|checkpoint| checkpoint.block <= empty);
    assert!(forged_block, "nothing past the forged block is committed: {:?}", status.checkpoint);
    for entry in log(&ferry).await {
        assert_ne!(entry.l1.message.nonce, U256::from(99), "the forged message is not stored");
    }
    // The provider answers truthfully again: the node reads on and holds exactly the chain.
    proxy.stop_rewriting();
    caught_up(&mut ferry, &contract).await;
    holds_every_message_once(&ferry, &contract, 6).await;
}

/// Two Anvils sharing the first messages (fees 1 and 2) and then growing apart: A gets fees
/// 10 to 12, B fees 110 to 112 from another sender.
struct TwoChains {
    a: AnvilInstance,
    b: AnvilInstance,
    contract: Messaging,
    /// Messages on both: the only ones a node may store while the endpoints disagree.
    shared: Vec<B256>,
}

async fn two_chains() -> TwoChains {
    let a = anvil();
    let contract = deploy(&a).await;
    let on_a = plain(&a);
    let sender = a.addresses()[1];
    for fee in 1..=2 {
        send(&on_a, message_tx(*contract.address(), sender, fee)).await;
    }
    let shared = canonical(&on_a, *contract.address()).await.into_keys().collect();
    let fork_block = head(&contract).await.to_string();
    let fork = ["--fork-url", &a.endpoint(), "--fork-block-number", &fork_block];
    let b = ferry_test_support::anvil(&fork);
    let on_b = plain(&b);
    for fee in 10..=12 {
        send(&on_a, message_tx(*contract.address(), sender, fee)).await;
        send(&on_b, message_tx(*contract.address(), a.addresses()[2], fee + 100)).await;
    }
    on_a.anvil_mine(Some(2), None).await.unwrap();
    TwoChains { a, b, contract, shared }
}

/// Waits for the disagreement halt; then nothing but the shared messages is stored.
async fn halted_on_disagreement(ferry: &mut Ferry, chains: &TwoChains) -> NodeStatus {
    let status = ferry
        .wait_status("ingestion halts on the endpoints' disagreement", |s| {
            s.pipeline.halted.as_ref().is_some_and(|h| h.cause == HaltCause::EndpointsDisagree)
        })
        .await;
    let halt = status.pipeline.halted.clone().unwrap();
    assert!(halt.reason.contains("disagreed") && halt.reason.contains("upstreams"), "{halt:?}");
    assert!(status.pipeline.l1_disagreements >= 3, "{status:?}");
    for hash in stored_hashes(ferry).await {
        assert!(chains.shared.contains(&hash), "only what both chains hold is stored: {hash}");
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_endpoints_on_two_chains_halt_in_quorum_and_in_failover_commit_neither() {
    let chains = two_chains().await;
    let contract = chains.contract.address().to_string();
    for mode in [["--l1.mode", "quorum", "--l1.quorum", "2"], ["--l1.mode", "failover", "", ""]] {
        // The endpoint on the other chain first: in failover it is the one answering.
        let urls = format!("{},{}", chains.b.endpoint(), chains.a.endpoint());
        let mut args = vec!["--l1.rpc-url", &urls, "--l1.contract", &contract];
        args.extend(["--poll-interval", "50ms", "--l1.disagreement-halt", "3"]);
        args.extend(mode.iter().filter(|arg| !arg.is_empty()));
        let datadir = tempfile::tempdir().unwrap();
        let mut ferry = Ferry::start(datadir.path(), &args);
        let status = halted_on_disagreement(&mut ferry, &chains).await;
        assert_eq!(status.pipeline.upstreams.len(), 2);
        assert!(ferry.terminate().await.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_leaves_a_primary_the_other_endpoints_outvote_and_reads_their_chain() {
    let chains = two_chains().await;
    let second = L1Proxy::start(vec![chains.a.endpoint()]).await;
    let urls = format!("{},{},{}", chains.b.endpoint(), chains.a.endpoint(), second.url());
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = ferry_on(&urls, *chains.contract.address(), datadir.path(), &[]);
    caught_up(&mut ferry, &chains.contract).await;
    assert_consumers_hold_the_chain(&ferry, &chains.contract).await;
    assert_eq!(stored_hashes(&ferry).await.len(), 5);
    let status =
        ferry.wait_status("status shows the switch", |s| s.pipeline.l1_disagreements > 0).await;
    let upstreams = &status.pipeline.upstreams;
    assert!(!upstreams[0].active, "the outvoted primary no longer answers: {upstreams:?}");
    let outvoted = upstreams[0].last_error.as_deref().unwrap_or_default();
    assert!(outvoted.contains("endpoints say"), "status says why: {outvoted}");
    assert!(ferry.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_that_goes_down_mid_ingest_hands_over_and_takes_back_losing_nothing() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let provider = plain(&anvil);
    let sender = anvil.addresses()[1];
    for fee in 1..=10 {
        send(&provider, message_tx(*contract.address(), sender, fee)).await;
    }
    let (primary, standby, urls) = primary_and_standby(&anvil).await;
    let metrics = free_addr();
    let metrics_arg = metrics.to_string();
    let extra = ["--metrics.addr", metrics_arg.as_str(), "--max-block-range", "256"];
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = ferry_on(&urls, *contract.address(), datadir.path(), &extra);
    ferry.wait_status("the node has started reading", |s| s.checkpoint.is_some()).await;
    primary.set_down(true);
    for fee in 11..=15 {
        send(&provider, message_tx(*contract.address(), sender, fee)).await;
    }
    let status = caught_up(&mut ferry, &contract).await;
    let upstreams = &status.pipeline.upstreams;
    assert!(upstreams[1].active && !upstreams[0].active, "the standby answers: {upstreams:?}");
    assert!(!upstreams[0].healthy && upstreams[0].last_error.is_some(), "{upstreams:?}");

    // The primary comes back: the node returns to it (heads are probed every 5 s).
    primary.set_down(false);
    ferry
        .wait_status("the primary answers again", |s| {
            s.pipeline.upstreams.first().is_some_and(|primary| primary.active && primary.healthy)
        })
        .await;
    for fee in 16..=18 {
        send(&provider, message_tx(*contract.address(), sender, fee)).await;
    }
    caught_up(&mut ferry, &contract).await;
    holds_every_message_once(&ferry, &contract, 18).await;
    let (from, to) = (redacted(primary.url()), redacted(standby.url()));
    let away = format!("ferry_upstream_switches_total{{from=\"{from}\",to=\"{to}\"}}");
    let back = format!("ferry_upstream_switches_total{{from=\"{to}\",to=\"{from}\"}}");
    assert_eq!(metric(metrics, &away).await, 1.0, "{away}");
    assert_eq!(metric(metrics, &back).await, 1.0, "{back}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_that_takes_requests_and_never_answers_times_out_and_the_standby_serves() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    six_messages(&anvil, &contract).await;
    let (primary, _standby, urls) = primary_and_standby(&anvil).await;
    // The primary answers everything but eth_getLogs, which it accepts and never answers.
    let hung = primary.hold(|call| call["method"] == "eth_getLogs", HoldAt::Request);
    let datadir = tempfile::tempdir().unwrap();
    let extra = ["--l1.request-timeout", "1s"];
    let mut ferry = ferry_on(&urls, *contract.address(), datadir.path(), &extra);
    hung.entered().await;
    let status = caught_up(&mut ferry, &contract).await;
    let upstreams = &status.pipeline.upstreams;
    assert!(upstreams[1].active && !upstreams[0].active, "the standby answers: {upstreams:?}");
    let error = upstreams[0].last_error.as_deref().unwrap_or_default();
    assert!(error.contains("timed out"), "status says the primary timed out: {error}");
    holds_every_message_once(&ferry, &contract, 6).await;
    hung.release();
    assert!(ferry.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_primary_down_at_start_the_node_starts_on_the_standby() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    six_messages(&anvil, &contract).await;
    let (primary, _standby, urls) = primary_and_standby(&anvil).await;
    primary.set_down(true);
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = ferry_on(&urls, *contract.address(), datadir.path(), &[]);
    let status = caught_up(&mut ferry, &contract).await;
    let upstreams = &status.pipeline.upstreams;
    assert!(upstreams[1].active && !upstreams[0].healthy, "the standby answers: {upstreams:?}");
    holds_every_message_once(&ferry, &contract, 6).await;
    assert!(ferry.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_paced_under_the_providers_rate_is_never_refused_and_one_that_is_not_recovers() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    six_messages(&anvil, &contract).await;
    // Enough blocks that proving them (a header each) takes several seconds' worth of calls.
    plain(&anvil).anvil_mine(Some(150), None).await.unwrap();
    for paced in [true, false] {
        let proxy = L1Proxy::start(vec![anvil.endpoint()]).await;
        proxy.limit_rate(50);
        let datadir = tempfile::tempdir().unwrap();
        let metrics = free_addr().to_string();
        // A little under the plan's rate, as the README advises: requests that left in turn
        // may arrive closer together.
        let mut extra = vec!["--metrics.addr", metrics.as_str()];
        if paced {
            extra.extend(["--l1.max-rps", "45"]);
        }
        let mut ferry = ferry_on(proxy.url(), *contract.address(), datadir.path(), &extra);
        caught_up(&mut ferry, &contract).await;
        holds_every_message_once(&ferry, &contract, 6).await;
        let waits = metric(metrics.parse().unwrap(), "ferry_l1_pacing_wait_seconds_count").await;
        if paced {
            assert_eq!(proxy.refused(), 0, "paced under the limit, never refused");
            assert!(waits > 0.0, "the limit held the node back: the test needed pacing");
        } else {
            assert_eq!(waits, 0.0, "no limit, no pacing");
            assert!(proxy.refused() > 0, "unpaced, the provider refused some (the test can fail)");
        }
        assert!(ferry.terminate().await.success());
    }
}

fn redacted(url: &str) -> String {
    ferry_messaging::redact(url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refetching_a_transaction_stores_what_the_provider_hid_and_refuses_a_reorged_one() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let chain = six_messages(&anvil, &contract).await;
    let (hidden, hidden_origin) = chain[&3];
    let proxy = L1Proxy::start(vec![anvil.endpoint()]).await;
    drop_logs_of(&proxy, hidden_origin.transaction_hash);
    let datadir = tempfile::tempdir().unwrap();
    let extra = ["--l1.verify-logs", "off"];
    let mut ferry = ferry_on(proxy.url(), *contract.address(), datadir.path(), &extra);
    let status = caught_up(&mut ferry, &contract).await;
    assert_eq!(status.pipeline.missing_nonces, U256::from(1), "the gap shows the loss");
    let admin = admin(&ferry);
    let transaction = hidden_origin.transaction_hash;

    let dry = Some(RefetchOptions { dry_run: true });
    let preview = admin.refetch_transaction(transaction, dry).await.unwrap();
    assert_eq!(
        (preview.block.number, preview.block.hash),
        (hidden_origin.block_number, hidden_origin.block_hash)
    );
    assert_eq!(preview.messages.len(), 1);
    assert_eq!((preview.messages[0].hash, preview.messages[0].stored_seq), (hidden, None));
    assert_eq!(stored_hashes(&ferry).await.len(), 5, "a dry run stores nothing");

    let done = admin.refetch_transaction(transaction, None).await.unwrap();
    assert_eq!(done.stored, 1);
    holds_every_message_once(&ferry, &contract, 6).await;
    let status =
        ferry.wait_status("the gap closes", |s| s.pipeline.missing_nonces == U256::ZERO).await;
    assert_eq!(status.checkpoint.map(|c| c.block), Some(head(&contract).await + 1));

    // A transaction a reorg dropped is on no chain the node can prove it against.
    let provider = plain(&anvil);
    let sender = anvil.addresses()[1];
    send(&provider, message_tx(*contract.address(), sender, 7)).await;
    let dropped = by_fee(&contract).await[&7].1.transaction_hash;
    caught_up(&mut ferry, &contract).await;
    let replacing = TransactionData::JSON(message_tx(*contract.address(), sender, 8));
    let reorg = ReorgOptions { depth: 1, tx_block_pairs: vec![(replacing, 0)] };
    provider.anvil_reorg(reorg).await.unwrap();
    ferry.wait_status("the node sees the reorg", |s| s.reorgs == 1).await;
    caught_up(&mut ferry, &contract).await;
    for refused in [dropped, B256::repeat_byte(0x42)] {
        match admin.refetch_transaction(refused, None).await {
            Err(jsonrpsee::core::ClientError::Call(error)) => {
                assert_eq!(error.code(), codes::REFETCH_REFUSED, "{error:?}");
                assert!(error.message().contains("no such transaction"), "{error:?}");
            }
            other => panic!("refetching {refused} is refused: {other:?}"),
        }
    }
    assert_consumers_hold_the_chain(&ferry, &contract).await;
}
