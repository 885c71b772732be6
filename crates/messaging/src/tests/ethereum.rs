//! The Ethereum collector against a real Anvil, directly and through a fault-injecting proxy.

use crate::{Collector, Confirmations, EthereumCollector, EthereumConfig, Status, VerifyLogs};
use alloy::{
    node_bindings::AnvilInstance,
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
};
use ferry_contracts::FerryMessaging;
use ferry_primitives::{BlockHeader, Position};
use ferry_storage::{Store, StoreConfig};
use ferry_test_support::{anvil, anvil_builder};
use proxy::{Fault, Proxy};
use std::{sync::Arc, time::Duration};
use tempfile::TempDir;

/// A wallet provider on `anvil` and the messaging contract deployed with it.
async fn deploy(
    anvil: &AnvilInstance,
) -> (DynProvider, FerryMessaging::FerryMessagingInstance<DynProvider>) {
    let provider = ProviderBuilder::new()
        .wallet(anvil.wallet().expect("anvil has keys"))
        .connect_http(anvil.endpoint_url())
        .erased();
    let contract = FerryMessaging::deploy(provider.clone()).await.expect("deploy FerryMessaging");
    (provider, contract)
}

fn status() -> (TempDir, Arc<Status>) {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { chain_id: 31337, contract: Address::ZERO, from_block: 0 };
    let store = Store::open(dir.path(), config).unwrap();
    (dir, Arc::new(Status::load(&store).unwrap()))
}

async fn collector(
    url: &str,
    contract: Address,
    tune: impl FnOnce(&mut EthereumConfig),
) -> (TempDir, Arc<Status>, EthereumCollector) {
    let (dir, status) = status();
    let mut config = EthereumConfig::new(url, contract);
    config.retry_delays = (Duration::from_millis(10), Duration::from_millis(100));
    tune(&mut config);
    let collector = EthereumCollector::connect(config, Arc::clone(&status)).await.unwrap();
    (dir, status, collector)
}

async fn send(
    contract: &FerryMessaging::FerryMessagingInstance<DynProvider>,
    payload: Vec<u64>,
    fee: u64,
) -> u64 {
    let payload = payload.into_iter().map(U256::from).collect();
    let call = contract
        .sendMessageToL2(U256::from(0x1234), U256::from(0x5678), payload)
        .value(U256::from(fee));
    mined_block(call.send().await.unwrap()).await
}

/// The block a sent transaction was mined in.
async fn mined_block(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
) -> u64 {
    pending.get_receipt().await.unwrap().block_number.unwrap()
}

async fn send_many(
    contract: &FerryMessaging::FerryMessagingInstance<DynProvider>,
    count: u64,
    fee: u64,
) -> u64 {
    let call = contract
        .sendMessagesToL2(U256::from(9), U256::from(10), vec![U256::from(11)], U256::from(count))
        .value(U256::from(fee));
    mined_block(call.send().await.unwrap()).await
}

