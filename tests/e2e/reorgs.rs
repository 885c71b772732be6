//! Reorgs against the real binary and Anvil: answers from two chains in one gather, a 1-block
//! reorg after thousands of empty blocks, reorgs while the node is stopped or deeper than its
//! window, and a randomized run of reorgs with kill -9, checked message by message against
//! what the contract says.

use crate::{
    l1proxy::{HoldAt, L1Proxy, header_by_number},
    scenarios::{caught_up, log},
    support::{Ferry, Messaging, anvil, deploy, free_addr, head, http_get},
};
use alloy::{
    node_bindings::AnvilInstance,
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    rpc::types::{
        Filter, TransactionRequest,
        anvil::{ReorgOptions, TransactionData},
    },
    sol_types::{SolCall, SolEvent},
};
use ferry_contracts::FerryMessaging;
use ferry_messaging::LogMessageToL2;
use ferry_primitives::{EntryKind, Finality, Inclusion, LogEntry, Message, Origin, Position};
use ferry_rpc_api::{AdminApiClient, PublicApiClient, ReadOptions};
use ferry_test_support::Dice;
use jsonrpsee::http_client::HttpClient;
use std::{collections::HashMap, time::Duration};

/// Every `LogMessageToL2` of `contract` on the chain now, by message hash: origin and fee.
pub(crate) async fn canonical(
    provider: &DynProvider,
    contract: Address,
) -> HashMap<B256, (Origin, U256)> {
    let filter = Filter::new()
        .address(contract)
        .event_signature(LogMessageToL2::SIGNATURE_HASH)
        .from_block(0);
    let mut messages = HashMap::new();
    for log in provider.get_logs(&filter).await.unwrap() {
        let message = Message::from(log.log_decode::<LogMessageToL2>().unwrap().inner.data);
        let origin = Origin {
            block_number: log.block_number.unwrap(),
            block_hash: log.block_hash.unwrap(),
            transaction_hash: log.transaction_hash.unwrap(),
            log_index: log.log_index.unwrap(),
        };
        messages.insert(message.hash(), (origin, message.fee));
    }
    messages
}

/// A consumer of the node's log that applies it as the log-subscription convention says, and
/// keeps its place across node restarts (it pulls pages from whichever node it is given).
#[derive(Debug, Default)]
struct Consumer {
    finality: Finality,
    next_seq: u64,
    held: HashMap<B256, Origin>,
    told: Vec<LogEntry>,
}

impl Consumer {
    fn following(finality: Finality) -> Self {
        Self { finality, ..Self::default() }
    }

    /// Pulls everything the node has for it now.
    async fn pull(&mut self, ferry: &Ferry) {
        let client = ferry.public_client();
        let options = Some(ReadOptions { finality: self.finality, executable: false });
        loop {
            let Ok(page) = client.get_messages(self.next_seq, Some(1_000), options).await else {
                return; // the node is down: the next pull goes on from here
            };
            if page.next_seq == self.next_seq {
                return;
            }
            for entry in &page.entries {
                if entry.removed {
                    self.held.remove(&entry.hash);
                } else {
                    self.held.insert(entry.hash, entry.l1.origin);
                }
            }
            self.told.extend(page.entries);
            self.next_seq = page.next_seq;
        }
    }
}

/// A consumer applying the whole log holds exactly the chain's messages at their origins;
/// every message the contract holds is recorded there as `fee + 1`, every orphaned one is not.
pub(crate) async fn assert_consumers_hold_the_chain(ferry: &Ferry, contract: &Messaging) {
    let chain = canonical(contract.provider(), *contract.address()).await;
    let mut consumer = Consumer::default();
    consumer.pull(ferry).await;
    let expected: HashMap<B256, Origin> =
        chain.iter().map(|(hash, (origin, _))| (*hash, *origin)).collect();
    assert_eq!(consumer.held, expected, "a consumer applying the log holds the chain");
    for (hash, (_, fee)) in &chain {
        let recorded = contract.l1ToL2Messages(*hash).call().await.unwrap();
        assert_eq!(recorded, *fee + U256::from(1), "message {hash}");
    }
    let client = ferry.public_client();
    for entry in consumer.told.iter().filter(|entry| entry.kind == EntryKind::Message) {
        let message = client.get_message_by_hash(entry.hash).await.unwrap().unwrap();
        match chain.get(&entry.hash) {
            Some((origin, _)) => {
                assert_eq!(message.inclusion, Inclusion::Canonical, "{message:?}");
                assert_eq!(message.l1.origin, *origin, "its origin is the canonical one");
            }
            None => {
                assert_eq!(message.inclusion, Inclusion::Orphaned, "{message:?}");
                let recorded = contract.l1ToL2Messages(entry.hash).call().await.unwrap();
                assert_eq!(recorded, U256::ZERO, "an orphaned message is not on L1");
            }
        }
    }
}

