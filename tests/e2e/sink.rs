//! The NATS JetStream sink with real `nats-server`s, a real Anvil and the real binary: ten
//! thousand messages across kill -9s and cut connections, a three-node cluster losing a
//! server and then all of them, a second ferry fenced out, and reorg notices in order. Every
//! check compares the stream with `messaging_getMessages`, entry by entry and field by field.

use crate::{
    reorgs::{message_tx, plain, send},
    scenarios::{caught_up, log},
    support::{Ferry, Messaging, anvil, deploy, send_many},
};
use alloy::{
    primitives::U256,
    providers::ext::AnvilApi,
    rpc::types::{
        TransactionRequest,
        anvil::{ReorgOptions, TransactionData},
    },
};
use async_nats::jetstream;
use ferry_primitives::{EntryKind, LogEntry};
use ferry_rpc_api::PublicApiClient;
use ferry_test_support::{NatsCluster, NatsServer};
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{net::TcpListener, task::JoinHandle};

/// A TCP proxy in front of a NATS server whose connections a test can cut at any moment, or
/// refuse for a while (a partition).
pub(crate) struct CutProxy {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    partitioned: Arc<std::sync::atomic::AtomicBool>,
    accept: JoinHandle<()>,
}

impl CutProxy {
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let partitioned = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let held = Arc::clone(&connections);
        let refusing = Arc::clone(&partitioned);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if refusing.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the other side sees the connection close at once
                }
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let relay = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                held.lock().unwrap().push(relay);
            }
        });
        Self { addr, connections, partitioned, accept }
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Cuts every connection and refuses new ones until `heal`.
    pub(crate) fn partition(&self) {
        self.partitioned.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut();
    }

    /// Lets connections through again.
    pub(crate) fn heal(&self) {
        self.partitioned.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Drops every connection through the proxy, as a network fault would.
    pub(crate) fn cut(&self) {
        for relay in self.connections.lock().unwrap().drain(..) {
            relay.abort();
        }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// A small deterministic generator: the seed is printed, and `FERRY_SEED` replays a run.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = std::env::var("FERRY_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("FERRY_SEED={seed}");
        Self(seed)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

/// Every entry of `stream`, in stream order, with its headers checked against its body.
pub(crate) async fn stream_entries(url: &str, stream: &str) -> Vec<LogEntry> {
    let client = async_nats::connect(url).await.unwrap();
    let jetstream = jetstream::new(client);
    let mut stream = jetstream.get_stream(stream).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!(state.messages, state.last_sequence, "no gap in the stream");
    let mut entries = Vec::with_capacity(state.messages as usize);
    for sequence in 1..=state.last_sequence {
        // A replica still catching up (a server restarted in the test) may answer a direct
        // get for a while that it does not hold the message yet.
        let mut tries = 0;
        let message = loop {
            match stream.direct_get(sequence).await {
                Ok(message) => break message,
                Err(error) if tries < 100 => {
                    tries += 1;
                    println!("direct get of sequence {sequence}: {error}; again");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("direct get of sequence {sequence}: {error}"),
            }
        };
        let entry: LogEntry = serde_json::from_slice(&message.payload).unwrap();
        let header = |name| message.headers.get(name).unwrap().as_str().to_owned();
        assert_eq!(entry.seq.0 + 1, sequence, "stream sequence = seq + 1");
        assert_eq!(header(ferry_sink::headers::SEQ), entry.seq.to_string());
        assert_eq!(header(ferry_sink::headers::HASH), entry.hash.to_string());
        assert_eq!(header(ferry_sink::headers::MESSAGE_SEQ), entry.message_seq.to_string());
        assert_eq!(header(ferry_sink::headers::L1_BLOCK), entry.l1.origin.block_number.to_string());
        assert_eq!(
            header(ferry_sink::headers::L1_LOG_INDEX),
            entry.l1.origin.log_index.to_string()
        );
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|id| id.as_str().to_owned());
        assert!(
            id.as_deref().is_some_and(|id| id.ends_with(&format!(":{}", entry.seq))),
            "published with a message id: {:?}",
            message.headers
        );
        entries.push(entry);
    }
    entries
}

/// What an entry says when it is written; `inclusion` and `lifecycle` say where the message
/// stands when it is read, so they are compared apart.
pub(crate) fn as_written(entry: &LogEntry) -> LogEntry {
    LogEntry { inclusion: Default::default(), lifecycle: Default::default(), ..entry.clone() }
}

/// Waits until the node's sink holds its whole log, then checks the stream against the log.
async fn assert_stream_holds_the_log(ferry: &mut Ferry, url: &str, stream: &str) -> Vec<LogEntry> {
    let status = ferry
        .wait_status("the sink holds the whole log", |status| {
            status.pipeline.sink.as_ref().is_some_and(|sink| {
                sink.connected
                    && sink.lag_seq == 0
                    && sink.published_seq == status.pipeline.last_seq
            })
        })
        .await;
    assert!(!status.pipeline.sink.unwrap().fenced);
    let log = log(ferry).await;
    let published = stream_entries(url, stream).await;
    assert_eq!(published.len(), log.len(), "the stream holds exactly the log");
    for (published, logged) in published.iter().zip(&log) {
        assert_eq!(as_written(published), as_written(logged), "entry {}", logged.seq);
    }
    published
}

fn sink_args<'a>(url: &'a str, stream: &'a str) -> Vec<&'a str> {
    vec!["--sink.nats-url", url, "--sink.stream", stream, "--poll-interval", "50ms"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_reach_the_stream_once_each_across_kills_and_cut_connections() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let nats = NatsServer::start();
    let proxy = CutProxy::start(nats.addr()).await;
    let url = proxy.url();
    let args = sink_args(&url, "LOG");
    let datadir = tempfile::tempdir().unwrap();
    let address = *contract.address();
    let sender = {
        let contract: Messaging = contract.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                send_many(&contract, 100).await;
            }
        })
    };
    let mut random = Random::new();
    let mut ferry = Ferry::against(&anvil, address, datadir.path(), &args);
    let mut kills = 0;
    while kills < 20 || !sender.is_finished() {
        tokio::time::sleep(Duration::from_millis(50 + random.below(400))).await;
        if random.below(3) == 0 {
            proxy.cut();
        }
        if let Ok(Some(exit)) = ferry.child.try_wait() {
            panic!("ferry exited by itself ({exit}) after {kills} kills: {}", ferry.stderr());
        }
        ferry.signal("-KILL");
        ferry.exit().await;
        kills += 1;
        ferry = Ferry::against(&anvil, address, datadir.path(), &args);
    }
    sender.await.unwrap();
    caught_up(&mut ferry, &contract).await;
    let published = assert_stream_holds_the_log(&mut ferry, &nats.url(), "LOG").await;
    assert_eq!(published.len(), 10_000, "every message, once ({kills} kills)");
    let nonces: Vec<U256> = published.iter().map(|entry| entry.l1.message.nonce).collect();
    assert_eq!(nonces, (0..10_000u64).map(U256::from).collect::<Vec<_>>(), "in L1 order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_stream_loses_nothing_when_a_server_or_all_of_them_go() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let mut args = sink_args(&urls, "REPLICATED");
    args.extend(["--sink.replicas", "3"]);
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &args);
    for round in 0..10 {
        send_many(&contract, 100).await;
        if round == 3 {
            cluster.servers[1].kill();
        }
        if round == 6 {
            cluster.servers[1].restart();
        }
    }
    caught_up(&mut ferry, &contract).await;
    assert_stream_holds_the_log(&mut ferry, &cluster.servers[0].url(), "REPLICATED").await;

    // Every server gone: ingestion goes on, the sink falls behind and says so.
    for server in &mut cluster.servers {
        server.kill();
    }
    // Told even while there is nothing to publish.
    ferry
        .wait_status("the idle sink notices the outage", |status| {
            status.pipeline.sink.as_ref().is_some_and(|sink| !sink.connected)
        })
        .await;
    send_many(&contract, 200).await;
    let status = caught_up(&mut ferry, &contract).await;
    assert_eq!(status.messages_stored, 1_200, "ingestion never waits for the sink");
    let status = ferry
        .wait_status("the sink reports the outage", |status| {
            status.pipeline.sink.as_ref().is_some_and(|sink| !sink.connected && sink.lag_seq > 0)
        })
        .await;
    assert!(status.pipeline.sink.unwrap().last_error.is_some());
    // Back: it catches up.
    for server in &mut cluster.servers {
        server.restart();
    }
    let published =
        assert_stream_holds_the_log(&mut ferry, &cluster.servers[2].url(), "REPLICATED").await;
    assert_eq!(published.len(), 1_200);

    // A consumer elsewhere reads from any seq with a durable consumer and acks (as
    // `crates/sink/examples/consume.rs` does); started again, it goes on where it stopped.
    let url = cluster.servers[0].url();
    let first = durable_read(&url, "REPLICATED", "indexer", 500, 10).await;
    assert_eq!(first, (500..510).collect::<Vec<_>>());
    let again = durable_read(&url, "REPLICATED", "indexer", 0, 5).await;
    assert_eq!(again, (510..515).collect::<Vec<_>>());
}

