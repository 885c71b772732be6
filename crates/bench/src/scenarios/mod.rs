//! The scenarios of issue "Benchmarks": each prints what it measured and how.

use crate::{
    chain::{BenchChain, wallet_provider},
    process::{Memory, NodeProcess},
    stats::{cpu_seconds, millis, percentile, summary},
};
use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use ferry_contracts::FerryMessaging;
use ferry_messaging::{
    DrainHandle, EthereumCollector, EthereumConfig, LogMessageToL2, MessageLog,
    MessagingController, Status, test_utils::ScriptedCollector,
};
use ferry_primitives::{Position, Seq, test_utils::l1_message};
use ferry_rpc::{RpcConfig, RpcServer};
use ferry_rpc_api::{AdminApiClient, PublicApiClient, ResumingSubscriber};
use ferry_storage::{Store, StoreConfig};
use jsonrpsee::{http_client::HttpClient, ws_client::WsClientBuilder};
use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};
use tempfile::TempDir;

/// The pipeline in this process, on a fresh datadir.
pub(crate) struct Node {
    _dir: TempDir,
    pub(crate) store: Store,
    pub(crate) status: Arc<Status>,
    controller: MessagingController,
    handle: DrainHandle,
}

pub(crate) async fn start_node(
    url: &str,
    contract: Address,
    max_block_range: u64,
    poll: Duration,
) -> Node {
    start_node_in(tempfile::tempdir().unwrap(), url, contract, max_block_range, poll).await
}

/// The pipeline in this process, on the datadir `dir` (which may hold a store already).
pub(crate) async fn start_node_in(
    dir: TempDir,
    url: &str,
    contract: Address,
    max_block_range: u64,
    poll: Duration,
) -> Node {
    let store =
        Store::open(dir.path(), StoreConfig { chain_id: 31337, contract, from_block: 0 }).unwrap();
    let status = Arc::new(Status::load(&store).unwrap());
    let mut config = EthereumConfig::new(url, contract);
    config.max_block_range = max_block_range;
    config.poll_interval = poll;
    let collector = EthereumCollector::connect(config, Arc::clone(&status)).await.unwrap();
    let controller = MessagingController::new(store.clone(), Arc::clone(&status));
    let handle = controller.start(Arc::new(collector)).unwrap();
    Node { _dir: dir, store, status, controller, handle }
}

