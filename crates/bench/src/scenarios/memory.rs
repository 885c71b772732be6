//! `memory`: the release binary's peak memory while ingesting and serving.

use crate::{
    chain::{BenchChain, wallet_provider},
    process::{Memory, NodeProcess},
    stats::millis,
};
use alloy::{primitives::U256, providers::DynProvider};
use ferry_contracts::FerryMessaging::{self, FerryMessagingInstance};
use ferry_primitives::Position;
use ferry_rpc_api::{PublicApiClient, ResumingSubscriber};
use jsonrpsee::ws_client::WsClientBuilder;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Live messages each subscriber waits for, sent 100 per transaction.
const LIVE: usize = 1_000;

/// The node as its own process: its memory while ingesting `messages` messages and while one
/// subscriber replays them all; then, on a fresh node, what `subscribers` live subscribers cost.
pub(crate) async fn memory(messages: u64, subscribers: usize) {
    ingest_and_replay(messages, subscribers).await;
    live_subscribers(subscribers).await;
}

/// The table's header and its first rows: the node empty, ingested to the head of a
/// `messages`-message chain, then after one subscriber replayed it all. The chain and the
/// node are gone when it returns, so the live rows start from a clean slate.
async fn ingest_and_replay(messages: u64, subscribers: usize) {
    let chain = BenchChain::with_messages(messages).await;
    let head = chain.head;
    let node = NodeProcess::start(&chain.anvil.ws_endpoint(), chain.contract, 16).await;
    let idle = node.memory();
    let started = Instant::now();
    node.wait_checkpoint(Position::block_start(head + 1)).await;
    let ingest = started.elapsed();
    let ingested = node.memory();
    assert_eq!(node.messages_stored().await, messages);
    println!("\n## Memory of the node process ({messages} messages, {subscribers} subscribers)\n");
    println!(
        "| phase | result | node memory now: own (RssAnon) + mapped database (RssFile); peak of both so far (VmHWM) |\n| --- | --- | --- |"
    );
    row("started, empty datadir", "-".to_owned(), idle);
    let rate = messages as f64 / ingest.as_secs_f64();
    row("ingested to the head", format!("{rate:.0} messages/s, {}", millis(ingest)), ingested);

    let started = Instant::now();
    let mut replaying = ResumingSubscriber::new(format!("ws://{}", node.public), 0);
    while replaying.next_seq() < messages {
        replaying.next().await;
    }
    let replay = started.elapsed();
    drop(replaying);
    let rate = messages as f64 / replay.as_secs_f64();
    row("one subscriber replayed every message", format!("{rate:.0} messages/s"), node.memory());
    drop(node);
    drop(chain);
}

/// Subscribers on a fresh node and chain: what they cost is not hidden in memory the
/// allocator kept from the ingest, and Anvil mines at once on a small state.
async fn live_subscribers(subscribers: usize) {
    let anvil = ferry_test_support::anvil(&crate::chain::CHAIN_ARGS);
    let contract = FerryMessaging::deploy(wallet_provider(&anvil)).await.unwrap();
    let connections = subscribers as u32 + 16;
    let node = NodeProcess::start(&anvil.ws_endpoint(), *contract.address(), connections).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = node.memory();
    row("a fresh node on an empty chain", "-".to_owned(), before);
    let tasks = subscribe_all(&format!("ws://{}", node.public), subscribers).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subscribed = node.memory();
    let per_subscriber = (subscribed.anon - before.anon) * 1024.0 / subscribers as f64;
    row(
        &format!("{subscribers} live subscribers connected"),
        format!("{per_subscriber:.0} KiB each (growth of RssAnon / subscribers)"),
        subscribed,
    );
    let started = Instant::now();
    send_live(&contract).await;
    for task in tasks {
        task.await.unwrap();
    }
    row(
        &format!("{LIVE} live messages (10 transactions, one at a time) to each subscriber"),
        format!("all delivered {} after the first was sent", millis(started.elapsed())),
        node.memory(),
    );
}

/// One row of the table: what the node process holds now, beside what the phase measured.
fn row(phase: &str, result: String, memory: Memory) {
    println!(
        "| {phase} | {result} | {:.0} + {:.0} MiB; peak {:.0} MiB |",
        memory.anon, memory.file, memory.peak
    );
}

/// `subscribers` tasks, each subscribed from seq 0 and reading [`LIVE`] messages; returns once
/// every one has subscribed, so the memory read next counts them all and the messages sent
/// after reach them live.
async fn subscribe_all(url: &str, subscribers: usize) -> Vec<JoinHandle<()>> {
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers);
    let mut tasks = Vec::new();
    for _ in 0..subscribers {
        let (url, ready) = (url.to_owned(), ready_tx.clone());
        tasks.push(tokio::spawn(async move {
            let client = WsClientBuilder::default().build(&url).await.unwrap();
            let mut subscription = client.subscribe_messages(Some(0), None).await.unwrap();
            ready.send(()).await.unwrap();
            let mut received = 0;
            while received < LIVE {
                received += subscription.next().await.unwrap().unwrap().entries.len();
            }
        }));
    }
    for _ in 0..subscribers {
        ready_rx.recv().await.unwrap();
    }
    tasks
}

/// [`LIVE`] messages, 100 per transaction, each transaction awaited before the next: the node
/// serves one block at a time, as at the head.
async fn send_live(contract: &FerryMessagingInstance<DynProvider>) {
    for _ in 0..LIVE / 100 {
        let call = contract.sendMessagesToL2(
            U256::from(1),
            U256::from(2),
            vec![U256::from(3)],
            U256::from(100),
        );
        call.send().await.unwrap().get_receipt().await.unwrap();
    }
}