/// Reads `count` entries through durable consumer `name` (created to start at `from_seq`),
/// acknowledging each; their seqs.
async fn durable_read(
    url: &str,
    stream: &str,
    name: &str,
    from_seq: u64,
    count: usize,
) -> Vec<u64> {
    use async_nats::jetstream::consumer::{AckPolicy, Consumer, DeliverPolicy, pull};
    use futures_util::StreamExt;
    let jetstream = jetstream::new(async_nats::connect(url).await.unwrap());
    let stream = jetstream.get_stream(stream).await.unwrap();
    let config = pull::Config {
        durable_name: Some(name.to_owned()),
        deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from_seq + 1 },
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    };
    let consumer: Consumer<pull::Config> =
        stream.get_or_create_consumer(name, config).await.unwrap();
    let mut messages = consumer.fetch().max_messages(count).messages().await.unwrap();
    let mut seqs = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        let entry: LogEntry = serde_json::from_slice(&message.payload).unwrap();
        seqs.push(entry.seq.0);
        message.double_ack().await.unwrap();
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ferry_on_the_same_stream_is_fenced_out_and_writes_nothing() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    send_many(&contract, 5).await;
    let nats = NatsServer::start();
    let url = nats.url();
    let args = sink_args(&url, "OWNED");
    let first_dir = tempfile::tempdir().unwrap();
    let mut first = Ferry::against(&anvil, *contract.address(), first_dir.path(), &args);
    caught_up(&mut first, &contract).await;
    assert_stream_holds_the_log(&mut first, &url, "OWNED").await;

    let second_dir = tempfile::tempdir().unwrap();
    let metrics = crate::support::free_addr().to_string();
    let mut second_args = args.clone();
    second_args.extend(["--metrics.addr", &metrics, "--sink.ready-max-lag", "100"]);
    let mut second = Ferry::against(&anvil, *contract.address(), second_dir.path(), &second_args);
    let status = second
        .wait_status("the second node is fenced", |status| {
            status.pipeline.sink.as_ref().is_some_and(|sink| sink.fenced)
        })
        .await;
    let error = status.pipeline.sink.unwrap().last_error.unwrap();
    assert!(error.contains("belongs to another ferry"), "{error}");
    // Asked to, /ready counts the sink: a fenced one is not ready.
    let (code, body) = crate::support::http_get(metrics.parse().unwrap(), "/ready").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("sink") && body.contains("belongs to another ferry"), "{body}");
    // The owner goes on; the stream holds its log only.
    send_many(&contract, 5).await;
    caught_up(&mut first, &contract).await;
    caught_up(&mut second, &contract).await;
    let published = assert_stream_holds_the_log(&mut first, &url, "OWNED").await;
    assert_eq!(published.len(), 10);
}

