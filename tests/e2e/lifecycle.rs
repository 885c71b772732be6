//! Message lifecycles on the real contract, through the real binary: every transition seen
//! through the lookup, the log and status, field by field against the receipts and the
//! contract's own storage; a cancellation started before the node saw the message; a reorg
//! that removes a cancellation; a restart in between; rewinds by L1 time.

use crate::{
    scenarios::{caught_up, log},
    support::{Ferry, Messaging, anvil, deploy, ferry_once, head},
};
use alloy::{
    primitives::{B256, U256},
    providers::{Provider, ext::AnvilApi},
    rpc::types::{
        TransactionReceipt, TransactionRequest,
        anvil::{ReorgOptions, TransactionData},
    },
};
use ferry_primitives::{
    EntryKind, EventAt, LifecycleKind, LogEntry, Message, MessageState, Position,
};
use ferry_rpc_api::{CheckpointChangeResult, PublicApiClient, ReadOptions};
use std::time::Duration;

/// `sendMessageToL2(1, 2, [nonce])` with a fee of `fee` wei; the message as the contract logs it.
pub(crate) async fn send(contract: &Messaging, nonce: u64, fee: u64) -> Message {
    let sender = contract.provider().get_accounts().await.unwrap()[0];
    let payload = vec![U256::from(nonce)];
    let call = contract
        .sendMessageToL2(U256::from(1), U256::from(2), payload.clone())
        .value(U256::from(fee));
    receipt(call.send().await.unwrap()).await;
    Message {
        from: sender,
        to: U256::from(1),
        selector: U256::from(2),
        payload,
        nonce: U256::from(nonce),
        fee: U256::from(fee),
    }
}

async fn receipt(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
) -> TransactionReceipt {
    let receipt = pending.with_timeout(Some(Duration::from_secs(30))).get_receipt().await.unwrap();
    assert!(receipt.status(), "the transaction succeeded");
    receipt
}

/// The sender's `startL1ToL2MessageCancellation` (`complete: false`) or
/// `cancelL1ToL2Message` (`complete: true`) for `message`.
pub(crate) async fn cancel(
    contract: &Messaging,
    message: &Message,
    complete: bool,
) -> TransactionReceipt {
    let (to, selector, payload, nonce) =
        (message.to, message.selector, message.payload.clone(), message.nonce);
    let pending = if complete {
        contract.cancelL1ToL2Message(to, selector, payload, nonce).send().await
    } else {
        contract.startL1ToL2MessageCancellation(to, selector, payload, nonce).send().await
    };
    receipt(pending.unwrap()).await
}

async fn start_cancellation(contract: &Messaging, message: &Message) -> TransactionReceipt {
    cancel(contract, message, false).await
}

async fn complete_cancellation(contract: &Messaging, message: &Message) -> TransactionReceipt {
    cancel(contract, message, true).await
}

pub(crate) async fn consume(contract: &Messaging, message: &Message) -> TransactionReceipt {
    let call = contract.consumeMessageToL2(
        message.from,
        message.to,
        message.selector,
        message.payload.clone(),
        message.nonce,
    );
    receipt(call.send().await.unwrap()).await
}

/// Where the receipt's only log is, and its block's timestamp, as L1 says.
async fn logged_at(contract: &Messaging, receipt: &TransactionReceipt) -> EventAt {
    let logs = receipt.inner.logs();
    assert_eq!(logs.len(), 1, "one event per lifecycle call");
    let block = receipt.block_number.unwrap();
    let header = contract.provider().get_block_by_number(block.into()).await.unwrap().unwrap();
    EventAt {
        block,
        block_hash: receipt.block_hash.unwrap(),
        transaction_hash: receipt.transaction_hash,
        log_index: logs[0].log_index.unwrap(),
        timestamp: header.header.timestamp,
        delay_ends_at: None,
    }
}

async fn on_l1(contract: &Messaging, message: &Message) -> U256 {
    contract.l1ToL2Messages(message.hash()).call().await.unwrap()
}

