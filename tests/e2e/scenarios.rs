//! The node as operators run it, under the conditions it must survive.

use crate::support::{Ferry, Messaging, anvil, deploy, head, send_many};
use alloy::{primitives::U256, providers::ext::AnvilApi};
use ferry_primitives::{EntryKind, LogEntry, Position, StoredMessage};
use ferry_rpc_api::{AdminApiClient, NodeStatus, PublicApiClient};
use jsonrpsee::http_client::HttpClient;
use std::{collections::HashSet, time::Duration};

/// Every entry of the node's log, through `messaging_getMessages`.
pub(crate) async fn log(ferry: &Ferry) -> Vec<LogEntry> {
    let client = ferry.public_client();
    let mut entries = Vec::new();
    loop {
        let page = client.get_messages(entries.len() as u64, Some(1_000), None).await.unwrap();
        if page.entries.is_empty() {
            return entries;
        }
        entries.extend(page.entries);
    }
}

/// Every stored message, in the order of the log, as its message entry says.
pub(crate) async fn stored(ferry: &Ferry) -> Vec<StoredMessage> {
    log(ferry)
        .await
        .into_iter()
        .filter(|entry| entry.kind == EntryKind::Message)
        .map(|entry| StoredMessage {
            seq: entry.seq,
            hash: entry.hash,
            l1: entry.l1,
            inclusion: entry.inclusion,
            reorg: None,
            lifecycle: entry.lifecycle,
        })
        .collect()
}

/// Seqs 0..n, each hash once, and every message really recorded by the contract
/// (`l1ToL2Messages(hash) == fee + 1`, so the node's hash is the contract's).
async fn assert_consistent(messages: &[StoredMessage], contract: &Messaging) {
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq.0).collect();
    assert_eq!(seqs, (0..messages.len() as u64).collect::<Vec<_>>(), "seqs are 0..n");
    let hashes: HashSet<_> = messages.iter().map(|m| m.hash).collect();
    assert_eq!(hashes.len(), messages.len(), "no message is stored twice");
    for message in messages {
        let recorded = contract.l1ToL2Messages(message.hash).call().await.unwrap();
        assert_eq!(recorded, message.l1.message.fee + U256::from(1), "seq {}", message.seq);
    }
}

fn nonces(messages: &[StoredMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.l1.message.nonce.to::<u64>()).collect()
}

pub(crate) async fn caught_up(ferry: &mut Ferry, contract: &Messaging) -> NodeStatus {
    caught_up_behind(ferry, contract, 0).await
}

/// Waits until a node reading `confirmations` behind the head has read all it may. Both the
/// stored checkpoint and the drain task's cursor must be there: the store shows a commit the
/// moment it lands, and the counters in status (nonce gaps among them) follow once the task
/// has recorded it, just before it moves its cursor.
async fn caught_up_behind(
    ferry: &mut Ferry,
    contract: &Messaging,
    confirmations: u64,
) -> NodeStatus {
    let safe = head(contract).await - confirmations;
    let next = Some(Position::block_start(safe + 1));
    ferry
        .wait_status(&format!("caught up with block {safe}"), |s| {
            s.checkpoint == next && s.pipeline.cursor == next
        })
        .await
}

pub(crate) fn admin(ferry: &Ferry) -> HttpClient {
    HttpClient::builder().build(format!("http://{}", ferry.admin)).unwrap()
}

#[tokio::test]
async fn messages_flow_in_order_and_hash_as_the_contract_does() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    for round in 1..=20 {
        send_many(&contract, round % 4 + 1).await;
        contract.provider().anvil_mine(Some(3), None).await.unwrap();
    }
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry =
        Ferry::against(&anvil, *contract.address(), datadir.path(), &["--max-block-range", "7"]);
    caught_up(&mut ferry, &contract).await;
    let messages = stored(&ferry).await;
    assert_eq!(messages.len(), 50);
    assert_eq!(nonces(&messages), (0..50).collect::<Vec<_>>(), "L1 order");
    assert_consistent(&messages, &contract).await;

    // A restart resumes exactly: new messages only, no repeat, no gap.
    assert!(ferry.terminate().await.success());
    send_many(&contract, 3).await;
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &[]);
    let status = caught_up(&mut ferry, &contract).await;
    assert_eq!((status.pipeline.duplicates_skipped, status.messages_stored), (0, 53));
    assert_eq!(nonces(&stored(&ferry).await), (0..53).collect::<Vec<_>>());
}

#[tokio::test]
async fn sigkill_at_random_moments_loses_nothing_and_repeats_nothing() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    for _ in 0..30 {
        send_many(&contract, 7).await;
        contract.provider().anvil_mine(Some(20), None).await.unwrap();
    }
    let datadir = tempfile::tempdir().unwrap();
    let address = *contract.address();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..20 {
        // More multi-message transactions keep arriving between the crashes.
        if round % 4 == 0 {
            send_many(&contract, 5).await;
        }
        let mut ferry =
            Ferry::against(&anvil, address, datadir.path(), &["--max-block-range", "1"]);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(50 + seed % 250)).await;
        ferry.signal("-KILL");
        ferry.exit().await;
    }
    let mut ferry = Ferry::against(&anvil, address, datadir.path(), &[]);
    caught_up(&mut ferry, &contract).await;
    let messages = stored(&ferry).await;
    let total = 30 * 7 + 5 * 5;
    let mut got = nonces(&messages);
    got.sort_unstable();
    assert_eq!(got, (0..total).collect::<Vec<_>>(), "exactly the chain's messages, once each");
    assert_consistent(&messages, &contract).await;
    // Messages of one transaction are all there, whatever moment the kills hit.
    let mut by_tx = std::collections::HashMap::<_, usize>::new();
    for message in &messages {
        *by_tx.entry(message.l1.origin.transaction_hash).or_default() += 1;
    }
    assert!(by_tx.values().all(|count| *count == 7 || *count == 5), "{by_tx:?}");
}