impl Node {
    pub(crate) async fn wait_cursor(&self, done: impl Fn(Position) -> bool) {
        loop {
            if self.status.snapshot().cursor.is_some_and(&done) {
                return;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    pub(crate) async fn stop(mut self) {
        self.handle.stop();
        self.handle.stopped().await;
    }
}

/// How the floor decodes an `eth_getLogs` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decode {
    /// alloy's `Log`, then `log_decode`: what a plain alloy fetcher does.
    Alloy,
    /// ferry's one-pass [`MessageLog`], then `decode_raw_log`: what ferry does.
    Lean,
}

/// Fetches and decodes every message log of `0..=head` in ranges of `range` blocks, with up to
/// `in_flight` requests at once; the logs decoded.
pub(crate) async fn floor(
    provider: &DynProvider,
    contract: Address,
    head: u64,
    (range, in_flight, decode): (u64, usize, Decode),
) -> u64 {
    let mut queue = VecDeque::new();
    let mut decoded = 0;
    let mut first = 0;
    while first <= head || !queue.is_empty() {
        while first <= head && queue.len() < in_flight {
            let last = (first + range - 1).min(head);
            let filter = Filter::new()
                .address(contract)
                .event_signature(LogMessageToL2::SIGNATURE_HASH)
                .from_block(first)
                .to_block(last);
            let provider = provider.clone();
            queue.push_back(tokio::spawn(async move {
                let count = match decode {
                    Decode::Alloy => {
                        let logs = provider.get_logs(&filter).await.unwrap();
                        logs.iter().filter(|log| log.log_decode::<LogMessageToL2>().is_ok()).count()
                    }
                    Decode::Lean => {
                        let logs: Vec<MessageLog> =
                            provider.raw_request("eth_getLogs".into(), (&filter,)).await.unwrap();
                        logs.iter()
                            .filter(|log| {
                                let topics = log.topics.iter().copied();
                                LogMessageToL2::decode_raw_log(topics, &log.data).is_ok()
                            })
                            .count()
                    }
                };
                count as u64
            }));
            first = last + 1;
        }
        if let Some(task) = queue.pop_front() {
            decoded += task.await.unwrap();
        }
    }
    decoded
}

pub(crate) async fn ingest(messages: u64, ferry_only: bool, runs: usize) {
    let chain = BenchChain::with_messages(messages).await;
    let url = chain.anvil.endpoint();
    let provider = ProviderBuilder::new().connect_http(chain.anvil.endpoint_url()).erased();
    let per_transaction = crate::chain::per_transaction(messages);
    println!(
        "\n## Ingest: {messages} messages, {} blocks ({per_transaction} per transaction)\n",
        chain.head
    );
    println!(
        "| what | messages/s: median (min..max) over {runs} runs | CPU s per run: Anvil / this process |\n| --- | --- | --- |"
    );
    let anvil_pid = chain.anvil.child().id();
    let cpu = || (cpu_seconds(anvil_pid), cpu_seconds(std::process::id()));
    let mut best_floor = 0.0;
    let floors: &[(u64, usize, Decode)] = if ferry_only {
        &[]
    } else {
        &[
            (1_000, 1, Decode::Alloy),
            (1_000, 4, Decode::Alloy),
            (250, 4, Decode::Alloy),
            (50, 4, Decode::Alloy),
            (250, 4, Decode::Lean),
            (100, 4, Decode::Lean),
            (50, 4, Decode::Lean),
        ]
    };
    for &(range, in_flight, decode) in floors {
        let mut rates = Vec::new();
        let cpu_before = cpu();
        for _ in 0..runs {
            let started = Instant::now();
            let decoded =
                floor(&provider, chain.contract, chain.head, (range, in_flight, decode)).await;
            assert_eq!(decoded, messages);
            rates.push(messages as f64 / started.elapsed().as_secs_f64());
        }
        let cpu_line = cpu_per_run(cpu_before, cpu(), runs);
        let line = summary(&mut rates);
        let median = rates[rates.len() / 2];
        if median > best_floor {
            best_floor = median;
        }
        println!(
            "| floor: eth_getLogs, {range}-block ranges, {in_flight} in flight, {decode:?} decoding | {line} | {cpu_line} |"
        );
    }
    let mut rates = Vec::new();
    let cpu_before = cpu();
    for _ in 0..runs {
        let started = Instant::now();
        let node = start_node(&url, chain.contract, 1_000, Duration::from_secs(1)).await;
        let head = chain.head;
        node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
        rates.push(messages as f64 / started.elapsed().as_secs_f64());
        assert_eq!(node.store.last_seq().unwrap(), Some(Seq(messages - 1)));
        node.stop().await;
    }
    let cpu_line = cpu_per_run(cpu_before, cpu(), runs);
    let line = summary(&mut rates);
    println!("| ferry: empty datadir to the head (max-block-range 1000) | {line} | {cpu_line} |");
    if !ferry_only {
        println!("\nferry / best floor = {:.2}", rates[rates.len() / 2] / best_floor);
    }
}

/// `anvil / this process` CPU seconds per run between two readings.
fn cpu_per_run(before: (f64, f64), after: (f64, f64), runs: usize) -> String {
    let runs = runs as f64;
    format!("{:.2} / {:.2}", (after.0 - before.0) / runs, (after.1 - before.1) / runs)
}

pub(crate) async fn catchup(blocks: u64, max_block_range: u64, runs: usize) {
    // Prague makes mining slow down with the chain's length (see `chain::CHAIN_ARGS`): 2,000
    // blocks take 20 s at block 8,000, where Cancun without kept states mines ~35,000 empty
    // blocks/s.
    let anvil = ferry_test_support::anvil(&crate::chain::CHAIN_ARGS);
    let provider = wallet_provider(&anvil);
    let contract = FerryMessaging::deploy(provider.clone()).await.unwrap();
    contract
        .sendMessageToL2(U256::from(1), U256::from(2), vec![])
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let started = Instant::now();
    let mut mined = 0;
    while mined < blocks {
        let step = (blocks - mined).min(10_000);
        provider.anvil_mine(Some(step), None).await.unwrap();
        mined += step;
    }
    let head = provider.get_block_number().await.unwrap();
    eprintln!("mined {blocks} empty blocks in {:?}", started.elapsed());
    println!("\n## Catch-up over {blocks} empty blocks (max-block-range {max_block_range})\n");
    let mut rates = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let node = start_node(
            &anvil.endpoint(),
            *contract.address(),
            max_block_range,
            Duration::from_secs(1),
        )
        .await;
        node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
        rates.push(head as f64 / started.elapsed().as_secs_f64());
        node.stop().await;
    }
    println!("| what | blocks/s: median (min..max) over {runs} runs |\n| --- | --- |");
    println!("| ferry from block 0 to the head ({head} blocks) | {} |", summary(&mut rates));
}

pub(crate) async fn rewind(messages: u64, blocks: u64, runs: usize) {
    let chain = BenchChain::with_messages(messages).await;
    let head = chain.head;
    let node =
        start_node(&chain.anvil.endpoint(), chain.contract, 1_000, Duration::from_secs(1)).await;
    node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
    let target = head.saturating_sub(blocks);
    let (mut calls, mut firsts, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        node.controller.set_checkpoint(Position::block_start(target), "bench", None).await.unwrap();
        calls.push(started.elapsed());
        node.wait_cursor(|cursor| cursor.block > target).await;
        firsts.push(started.elapsed());
        node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
        totals.push(started.elapsed());
    }
    println!("\n## Rewind {blocks} blocks ({messages} messages on the chain), {runs} runs\n");
    println!("| from the call to | p50 | max |\n| --- | --- | --- |");
    for (what, durations) in [
        ("its return (store written, cursor moved)", &mut calls),
        ("the first re-gathered batch committed", &mut firsts),
        ("the re-scan reaching the head", &mut totals),
    ] {
        let max = *durations.iter().max().unwrap();
        println!("| {what} | {} | {} |", millis(percentile(durations, 50)), millis(max));
    }
    node.stop().await;
}

/// One row of the requests table: the calls a node made to catch up from block 0 to `head`.
fn requests_row(what: &str, blocks: u64, messages: u64, counts: &crate::proxy::Counts) {
    let get = |method: &str| counts.get(method).copied().unwrap_or(0);
    let (logs, headers) = (get("eth_getLogs"), get("eth_getBlockByNumber"));
    let all: u64 = counts.values().sum();
    let others: Vec<String> = counts
        .iter()
        .filter(|(method, _)| !matches!(method.as_str(), "eth_getLogs" | "eth_getBlockByNumber"))
        .map(|(method, count)| format!("{method} {count}"))
        .collect();
    let per = |count: u64, unit: u64, of: u64| {
        if of == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}", count as f64 * unit as f64 / of as f64)
        }
    };
    println!(
        "| {what} | {blocks} | {messages} | {logs} | {headers} | {} | {all} | {} | {} |",
        others.join(", "),
        per(all, 1_000, blocks),
        per(all, 100_000, messages),
    );
}