fn state_changes(log: &[LogEntry]) -> Vec<(B256, LifecycleKind, MessageState, EventAt, bool)> {
    log.iter()
        .filter(|entry| entry.kind == EntryKind::StateChanged)
        .map(|entry| {
            let change = entry.change.unwrap();
            (entry.hash, change.event, change.current, change.at, change.reverted)
        })
        .collect()
}

#[tokio::test]
async fn every_transition_on_the_real_contract_is_told_exactly_across_a_restart() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let delay = 300;
    receipt(contract.setMessageCancellationDelay(U256::from(delay)).send().await.unwrap()).await;
    let messages =
        [send(&contract, 0, 10).await, send(&contract, 1, 11).await, send(&contract, 2, 12).await];
    let [cancelled, consumed, pending] = &messages;
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &[]);
    caught_up(&mut ferry, &contract).await;

    let started = start_cancellation(&contract, cancelled).await;
    let mut started_at = logged_at(&contract, &started).await;
    started_at.delay_ends_at = Some(started_at.timestamp + delay);
    let requested = contract.l1ToL2MessageCancellations(cancelled.hash()).call().await.unwrap();
    assert_eq!(requested, U256::from(started_at.timestamp), "the contract's request time");
    // The delay has not passed: the contract refuses to complete it.
    let early = contract
        .cancelL1ToL2Message(
            cancelled.to,
            cancelled.selector,
            cancelled.payload.clone(),
            cancelled.nonce,
        )
        .call()
        .await;
    assert!(format!("{early:?}").contains("MESSAGE_CANCELLATION_NOT_ALLOWED_YET"), "{early:?}");
    let consumed_at = logged_at(&contract, &consume(&contract, consumed).await).await;
    caught_up(&mut ferry, &contract).await;

    let client = ferry.public_client();
    let lookup = |ferry: &Ferry, message: &Message| {
        let (client, hash) = (ferry.public_client(), message.hash());
        async move { client.get_message_by_hash(hash).await.unwrap().unwrap() }
    };
    let first = lookup(&ferry, cancelled).await;
    assert_eq!(first.lifecycle.state, MessageState::CancellationStarted);
    assert_eq!(first.lifecycle.cancellation_started, Some(started_at), "block, hash, time, delay");
    assert_eq!(lookup(&ferry, consumed).await.lifecycle.consumed, Some(consumed_at));
    assert_eq!(lookup(&ferry, pending).await.lifecycle.state, MessageState::Pending);
    let counts = client.status().await.unwrap().message_states;
    assert_eq!(
        (counts.pending, counts.cancellation_started, counts.cancelled, counts.consumed),
        (1, 1, 0, 1)
    );
    // What a sequencer may execute: the pending message only.
    let executable = ReadOptions { executable: true, ..ReadOptions::default() };
    let page = client.get_messages(0, None, Some(executable)).await.unwrap();
    let told: Vec<_> = page
        .entries
        .iter()
        .filter(|entry| entry.kind == EntryKind::Message)
        .map(|entry| entry.hash)
        .collect();
    assert_eq!(told, [pending.hash()]);

    // Stopped, the delay passes and the cancellation completes; the restarted node reads it.
    assert!(ferry.terminate().await.success());
    contract.provider().anvil_increase_time(delay + 1).await.unwrap();
    let cancelled_at =
        logged_at(&contract, &complete_cancellation(&contract, cancelled).await).await;
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &[]);
    caught_up(&mut ferry, &contract).await;
    let now = lookup(&ferry, cancelled).await.lifecycle;
    assert_eq!((now.state, now.cancelled), (MessageState::Cancelled, Some(cancelled_at)));
    assert_eq!(now.cancellation_started, Some(started_at), "the request stays shown");

    // The log holds each change once, in L1 order, as the receipts place them; the contract
    // agrees with every final state.
    let changes = state_changes(&log(&ferry).await);
    assert_eq!(
        changes,
        [
            (
                cancelled.hash(),
                LifecycleKind::CancellationStarted,
                MessageState::CancellationStarted,
                started_at,
                false
            ),
            (consumed.hash(), LifecycleKind::Consumed, MessageState::Consumed, consumed_at, false),
            (
                cancelled.hash(),
                LifecycleKind::Cancelled,
                MessageState::Cancelled,
                cancelled_at,
                false
            ),
        ]
    );
    assert_eq!(on_l1(&contract, cancelled).await, U256::ZERO);
    assert_eq!(on_l1(&contract, consumed).await, U256::ZERO);
    assert_eq!(on_l1(&contract, pending).await, U256::from(13), "fee + 1");
    let counts = ferry.public_client().status().await.unwrap().message_states;
    assert_eq!(
        (counts.pending, counts.cancellation_started, counts.cancelled, counts.consumed),
        (1, 0, 1, 1)
    );
}