#[tokio::test]
async fn live_rewinds_rescan_skip_and_reset_while_messages_arrive() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let mine = |blocks| {
        let provider = contract.provider().clone();
        async move { provider.anvil_mine(Some(blocks), None).await.unwrap() }
    };
    for _ in 0..5 {
        send_many(&contract, 2).await;
    }
    // Two confirmations: a block is read two blocks after it is mined, so an operator can
    // skip one before the node reads it.
    mine(2).await;
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry =
        Ferry::against(&anvil, *contract.address(), datadir.path(), &["--confirmations", "2"]);
    caught_up_behind(&mut ferry, &contract, 2).await;
    let admin = admin(&ferry);

    // Back to the first message's block: a re-scan that stores nothing twice.
    let first_block = stored(&ferry).await[0].l1.origin.block_number;
    let change = admin.set_checkpoint(first_block.into(), None, None).await.unwrap();
    assert_eq!(change.rewind_applied, Some(true));
    send_many(&contract, 2).await;
    mine(2).await;
    let status = caught_up_behind(&mut ferry, &contract, 2).await;
    assert_eq!(status.pipeline.duplicates_skipped, 10);
    assert_eq!(status.messages_stored, 12);

    // Forward past a block the node has not read yet: its messages are skipped (a gap the
    // node then reports).
    let skipped_block = send_many(&contract, 3).await;
    mine(1).await;
    let head_seen = skipped_block + 1;
    ferry.wait_status("the node sees the head", |s| s.pipeline.l1_head >= Some(head_seen)).await;
    let change = admin.set_checkpoint((skipped_block + 1).into(), None, None).await.unwrap();
    assert_eq!(change.current, Some(Position::block_start(skipped_block + 1)));
    send_many(&contract, 1).await;
    mine(2).await;
    let status = caught_up_behind(&mut ferry, &contract, 2).await;
    assert_eq!(status.messages_stored, 13, "the skipped block's messages were not read");
    assert_eq!(status.pipeline.missing_nonces, U256::from(3));

    // Reset: everything from the start block again; the skipped ones arrive with new seqs.
    admin.reset_checkpoint(None).await.unwrap();
    send_many(&contract, 1).await;
    mine(2).await;
    let status = caught_up_behind(&mut ferry, &contract, 2).await;
    assert_eq!(status.messages_stored, 17);
    assert_eq!(status.pipeline.missing_nonces, U256::ZERO);
    let messages = stored(&ferry).await;
    assert_consistent(&messages, &contract).await;
    assert_eq!(nonces(&messages[13..16]), [12, 13, 14], "the skipped messages got seqs 13..=15");
}

#[tokio::test]
async fn a_wrong_start_block_is_recovered_by_setting_the_checkpoint_back() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    for _ in 0..4 {
        send_many(&contract, 2).await;
    }
    let start = head(&contract).await + 1;
    for _ in 0..3 {
        send_many(&contract, 2).await;
    }
    let datadir = tempfile::tempdir().unwrap();
    let from = start.to_string();
    let mut ferry =
        Ferry::against(&anvil, *contract.address(), datadir.path(), &["--from-block", &from]);
    let status = caught_up(&mut ferry, &contract).await;
    assert_eq!(status.messages_stored, 6);
    assert_eq!(status.pipeline.lowest_nonce, Some(U256::from(8)));

    admin(&ferry).set_checkpoint(0.into(), None, None).await.unwrap();
    let status = caught_up(&mut ferry, &contract).await;
    assert_eq!(status.messages_stored, 14);
    let messages = stored(&ferry).await;
    assert_eq!(nonces(&messages), [8, 9, 10, 11, 12, 13, 0, 1, 2, 3, 4, 5, 6, 7]);
    assert_consistent(&messages, &contract).await;
}

#[tokio::test]
async fn a_burst_of_concurrent_sets_during_ingest_ends_at_the_last_value() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let mut message_blocks = Vec::new();
    for _ in 0..10 {
        message_blocks.push(send_many(&contract, 3).await);
    }
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry =
        Ferry::against(&anvil, *contract.address(), datadir.path(), &["--max-block-range", "1"]);
    ferry.wait_status("ingest started", |s| s.messages_stored > 0).await;
    let head = head(&contract).await;
    let sets = (0..20u64).map(|i| {
        let client = admin(&ferry);
        tokio::spawn(
            async move { client.set_checkpoint((1 + (i * 7) % head).into(), None, None).await },
        )
    });
    for set in futures_join(sets).await {
        assert!(set.is_ok());
    }
    // The newest change in the audit trail is the value the node went on from: everything
    // from there on is read, once; what an earlier set skipped may stay unread.
    let history = admin(&ferry).get_checkpoint_history(Some(20)).await.unwrap();
    assert_eq!(history.len(), 20);
    let last = history[0].current.unwrap().block;
    caught_up(&mut ferry, &contract).await;
    let messages = stored(&ferry).await;
    assert_consistent(&messages, &contract).await;
    let from_last = messages.iter().filter(|m| m.l1.origin.block_number >= last).count();
    let expected = 3 * message_blocks.iter().filter(|block| **block >= last).count();
    assert_eq!(from_last, expected, "every message from block {last} on is stored once");
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}
