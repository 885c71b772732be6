//! From process start to the checkpoint at the head: the release binary against the same
//! pipeline in this process, on the same chain, alternating runs; and where the binary's
//! extra time goes, read from the timestamps of its own log.

use crate::{
    chain::BenchChain,
    process::{ferry_binary, free_addr},
    scenarios::settle,
    scenarios::start_node,
    stats::summary,
};
use ferry_primitives::Position;
use ferry_rpc_api::AdminApiClient;
use jsonrpsee::http_client::HttpClient;
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

/// The log lines of one binary run that mark a phase of its start (the first line holding
/// each), and what the phase before each is.
const MARKS: [(&str, &str); 4] = [
    (
        "method=eth_chainId",
        "exec, the runtime, the command line, logging, the metrics endpoint, the HTTP client",
    ),
    ("Creating database", "L1 answering its chain id"),
    ("Drain task started", "creating the store, binding the listeners, starting the tasks"),
    ("Committed", "the first gather (the window's headers, logs) and its commit"),
];

/// Seconds from `spawned` to the first log line of `log` holding each mark.
fn phases(log: &str, spawned: SystemTime) -> Vec<(&'static str, f64)> {
    let mut found = Vec::new();
    for line in log.lines() {
        let plain = strip_ansi(line);
        let Some(stamp) = plain.split_whitespace().next() else { continue };
        let Ok(at) = humantime::parse_rfc3339_weak(stamp) else { continue };
        let seconds = at.duration_since(spawned).unwrap_or_default().as_secs_f64();
        for (mark, _) in MARKS {
            if plain.contains(mark) && !found.iter().any(|(name, _)| *name == mark) {
                found.push((mark, seconds));
            }
        }
    }
    found
}

fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for end in chars.by_ref() {
                if end.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// One run of the release binary on an empty datadir: seconds to its admin listener, seconds
/// to the checkpoint at the head, and the marks of its log.
async fn binary_run(url: &str, chain: &BenchChain) -> (f64, f64, Vec<(&'static str, f64)>) {
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_addr(), free_addr());
    let log_path = dir.path().join("ferry.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let at_head = Position::block_start(chain.head + 1);
    let client = HttpClient::builder().build(format!("http://{admin}")).unwrap();
    let spawned = SystemTime::now();
    let started = Instant::now();
    let mut child = Command::new(ferry_binary())
        .args(["--l1.rpc-url", url, "--l1.contract", &chain.contract.to_string()])
        .args(["--datadir", dir.path().join("data").to_str().unwrap()])
        .args(["--rpc.addr", &public.to_string(), "--admin.addr", &admin.to_string()])
        .env("RUST_LOG", "info,ferry::messaging::drain=debug,alloy_rpc_client=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut listening = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "ferry did not reach the head within 60 s");
        match client.get_checkpoint().await {
            Ok(checkpoint) => {
                listening.get_or_insert(started.elapsed().as_secs_f64());
                if checkpoint == Some(at_head) {
                    break;
                }
            }
            Err(_) => assert!(child.try_wait().unwrap().is_none(), "ferry exited early"),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let at_head_seconds = started.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let marks = phases(&std::fs::read_to_string(&log_path).unwrap(), spawned);
    (listening.unwrap_or(at_head_seconds), at_head_seconds, marks)
}

pub(crate) async fn startup(messages: u64, runs: usize) {
    let chain = BenchChain::with_messages(messages).await;
    let url = chain.anvil.endpoint();
    ferry_binary();
    let mut times = Times::default();
    for _ in 0..runs {
        settle();
        times.in_process.push(in_process_run(&url, &chain).await);

        settle();
        let (listen, at_head, run_marks) = binary_run(&url, &chain).await;
        times.listening.push(listen);
        times.binary.push(at_head);
        times.marks.push(run_marks);
    }
    print_totals(&times, &chain, messages, runs);
    print_marks(&times.marks, runs);
    print_http_client(runs);
}

/// Seconds of every run, in run order: the two kinds of run alternate, so both see the same
/// state of the disk and of Anvil.
#[derive(Default)]
struct Times {
    /// The pipeline in this process, `Store::open` to the checkpoint at the head.
    in_process: Vec<f64>,
    /// The release binary, spawn to the checkpoint at the head.
    binary: Vec<f64>,
    /// The release binary, spawn to its admin listener answering.
    listening: Vec<f64>,
    /// The marks of each binary run's log.
    marks: Vec<Vec<(&'static str, f64)>>,
}

/// One run of the pipeline in this process on an empty datadir: seconds to the checkpoint at
/// the head, the baseline the binary's extra time is measured against.
async fn in_process_run(url: &str, chain: &BenchChain) -> f64 {
    let started = Instant::now();
    let node = start_node(url, chain.contract, 1_000, Duration::from_secs(1)).await;
    let head = chain.head;
    node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
    let seconds = started.elapsed().as_secs_f64();
    node.stop().await;
    seconds
}

/// The median of `values`, which are left as they are: the table prints their spread after.
fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `median (min..max) ms` of `seconds`.
fn ms(seconds: &[f64]) -> String {
    let mut millis: Vec<f64> = seconds.iter().map(|s| s * 1e3).collect();
    format!("{} ms", summary(&mut millis))
}

/// The table of the three times, and the binary's extra time over the pipeline in process:
/// what the binary itself costs, as the medians set it.
fn print_totals(times: &Times, chain: &BenchChain, messages: u64, runs: usize) {
    let (in_process_median, binary_median) = (median(&times.in_process), median(&times.binary));
    println!(
        "\n## Start to the head of {messages} messages ({} blocks), {runs} runs\n",
        chain.head
    );
    println!("| what | seconds: median (min..max) |\n| --- | --- |");
    println!(
        "| in process: `Store::open` to the checkpoint at the head | {} |",
        ms(&times.in_process)
    );
    println!(
        "| release binary: spawn to the checkpoint at the head (admin RPC polled every 1 ms) | {} |",
        ms(&times.binary)
    );
    println!(
        "| release binary: spawn to its admin listener answering | {} |",
        ms(&times.listening)
    );
    println!(
        "\nbinary / in process = {:.2} ({:.0} ms more)",
        binary_median / in_process_median,
        (binary_median - in_process_median) * 1e3
    );
}

/// Where the binary's time goes: the median time of each mark over the runs whose log held
/// it (a mark missing from every log has no row).
fn print_marks(marks: &[Vec<(&'static str, f64)>], runs: usize) {
    println!(
        "\n### Where the binary's time goes (log timestamps from spawn, median of {runs} runs)\n"
    );
    println!("| log line | ms from spawn | what came before it |\n| --- | --- | --- |");
    for (mark, what) in MARKS {
        let at: Vec<f64> = marks
            .iter()
            .filter_map(|run| run.iter().find(|(name, _)| *name == mark).map(|(_, s)| *s))
            .collect();
        if !at.is_empty() {
            println!("| `{mark}` | {:.1} | {what} |", median(&at) * 1e3);
        }
    }
}

/// What building an HTTP client costs in this process: the part of the binary's first phase
/// that its log cannot separate from the rest. An `https://` endpoint's client (reqwest)
/// pays it; an `http://` endpoint's (hyper, no TLS) does not.
fn print_http_client(runs: usize) {
    let mut tls = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        drop(alloy::transports::http::reqwest::Client::new());
        tls.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "\nbuilding one https:// client (reqwest with native-tls: OpenSSL's context and the system's CA bundle; http:// endpoints skip it), in this process: {} ms",
        summary(&mut tls)
    );
}
