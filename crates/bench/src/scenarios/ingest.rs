//! `ingest`: N messages from an empty datadir, against the `eth_getLogs` floor.

use super::{Decode, floor, start_node_verifying};
use crate::{
    chain::BenchChain,
    stats::{cpu_seconds, summary},
};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use ferry_messaging::VerifyLogs;
use ferry_primitives::{Position, Seq};
use std::time::{Duration, Instant};

/// Ingest of `messages`: the floors (unless `ferry_only`), then ferry once per log proof in
/// `modes`, each against the first.
pub(crate) async fn ingest(messages: u64, ferry_only: bool, modes: &[VerifyLogs], runs: usize) {
    let chain = BenchChain::with_messages(messages).await;
    let url = chain.anvil.endpoint();
    let provider = ProviderBuilder::new().connect_http(chain.anvil.endpoint_url()).erased();
    let bench = Bench { provider, url, chain, messages, runs };
    let per_transaction = crate::chain::per_transaction(messages);
    println!(
        "\n## Ingest: {messages} messages, {} blocks ({per_transaction} per transaction)\n",
        bench.chain.head
    );
    println!(
        "| what | messages/s: median (min..max) over {runs} runs | CPU s per run: Anvil / this process |\n| --- | --- | --- |"
    );
    let mut best_floor = 0.0;
    for &settings in floor_settings(ferry_only) {
        let median = bench.floor_row(settings).await;
        if median > best_floor {
            best_floor = median;
        }
    }
    let medians = bench.ferry_rows(modes).await;
    println!();
    if let Some(&(first, first_median)) = medians.first() {
        for &(mode, median) in &medians[1..] {
            let cost = (1.0 - median / first_median) * 100.0;
            println!(
                "ferry {mode} / ferry {first} = {:.3} ({cost:.1} % slower)",
                median / first_median
            );
        }
    }
    if !ferry_only {
        for (mode, median) in &medians {
            println!("ferry {mode} / best floor = {:.2}", median / best_floor);
        }
    }
}

/// The floors to measure ferry against, none for `--ferry-only`: alloy's decoding at the
/// range and concurrency of a plain fetcher, then ferry's, down to the ranges ferry uses.
fn floor_settings(ferry_only: bool) -> &'static [(u64, usize, Decode)] {
    if ferry_only {
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
    }
}

/// What every row runs against. Fields drop in the order the scenario always dropped them,
/// Anvil last.
struct Bench {
    provider: DynProvider,
    url: String,
    chain: BenchChain,
    messages: u64,
    runs: usize,
}

impl Bench {
    /// CPU seconds of Anvil and of this process: the two share the cores, so a row's rate
    /// reads with who spent them.
    fn cpu(&self) -> (f64, f64) {
        (cpu_seconds(self.chain.anvil.child().id()), cpu_seconds(std::process::id()))
    }

    /// One floor row, `runs` runs of fetching and decoding every message log; the median rate,
    /// for the ratio ferry is reported against.
    async fn floor_row(&self, (range, in_flight, decode): (u64, usize, Decode)) -> f64 {
        let (chain, messages, runs) = (&self.chain, self.messages, self.runs);
        let mut rates = Vec::new();
        let cpu_before = self.cpu();
        for _ in 0..runs {
            let started = Instant::now();
            let decoded =
                floor(&self.provider, chain.contract, chain.head, (range, in_flight, decode)).await;
            assert_eq!(decoded, messages);
            rates.push(messages as f64 / started.elapsed().as_secs_f64());
        }
        let cpu_line = cpu_per_run(cpu_before, self.cpu(), runs);
        let line = summary(&mut rates);
        println!(
            "| floor: eth_getLogs, {range}-block ranges, {in_flight} in flight, {decode:?} decoding | {line} | {cpu_line} |"
        );
        rates[rates.len() / 2]
    }

    /// ferry's rows, one per way of proving logs in `modes`: `runs` runs each from an empty
    /// datadir to the head, each checked to hold every message, the modes taking turns run
    /// by run (so that the machine's drift is spread over all of them); each mode's median.
    async fn ferry_rows(&self, modes: &[VerifyLogs]) -> Vec<(VerifyLogs, f64)> {
        let mut rates = vec![Vec::new(); modes.len()];
        let mut cpu = vec![(0.0, 0.0); modes.len()];
        for _ in 0..self.runs {
            for (index, &mode) in modes.iter().enumerate() {
                let before = self.cpu();
                rates[index].push(self.ferry_run(mode).await);
                let after = self.cpu();
                cpu[index].0 += after.0 - before.0;
                cpu[index].1 += after.1 - before.1;
            }
        }
        let mut medians = Vec::new();
        for ((mode, mut rates), cpu) in modes.iter().zip(rates).zip(cpu) {
            let cpu_line = cpu_per_run((0.0, 0.0), cpu, self.runs);
            let line = summary(&mut rates);
            println!(
                "| ferry, --l1.verify-logs {mode}: empty datadir to the head (max-block-range 1000) | {line} | {cpu_line} |"
            );
            medians.push((*mode, rates[rates.len() / 2]));
        }
        medians
    }

    /// One run of ferry with logs proven as `mode` says: its rate.
    async fn ferry_run(&self, mode: VerifyLogs) -> f64 {
        let (chain, messages) = (&self.chain, self.messages);
        let started = Instant::now();
        let poll = Duration::from_secs(1);
        let node = start_node_verifying(&self.url, chain.contract, 1_000, poll, mode).await;
        let head = chain.head;
        node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
        let rate = messages as f64 / started.elapsed().as_secs_f64();
        assert_eq!(node.store.last_seq().unwrap(), Some(Seq(messages - 1)));
        node.stop().await;
        rate
    }
}

/// `anvil / this process` CPU seconds per run between two readings.
fn cpu_per_run(before: (f64, f64), after: (f64, f64), runs: usize) -> String {
    let runs = runs as f64;
    format!("{:.2} / {:.2}", (after.0 - before.0) / runs, (after.1 - before.1) / runs)
}
