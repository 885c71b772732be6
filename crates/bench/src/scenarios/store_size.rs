//! Whether the size of the store matters: ingest of the 100,000-message chain into stores that
//! already hold 1,000,000 and 10,000,000 messages, and the latency of a commit as the store
//! grows to the largest of them.
//!
//! The big stores are built once and kept under `target/bench/store-<size>/`: synthetic
//! messages (two felts of payload, as on the chain) committed 20,000 at a time straight into
//! the store, with no L1, each commit timed (`commit-latency-<size>.csv` beside them). Their
//! nonces start at 2^64, above the chain's, and they sit in block 0, below the chain's first
//! message, so that the chain's messages are all new to them. Each run copies a store into a
//! fresh datadir and ingests the chain into it, from process-internal start to the head.

use crate::{
    chain::BenchChain,
    scenarios::{Decode, floor, start_node_in},
    stats::summary,
};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use ferry_messaging::VerifyLogs;
use ferry_primitives::{B256, L1Message, Position, Seq, U256};
use ferry_storage::{BatchWrite, CommitOutcome, FinalityTags, Store, StoreConfig};
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// Messages per commit while building: about what the drain merges when far behind.
const BATCH: u64 = 20_000;

/// Store sizes the latency table groups its commits by.
const BUCKET: u64 = 500_000;

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench")
}

fn store_dir(size: u64) -> PathBuf {
    bench_dir().join(format!("store-{size}"))
}

fn latency_file(size: u64) -> PathBuf {
    bench_dir().join(format!("commit-latency-{size}.csv"))
}

/// Synthetic message `i` of a big store.
fn synthetic(i: u64) -> L1Message {
    let payload = vec![U256::from(1), U256::from(2)];
    let mut l1 = ferry_primitives::test_utils::l1_message_with_payload(0, 0, i, payload);
    l1.message.nonce = (U256::from(1) << 64) + U256::from(i);
    l1.origin.transaction_hash = B256::from(U256::from(i / 1_000));
    l1
}

/// `(messages stored before the commit, its seconds)` for each commit that built the largest
/// store, building the stores first unless an earlier run kept them.
fn build(contract: alloy::primitives::Address, sizes: &[u64]) -> Vec<(u64, f64)> {
    let largest = *sizes.iter().max().unwrap();
    let kept = sizes.iter().all(|&size| store_dir(size).join("mdbx.dat").exists());
    if kept && let Ok(text) = std::fs::read_to_string(latency_file(largest)) {
        eprintln!("reusing the stores kept in {}", bench_dir().display());
        return text
            .lines()
            .filter_map(|line| line.split_once(','))
            .map(|(stored, seconds)| (stored.parse().unwrap(), seconds.parse().unwrap()))
            .collect();
    }
    let building = bench_dir().join("store-building");
    let _ = std::fs::remove_dir_all(&building);
    let store =
        Store::open(&building, StoreConfig { chain_id: 31337, contract, from_block: 0 }).unwrap();
    let mut latencies = Vec::new();
    let started = Instant::now();
    for first in (0..largest).step_by(BATCH as usize) {
        let messages: Vec<_> = (first..first + BATCH).map(synthetic).collect();
        let hashes: Vec<_> = messages.iter().map(L1Message::hash).collect();
        let batch = BatchWrite {
            from: store.resume_position(store.checkpoint().unwrap()),
            next: Position::new(0, first + BATCH),
            messages: &messages,
            hashes: &hashes,
            events: &[],
            headers: &[],
            window_floor: 0,
            tags: FinalityTags::default(),
        };
        let committing = Instant::now();
        let outcome = store.commit(&batch).unwrap();
        latencies.push((first, committing.elapsed().as_secs_f64()));
        assert!(matches!(outcome, CommitOutcome::Committed(summary) if summary.stored == BATCH));
        let stored = first + BATCH;
        if sizes.contains(&stored) && stored != largest {
            copy_database(&building, &store_dir(stored));
        }
        if stored.is_multiple_of(1_000_000) {
            eprintln!("built {stored} messages in {:?}", started.elapsed());
        }
    }
    drop(store);
    let csv: String =
        latencies.iter().map(|(stored, seconds)| format!("{stored},{seconds}\n")).collect();
    std::fs::write(latency_file(largest), csv).unwrap();
    let _ = std::fs::remove_dir_all(store_dir(largest));
    std::fs::rename(&building, store_dir(largest)).unwrap();
    latencies
}

/// Copies the database files of `from` (not its lock file) into a new directory `to`, and
/// syncs the copy: otherwise the node's first durable commit would pay for writing back the
/// whole copied file (5.6 GB for 10,000,000 messages), which is the copy's cost, not ferry's.
fn copy_database(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|name| name != "mdbx.lck") {
            let copy = to.join(path.file_name().unwrap());
            std::fs::copy(&path, &copy).unwrap();
            std::fs::File::open(&copy).unwrap().sync_all().unwrap();
        }
    }
}

/// Lets the disk finish what earlier runs left it (the copy of a store, the removal of the
/// last run's): otherwise the next run's durable commits queue behind that writeback, and
/// the figures measure the copy.
pub(crate) fn settle() {
    let synced = std::process::Command::new("sync").status().unwrap();
    assert!(synced.success(), "sync failed");
    std::thread::sleep(Duration::from_millis(500));
}