/// A provider without fillers: Anvil signs for its dev accounts and fills nonces itself, so
/// nothing cached goes stale across reorgs.
pub(crate) fn plain(anvil: &AnvilInstance) -> DynProvider {
    ProviderBuilder::new().disable_recommended_fillers().connect_http(anvil.endpoint_url()).erased()
}

/// `sendMessageToL2(1, 2, [payload])` from `from` with a fee of `payload` wei.
pub(crate) fn message_tx(contract: Address, from: Address, payload: u64) -> TransactionRequest {
    let call = FerryMessaging::sendMessageToL2Call {
        toAddress: U256::from(1),
        selector: U256::from(2),
        payload: vec![U256::from(payload)],
    };
    TransactionRequest::default()
        .from(from)
        .to(contract)
        .input(call.abi_encode().into())
        .value(U256::from(payload))
        .gas_limit(500_000)
}

/// Sends `tx` and waits for its block.
pub(crate) async fn send(provider: &DynProvider, tx: TransactionRequest) -> u64 {
    let pending = provider.send_transaction(tx).await.unwrap();
    let receipt = pending.with_timeout(Some(Duration::from_secs(30))).get_receipt().await.unwrap();
    receipt.block_number.unwrap()
}

/// The node on `url` (HTTP, polled every 50 ms).
pub(crate) fn ferry_on(
    url: &str,
    contract: Address,
    datadir: &std::path::Path,
    extra: &[&str],
) -> Ferry {
    let contract = contract.to_string();
    let mut args = vec!["--l1.rpc-url", url, "--l1.contract", &contract, "--poll-interval", "50ms"];
    args.extend_from_slice(extra);
    Ferry::start(datadir, &args)
}