/// Another writer publishing into the stream while the node publishes its backlog. The node
/// acks only the last entry of each batch, so this is what holds its entries in place: each
/// expects its predecessor as the stream's last. None of the node's entries may land after a
/// foreign message (mid-batch or not), those before it are the node's log from its start, and
/// the node ends fenced while its own log goes on complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_writer_mid_batch_stops_the_nodes_entries_there_and_fences_it() {
    let nats = NatsServer::start();
    let url = nats.url();
    let args = sink_args(&url, "CONTESTED");
    let theirs = foreign_writer_mid_batch(&url, &args).await;
    assert_eq!(theirs.after_ours, 0, "an entry of the node landed after a foreign message");
}

/// The same on a replicated stream, where the node acks every entry and expects no message
/// id (see `Publisher::publish`): an entry stored after a foreign message is found, and
/// fences the node, naming the hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_writer_on_a_replicated_stream_fences_the_node_and_any_hole_is_named() {
    let cluster = NatsCluster::start(3);
    let url = cluster.urls();
    let mut args = sink_args(&url, "CONTESTED");
    args.extend(["--sink.replicas", "3"]);
    let theirs = foreign_writer_mid_batch(&url, &args).await;
    // Fenced, the publisher looks again now and then, and a later look's reason (the stream
    // ends with a foreign message) replaces the first in status: the log keeps the first.
    if theirs.after_ours > 0 {
        assert!(theirs.log.contains("was stored after entry"), "{}", theirs.reason);
    }
}

/// What a foreign writer did to the stream: the node's fence reason in status and its log,
/// and how many of the node's entries came after the writer's first message.
struct ForeignWrites {
    reason: String,
    log: String,
    after_ours: usize,
}