#[tokio::test]
async fn a_cancellation_started_before_the_start_block_is_kept_and_matched_by_a_rescan() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let message = send(&contract, 0, 5).await;
    let started = start_cancellation(&contract, &message).await;
    let started_at = logged_at(&contract, &started).await;
    let datadir = tempfile::tempdir().unwrap();
    let from = started_at.block.to_string();
    let mut ferry =
        Ferry::against(&anvil, *contract.address(), datadir.path(), &["--from-block", &from]);
    caught_up(&mut ferry, &contract).await;
    let client = ferry.public_client();
    let known = client.get_message_state(message.hash()).await.unwrap().unwrap();
    assert_eq!((known.seq, known.lifecycle.state), (None, MessageState::CancellationStarted));
    let fields = known.unmatched.unwrap();
    assert_eq!(
        (fields.from, fields.to, fields.selector, fields.payload, fields.nonce),
        (message.from, message.to, message.selector, message.payload.clone(), message.nonce)
    );
    assert_eq!(client.status().await.unwrap().message_states.unmatched, 1);
    assert!(client.get_message_by_hash(message.hash()).await.unwrap().is_none());

    // The operator re-scans from block 0: the message is stored, already cancelling.
    let admin = ferry.admin.to_string();
    let (exit, out, err) =
        ferry_once(&["checkpoint", "set", "--block", "0", "--admin.addr", &admin]);
    assert!(exit.success(), "{out}{err}");
    caught_up(&mut ferry, &contract).await;
    let stored = client.get_message_by_hash(message.hash()).await.unwrap().unwrap();
    assert_eq!((stored.seq.0, stored.l1.message.clone()), (0, message));
    assert_eq!(stored.lifecycle.state, MessageState::CancellationStarted);
    assert_eq!(stored.lifecycle.cancellation_started.map(|at| at.block), Some(started_at.block));
    let counts = client.status().await.unwrap().message_states;
    assert_eq!((counts.cancellation_started, counts.unmatched, counts.pending), (1, 0, 0));
}

#[tokio::test]
async fn a_reorg_that_removes_a_cancellation_reverts_the_state_for_every_consumer() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let message = send(&contract, 0, 5).await;
    contract.provider().anvil_mine(Some(2), None).await.unwrap();
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &[]);
    let started_at = logged_at(&contract, &start_cancellation(&contract, &message).await).await;
    caught_up(&mut ferry, &contract).await;
    let client = ferry.public_client();
    let hash = message.hash();
    let state = |client: jsonrpsee::http_client::HttpClient| async move {
        client.get_message_state(hash).await.unwrap().unwrap().lifecycle.state
    };
    assert_eq!(state(client.clone()).await, MessageState::CancellationStarted);

    // The block with the cancellation is replaced by one with a plain transfer.
    let accounts = anvil.addresses();
    let transfer = TransactionRequest::default()
        .from(accounts[5])
        .to(accounts[6])
        .value(U256::from(1))
        .gas_limit(21_000);
    let provider = contract.provider();
    assert_eq!(head(&contract).await, started_at.block);
    provider
        .anvil_reorg(ReorgOptions {
            depth: 1,
            tx_block_pairs: vec![(TransactionData::JSON(transfer), 0)],
        })
        .await
        .unwrap();
    provider.anvil_mine(Some(1), None).await.unwrap();
    ferry.wait_status("the reorg is handled", |status| status.reorgs == 1).await;
    caught_up(&mut ferry, &contract).await;
    assert_eq!(state(client.clone()).await, MessageState::Pending);
    assert_eq!(
        contract.l1ToL2MessageCancellations(message.hash()).call().await.unwrap(),
        U256::ZERO,
        "the contract agrees: no request"
    );
    let changes = state_changes(&log(&ferry).await);
    assert_eq!(changes.len(), 2);
    assert_eq!(
        changes[0],
        (
            message.hash(),
            LifecycleKind::CancellationStarted,
            MessageState::CancellationStarted,
            {
                let mut at = started_at;
                at.delay_ends_at = Some(at.timestamp);
                at
            },
            false
        )
    );
    assert_eq!(
        (changes[1].2, changes[1].3.block, changes[1].4),
        (MessageState::Pending, started_at.block, true)
    );
    let counts = client.status().await.unwrap().message_states;
    assert_eq!((counts.pending, counts.cancellation_started), (1, 0));
}

