//! `provider`: ferry (the release binary) and SQD's EVM processor side by side, from process
//! start to the head, through a proxy that behaves as a hosted provider (a round trip per
//! request, a limit on calls per second answered with 429, a bandwidth cap) and on plain loopback,
//! over a dense, a sparse and an empty chain. Both count in the same proxy.

use crate::{
    chain::{BenchChain, CHAIN_ARGS, wallet_provider},
    process::NodeProcess,
    proxy::{CountingProxy, Counts, Shaping},
    stats::cpu_seconds,
};
use alloy::{
    node_bindings::AnvilInstance,
    primitives::{Address, U256},
    providers::{Provider, ext::AnvilApi},
    sol_types::SolEvent,
};
use ferry_contracts::FerryMessaging;
use ferry_messaging::{LogMessageToL2, VerifyLogs};
use ferry_primitives::Position;
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// A chain both read from block 0 to its head.
struct Target {
    name: &'static str,
    anvil: AnvilInstance,
    contract: Address,
    head: u64,
    messages: u64,
}

/// One reader's run: wall seconds to the head, its process's CPU seconds (ferry only), the
/// calls served by method, the requests refused with 429.
struct Run {
    seconds: f64,
    /// Stopped at [`SQD_LIMIT`] short of the head.
    stopped: bool,
    cpu: Option<f64>,
    counts: Counts,
    refused: u64,
}

pub(crate) async fn provider(
    shaping: Shaping,
    ferry_only: bool,
    chains: &[String],
    modes: &[VerifyLogs],
) {
    // Built before any clock starts: a build is not ferry's time to the head.
    crate::process::ferry_binary();
    let sqd = (!ferry_only).then(install_sqd);
    println!(
        "\n## A realistic provider: {} ms round trip, {} calls/s over {} s (429 above), {} Mbit/s; and loopback\n",
        shaping.rtt.as_millis(),
        shaping.rps,
        shaping.burst_seconds,
        shaping.bytes_per_second * 8 / 1_000_000
    );
    println!(
        "| chain | network | reader | seconds to the head | CPU s | calls served | of them eth_getLogs / headers / receipts | requests refused (429) | SQD / this |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for chain in chains {
        let target = match chain.as_str() {
            "dense" => dense().await,
            "sparse" => sparse().await,
            _ => empty().await,
        };
        for shaped in [Some(shaping), None] {
            compare(&target, shaped, sqd.as_deref(), modes).await;
        }
    }
}

/// ferry in each way of proving logs, then SQD, on `target` through one kind of network.
async fn compare(
    target: &Target,
    shaping: Option<Shaping>,
    sqd: Option<&Path>,
    modes: &[VerifyLogs],
) {
    let network = if shaping.is_some() { "provider" } else { "loopback" };
    let sqd_run = match sqd {
        Some(sqd) => Some(sqd_run(sqd, target, shaping).await),
        None => None,
    };
    for &mode in modes {
        let run = ferry_run(target, shaping, mode).await;
        let ratio = sqd_run.as_ref().map(|sqd| {
            let more = if sqd.stopped { "more than " } else { "" };
            format!("{more}{:.2}", sqd.seconds / run.seconds)
        });
        row(target, network, &format!("ferry, --l1.verify-logs {mode}"), &run, ratio);
    }
    if let Some(run) = &sqd_run {
        row(target, network, "SQD evm-processor 1.27.3", run, None);
    }
}

fn row(target: &Target, network: &str, reader: &str, run: &Run, ratio: Option<String>) {
    let get = |method: &str| run.counts.get(method).copied().unwrap_or(0);
    let calls: u64 = run.counts.values().sum();
    let seconds = if run.stopped {
        format!("stopped at {:.0}, short of the head", run.seconds)
    } else {
        format!("{:.2}", run.seconds)
    };
    println!(
        "| {} | {network} | {reader} | {seconds} | {} | {calls} | {} / {} / {} | {} | {} |",
        target.name,
        run.cpu.map_or_else(|| "-".to_owned(), |cpu| format!("{cpu:.2}")),
        get("eth_getLogs"),
        get("eth_getBlockByNumber"),
        get("eth_getBlockReceipts"),
        run.refused,
        ratio.unwrap_or_else(|| "-".to_owned()),
    );
}

