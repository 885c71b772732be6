//! Consumers: pages, the subscription's replay and live hand-over, slow subscribers, fan-out,
//! and the resuming client across restarts.

use crate::support::Node;
use ferry_messaging::test_utils::ScriptedCollector;
use ferry_primitives::{LogEntry, Position};
use ferry_rpc::Limits;
use ferry_rpc_api::{AdminApiClient, LogPage, PublicApiClient, ResumingSubscriber};
use futures_util::{SinkExt, StreamExt};
use jsonrpsee::ws_client::WsClientBuilder;
use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio_tungstenite::tungstenite::Message as Frame;

/// Receives from `subscription` until the message with seq `last`; panics on a gap or repeat.
/// Returns `from..=last`: a page may run past `last` (a commit can hold several ranges), and
/// what it holds beyond is checked for gaps too.
async fn receive_until(
    subscription: &mut jsonrpsee::core::client::Subscription<LogPage>,
    from: u64,
    last: u64,
) -> Vec<LogEntry> {
    let mut received: Vec<LogEntry> = Vec::new();
    while received.last().is_none_or(|message| message.seq.0 < last) {
        let page = tokio::time::timeout(Duration::from_secs(30), subscription.next())
            .await
            .expect("a notification in time")
            .expect("the subscription is open")
            .unwrap();
        let expected = from + received.len() as u64;
        assert_eq!(page.entries.first().map(|m| m.seq.0), Some(expected), "no gap, no repeat");
        assert_eq!(page.next_seq, page.entries.last().unwrap().seq.0 + 1);
        received.extend(page.entries);
    }
    let seqs: Vec<u64> = received.iter().map(|m| m.seq.0).collect();
    assert_eq!(seqs, (from..from + seqs.len() as u64).collect::<Vec<_>>());
    received.truncate((last + 1 - from) as usize);
    received
}

/// Mines one-message blocks until stopped.
fn miner(chain: Arc<ScriptedCollector>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            chain.mine(1);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
}

#[tokio::test]
async fn pages_and_lookups_by_hash() {
    let node = Node::start(10, None).await;
    let client = node.public_http();
    let page = client.get_messages(3, Some(5), None).await.unwrap();
    assert_eq!(page.entries.iter().map(|m| m.seq.0).collect::<Vec<_>>(), [3, 4, 5, 6, 7]);
    assert_eq!(page.next_seq, 8);
    let page = client.get_messages(18, None, None).await.unwrap();
    assert_eq!((page.entries.len(), page.next_seq), (2, 20));
    let page = client.get_messages(500, None, None).await.unwrap();
    assert_eq!((page.entries.len(), page.next_seq), (0, 500));
    let entry = &client.get_messages(7, Some(1), None).await.unwrap().entries[0];
    let found = client.get_message_by_hash(entry.hash).await.unwrap().unwrap();
    assert_eq!((found.seq, &found.l1), (entry.seq, &entry.l1));
    assert_eq!(client.get_message_by_hash(ferry_primitives::B256::ZERO).await.unwrap(), None);
    node.stop().await;
}

#[tokio::test]
async fn a_subscriber_replays_100_000_stored_messages_then_goes_on_live() {
    let chain = ScriptedCollector::new(0, 100);
    let node = Node::start_with(chain, 100, 1_000, None, Limits::default()).await;
    let client = WsClientBuilder::default().build(node.public_ws_url()).await.unwrap();
    let mut subscription = client.subscribe_messages(Some(0), None).await.unwrap();
    let replayed = receive_until(&mut subscription, 0, 99_999).await;
    assert_eq!(replayed.len(), 100_000);
    node.chain.mine(5);
    let live = receive_until(&mut subscription, 100_000, 100_004).await;
    assert!(live.iter().all(|m| m.l1.origin.block_number == node.chain.latest()));
    node.stop().await;
}

#[tokio::test]
async fn the_hand_over_from_replay_to_live_never_skips_or_repeats() {
    let chain = ScriptedCollector::new(0, 1);
    let node = Node::start_with(chain, 20, 1, None, Limits::default()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mining = miner(Arc::clone(&node.chain), Arc::clone(&stop));
    let client = WsClientBuilder::default().build(node.public_ws_url()).await.unwrap();
    for _ in 0..100 {
        // Subscribe a little behind the head while commits keep landing.
        let last = node.status.snapshot().last_seq.unwrap().0;
        let from = last.saturating_sub(5);
        let mut subscription = client.subscribe_messages(Some(from), None).await.unwrap();
        receive_until(&mut subscription, from, last + 10).await;
        subscription.unsubscribe().await.unwrap();
    }
    // Live only: starts after the newest stored message.
    let last = node.status.snapshot().last_seq.unwrap().0;
    let mut subscription = client.subscribe_messages(None, None).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.entries[0].seq.0 > last);
    stop.store(true, Ordering::Relaxed);
    mining.await.unwrap();
    node.stop().await;
}