/// Catches a fresh node up to `head` through a counting proxy; the calls it made.
async fn count_catchup(url: &str, contract: Address, head: u64) -> crate::proxy::Counts {
    let proxy = crate::proxy::CountingProxy::start(url.to_owned()).await;
    let node = start_node(proxy.url(), contract, 1_000, Duration::from_secs(1)).await;
    node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
    node.stop().await;
    proxy.take()
}

pub(crate) async fn requests() {
    println!("\n## L1 requests (calls a provider bills), counted by a proxy in front of Anvil\n");
    println!(
        "| chain | blocks | messages | eth_getLogs | eth_getBlockByNumber | other calls | all | all per 1,000 blocks | all per 100,000 messages |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let dense = BenchChain::with_messages(100_000).await;
    let counts = count_catchup(&dense.anvil.endpoint(), dense.contract, dense.head).await;
    requests_row("dense: 100 messages in every block, catch-up", dense.head + 1, 100_000, &counts);
    drop(dense);

    let anvil = ferry_test_support::anvil(&crate::chain::CHAIN_ARGS);
    let provider = wallet_provider(&anvil);
    let contract = FerryMessaging::deploy(provider.clone()).await.unwrap();
    let send = || async {
        let call = contract.sendMessageToL2(U256::from(1), U256::from(2), vec![U256::from(3)]);
        call.send().await.unwrap().get_receipt().await.unwrap();
    };
    for _ in 0..100 {
        send().await;
        provider.anvil_mine(Some(99), None).await.unwrap();
    }
    let head = provider.get_block_number().await.unwrap();
    let counts = count_catchup(&anvil.endpoint(), *contract.address(), head).await;
    requests_row("sparse: one message every 100 blocks, catch-up", head + 1, 100, &counts);

    // Following the head: each block is mined once the node has read the one before, one in
    // ten with a message; polling every 20 ms, so the count includes a poll or two per block.
    let proxy = crate::proxy::CountingProxy::start(anvil.endpoint()).await;
    let node = start_node(proxy.url(), *contract.address(), 1_000, Duration::from_millis(20)).await;
    node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
    proxy.take();
    const HEAD_BLOCKS: u64 = 200;
    for block in 1..=HEAD_BLOCKS {
        if block % 10 == 0 {
            send().await;
        } else {
            provider.anvil_mine(Some(1), None).await.unwrap();
        }
        node.wait_cursor(|cursor| cursor == Position::block_start(head + block + 1)).await;
    }
    let counts = proxy.take();
    requests_row(
        "at the head: one block at a time, 1 in 10 with a message (polling every 20 ms)",
        HEAD_BLOCKS,
        HEAD_BLOCKS / 10,
        &counts,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = proxy.take();
    println!(
        "\nIdle at the head (nothing mined for 2 s, polling every 20 ms, about 100 polls): {} calls ({:?}).",
        idle.values().sum::<u64>(),
        idle
    );
    node.stop().await;
    drop(anvil);

    let anvil = ferry_test_support::anvil(&crate::chain::CHAIN_ARGS);
    let provider = wallet_provider(&anvil);
    let contract = FerryMessaging::deploy(provider.clone()).await.unwrap();
    provider.anvil_mine(Some(10_000), None).await.unwrap();
    let head = provider.get_block_number().await.unwrap();
    let counts = count_catchup(&anvil.endpoint(), *contract.address(), head).await;
    requests_row("empty: no message at all, catch-up", head + 1, 0, &counts);
}

async fn rpc_server(controller: MessagingController) -> RpcServer {
    let config = RpcConfig {
        public_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..RpcConfig::default()
    };
    RpcServer::start(config, controller, "bench").await.unwrap()
}

pub(crate) async fn latency(samples: usize) {
    println!(
        "\n## Live latency: block mined on Anvil -> message at a WebSocket subscriber, {samples} samples\n"
    );
    println!("| L1 transport | p50 | p90 | max |\n| --- | --- | --- | --- |");
    for ws in [true, false] {
        let anvil = ferry_test_support::anvil(&[]);
        let contract = FerryMessaging::deploy(wallet_provider(&anvil)).await.unwrap();
        let url = if ws { anvil.ws_endpoint() } else { anvil.endpoint() };
        let node = start_node(&url, *contract.address(), 1_000, Duration::from_secs(1)).await;
        let server = rpc_server(node.controller.clone()).await;
        let mut subscriber = ResumingSubscriber::new(format!("ws://{}", server.public_addr()), 0);
        let mut latencies = Vec::new();
        for i in 0..samples {
            let started = Instant::now();
            let call = contract.sendMessageToL2(U256::from(1), U256::from(2), vec![U256::from(i)]);
            let pending = call.send().await.unwrap();
            let received = subscriber.next().await;
            latencies.push(started.elapsed());
            assert_eq!(received.len(), 1);
            drop(pending);
        }
        let max = *latencies.iter().max().unwrap();
        let transport = if ws { "WebSocket (newHeads pushed)" } else { "HTTP (polling every 1 s)" };
        println!(
            "| {transport} | {} | {} | {} |",
            millis(percentile(&mut latencies, 50)),
            millis(percentile(&mut latencies, 90)),
            millis(max)
        );
        server.stop();
        node.stop().await;
    }
}

pub(crate) async fn rpc(requests: usize) {
    let chain = BenchChain::with_messages(10_000).await;
    let node =
        start_node(&chain.anvil.endpoint(), chain.contract, 1_000, Duration::from_secs(1)).await;
    let head = chain.head;
    node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
    let server = rpc_server(node.controller.clone()).await;
    println!("\n## Admin and public RPC over HTTP, {requests} requests per row\n");
    println!("| method | clients | requests/s | p50 | p99 |\n| --- | --- | --- | --- | --- |");
    for method in ["messaging_getCheckpoint", "messaging_status"] {
        for clients in [1, 16, 64] {
            let started = Instant::now();
            let tasks: Vec<_> = (0..clients)
                .map(|_| {
                    let addr = if method == "messaging_status" {
                        server.public_addr()
                    } else {
                        server.admin_addr()
                    };
                    let client = HttpClient::builder().build(format!("http://{addr}")).unwrap();
                    let per_client = requests / clients;
                    tokio::spawn(async move {
                        let mut latencies = Vec::with_capacity(per_client);
                        for _ in 0..per_client {
                            let started = Instant::now();
                            if method == "messaging_status" {
                                client.status().await.unwrap();
                            } else {
                                client.get_checkpoint().await.unwrap();
                            }
                            latencies.push(started.elapsed());
                        }
                        latencies
                    })
                })
                .collect();
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await.unwrap());
            }
            let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
            println!(
                "| {method} | {clients} | {rate:.0} | {} | {} |",
                millis(percentile(&mut latencies, 50)),
                millis(percentile(&mut latencies, 99))
            );
        }
    }
    server.stop();
    node.stop().await;
}