/// The release binary on an empty datadir, from spawn to the checkpoint at the head; every
/// message checked stored.
async fn ferry_run(target: &Target, shaping: Option<Shaping>, mode: VerifyLogs) -> Run {
    let proxy = CountingProxy::start_shaped(target.anvil.endpoint(), shaping).await;
    let started = Instant::now();
    let mode = mode.to_string();
    let mut extra =
        vec!["--l1.verify-logs".to_owned(), mode, "--poll-interval".into(), "1s".into()];
    // Told the provider's rate, as SQD is.
    if let Some(shaping) = shaping {
        extra.extend(["--l1.max-rps".to_owned(), shaping.rps.to_string()]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let node = NodeProcess::start_with(proxy.url(), target.contract, 16, &extra).await;
    node.wait_checkpoint(Position::block_start(target.head + 1)).await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(node.pid());
    assert_eq!(node.messages_stored().await, target.messages, "ferry stored every message");
    drop(node);
    let (counts, refused) = (proxy.take(), proxy.take_refused());
    Run { seconds, stopped: false, cpu: Some(cpu), counts, refused }
}

/// SQD's processor (`crates/bench/sqd/processor.js`), from spawn to its exit at the head;
/// every message checked written. Told the provider's rate limit, as its docs advise.
async fn sqd_run(sqd: &Path, target: &Target, shaping: Option<Shaping>) -> Run {
    let proxy = CountingProxy::start_shaped(target.anvil.endpoint(), shaping).await;
    let out = tempfile::tempdir().unwrap();
    let csv = out.path().join("messages.csv");
    let mut command = Command::new("node");
    command
        .current_dir(sqd)
        .arg("processor.js")
        .args([proxy.url(), &target.contract.to_string()])
        .arg(LogMessageToL2::SIGNATURE_HASH.to_string())
        .args([target.head.to_string(), csv.to_str().unwrap().to_owned()])
        .args(shaping.map(|shaping| shaping.rps.to_string()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command.spawn().expect("node is installed");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SQD_LIMIT {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    if let Some(status) = status {
        assert!(status.success(), "SQD's processor failed: {status}");
        let rows = std::fs::read_to_string(&csv).unwrap().lines().count() as u64;
        assert_eq!(rows, target.messages, "SQD wrote every message");
    }
    let stopped = status.is_none();
    Run { seconds, stopped, cpu: None, counts: proxy.take(), refused: proxy.take_refused() }
}

/// How long SQD may take to reach the head before it is stopped (and reported so).
const SQD_LIMIT: Duration = Duration::from_secs(900);

/// Installs the pinned SQD processor under `target/bench/sqd` (`npm ci`, once per lock file):
/// where it runs from.
fn install_sqd() -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sqd");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench/sqd");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::read(source.join("package-lock.json")).unwrap();
    let installed = std::fs::read(dir.join("package-lock.json")).ok();
    for file in ["package.json", "package-lock.json", "processor.js"] {
        std::fs::copy(source.join(file), dir.join(file)).unwrap();
    }
    if installed.as_deref() != Some(lock.as_slice()) || !dir.join("node_modules").exists() {
        eprintln!("installing SQD's evm-processor into {}", dir.display());
        let status = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is installed");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    dir
}

/// 100,000 messages, 100 in each of 1,000 blocks.
async fn dense() -> Target {
    let chain = BenchChain::with_messages(100_000).await;
    let BenchChain { anvil, contract, head } = chain;
    Target {
        name: "dense: 100,000 messages in 1,000 blocks",
        anvil,
        contract,
        head,
        messages: 100_000,
    }
}

/// 2,000 messages over 10,000 blocks: one every five.
async fn sparse() -> Target {
    let anvil = ferry_test_support::anvil(&CHAIN_ARGS);
    let provider = wallet_provider(&anvil);
    let contract = FerryMessaging::deploy(provider.clone()).await.unwrap();
    for _ in 0..2_000 {
        let call = contract.sendMessageToL2(U256::from(1), U256::from(2), vec![U256::from(3)]);
        call.send().await.unwrap().get_receipt().await.unwrap();
        provider.anvil_mine(Some(4), None).await.unwrap();
    }
    let head = provider.get_block_number().await.unwrap();
    let contract = *contract.address();
    Target {
        name: "sparse: 2,000 messages over 10,000 blocks",
        anvil,
        contract,
        head,
        messages: 2_000,
    }
}

/// 10,000 blocks and no message.
async fn empty() -> Target {
    let anvil = ferry_test_support::anvil(&CHAIN_ARGS);
    let provider = wallet_provider(&anvil);
    let contract = *FerryMessaging::deploy(provider.clone()).await.unwrap().address();
    provider.anvil_mine(Some(10_000), None).await.unwrap();
    let head = provider.get_block_number().await.unwrap();
    Target { name: "empty: 10,000 blocks", anvil, contract, head, messages: 0 }
}