#[tokio::test]
async fn real_logs_decode_in_order_and_hash_as_the_contract_does() {
    let anvil = anvil(&[]);
    let (provider, contract) = deploy(&anvil).await;
    send(&contract, vec![], 0).await;
    send(&contract, vec![1, 2, 3], 1_000).await;
    let batch_block = send_many(&contract, 4, 4_003).await;
    contract.emitMalformedLog().send().await.unwrap().get_receipt().await.unwrap();
    let last = send(&contract, vec![u64::MAX], 7).await;

    let (_dir, _status, collector) =
        collector(&anvil.endpoint(), *contract.address(), |_| {}).await;
    assert_eq!(collector.chain_id().await.unwrap(), anvil.chain_id());
    // Far below the head: anchored by the range's last header.
    let gathered = collector.gather(Position::block_start(0), last, u64::MAX).await.unwrap();
    let header = |number: u64| {
        let provider = provider.clone();
        async move {
            let block = provider.get_block_by_number(number.into()).await.unwrap().unwrap();
            BlockHeader { number, hash: block.header.hash, parent_hash: block.header.parent_hash }
        }
    };
    assert_eq!(gathered.headers, [header(last).await]);

    let messages = &gathered.messages;
    assert_eq!(messages.len(), 7);
    let nonces: Vec<_> = messages.iter().map(|m| m.message.nonce).collect();
    assert_eq!(nonces, (0..7u64).map(U256::from).collect::<Vec<_>>());
    assert!(messages.iter().all(|m| m.message.from == anvil.addresses()[0]));
    assert_eq!(messages[1].message.payload, vec![U256::from(1), U256::from(2), U256::from(3)]);
    assert_eq!(messages[1].message.fee, U256::from(1_000));

    // One transaction, four messages: one transaction hash, four log indexes.
    let batch: Vec<_> = messages.iter().filter(|m| m.origin.block_number == batch_block).collect();
    assert_eq!(batch.len(), 4);
    assert!(batch.iter().all(|m| m.origin.transaction_hash == batch[0].origin.transaction_hash));
    let indexes: Vec<_> = batch.iter().map(|m| m.origin.log_index).collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    let fees: Vec<_> = batch.iter().map(|m| m.message.fee).collect();
    assert_eq!(fees, [1_000, 1_000, 1_000, 1_003].map(U256::from));

    // The node's hash is the contract's key, holding fee + 1.
    for message in messages {
        let recorded = contract.l1ToL2Messages(message.hash()).call().await.unwrap();
        assert_eq!(recorded, message.message.fee + U256::from(1), "{message:?}");
    }

    // The undecodable log is reported with its position, not dropped silently.
    assert_eq!(gathered.malformed.len(), 1);
    assert_eq!(gathered.malformed[0].position.block, batch_block + 1);

    // Inside the reorg window: every header, linked, and the same messages (the blooms say
    // which blocks to ask, and every log is checked against its block's header).
    let windowed = collector.gather(Position::block_start(0), last, 0).await.unwrap();
    let mut expected = Vec::new();
    for number in 0..=last {
        expected.push(header(number).await);
    }
    assert_eq!(windowed.headers, expected);
    assert_eq!(windowed.messages, gathered.messages);
    assert_eq!(windowed.malformed, gathered.malformed);

    // Logs before the cursor's index in its block are skipped (one candidate block: asked by
    // its hash).
    let from_middle =
        collector.gather(Position::new(batch_block, 2), batch_block, batch_block).await.unwrap();
    let indexes: Vec<_> = from_middle.messages.iter().map(|m| m.origin.log_index).collect();
    assert_eq!(indexes, [2, 3]);
    assert_eq!(from_middle.headers, [header(batch_block).await]);

    // Headers asked for from below the range (the blocks an operator's forward move skipped):
    // they come, linked; only the range's own blocks are read for logs.
    let bridged = collector
        .gather(Position::new(batch_block, 2), batch_block, batch_block - 3)
        .await
        .unwrap();
    let mut expected = Vec::new();
    for number in batch_block - 3..=batch_block {
        expected.push(header(number).await);
    }
    assert_eq!(bridged.headers, expected);
    assert_eq!(bridged.messages, from_middle.messages, "nothing from the skipped blocks");
}

#[tokio::test]
async fn the_range_halves_against_a_provider_refusing_large_ranges_and_skips_no_block() {
    let anvil = anvil(&[]);
    let (provider, contract) = deploy(&anvil).await;
    for round in 0..20 {
        send(&contract, vec![round], 0).await;
        provider.anvil_mine(Some(2), None).await.unwrap();
    }
    let head = provider.get_block_number().await.unwrap();
    let proxy = Proxy::start(anvil.endpoint(), Fault::MaxLogRange(10)).await;

    let (_dir, _status, collector) = collector(&proxy.url(), *contract.address(), |config| {
        // Ranged queries over every block, as without proofs: what the range governs.
        config.max_block_range = 8_000;
        config.verify_logs = VerifyLogs::Off;
    })
    .await;
    let mut from = Position::block_start(0);
    let mut messages = Vec::new();
    while from.block <= head {
        let gathered = collector.gather(from, head, u64::MAX).await.unwrap();
        assert!(gathered.last_block().number >= from.block);
        from = Position::block_start(gathered.last_block().number + 1);
        messages.extend(gathered.messages);
    }
    let nonces: Vec<_> = messages.iter().map(|m| m.message.nonce).collect();
    assert_eq!(nonces, (0..20u64).map(U256::from).collect::<Vec<_>>());
    let log = proxy.log();
    assert!(log.refused >= 3, "62 (a 128th of 8000) halves 3 times to fit 10 blocks: {log:?}");
    assert!(log.log_ranges.iter().all(|(first, last)| last - first < 10), "{log:?}");
    // Every block was asked for, once the range fit.
    let covered: u64 = log.log_ranges.iter().map(|(first, last)| last - first + 1).sum();
    assert_eq!(covered, head + 1);
}