// The proxy runs on the test's runtime while `Ferry::start` blocks a thread waiting for the
// node: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_between_the_header_and_the_logs_of_a_gather_loses_nothing() {
    for at in [HoldAt::Request, HoldAt::Answer] {
        let anvil = anvil();
        let contract = deploy(&anvil).await;
        let provider = plain(&anvil);
        let (x, y) = (anvil.addresses()[1], anvil.addresses()[2]);
        send(&provider, message_tx(*contract.address(), x, 1)).await;
        let proxy = L1Proxy::start(vec![anvil.endpoint()]).await;
        let datadir = tempfile::tempdir().unwrap();
        let mut ferry = ferry_on(proxy.url(), *contract.address(), datadir.path(), &[]);
        caught_up(&mut ferry, &contract).await;

        // Message A (sender X, nonce 1) is mined; while the node's header request for its block
        // is held, a reorg replaces the block with one holding message B (sender Y, nonce 1).
        let gate = proxy.hold(header_by_number, at);
        send(&provider, message_tx(*contract.address(), x, 2)).await;
        gate.entered().await;
        let b = TransactionData::JSON(message_tx(*contract.address(), y, 3));
        provider
            .anvil_reorg(ReorgOptions { depth: 1, tx_block_pairs: vec![(b, 0)] })
            .await
            .unwrap();
        gate.release();
        caught_up(&mut ferry, &contract).await;
        assert_consumers_hold_the_chain(&ferry, &contract).await;
        let fees: Vec<_> = log(&ferry).await.iter().map(|entry| entry.l1.message.fee).collect();
        assert!(fees.contains(&U256::from(3)), "message B is stored ({at:?}): {fees:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backends_on_different_chains_never_mix_in_the_store() {
    let a = anvil();
    let contract = deploy(&a).await;
    let on_a = plain(&a);
    let sender = a.addresses()[1];
    for payload in 0..3 {
        send(&on_a, message_tx(*contract.address(), sender, payload)).await;
    }
    let fork_block = head(&contract).await.to_string();
    // B shares A's blocks up to the fork and grows another way from there.
    let b = ferry_test_support::anvil(&[
        "--fork-url",
        &a.endpoint(),
        "--fork-block-number",
        &fork_block,
    ]);
    let on_b = plain(&b);
    for payload in 10..13 {
        send(&on_a, message_tx(*contract.address(), sender, payload)).await;
        send(&on_b, message_tx(*contract.address(), a.addresses()[2], payload + 100)).await;
    }
    on_a.anvil_mine(Some(2), None).await.unwrap();

    // A load balancer sends eth_getLogs to B and everything else to A.
    let proxy = L1Proxy::start(vec![a.endpoint(), b.endpoint()]).await;
    proxy.route("eth_getLogs", 1);
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = ferry_on(proxy.url(), *contract.address(), datadir.path(), &[]);
    let chain_a = canonical(&on_a, *contract.address()).await;
    ferry
        .wait_status("the node sees the answers disagree", |status| {
            status
                .pipeline
                .upstream
                .last_error
                .as_deref()
                .is_some_and(|error| error.contains("inconsistent"))
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for entry in log(&ferry).await {
        let (origin, _) =
            chain_a.get(&entry.hash).expect("only messages of the chain the headers are from");
        assert_eq!(entry.l1.origin, *origin);
    }

    // The balancer is fixed: the node reads on, and holds exactly A's chain.
    proxy.route_all_to_first();
    caught_up(&mut ferry, &contract).await;
    assert_consumers_hold_the_chain(&ferry, &contract).await;
    assert_eq!(log(&ferry).await.len(), 6);
}

#[tokio::test]
async fn a_one_block_reorg_after_thousands_of_empty_blocks_rewinds_one_block() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let provider = plain(&anvil);
    for payload in 0..15 {
        send(&provider, message_tx(*contract.address(), anvil.addresses()[1], payload)).await;
    }
    provider.anvil_mine(Some(3_000), None).await.unwrap();
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &[]);
    caught_up(&mut ferry, &contract).await;
    let tip = head(&contract).await;
    // The new block holds a plain transfer: an empty block on the same parent in the same
    // second would be the same block.
    let transfer = TransactionRequest::default()
        .from(anvil.addresses()[5])
        .to(anvil.addresses()[6])
        .value(U256::from(1))
        .gas_limit(21_000);
    let pairs = vec![(TransactionData::JSON(transfer), 0)];
    provider.anvil_reorg(ReorgOptions { depth: 1, tx_block_pairs: pairs }).await.unwrap();
    provider.anvil_mine(Some(1), None).await.unwrap();
    let status = ferry.wait_status("the reorg is handled", |s| s.reorgs == 1).await;
    assert_eq!(status.orphaned_messages, 0, "nothing canonical is orphaned");
    caught_up(&mut ferry, &contract).await;
    let admin = HttpClient::builder().build(format!("http://{}", ferry.admin)).unwrap();
    let history = admin.get_checkpoint_history(Some(5)).await.unwrap();
    let rewind = history.iter().find(|entry| entry.method == "reorgRewind").unwrap();
    assert_eq!(rewind.current, Some(Position::block_start(tip)), "back one block, no further");
    assert_eq!(rewind.previous, Some(Position::block_start(tip + 1)));
    assert_eq!(log(&ferry).await.len(), 15, "no notice: nothing moved");
    assert_consumers_hold_the_chain(&ferry, &contract).await;
}

#[tokio::test]
async fn a_reorg_while_the_node_is_stopped_is_healed_when_it_starts() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let provider = plain(&anvil);
    let senders = &anvil.addresses()[1..4];
    for (i, payload) in (0..9).enumerate() {
        send(&provider, message_tx(*contract.address(), senders[i % 3], payload)).await;
    }
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &[]);
    caught_up(&mut ferry, &contract).await;
    assert!(ferry.terminate().await.success());

    // The last four blocks (payloads 5..=8, nonces 5..=8) are replaced: 5 comes back at its
    // place and 7 a block later (the same nonces: included again), 8 before 7 (another nonce:
    // another message), and 6 is gone.
    let txs = [(5, 0), (8, 1), (7, 3)].map(|(payload, block)| {
        (
            TransactionData::JSON(message_tx(
                *contract.address(),
                senders[payload % 3],
                payload as u64,
            )),
            block,
        )
    });
    provider.anvil_reorg(ReorgOptions { depth: 4, tx_block_pairs: txs.to_vec() }).await.unwrap();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &[]);
    ferry.wait_status("the reorg is handled", |s| s.reorgs == 1).await;
    caught_up(&mut ferry, &contract).await;
    assert_consumers_hold_the_chain(&ferry, &contract).await;
}

