//! `fanout`: many live subscribers, and one replaying everything.

use super::rpc_server;
use crate::stats::millis;
use alloy::primitives::Address;
use ferry_messaging::{DrainHandle, MessagingController, Status, test_utils::ScriptedCollector};
use ferry_primitives::{Position, test_utils::l1_message};
use ferry_rpc::{RpcConfig, RpcServer};
use ferry_rpc_api::ResumingSubscriber;
use ferry_storage::{Store, StoreConfig};
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// Live messages each subscriber waits for, mined in 10 batches.
const LIVE: usize = 1_000;

pub(crate) async fn fanout(subscribers: usize, replay: u64) {
    let config = StoreConfig { chain_id: 31337, contract: Address::ZERO, from_block: 0 };
    let replayed = replay_all(config, replay).await;
    live_fan_out(config, subscribers).await;
    drop(replayed);
}

/// What the replay leaves behind, kept until the live fan-out is measured: removing the
/// replayed store's files meanwhile would be disk work inside that measurement.
struct Replayed {
    _subscriber: ResumingSubscriber,
    _server: RpcServer,
    _dir: TempDir,
}

/// One subscriber reads `replay` stored messages from seq 0: its rate and the peak RSS around
/// it, as the first rows of the table (whose header it prints).
async fn replay_all(config: StoreConfig, replay: u64) -> Replayed {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config).unwrap();
    store_messages(&store, replay);
    let status = Arc::new(Status::load(&store).unwrap());
    let server = rpc_server(MessagingController::new(store.clone(), status)).await;
    let rss_before = crate::stats::peak_rss_mib();
    let started = Instant::now();
    let mut subscriber = ResumingSubscriber::new(format!("ws://{}", server.public_addr()), 0);
    while subscriber.next_seq() < replay {
        subscriber.next().await;
    }
    let replay_rate = replay as f64 / started.elapsed().as_secs_f64();
    println!("\n## Fan-out and replay\n");
    println!("| what | result |\n| --- | --- |");
    println!("| one subscriber replaying {replay} stored messages | {replay_rate:.0} messages/s |");
    println!(
        "| peak RSS before / after the replay | {rss_before} / {} MiB |",
        crate::stats::peak_rss_mib()
    );
    server.stop();
    drop(store);
    Replayed { _subscriber: subscriber, _server: server, _dir: dir }
}

/// Commits `count` messages in batches of 10,000, a block each, as the drain would have: the
/// replay then reads a log laid out as a node's is. Not part of the measurement.
fn store_messages(store: &Store, count: u64) {
    let started = Instant::now();
    let mut from = Position::block_start(0);
    for chunk in 0..count.div_ceil(10_000) {
        let first = chunk * 10_000;
        let batch: Vec<_> = (first..(first + 10_000).min(count))
            .map(|nonce| l1_message(nonce, from.block, nonce - first))
            .collect();
        let next = Position::block_start(from.block + 1);
        let outcome = store.commit_batch(from, &batch, next, &[]).unwrap();
        assert!(matches!(outcome, ferry_storage::CommitOutcome::Committed(_)));
        from = next;
    }
    eprintln!("stored {count} messages in {:?}", started.elapsed());
}

/// `subscribers` subscribers on a fresh node, [`LIVE`] new messages in 10 batches: the rate
/// delivered to all of them and what they cost in RSS, as the last rows of the table.
async fn live_fan_out(config: StoreConfig, subscribers: usize) {
    let node = LiveNode::start(config, subscribers).await;
    let url = format!("ws://{}", node.server.public_addr());
    let rss_idle = crate::stats::peak_rss_mib();
    let tasks = subscribe_all(url, subscribers).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    for _ in 0..10 {
        node.chain.mine(100);
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let delivered = subscribers as f64 * LIVE as f64 / elapsed.as_secs_f64();
    let rss_peak = crate::stats::peak_rss_mib();
    println!(
        "| {subscribers} subscribers, 1,000 live messages each | {delivered:.0} messages/s delivered, all in {} |",
        millis(elapsed)
    );
    println!(
        "| peak RSS with {subscribers} subscribers (node and clients in one process) | {rss_peak} MiB ({rss_idle} MiB before; about {:.1} MiB per subscriber and client) |",
        (rss_peak.saturating_sub(rss_idle)) as f64 / subscribers as f64
    );
    node.stop().await;
}

/// A node on an empty store, fed by a chain the benchmark mines by hand, behind a server whose
/// limits admit every subscriber. Fields drop in the order the scenario always dropped them.
struct LiveNode {
    _status: Arc<Status>,
    server: RpcServer,
    handle: DrainHandle,
    chain: Arc<ScriptedCollector>,
    _store: Store,
    _dir: TempDir,
}

impl LiveNode {
    /// Every subscriber comes from 127.0.0.1, so the per-peer limit is raised with the others:
    /// otherwise the server, not the fan-out, would bound the measurement.
    async fn start(config: StoreConfig, subscribers: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), config).unwrap();
        let status = Arc::new(Status::load(&store).unwrap());
        let controller = MessagingController::new(store.clone(), Arc::clone(&status));
        let chain = ScriptedCollector::new(0, 100);
        let handle = controller.start(Arc::clone(&chain)).unwrap();
        let limits = ferry_rpc::Limits {
            max_connections: subscribers as u32 + 16,
            max_subscriptions_total: subscribers as u32 + 16,
            max_subscriptions_per_peer: subscribers as u32 + 16,
            ..Default::default()
        };
        let config = RpcConfig {
            public_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            limits,
            ..RpcConfig::default()
        };
        let server = RpcServer::start(config, controller, "bench").await.unwrap();
        Self { _status: status, server, handle, chain, _store: store, _dir: dir }
    }

    /// The server, then the pipeline, awaited: the scenario returns with its drain finished.
    async fn stop(mut self) {
        self.server.stop();
        self.handle.stop();
        self.handle.stopped().await;
    }
}

/// `subscribers` tasks, each reading [`LIVE`] messages from seq 0; returns once every one has
/// subscribed, so that the mining that follows is all delivered live.
async fn subscribe_all(url: String, subscribers: usize) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers);
    for _ in 0..subscribers {
        let url = url.clone();
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut subscriber = ResumingSubscriber::new(url, 0);
            ready.send(()).await.unwrap();
            let mut received = 0;
            while received < LIVE {
                received += subscriber.next().await.len();
            }
        }));
    }
    for _ in 0..subscribers {
        ready_rx.recv().await.unwrap();
    }
    tasks
}