#[tokio::test]
async fn two_hundred_subscribers_receive_the_same_ordered_stream() {
    let chain = ScriptedCollector::new(0, 5);
    // All from 127.0.0.1: above the per-peer default.
    let limits = Limits { max_subscriptions_per_peer: 200, ..Limits::default() };
    let node = Node::start_with(chain, 10, 3, None, limits).await;
    let url = node.public_ws_url();
    let mut subscribers = Vec::new();
    for _ in 0..200 {
        let client = WsClientBuilder::default().build(&url).await.unwrap();
        let subscription = client.subscribe_messages(Some(0), None).await.unwrap();
        subscribers.push((client, subscription));
    }
    for _ in 0..40 {
        node.chain.mine(3);
    }
    let last = 50 * 3 - 1;
    let streams = subscribers.into_iter().map(|(client, mut subscription)| {
        tokio::spawn(async move {
            let received = receive_until(&mut subscription, 0, last).await;
            drop(client);
            received.into_iter().map(|m| m.hash).collect::<Vec<_>>()
        })
    });
    let mut streams = futures_util::future::join_all(streams).await.into_iter().map(Result::unwrap);
    let first = streams.next().unwrap();
    assert_eq!(first.iter().collect::<HashSet<_>>().len(), 150);
    assert!(streams.all(|stream| stream == first));
    node.stop().await;
}