/// Another client publishes into the stream as fast as it can from when the node's first
/// entry is in it, while the node publishes a backlog of 2,000 messages and then 100 more;
/// the stream is checked entry by entry against the node's log up to the first foreign
/// message, and the node must end fenced with its own log complete.
async fn foreign_writer_mid_batch(url: &str, args: &[&str]) -> ForeignWrites {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    for _ in 0..20 {
        send_many(&contract, 100).await;
    }
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), args);
    let servers: Vec<&str> = url.split(',').collect();
    let jetstream = jetstream::new(async_nats::connect(servers).await.unwrap());
    // The foreign writer starts as soon as the node's first entry is in the stream.
    loop {
        if let Ok(mut stream) = jetstream.get_stream("CONTESTED").await
            && stream.info().await.is_ok_and(|info| info.state.last_sequence >= 1)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let foreign = {
        let (jetstream, writing) = (jetstream.clone(), Arc::clone(&writing));
        tokio::spawn(async move {
            let mut written = 0u64;
            while writing.load(std::sync::atomic::Ordering::SeqCst) {
                let ack = jetstream.publish("ferry.log.message", "not ferry's".into()).await;
                ack.unwrap().await.unwrap();
                written += 1;
            }
            written
        })
    };
    // New messages make the node publish again even if it had published its backlog before
    // the first foreign message.
    send_many(&contract, 100).await;
    let status = ferry
        .wait_status("the node is fenced", |status| {
            status.pipeline.sink.as_ref().is_some_and(|sink| sink.fenced)
        })
        .await;
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let written = foreign.await.unwrap();
    assert!(written > 0);
    let reason = status.pipeline.sink.unwrap().last_error.unwrap();
    assert!(
        reason.contains("not this node's log") || reason.contains("was stored after entry"),
        "{reason}"
    );
    caught_up(&mut ferry, &contract).await;
    let log = log(&ferry).await;
    assert_eq!(log.len(), 2_100, "ingestion went on, the sink aside");

    let mut stream = jetstream.get_stream("CONTESTED").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let (mut ours, mut theirs, mut after_ours) = (0, 0, 0);
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.unwrap();
        if message.headers.get(ferry_sink::headers::SEQ).is_none() {
            assert_eq!(&message.payload[..], b"not ferry's");
            theirs += 1;
            continue;
        }
        if theirs > 0 {
            after_ours += 1;
            continue;
        }
        let entry: LogEntry = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(as_written(&entry), as_written(&log[ours]), "stream sequence {sequence}");
        ours += 1;
    }
    println!(
        "the stream holds {ours} of the node's entries, then {theirs} foreign messages and \
         {after_ours} of the node's among them; the node: {reason}"
    );
    assert!(ours >= 1 && ours < log.len() && theirs as u64 == written);
    ferry.terminate().await;
    ForeignWrites { reason, log: ferry.stderr(), after_ours }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_notices_reach_the_stream_in_the_order_of_the_nodes_own_log() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let nats = NatsServer::start();
    let url = nats.url();
    let args = sink_args(&url, "REORGS");
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &args);
    let provider = contract.provider();
    // No nonce cache: the reorgs drop transactions.
    let plain = plain(&anvil);
    let accounts = anvil.addresses();
    for round in 0..3u64 {
        for payload in 0..2 {
            send(&plain, message_tx(*contract.address(), accounts[1], 10 * round + payload)).await;
        }
        caught_up(&mut ferry, &contract).await;
        // The newest block (the round's second message) is replaced by one with a plain
        // transfer: that message is removed; the next round's messages come after.
        let transfer = TransactionRequest::default()
            .from(accounts[5])
            .to(accounts[6])
            .value(U256::from(round + 1))
            .gas_limit(21_000);
        let pairs = vec![(TransactionData::JSON(transfer), 0)];
        provider.anvil_reorg(ReorgOptions { depth: 1, tx_block_pairs: pairs }).await.unwrap();
        provider.anvil_mine(Some(1), None).await.unwrap();
        ferry.wait_status("the reorg is handled", |status| status.reorgs == round + 1).await;
    }
    caught_up(&mut ferry, &contract).await;
    let published = assert_stream_holds_the_log(&mut ferry, &url, "REORGS").await;
    let kinds: Vec<EntryKind> = published.iter().map(|entry| entry.kind).collect();
    // Each round's second message (its own block) is removed by the round's reorg.
    assert_eq!(kinds.iter().filter(|kind| **kind == EntryKind::Removed).count(), 3, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|kind| **kind == EntryKind::Message).count(), 6, "{kinds:?}");
    // And a live subscriber of the node saw the same sequence.
    let page = ferry.public_client().get_messages(0, Some(1_000), None).await.unwrap();
    let subscribed: Vec<EntryKind> = page.entries.iter().map(|entry| entry.kind).collect();
    assert_eq!(kinds, subscribed);
}
