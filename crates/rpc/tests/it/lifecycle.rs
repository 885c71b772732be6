//! Message lifecycles over the wire: state changes in the log, in order and resumable; the
//! executable-only read a sequencer uses; states and counts after a reorg removes the
//! events; rewinds by time.

use crate::support::Node;
use ferry_messaging::test_utils::{ScriptedLog, block_time, scripted_message};
use ferry_primitives::{EntryKind, LifecycleKind, LogEntry, MessageState, Seq};
use ferry_rpc_api::{
    AdminApiClient, ChangeOptions, CheckpointTarget, PublicApiClient, ReadOptions, Timestamp, codes,
};
use std::collections::BTreeMap;

/// Every entry from `from` on, through `getMessages` pages.
async fn read_all(node: &Node, from: u64, options: Option<ReadOptions>) -> Vec<LogEntry> {
    let client = node.public_http();
    let (mut entries, mut next) = (Vec::new(), from);
    loop {
        let page = client.get_messages(next, Some(1_000), options).await.unwrap();
        if page.entries.is_empty() && page.next_seq == next {
            return entries;
        }
        next = page.next_seq;
        entries.extend(page.entries);
    }
}

/// What a consumer that applies the log holds: each message's state, by message seq.
fn apply(entries: &[LogEntry]) -> BTreeMap<Seq, MessageState> {
    let mut states = BTreeMap::new();
    for entry in entries {
        match entry.kind {
            EntryKind::Message | EntryKind::Reincluded => {
                // A message entry read now carries its state now.
                states.insert(entry.message_seq, entry.lifecycle.state);
            }
            EntryKind::Removed => {
                states.remove(&entry.message_seq);
            }
            EntryKind::StateChanged => {
                let change = entry.change.expect("a stateChanged entry carries its change");
                states.insert(entry.message_seq, change.current);
            }
        }
    }
    states
}

const EXECUTABLE: Option<ReadOptions> =
    Some(ReadOptions { finality: ferry_primitives::Finality::Latest, executable: true });

#[tokio::test]
async fn state_changes_reach_consumers_in_order_and_a_reorg_that_removes_them_undoes_them() {
    // Blocks 1 and 2 hold messages of nonces 0..=3 (seqs 0..=3).
    let node = Node::start(2, None).await;
    let lifecycle = |kind, nonce| ScriptedLog::Lifecycle(kind, scripted_message(nonce));
    let sequencer =
        jsonrpsee::ws_client::WsClientBuilder::default().build(node.public_ws_url()).await.unwrap();
    let mut live = sequencer
        .subscribe_messages(Some(0), EXECUTABLE)
        .await
        .expect("an executable subscription");
    node.chain.mine_logs(vec![
        lifecycle(LifecycleKind::CancellationStarted, 1),
        lifecycle(LifecycleKind::Consumed, 2),
        lifecycle(LifecycleKind::Consumed, 77),
    ]);
    node.caught_up().await;

    let log = read_all(&node, 0, None).await;
    let kinds: Vec<_> = log.iter().map(|entry| entry.kind).collect();
    use EntryKind::{Message, StateChanged};
    assert_eq!(kinds, [Message, Message, Message, Message, StateChanged, StateChanged]);
    let started = log[4].change.unwrap();
    assert_eq!((log[4].message_seq, started.event), (Seq(1), LifecycleKind::CancellationStarted));
    assert_eq!(
        (started.previous, started.current),
        (MessageState::Pending, MessageState::CancellationStarted)
    );
    assert_eq!(started.at.block, 3);
    assert_eq!(started.at.timestamp, block_time(3));
    assert_eq!(started.at.delay_ends_at, Some(block_time(3) + 600));
    assert_eq!(log[5].change.unwrap().current, MessageState::Consumed);
    assert_eq!(log[1].lifecycle.state, MessageState::CancellationStarted, "entries show it now");
    let states = apply(&log);
    assert_eq!(
        states.values().copied().collect::<Vec<_>>(),
        [
            MessageState::Pending,
            MessageState::CancellationStarted,
            MessageState::Consumed,
            MessageState::Pending
        ]
    );

    // The sequencer's read leaves out what it may no longer execute, but not the notices.
    let executable = read_all(&node, 0, EXECUTABLE).await;
    let seqs: Vec<u64> = executable.iter().map(|entry| entry.seq.0).collect();
    assert_eq!(seqs, [0, 3, 4, 5]);
    // The live subscription (opened before the events) got every message then, and the
    // changes after: it knows to drop messages 1 and 2.
    let mut received = Vec::new();
    while received.last().is_none_or(|entry: &LogEntry| entry.seq.0 < 5) {
        let page = tokio::time::timeout(std::time::Duration::from_secs(20), live.next())
            .await
            .expect("a notification in time")
            .expect("open")
            .unwrap();
        received.extend(page.entries);
    }
    let changes: Vec<_> = received.iter().filter_map(|entry| entry.change).collect();
    assert_eq!(changes.len(), 2);

    // Status and the lookup by hash tell the same; the unmatched consumption is kept.
    let client = node.public_http();
    let status = client.status().await.unwrap();
    let counts = status.message_states;
    assert_eq!(
        (counts.pending, counts.cancellation_started, counts.consumed, counts.unmatched),
        (2, 1, 1, 1)
    );
    let unmatched = client.get_message_state(scripted_message(77).hash()).await.unwrap().unwrap();
    assert_eq!((unmatched.seq, unmatched.lifecycle.state), (None, MessageState::Consumed));
    assert_eq!(unmatched.unmatched.unwrap().nonce, scripted_message(77).nonce);
    let one = client.get_message_state(scripted_message(1).hash()).await.unwrap().unwrap();
    assert_eq!((one.seq, one.lifecycle.state), (Some(Seq(1)), MessageState::CancellationStarted));
    let stored = client.get_message_by_hash(scripted_message(2).hash()).await.unwrap().unwrap();
    assert_eq!(stored.lifecycle.state, MessageState::Consumed);

    // A reorg replaces block 3 with an empty one: both changes are undone, newest first.
    node.chain.reorg_dropping_messages(1);
    node.chain.mine_empty(1);
    node.wait_until_reorgs(1).await;
    node.caught_up().await;
    let log = read_all(&node, 0, None).await;
    let undone: Vec<_> =
        log[6..].iter().map(|entry| (entry.message_seq, entry.change.unwrap())).collect();
    assert_eq!(undone.len(), 2, "{log:?}");
    assert_eq!(undone[0].0, Seq(2), "the consumption is undone first");
    assert!(
        undone.iter().all(|(_, change)| change.reverted && change.current == MessageState::Pending)
    );
    assert!(log[6..].iter().all(|entry| entry.reorg == Some(0)));
    assert!(apply(&log).values().all(|state| *state == MessageState::Pending));
    let counts = client.status().await.unwrap().message_states;
    assert_eq!(
        (counts.pending, counts.cancellation_started, counts.consumed, counts.unmatched),
        (4, 0, 0, 0)
    );
    assert!(client.get_message_state(scripted_message(77).hash()).await.unwrap().is_none());
    // Every message is executable again.
    let seqs: Vec<u64> = read_all(&node, 0, EXECUTABLE).await.iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4, 5, 6, 7]);
    drop(live);
    node.stop().await;
}