#[tokio::test]
async fn transient_provider_failures_are_retried_and_reported() {
    let anvil = anvil(&[]);
    let (_provider, contract) = deploy(&anvil).await;
    let last = send(&contract, vec![5], 0).await;
    let proxy = Proxy::start(anvil.endpoint(), Fault::Statuses(vec![500, 429, 502, 503])).await;

    let (_dir, status, collector) = collector(&proxy.url(), *contract.address(), |_| {}).await;
    let gathered = collector.gather(Position::block_start(0), last, u64::MAX).await.unwrap();
    assert_eq!(gathered.messages.len(), 1);
    let upstream = status.snapshot().upstream;
    // Each of the four failures was reported as a backoff before its retry.
    assert_eq!(upstream.errors, 4, "{upstream:?}");
    let last_error = upstream.last_error.as_deref().unwrap_or_default();
    assert!(last_error.contains("HTTP error 50"), "{upstream:?}");
    assert!(upstream.healthy, "recovered: {upstream:?}");
    assert_eq!(proxy.log().answered_with_fault, 4);
}

#[tokio::test]
async fn a_dense_range_over_websocket_larger_than_16_mib_is_read_whole() {
    let anvil = anvil(&["--gas-limit", "100000000"]);
    let (_provider, contract) = deploy(&anvil).await;
    let mut last = 0;
    for _ in 0..10 {
        last = send_many(&contract, 2_000, 0).await;
    }
    // A first range of 16 blocks (a 128th of the maximum) covers all 11.
    let (_dir, _status, collector) =
        collector(&anvil.ws_endpoint(), *contract.address(), |config| {
            config.max_block_range = 2_048;
        })
        .await;
    // One answer of 20,000 logs (about 19 MiB), above tungstenite's default message limit.
    let gathered = tokio::time::timeout(
        Duration::from_secs(30),
        collector.gather(Position::block_start(0), last, u64::MAX),
    )
    .await
    .expect("the gather must not hang on a dropped connection")
    .unwrap();
    assert_eq!(gathered.last_block().number, last);
    let nonces: Vec<_> = gathered.messages.iter().map(|m| m.message.nonce).collect();
    assert_eq!(nonces, (0..20_000u64).map(U256::from).collect::<Vec<_>>());
}

#[tokio::test]
async fn new_heads_arrive_over_websocket_without_polling() {
    let anvil = anvil(&[]);
    let (provider, contract) = deploy(&anvil).await;
    let (_dir, _status, collector) =
        collector(&anvil.ws_endpoint(), *contract.address(), |config| {
            config.poll_interval = Duration::from_secs(3_600);
        })
        .await;
    let known = collector.heads().await.unwrap().latest;
    let mined = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        provider.anvil_mine(Some(1), None).await.unwrap();
    };
    let woke = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(collector.wait_for_head(known), mined)
    })
    .await;
    assert!(woke.is_ok(), "no newHeads notification arrived");
    assert_eq!(collector.heads().await.unwrap().latest, known + 1);

    // Requests go over the same socket.
    let last = send(&contract, vec![1], 0).await;
    let gathered = collector.gather(Position::block_start(0), last, 0).await.unwrap();
    assert_eq!(gathered.messages.len(), 1);
}

#[tokio::test]
async fn confirmations_follow_block_counts_and_the_providers_tags() {
    let anvil = anvil(&["--slots-in-an-epoch", "2"]);
    let (provider, _contract) = deploy(&anvil).await;
    provider.anvil_mine(Some(20), None).await.unwrap();
    let latest = provider.get_block_number().await.unwrap();
    let heads = |confirmations| {
        let url = anvil.endpoint();
        async move {
            let (_dir, _status, collector) =
                collector(&url, Address::ZERO, |config| config.confirmations = confirmations).await;
            collector.heads().await.unwrap()
        }
    };
    assert_eq!(heads(Confirmations::Blocks(0)).await.safe, Some(latest));
    assert_eq!(heads(Confirmations::Blocks(3)).await.safe, Some(latest - 3));
    assert_eq!(heads(Confirmations::Blocks(latest + 1)).await.safe, None);
    assert_eq!(heads(Confirmations::Safe).await.safe, Some(latest - 2));
    assert_eq!(heads(Confirmations::Finalized).await.safe, Some(latest - 4));
    // The tags are tracked whatever the confirmations, with the latest block's hash.
    let tracked = heads(Confirmations::Blocks(0)).await;
    let number = |tag: Option<ferry_primitives::BlockRef>| tag.map(|tag| tag.number);
    assert_eq!(
        (number(tracked.l1_safe), number(tracked.finalized)),
        (Some(latest - 2), Some(latest - 4))
    );
    let finalized = provider.get_block_by_number((latest - 4).into()).await.unwrap().unwrap();
    assert_eq!(tracked.finalized.map(|tag| tag.hash), Some(finalized.header.hash));
    let block = provider.get_block_by_number(latest.into()).await.unwrap().unwrap();
    assert_eq!(tracked.latest_hash, block.header.hash);
}