#[tokio::test]
async fn a_reorg_deeper_than_the_window_halts_loudly_until_an_operator_moves_the_checkpoint() {
    // Finalized two blocks below the head; a window of four blocks.
    let anvil = ferry_test_support::anvil(&["--slots-in-an-epoch", "1"]);
    let contract = deploy(&anvil).await;
    let provider = plain(&anvil);
    for payload in 0..10 {
        send(&provider, message_tx(*contract.address(), anvil.addresses()[1], payload)).await;
    }
    let datadir = tempfile::tempdir().unwrap();
    let metrics = free_addr();
    let metrics_arg = metrics.to_string();
    let extra = ["--reorg-window", "4", "--metrics.addr", metrics_arg.as_str()];
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &extra);
    caught_up(&mut ferry, &contract).await;
    let before = log(&ferry).await;
    let checkpoint = ferry.public_client().status().await.unwrap().checkpoint;

    let replacement =
        TransactionData::JSON(message_tx(*contract.address(), anvil.addresses()[2], 99));
    provider
        .anvil_reorg(ReorgOptions { depth: 7, tx_block_pairs: vec![(replacement, 2)] })
        .await
        .unwrap();
    provider.anvil_mine(Some(1), None).await.unwrap();
    let status = ferry.wait_status("ingestion halts", |s| s.pipeline.halted.is_some()).await;
    let halt = status.pipeline.halted.unwrap();
    assert!(halt.reason.contains("deeper than the header window"), "{}", halt.reason);
    assert_eq!(format!("{:?}", status.pipeline.phase), "Halted");
    let (code, body) = http_get(metrics, "/ready").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("halted"), "{body}");
    let (_, metrics_text) = http_get(metrics, "/metrics").await;
    assert!(metrics_text.contains("ferry_ingestion_halted 1"), "{metrics_text}");
    // Nothing was removed, added or rewound.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(log(&ferry).await, before);
    assert_eq!(ferry.public_client().status().await.unwrap().checkpoint, checkpoint);

    // The operator moves the checkpoint below the fork: what was stored from there is
    // orphaned, found again where it still is, and ingestion goes on.
    let fork = head(&contract).await - 7;
    let admin = HttpClient::builder().build(format!("http://{}", ferry.admin)).unwrap();
    let preview = admin
        .set_checkpoint(
            (fork - 1).into(),
            None,
            Some(ferry_rpc_api::ChangeOptions { dry_run: true, expected: None }),
        )
        .await
        .unwrap();
    assert!(preview.effect.unwrap().would_orphan > 0);
    let change = admin.set_checkpoint((fork - 1).into(), None, None).await.unwrap();
    assert!(change.orphaned.is_some_and(|orphaned| orphaned > 0), "{change:?}");
    caught_up(&mut ferry, &contract).await;
    let status = ferry.public_client().status().await.unwrap();
    assert!(status.pipeline.halted.is_none());
    assert_eq!(http_get(metrics, "/ready").await.0, 200);
    assert_consumers_hold_the_chain(&ferry, &contract).await;
}

