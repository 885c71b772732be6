//! ferry's benchmarks. `cargo run --release -p ferry-bench -- <scenario> [options]`; results
//! go to stdout as markdown rows (docs/benchmarks.md collects them). Not tests: nothing here
//! asserts a timing.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a measuring tool: a failure aborts the run

mod chain;
mod plot;
mod process;
mod proxy;
mod scenarios;
mod stats;

use clap::{Parser, Subcommand};
use ferry_messaging::VerifyLogs;

/// Measures ferry against a local Anvil.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Runs per measurement (median and spread are reported).
    #[arg(long, default_value_t = 3, global = true)]
    runs: usize,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Ingest N messages: the eth_getLogs floor, then ferry from an empty datadir.
    Ingest {
        /// Messages on the chain (100 per transaction up to 100,000, then 1,000).
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// Measure ferry only (for profiling it): no floor, no ratio.
        #[arg(long)]
        ferry_only: bool,
        /// ferry's log proofs to measure, each against the first.
        #[arg(long, value_delimiter = ',', default_value = "off,bloom,receipts")]
        verify_logs: Vec<VerifyLogs>,
    },
    /// Catch up over empty blocks after the contract's last message.
    Catchup {
        /// Empty blocks to mine.
        #[arg(long, default_value_t = 1_000_000)]
        blocks: u64,
        /// ferry's --max-block-range.
        #[arg(long, default_value_t = 1_000)]
        max_block_range: u64,
    },
    /// Rewind K blocks on a caught-up store: time to the first re-gathered batch and to the head.
    Rewind {
        /// Messages on the chain.
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// Blocks to rewind.
        #[arg(long, default_value_t = 1_000)]
        blocks: u64,
    },
    /// From a block being mined to a subscriber receiving its message, over WebSocket heads and
    /// HTTP polling.
    Latency {
        /// Samples per transport.
        #[arg(long, default_value_t = 30)]
        samples: usize,
    },
    /// messaging_getCheckpoint and messaging_status under 1, 16 and 64 concurrent clients.
    Rpc {
        /// Requests per concurrency level and method.
        #[arg(long, default_value_t = 5_000)]
        requests: usize,
    },
    /// The node as its own process (the release binary): peak memory while ingesting, while one
    /// subscriber replays everything, and with many live subscribers.
    Memory {
        /// Messages on the chain (100 per transaction up to 100,000, then 1,000).
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        /// Live subscribers.
        #[arg(long, default_value_t = 1_000)]
        subscribers: usize,
    },
    /// L1 requests (what a hosted provider bills) to catch up over a dense, a sparse and an
    /// empty chain, and per block while following the head, counted by a proxy.
    Requests {
        /// ferry's log proofs to count the requests of.
        #[arg(long, value_delimiter = ',', default_value = "off,bloom,receipts")]
        verify_logs: Vec<VerifyLogs>,
    },
    /// ferry (the release binary) and SQD's EVM processor side by side, to the head of a dense,
    /// a sparse and an empty chain, through a proxy that behaves as a hosted provider, and on
    /// loopback (SQD is installed from npm under target/bench/sqd).
    Provider {
        /// The round trip added to every request, in milliseconds.
        #[arg(long, default_value_t = 40)]
        rtt_ms: u64,
        /// Calls per second the provider serves (each call of a batch counted); above it,
        /// HTTP 429. Both readers are told it (ferry's --l1.max-rps, SQD's rateLimit).
        #[arg(long, default_value_t = 25)]
        rps: u32,
        /// The window, in seconds, the provider averages the rate over (its largest burst).
        #[arg(long, default_value_t = 10)]
        burst_seconds: u32,
        /// The provider's bandwidth, in Mbit/s.
        #[arg(long, default_value_t = 50)]
        mbps: u64,
        /// ferry only, without SQD.
        #[arg(long)]
        ferry_only: bool,
        /// The chains, of dense, sparse and empty.
        #[arg(long, value_delimiter = ',', default_value = "dense,sparse,empty",
            value_parser = ["dense", "sparse", "empty"])]
        chains: Vec<String>,
        /// ferry's ways of proving logs measured, each a run of its own.
        #[arg(long, value_delimiter = ',', default_value = "bloom,off")]
        verify_logs: Vec<VerifyLogs>,
    },
    /// The NATS JetStream sink: ingest with it on and off, its catch-up rate, and fan-out to
    /// JetStream consumers (a `nats-server` is started on a free port).
    Sink {
        /// Messages on the chain.
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// JetStream consumer counts for the fan-out.
        #[arg(long, value_delimiter = ',', default_value = "100,1000")]
        consumers: Vec<usize>,
    },
    /// Ingest of a chain's messages into stores that already hold many (built once under
    /// target/bench/), and commit latency against store size.
    StoreSize {
        /// Store sizes to ingest into, besides an empty one.
        #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
        sizes: Vec<u64>,
        /// Messages on the chain.
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// A commit-latency CSV of another build (the old layout), drawn beside this one.
        #[arg(long)]
        before: Option<std::path::PathBuf>,
        /// Where to write the commit-latency plot (SVG).
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
    /// A group of three ferries on three nats-servers: the leader killed again and again;
    /// time to a new leader and to its first publish.
    Failover {
        /// Leader kills.
        #[arg(long, default_value_t = 20)]
        kills: usize,
        /// The group's lease, in milliseconds.
        #[arg(long, default_value_t = 5_000)]
        lease_ms: u64,
    },
    /// The release binary from process start to the checkpoint at the head, against the same
    /// pipeline in this process, and where the binary's start-up time goes.
    Startup {
        /// Messages on the chain.
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
    },
    /// Subscribers on a live stream, and one subscriber replaying stored messages.
    Fanout {
        /// Live subscribers.
        #[arg(long, default_value_t = 1_000)]
        subscribers: usize,
        /// Stored messages replayed by one subscriber.
        #[arg(long, default_value_t = 1_000_000)]
        replay: u64,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // Silent unless RUST_LOG asks (`RUST_LOG=ferry=debug` shows each gather and commit).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    println!("{}", stats::machine());
    match cli.scenario {
        Scenario::Ingest { messages, ferry_only, verify_logs } => {
            scenarios::ingest(messages, ferry_only, &verify_logs, cli.runs).await;
        }
        Scenario::Catchup { blocks, max_block_range } => {
            scenarios::catchup(blocks, max_block_range, cli.runs).await;
        }
        Scenario::Rewind { messages, blocks } => {
            scenarios::rewind(messages, blocks, cli.runs).await
        }
        Scenario::Latency { samples } => scenarios::latency(samples).await,
        Scenario::Requests { verify_logs } => scenarios::requests(&verify_logs).await,
        Scenario::Rpc { requests } => scenarios::rpc(requests).await,
        Scenario::Provider {
            rtt_ms,
            rps,
            burst_seconds,
            mbps,
            ferry_only,
            chains,
            verify_logs,
        } => {
            let shaping = proxy::Shaping {
                rtt: std::time::Duration::from_millis(rtt_ms),
                rps,
                burst_seconds,
                bytes_per_second: mbps * 1_000_000 / 8,
            };
            scenarios::provider(shaping, ferry_only, &chains, &verify_logs).await;
        }
        Scenario::Fanout { subscribers, replay } => scenarios::fanout(subscribers, replay).await,
        Scenario::Sink { messages, consumers } => {
            scenarios::sink(messages, &consumers, cli.runs).await
        }
        Scenario::StoreSize { sizes, messages, before, plot } => {
            scenarios::store_size(&sizes, messages, cli.runs, before.as_deref(), plot.as_deref())
                .await;
        }
        Scenario::Startup { messages } => scenarios::startup(messages, cli.runs).await,
        Scenario::Failover { kills, lease_ms } => {
            scenarios::failover(kills, std::time::Duration::from_millis(lease_ms)).await;
        }
        Scenario::Memory { messages, subscribers } => {
            scenarios::memory(messages, subscribers).await;
        }
    }
    println!(
        "\npeak RSS of the benchmark process (clients, and the node where it runs in-process): {} MiB",
        stats::peak_rss_mib()
    );
}