#[tokio::test]
async fn a_set_by_time_reads_from_the_first_block_at_or_after_the_moment() {
    let node = Node::start(10, None).await;
    let admin = node.admin_http();
    let at = |seconds| CheckpointTarget::Time { timestamp: Timestamp(seconds) };
    let dry_run = Some(ChangeOptions { dry_run: true, expected: None });

    // At a block boundary, between blocks, before the start block.
    for (moment, block, clamped) in [
        (block_time(4), 4, false),
        (block_time(4) + 1, 5, false),
        (block_time(4) - 11, 4, false),
        (block_time(0) - 3_600, 0, true),
    ] {
        let preview = admin.set_checkpoint(at(moment), None, dry_run).await.unwrap();
        let resolved = preview.resolved.unwrap();
        assert_eq!((resolved.block, resolved.clamped_to_start_block), (block, clamped), "{moment}");
        assert_eq!(resolved.block_timestamp, block_time(block));
        assert_eq!(preview.current, Some(ferry_primitives::Position::block_start(block)));
        assert_eq!(
            node.checkpoint(),
            Some(ferry_primitives::Position::block_start(11)),
            "a dry run"
        );
    }
    // Applied, by an RFC 3339 string: the node re-scans from there and stores nothing twice.
    let rfc = humantime::format_rfc3339(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(block_time(6)),
    )
    .to_string();
    let timestamp: Timestamp = rfc.parse().unwrap();
    let change =
        admin.set_checkpoint(CheckpointTarget::Time { timestamp }, None, None).await.unwrap();
    assert_eq!(change.resolved.unwrap().block, 6);
    assert_eq!(change.current, Some(ferry_primitives::Position::block_start(6)));
    node.caught_up().await;
    assert_eq!(node.store.message_counts().unwrap(), (20, 0));

    // In the future: refused with the newest block, nothing changed.
    match admin.set_checkpoint(at(block_time(10) + 1), None, None).await {
        Err(jsonrpsee::core::ClientError::Call(error)) => {
            assert_eq!(error.code(), codes::TIME_BEYOND_HEAD);
            let data: serde_json::Value =
                serde_json::from_str(error.data().unwrap().get()).unwrap();
            assert_eq!(
                (data["head"].as_u64(), data["headTimestamp"].as_u64()),
                (Some(10), Some(block_time(10)))
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A log index with a timestamp is a mistake, named.
    match admin.set_checkpoint(at(block_time(3)), Some(1), None).await {
        Err(jsonrpsee::core::ClientError::Call(error)) => {
            assert_eq!(error.code(), codes::INVALID_PARAMS);
            assert!(error.message().contains("index"), "{}", error.message());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(node.checkpoint(), Some(ferry_primitives::Position::block_start(11)));
    node.stop().await;
}