/// A minimal HTTP/1.1 JSON-RPC proxy in front of Anvil that injects provider faults.
mod proxy {
    use crate::test_utils::read_http_request;
    use alloy::transports::http::reqwest;
    use std::sync::{Arc, Mutex};
    use tokio::{
        io::{AsyncWriteExt, BufReader},
        net::{TcpListener, TcpStream},
        task::JoinHandle,
    };

    /// What the proxy does wrong.
    #[derive(Debug, Clone)]
    pub(super) enum Fault {
        /// Refuses `eth_getLogs` over more than this many blocks, as Infura does.
        MaxLogRange(u64),
        /// Answers the next requests with these HTTP statuses, in order.
        Statuses(Vec<u16>),
    }

    #[derive(Debug, Default, Clone)]
    pub(super) struct ProxyLog {
        pub(super) refused: usize,
        pub(super) answered_with_fault: usize,
        pub(super) log_ranges: Vec<(u64, u64)>,
    }

    pub(super) struct Proxy {
        port: u16,
        log: Arc<Mutex<ProxyLog>>,
        task: JoinHandle<()>,
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Proxy {
        pub(super) async fn start(upstream: String, fault: Fault) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let log = Arc::new(Mutex::new(ProxyLog::default()));
            let state = Arc::new(Mutex::new(fault));
            let task = tokio::spawn({
                let log = Arc::clone(&log);
                async move {
                    let client = reqwest::Client::new();
                    loop {
                        let Ok((socket, _)) = listener.accept().await else { return };
                        let (client, upstream) = (client.clone(), upstream.clone());
                        let (log, state) = (Arc::clone(&log), Arc::clone(&state));
                        tokio::spawn(serve(socket, client, upstream, log, state));
                    }
                }
            });
            Self { port, log, task }
        }

        pub(super) fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        pub(super) fn log(&self) -> ProxyLog {
            self.log.lock().unwrap().clone()
        }
    }