pub(crate) async fn fanout(subscribers: usize, replay: u64) {
    // Replay: one subscriber reads `replay` stored messages from seq 0.
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { chain_id: 31337, contract: Address::ZERO, from_block: 0 };
    let store = Store::open(dir.path(), config).unwrap();
    let started = Instant::now();
    let mut from = Position::block_start(0);
    for chunk in 0..replay.div_ceil(10_000) {
        let first = chunk * 10_000;
        let batch: Vec<_> = (first..(first + 10_000).min(replay))
            .map(|nonce| l1_message(nonce, from.block, nonce - first))
            .collect();
        let next = Position::block_start(from.block + 1);
        let outcome = store.commit_batch(from, &batch, next, &[]).unwrap();
        assert!(matches!(outcome, ferry_storage::CommitOutcome::Committed(_)));
        from = next;
    }
    eprintln!("stored {replay} messages in {:?}", started.elapsed());
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

    // Live fan-out: `subscribers` subscribers, 1,000 new messages in 10 batches.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config).unwrap();
    let status = Arc::new(Status::load(&store).unwrap());
    let controller = MessagingController::new(store.clone(), Arc::clone(&status));
    let chain = ScriptedCollector::new(0, 100);
    let mut handle = controller.start(Arc::clone(&chain)).unwrap();
    let limits = ferry_rpc::Limits {
        max_connections: subscribers as u32 + 16,
        max_subscriptions_total: subscribers as u32 + 16,
        // Every subscriber comes from 127.0.0.1.
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
    let url = format!("ws://{}", server.public_addr());
    let rss_idle = crate::stats::peak_rss_mib();
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers);
    for _ in 0..subscribers {
        let url = url.clone();
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut subscriber = ResumingSubscriber::new(url, 0);
            ready.send(()).await.unwrap();
            let mut received = 0;
            while received < 1_000 {
                received += subscriber.next().await.len();
            }
        }));
    }
    for _ in 0..subscribers {
        ready_rx.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    for _ in 0..10 {
        chain.mine(100);
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let delivered = subscribers as f64 * 1_000.0 / elapsed.as_secs_f64();
    let rss_peak = crate::stats::peak_rss_mib();
    println!(
        "| {subscribers} subscribers, 1,000 live messages each | {delivered:.0} messages/s delivered, all in {} |",
        millis(elapsed)
    );
    println!(
        "| peak RSS with {subscribers} subscribers (node and clients in one process) | {rss_peak} MiB ({rss_idle} MiB before; about {:.1} MiB per subscriber and client) |",
        (rss_peak.saturating_sub(rss_idle)) as f64 / subscribers as f64
    );
    server.stop();
    handle.stop();
    handle.stopped().await;
    drop(status);
}

/// The node as its own process: its memory while ingesting `messages` messages and while one
/// subscriber replays them all; then, on a fresh node, what `subscribers` live subscribers cost.
pub(crate) async fn memory(messages: u64, subscribers: usize) {
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
    let row = |phase: &str, result: String, memory: Memory| {
        println!(
            "| {phase} | {result} | {:.0} + {:.0} MiB; peak {:.0} MiB |",
            memory.anon, memory.file, memory.peak
        );
    };
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

    // Subscribers on a fresh node and chain: what they cost is not hidden in memory the
    // allocator kept from the ingest, and Anvil mines at once on a small state.
    let anvil = ferry_test_support::anvil(&crate::chain::CHAIN_ARGS);
    let contract = FerryMessaging::deploy(wallet_provider(&anvil)).await.unwrap();
    let connections = subscribers as u32 + 16;
    let node = NodeProcess::start(&anvil.ws_endpoint(), *contract.address(), connections).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = node.memory();
    row("a fresh node on an empty chain", "-".to_owned(), before);
    const LIVE: usize = 1_000;
    let url = format!("ws://{}", node.public);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers);
    let mut tasks = Vec::new();
    for _ in 0..subscribers {
        let (url, ready) = (url.clone(), ready_tx.clone());
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subscribed = node.memory();
    let per_subscriber = (subscribed.anon - before.anon) * 1024.0 / subscribers as f64;
    row(
        &format!("{subscribers} live subscribers connected"),
        format!("{per_subscriber:.0} KiB each (growth of RssAnon / subscribers)"),
        subscribed,
    );
    let started = Instant::now();
    for _ in 0..LIVE / 100 {
        let call = contract.sendMessagesToL2(
            U256::from(1),
            U256::from(2),
            vec![U256::from(3)],
            U256::from(100),
        );
        call.send().await.unwrap().get_receipt().await.unwrap();
    }
    for task in tasks {
        task.await.unwrap();
    }
    row(
        &format!("{LIVE} live messages (10 transactions, one at a time) to each subscriber"),
        format!("all delivered {} after the first was sent", millis(started.elapsed())),
        node.memory(),
    );
}