#[tokio::test]
async fn sixty_reorgs_with_kill_9_leave_every_consumer_holding_the_chain() {
    const WINDOW: u64 = 16;
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let address = *contract.address();
    let provider = plain(&anvil);
    let senders: Vec<Address> = anvil.addresses()[1..].to_vec();
    let mut dice = Dice::new(0x9e37_79b9_7f4a_7c15);
    let mut payload = 0;
    // The message transactions of the recent blocks, by block: what a reorg can re-include.
    let mut recent: Vec<(u64, Address, u64)> = Vec::new();
    let datadir = tempfile::tempdir().unwrap();
    let window = WINDOW.to_string();
    let start = || Ferry::against(&anvil, address, datadir.path(), &["--reorg-window", &window]);
    let mut ferry = start();
    let mut latest = Consumer::following(Finality::Latest);
    let mut finalized = Consumer::following(Finality::Finalized);
    let mut reorgs = 0;
    let mut kills = 0;
    while reorgs < 60 {
        for _ in 0..=dice.roll(3) {
            let from = senders[dice.roll(senders.len() as u64) as usize];
            payload += 1;
            let block = send(&provider, message_tx(address, from, payload)).await;
            recent.push((block, from, payload));
        }
        if dice.roll(2) == 0 {
            provider.anvil_mine(Some(1 + dice.roll(4)), None).await.unwrap();
        }
        // A reorg of depth 1 to the window: the transactions of the replaced blocks are
        // re-included in the same order, in another order, not at all, or with new ones.
        let tip = provider.get_block_number().await.unwrap();
        let depth = (1 + dice.roll(WINDOW)).min(tip - 1);
        let first = tip - depth + 1;
        let mut replaced: Vec<(u64, Address, u64)> =
            recent.iter().copied().filter(|(block, _, _)| *block >= first).collect();
        recent.retain(|(block, _, _)| *block < first);
        match dice.roll(4) {
            0 => {}
            1 => replaced.reverse(),
            2 => replaced.clear(),
            _ => {
                payload += 1;
                replaced.push((0, senders[0], payload));
            }
        }
        // Blocks in list order: each sender's transactions keep their nonce order.
        let mut offsets: Vec<u64> = replaced.iter().map(|_| dice.roll(depth)).collect();
        offsets.sort_unstable();
        let pairs: Vec<(TransactionData, u64)> = replaced
            .iter()
            .zip(&offsets)
            .map(|((_, from, payload), offset)| {
                (TransactionData::JSON(message_tx(address, *from, *payload)), *offset)
            })
            .collect();
        let mut placed: Vec<(u64, Address, u64)> = replaced
            .iter()
            .zip(&pairs)
            .map(|((_, from, payload), (_, offset))| (first + offset, *from, *payload))
            .collect();
        placed.sort_by_key(|(block, _, _)| *block);
        recent.extend(placed);
        provider.anvil_reorg(ReorgOptions { depth, tx_block_pairs: pairs }).await.unwrap();
        reorgs += 1;
        // Sometimes kill -9 the node while it handles the reorg (or later), and start it again.
        if dice.roll(3) == 0 {
            provider.anvil_mine(Some(1), None).await.unwrap();
            tokio::time::sleep(Duration::from_millis(dice.roll(150))).await;
            ferry.signal("-KILL");
            ferry.exit().await;
            kills += 1;
            ferry = start();
        }
        if dice.roll(4) == 0 {
            provider.anvil_mine(Some(1), None).await.unwrap();
            caught_up(&mut ferry, &contract).await;
            latest.pull(&ferry).await;
            finalized.pull(&ferry).await;
        }
    }
    // Enough blocks on top for everything before them to be finalized (64 below the head).
    provider.anvil_mine(Some(70), None).await.unwrap();
    caught_up(&mut ferry, &contract).await;
    latest.pull(&ferry).await;
    finalized.pull(&ferry).await;
    assert!(kills >= 10, "{kills} kills");

    let chain = canonical(&provider, address).await;
    let expected: HashMap<B256, Origin> =
        chain.iter().map(|(hash, (origin, _))| (*hash, *origin)).collect();
    assert_eq!(latest.held, expected, "the latest consumer, across {kills} kills, holds the chain");
    assert!(latest.told.iter().any(|entry| entry.removed), "reorgs removed messages");
    assert!(latest.told.iter().any(|entry| entry.kind == EntryKind::Reincluded));
    assert!(
        finalized.told.iter().all(|entry| !entry.removed),
        "finalized consumers never see a removal"
    );
    let mut told: Vec<B256> = finalized.told.iter().map(|entry| entry.hash).collect();
    told.sort_unstable();
    told.dedup();
    assert_eq!(told.len(), finalized.told.len(), "each message once");
    assert_eq!(finalized.held, expected, "the finalized consumer holds the (now final) chain");
    assert_consumers_hold_the_chain(&ferry, &contract).await;
    let status = ferry.public_client().status().await.unwrap();
    assert!(status.reorgs > 0 && status.pipeline.halted.is_none(), "{status:?}");
}