/// `ferry checkpoint set --time <time> --dry-run --json` against `ferry`: the answer.
fn set_by_time(ferry: &Ferry, time: &str, dry_run: bool) -> Result<CheckpointChangeResult, String> {
    let admin = ferry.admin.to_string();
    let mut args = vec!["checkpoint", "set", "--time", time, "--json", "--admin.addr", &admin];
    if dry_run {
        args.push("--dry-run");
    }
    let (exit, out, err) = ferry_once(&args);
    if exit.success() {
        Ok(serde_json::from_str(&out).unwrap())
    } else {
        Err(format!("{out}{err}"))
    }
}

#[tokio::test]
async fn rewinds_by_time_resolve_to_the_first_block_at_or_after_the_moment() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let provider = contract.provider();
    provider.anvil_set_block_timestamp_interval(12).await.unwrap();
    for nonce in 0..4 {
        send(&contract, nonce, 1).await;
        provider.anvil_mine(Some(3), None).await.unwrap();
    }
    let time_of = |block: u64| async move {
        provider.get_block_by_number(block.into()).await.unwrap().unwrap().header.timestamp
    };
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry =
        Ferry::against(&anvil, *contract.address(), datadir.path(), &["--from-block", "2"]);
    caught_up(&mut ferry, &contract).await;
    let tip = head(&contract).await;
    let block_at = |answer: Result<CheckpointChangeResult, String>| {
        let resolved = answer.unwrap().resolved.unwrap();
        (resolved.block, resolved.clamped_to_start_block)
    };

    // At a block boundary, between blocks, as RFC 3339, before the start block.
    let at_8 = time_of(8).await;
    assert_eq!(block_at(set_by_time(&ferry, &at_8.to_string(), true)), (8, false));
    assert_eq!(block_at(set_by_time(&ferry, &(at_8 + 1).to_string(), true)), (9, false));
    let rfc = humantime::format_rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(at_8 - 5));
    assert_eq!(block_at(set_by_time(&ferry, &rfc.to_string(), true)), (8, false));
    assert_eq!(block_at(set_by_time(&ferry, &time_of(0).await.to_string(), true)), (2, true));
    // In the future: refused, naming the newest block; nothing changed.
    let future = set_by_time(&ferry, &(time_of(tip).await + 1).to_string(), false).unwrap_err();
    assert!(
        future.contains("after the newest L1 block") && future.contains(&tip.to_string()),
        "{future}"
    );
    assert_eq!(
        ferry.public_client().status().await.unwrap().checkpoint,
        Some(Position::block_start(tip + 1))
    );

    // Applied: the node re-reads from there and stores nothing twice.
    let change = set_by_time(&ferry, &at_8.to_string(), false).unwrap();
    assert_eq!(change.current, Some(Position::block_start(8)));
    let status = caught_up(&mut ferry, &contract).await;
    assert_eq!((status.messages_stored, status.pipeline.duplicates_skipped > 0), (4, true));
}