#[tokio::test]
async fn a_slow_subscriber_is_closed_with_its_last_seq_and_resumes_without_loss() {
    let limits = Limits {
        ws_message_buffer: 1,
        subscription_batch: 1,
        slow_subscriber_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let chain = ScriptedCollector::new(0, 100);
    let node = Node::start_with(chain, 30, 1_000, None, limits).await;

    // A subscriber that reads nothing, on a connection with a small receive buffer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(node.server.public_addr()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(node.public_ws_url(), stream).await.unwrap();
    let subscribe = r#"{"jsonrpc":"2.0","id":1,"method":"messaging_subscribe","params":[0]}"#;
    ws.send(Frame::text(subscribe)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Now read what was queued: notifications, then the error that closed the subscription.
    let mut delivered = Vec::new();
    let closing = loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("the server closes a slow subscriber")
            .unwrap()
            .unwrap();
        let Frame::Text(text) = frame else { continue };
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        if let Some(error) = json["params"].get("error") {
            break error.clone();
        }
        if let Some(page) = json["params"].get("result") {
            let page: LogPage = serde_json::from_value(page.clone()).unwrap();
            delivered.extend(page.entries.into_iter().map(|m| m.seq.0));
        }
    };
    assert_eq!(closing["code"], ferry_rpc_api::codes::SLOW_SUBSCRIBER);
    let last_delivered = delivered.last().copied();
    assert!(last_delivered.is_some_and(|last| last < 29_999), "it was closed before the end");
    assert_eq!(closing["data"]["lastDeliveredSeq"], serde_json::json!(last_delivered));
    assert_eq!(delivered, (0..delivered.len() as u64).collect::<Vec<_>>());

    // Resuming from data.resumeFrom delivers the rest: nothing lost, nothing twice.
    let resume = closing["data"]["resumeFrom"].as_u64().unwrap();
    assert_eq!(Some(resume), last_delivered.map(|last| last + 1));
    let mut subscriber = ResumingSubscriber::new(node.public_ws_url(), resume);
    while subscriber.next_seq() < 30_000 {
        for message in subscriber.next().await {
            delivered.push(message.seq.0);
        }
    }
    assert_eq!(delivered, (0..30_000).collect::<Vec<_>>());
    node.stop().await;
}

#[tokio::test]
async fn the_resuming_client_survives_a_node_restart_mid_stream() {
    let chain = ScriptedCollector::new(0, 1);
    let mut node = Node::start_with(chain, 10, 2, None, Limits::default()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mining = miner(Arc::clone(&node.chain), Arc::clone(&stop));
    let mut subscriber = ResumingSubscriber::new(node.public_ws_url(), 0);
    let mut seqs = Vec::new();
    while seqs.len() < 100 {
        seqs.extend(subscriber.next().await.iter().map(|m| m.seq.0));
    }
    node.restart().await;
    let target = node.status.snapshot().last_seq.unwrap().0 + 50;
    while seqs.last().is_none_or(|last| *last < target) {
        seqs.extend(subscriber.next().await.iter().map(|m| m.seq.0));
    }
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "nothing lost, nothing twice");
    assert!(subscriber.subscriptions() >= 2, "it had to subscribe again");
    stop.store(true, Ordering::Relaxed);
    mining.await.unwrap();
    node.stop().await;
}

#[tokio::test]
async fn a_message_found_by_a_rewind_reaches_a_live_subscriber_with_a_new_seq() {
    let chain = ScriptedCollector::new(0, 100);
    for _ in 0..3 {
        chain.mine(1);
    }
    // The provider drops block 2's log.
    chain.hide_log(Position::new(2, 0));
    let node = Node::start_with(Arc::clone(&chain), 1, 1, None, Limits::default()).await;
    assert_eq!(node.status.snapshot().last_seq.unwrap().0, 2);
    let client = WsClientBuilder::default().build(node.public_ws_url()).await.unwrap();
    let mut subscription = client.subscribe_messages(None, None).await.unwrap();

    chain.unhide_logs();
    node.admin_http().set_checkpoint(2.into(), None, None).await.unwrap();
    let found = receive_until(&mut subscription, 3, 3).await;
    assert_eq!(found[0].l1.origin.position(), Position::new(2, 0));
    assert_eq!(found[0].l1.message.nonce, ferry_primitives::U256::from(1));
    node.stop().await;
}

/// Applies entries as the log-subscription convention says: put on `removed: false`, drop on
/// `removed: true`.
fn apply(
    held: &mut std::collections::HashMap<ferry_primitives::B256, ferry_primitives::Origin>,
    entries: &[LogEntry],
) {
    for entry in entries {
        if entry.removed {
            held.remove(&entry.hash);
        } else {
            held.insert(entry.hash, entry.l1.origin);
        }
    }
}

#[tokio::test]
async fn latest_subscribers_follow_reorgs_and_finalized_ones_never_see_a_retraction() {
    use ferry_primitives::{EntryKind, Finality};
    let chain = ScriptedCollector::new(0, 100);
    chain.set_finalized_depth(Some(4));
    let node = Node::start_with(Arc::clone(&chain), 6, 2, None, Limits::default()).await;
    let url = node.public_ws_url();
    let mut latest = ResumingSubscriber::new(&url, 0);
    let mut finalized = ResumingSubscriber::new(&url, 0).with_finality(Finality::Finalized);
    // Reorgs above the finalized block: re-included, dropped, replaced.
    chain.reorg(2);
    chain.mine(1);
    node.wait_until_reorgs(1).await;
    chain.reorg_dropping_messages(3);
    chain.mine(2);
    node.wait_until_reorgs(2).await;
    chain.reorg_with_new_messages(2, &[1, 3]);
    chain.mine(1);
    node.wait_until_reorgs(3).await;
    // Then enough blocks for everything before them to be finalized.
    chain.mine_empty(6);
    node.caught_up().await;
    let last_seq = node.store.last_seq().unwrap().unwrap().0;

    let mut held = std::collections::HashMap::new();
    while latest.next_seq() <= last_seq {
        apply(&mut held, &latest.next().await);
    }
    let canonical: std::collections::HashMap<_, _> =
        chain.chain_messages().into_iter().map(|l1| (l1.hash(), l1.origin)).collect();
    assert_eq!(held, canonical, "a latest subscriber applying the stream holds the chain");

    let final_block = chain.latest() - 4;
    let expected: std::collections::HashMap<_, _> = canonical
        .iter()
        .filter(|(_, origin)| origin.block_number <= final_block)
        .map(|(hash, origin)| (*hash, *origin))
        .collect();
    let mut told = Vec::new();
    while told.len() < expected.len() {
        let entries = tokio::time::timeout(Duration::from_secs(20), finalized.next())
            .await
            .expect("the finalized messages arrive");
        told.extend(entries);
    }
    assert!(told.iter().all(|entry| !entry.removed && entry.kind != EntryKind::Removed));
    let hashes: HashSet<_> = told.iter().map(|entry| entry.hash).collect();
    assert_eq!(hashes.len(), told.len(), "each message once");
    let mut told_set = std::collections::HashMap::new();
    apply(&mut told_set, &told);
    assert_eq!(told_set, expected, "exactly the finalized canonical messages, at their origins");
    assert!(told.windows(2).all(|pair| pair[0].seq < pair[1].seq), "in seq order");
    node.stop().await;
}