    async fn serve(
        socket: TcpStream,
        client: reqwest::Client,
        upstream: String,
        log: Arc<Mutex<ProxyLog>>,
        fault: Arc<Mutex<Fault>>,
    ) {
        let mut reader = BufReader::new(socket);
        loop {
            let Some(body) = read_http_request(&mut reader).await else { return };
            let (status, answer) = answer(&body, &client, &upstream, &log, &fault).await;
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            );
            if reader.get_mut().write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    async fn answer(
        body: &[u8],
        client: &reqwest::Client,
        upstream: &str,
        log: &Mutex<ProxyLog>,
        fault: &Mutex<Fault>,
    ) -> (u16, String) {
        let request: serde_json::Value = serde_json::from_slice(body).unwrap();
        let injected = match &mut *fault.lock().unwrap() {
            Fault::Statuses(statuses) if !statuses.is_empty() => Some(statuses.remove(0)),
            _ => None,
        };
        if let Some(status) = injected {
            log.lock().unwrap().answered_with_fault += 1;
            return (status, "upstream trouble".to_owned());
        }
        let fault = fault.lock().unwrap().clone();
        match fault {
            Fault::MaxLogRange(max)
                if request["method"] == "eth_getLogs"
                    && request["params"][0]["fromBlock"].is_string() =>
            {
                let quantity = |field: &str| {
                    let text = request["params"][0][field].as_str().unwrap();
                    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
                };
                let (first, last) = (quantity("fromBlock"), quantity("toBlock"));
                let mut log = log.lock().unwrap();
                if last - first + 1 > max {
                    log.refused += 1;
                    let error = serde_json::json!({
                        "jsonrpc": "2.0",
                        "id": request["id"],
                        "error": {"code": -32005, "message": "query returned more than 10000 results"},
                    });
                    return (200, error.to_string());
                }
                log.log_ranges.push((first, last));
            }
            _ => {}
        }
        let response = client
            .post(upstream)
            .body(body.to_vec())
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

/// The whole pipeline on a fresh store, reading `contract` over `anvil`'s WebSocket endpoint
/// and never polling: new heads come from the subscription only.
async fn pipeline_over_websocket(
    anvil: &AnvilInstance,
    contract: Address,
) -> (TempDir, Store, Arc<Status>, crate::DrainHandle) {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { chain_id: anvil.chain_id(), contract, from_block: 0 };
    let store = Store::open(dir.path(), config).unwrap();
    let status = Arc::new(Status::load(&store).unwrap());
    let controller = crate::MessagingController::new(store.clone(), Arc::clone(&status));
    let mut ethereum = EthereumConfig::new(anvil.ws_endpoint(), contract);
    ethereum.poll_interval = Duration::from_secs(3_600);
    let collector = EthereumCollector::connect(ethereum, Arc::clone(&status)).await.unwrap();
    let handle = controller.start(Arc::new(collector)).unwrap();
    (dir, store, status, handle)
}

#[tokio::test]
async fn the_pipeline_stores_what_anvil_logs_as_it_is_mined() {
    let anvil = anvil(&[]);
    let (_provider, contract) = deploy(&anvil).await;
    send_many(&contract, 3, 0).await;

    let (_dir, store, status, mut handle) =
        pipeline_over_websocket(&anvil, *contract.address()).await;

    let mut last_seq = status.subscribe_last_seq();
    for round in 0..5 {
        send(&contract, vec![round], round).await;
    }
    let stored = tokio::time::timeout(
        Duration::from_secs(20),
        last_seq.wait_for(|seq| *seq == Some(ferry_primitives::Seq(7))),
    )
    .await;
    assert!(stored.is_ok(), "8 messages were not stored: {:?}", status.snapshot());
    handle.stop();
    handle.stopped().await;

    let messages = store.messages_from(ferry_primitives::Seq::ZERO, 100).unwrap();
    let nonces: Vec<_> = messages.iter().map(|m| m.l1.message.nonce).collect();
    assert_eq!(nonces, (0..8u64).map(U256::from).collect::<Vec<_>>());
    for message in &messages {
        let recorded = contract.l1ToL2Messages(message.hash).call().await.unwrap();
        assert_eq!(recorded, message.l1.message.fee + U256::from(1));
    }
}

#[tokio::test]
async fn after_a_websocket_drop_the_pipeline_reconnects_and_resumes_exactly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("anvil-state.json");
    let state = state.to_str().unwrap();
    let spawn = |load: bool| {
        let mut anvil = anvil_builder().port(port).args(["--dump-state", state]);
        if load {
            anvil = anvil.args(["--load-state", state]);
        }
        anvil.try_spawn().unwrap_or_else(|error| panic!("cannot start anvil: {error}"))
    };
    let first = spawn(false);
    let (_provider, contract) = deploy(&first).await;
    send(&contract, vec![0], 0).await;
    send(&contract, vec![1], 0).await;

    // New heads must come from the (re-established) subscription, not from polling.
    let (_dir, store, status, mut handle) =
        pipeline_over_websocket(&first, *contract.address()).await;
    let last_seq = status.subscribe_last_seq();
    let wait_for = |seq: u64| {
        let mut last_seq = last_seq.clone();
        async move {
            let reached = last_seq.wait_for(|last| *last == Some(ferry_primitives::Seq(seq)));
            tokio::time::timeout(Duration::from_secs(30), reached).await.is_ok()
        }
    };
    assert!(wait_for(1).await, "first messages not stored: {:?}", status.snapshot());

    // The L1 node goes away (its state saved) and comes back on the same address.
    drop(first);
    let second = spawn(true);
    let (_provider, contract) = deploy_at(&second, *contract.address());
    send(&contract, vec![2], 0).await;
    send(&contract, vec![3], 0).await;
    assert!(wait_for(3).await, "messages after the drop not stored: {:?}", status.snapshot());
    handle.stop();
    handle.stopped().await;

    let messages = store.messages_from(ferry_primitives::Seq::ZERO, 100).unwrap();
    let nonces: Vec<_> = messages.iter().map(|m| m.l1.message.nonce).collect();
    assert_eq!(
        nonces,
        (0..4u64).map(U256::from).collect::<Vec<_>>(),
        "nothing missed, nothing twice"
    );
}

/// A wallet provider on `anvil` and the messaging contract already deployed at `address`.
fn deploy_at(
    anvil: &AnvilInstance,
    address: Address,
) -> (DynProvider, FerryMessaging::FerryMessagingInstance<DynProvider>) {
    let provider = ProviderBuilder::new()
        .wallet(anvil.wallet().expect("anvil has keys"))
        .connect_http(anvil.endpoint_url())
        .erased();
    let contract = FerryMessaging::new(address, provider.clone());
    (provider, contract)
}