/// p50 and p99 of the commits made while the store held `bucket * BUCKET..` messages.
fn latency_rows(latencies: &[(u64, f64)]) -> Vec<(u64, f64, f64)> {
    let buckets = latencies.iter().map(|(stored, _)| stored / BUCKET).max().unwrap_or(0);
    (0..=buckets)
        .map(|bucket| {
            let mut values: Vec<f64> = latencies
                .iter()
                .filter(|(stored, _)| stored / BUCKET == bucket)
                .map(|(_, seconds)| seconds * 1e3)
                .collect();
            values.sort_by(f64::total_cmp);
            let at = |p: usize| values[(values.len() * p / 100).min(values.len() - 1)];
            (bucket * BUCKET, at(50), at(99))
        })
        .collect()
}

pub(crate) async fn store_size(
    sizes: &[u64],
    messages: u64,
    runs: usize,
    before: Option<&Path>,
    plot: Option<&Path>,
) {
    let chain = BenchChain::with_messages(messages).await;
    let latencies = build(chain.contract, sizes);
    let rows = latency_rows(&latencies);
    println!("\n## Commit latency against store size ({BATCH} messages per commit)\n");
    println!("| messages stored before the commit | p50 | p99 |\n| --- | --- | --- |");
    for (from, p50, p99) in &rows {
        println!("| {from}..{} | {p50:.1} ms | {p99:.1} ms |", from + BUCKET);
    }
    if let Some(path) = plot {
        write_plot(path, &rows, before);
    }

    let url = chain.anvil.endpoint();
    let provider = ProviderBuilder::new().connect_http(chain.anvil.endpoint_url()).erased();
    let mut rates = Rates { floors: Vec::new(), by_size: vec![Vec::new(); sizes.len() + 1] };
    let sizes: Vec<u64> = std::iter::once(0).chain(sizes.iter().copied()).collect();
    for _ in 0..runs {
        settle();
        rates.floors.push(floor_rate(&provider, &chain, messages).await);
        for (index, &size) in sizes.iter().enumerate() {
            rates.by_size[index].push(ingest_rate(&url, &chain, size, messages).await);
        }
    }
    print_ingest(&sizes, rates, messages, runs);
    println!("\nchain head: block {}", provider.get_block_number().await.unwrap());
}

/// The latency chart at `path`, over the latencies of an earlier layout read from `before`
/// when given: the change of layout shows as two pairs of lines on one scale.
fn write_plot(path: &Path, rows: &[(u64, f64, f64)], before: Option<&Path>) {
    let before = before.map(|path| {
        let text = std::fs::read_to_string(path).unwrap();
        let parsed: Vec<(u64, f64)> = text
            .lines()
            .filter_map(|line| line.split_once(','))
            .map(|(stored, seconds)| (stored.parse().unwrap(), seconds.parse().unwrap()))
            .collect();
        latency_rows(&parsed)
    });
    std::fs::write(path, crate::plot::latency_svg(rows, before.as_deref())).unwrap();
    eprintln!("wrote {}", path.display());
}

/// Messages per second of every run: the floor's, and ferry's into each store size (the
/// empty store first), in the order of the sizes.
struct Rates {
    floors: Vec<f64>,
    by_size: Vec<Vec<f64>>,
}

/// The floor's rate over the whole chain, the yardstick each run's ferry rates are read
/// against: measured in the same run, it shares that run's disk and Anvil.
async fn floor_rate(provider: &DynProvider, chain: &BenchChain, messages: u64) -> f64 {
    let started = Instant::now();
    let decoded = floor(provider, chain.contract, chain.head, (50, 4, Decode::Lean)).await;
    assert_eq!(decoded, messages);
    messages as f64 / started.elapsed().as_secs_f64()
}

/// ferry's rate from process-internal start to the head, into a copy of the store of `size`
/// messages (none for 0); the disk settled after the copy, so the rate is ferry's alone.
async fn ingest_rate(url: &str, chain: &BenchChain, size: u64, messages: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    if size > 0 {
        copy_database(&store_dir(size), dir.path());
    }
    settle();
    let started = Instant::now();
    let node = start_node_in(
        dir,
        url,
        chain.contract,
        (1_000, Duration::from_secs(1)),
        VerifyLogs::default(),
    )
    .await;
    let head = chain.head;
    node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    assert_eq!(node.store.last_seq().unwrap(), Some(Seq(size + messages - 1)));
    node.stop().await;
    rate
}

/// The ingest table: each size's rates beside the floor's, and the ratio of the medians, so
/// that a slower machine or Anvil does not read as a slower store.
fn print_ingest(sizes: &[u64], mut rates: Rates, messages: u64, runs: usize) {
    let floor_median = {
        let mut floors = rates.floors.clone();
        floors.sort_by(f64::total_cmp);
        floors[floors.len() / 2]
    };
    println!("\n## Ingest of {messages} new messages by store size, {runs} runs\n");
    println!("| what | messages/s: median (min..max) | of the floor |\n| --- | --- | --- |");
    println!(
        "| floor: 50-block ranges, 4 in flight, one-pass decoding | {} | 1.00 |",
        summary(&mut rates.floors)
    );
    for (size, rates) in sizes.iter().zip(&mut rates.by_size) {
        let line = summary(rates);
        let median = rates[rates.len() / 2];
        println!(
            "| ferry into a store holding {size} messages (start to head) | {line} | {:.2} |",
            median / floor_median
        );
    }
}
