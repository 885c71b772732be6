//! `ferry verify`: proves a store against L1 without trusting ferry. It reads what the store
//! holds (offline from a datadir, or through a running node's public listener) and checks it
//! against the chain: every message's hash recomputed from its fields, every message logged
//! on L1 in the range the checkpoint covers present with the same fields and origin, nothing
//! stored that L1 does not hold, the contract's `l1ToL2Messages(hash)` agreeing with each
//! message's state, and the nonce sequence without gaps.
//!
//! L1 checks apply to the scanned blocks: from the start block (or from the block of the
//! first message checked, with `--from-seq`) to the checkpoint. The nonce check applies to
//! every stored message. Requests are paced at `--max-rps`; a progress bar shows on a
//! terminal.

use crate::CommandError;
use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use clap::Args;
use ferry_contracts::FerryMessaging;
use ferry_messaging::LogMessageToL2;
use ferry_primitives::{
    EntryKind, Inclusion, Lifecycle, Message, MessageState, Origin, Position, Seq,
};
use ferry_rpc_api::PublicApiClient;
use serde::Serialize;
use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    time::Duration,
};

/// `ferry verify` options.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Read the store in this datadir (read-only: safe while a node runs on it).
    #[arg(long, required_unless_present = "rpc_url", conflicts_with = "rpc_url")]
    pub datadir: Option<PathBuf>,
    /// Read the stored log through a running node's public listener instead
    /// (`http://127.0.0.1:5050`).
    #[arg(long = "rpc.url", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// The L1 JSON-RPC endpoint to check against (HTTP).
    #[arg(long = "l1.rpc-url", env = "FERRY_L1_RPC_URL", value_name = "URL")]
    pub l1_rpc_url: String,
    /// The most L1 requests per second.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rps: u32,
    /// Check stored messages from this seq on (to resume a verify): the L1 scan starts at the
    /// block of the first one.
    #[arg(long, default_value_t = 0)]
    pub from_seq: u64,
    /// Blocks per `eth_getLogs` request.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub block_range: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A stored message as verify sees it.
#[derive(Debug, Clone)]
struct Stored {
    seq: Seq,
    hash: B256,
    message: Message,
    origin: Origin,
    inclusion: Inclusion,
    lifecycle: Lifecycle,
}

/// What the store says it holds, wherever it was read from.
#[derive(Debug)]
struct Holdings {
    chain_id: u64,
    contract: Address,
    from_block: u64,
    /// The next position the node reads: everything before it was scanned.
    next: Position,
    messages: Vec<Stored>,
}

/// What verify found.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// The L1 chain id.
    pub chain_id: u64,
    /// The messaging contract.
    pub contract: Address,
    /// The blocks scanned on L1, first and last.
    pub scanned_blocks: Option<(u64, u64)>,
    /// Stored messages checked.
    pub checked: u64,
    /// Messages L1 logged in the scanned blocks.
    pub on_l1: u64,
    /// On L1 in the scanned blocks, not stored.
    pub missing: Vec<Finding>,
    /// Stored (canonical, in the scanned blocks), not on L1: from another chain or fork.
    pub extra: Vec<Finding>,
    /// Stored and on L1 under the same hash, with fields that differ (or that do not hash to
    /// the stored hash).
    pub mismatched: Vec<Finding>,
    /// Stored as orphaned by a reorg, though L1 holds them canonically.
    pub orphaned: Vec<Finding>,
    /// The contract's `l1ToL2Messages(hash)` disagrees with the stored state.
    pub contract_state: Vec<Finding>,
    /// Nonces missing between stored ones that no missing message accounts for.
    pub nonce_gaps: Vec<NonceRun>,
}

impl VerifyReport {
    /// Whether everything matched.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.mismatched.is_empty()
            && self.orphaned.is_empty()
            && self.contract_state.is_empty()
            && self.nonce_gaps.is_empty()
    }

    /// How many findings, in all.
    pub fn problems(&self) -> usize {
        self.missing.len()
            + self.extra.len()
            + self.mismatched.len()
            + self.orphaned.len()
            + self.contract_state.len()
            + self.nonce_gaps.len()
    }
}

/// One message verify reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Its seq in the store (none for a missing message).
    pub seq: Option<Seq>,
    /// Its message hash.
    pub hash: B256,
    /// Its nonce.
    pub nonce: U256,
    /// Its block (on L1 for a missing message, as stored otherwise).
    pub block: u64,
    /// What differs, for a mismatch or a contract disagreement.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// Nonces `first..=last`, none stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NonceRun {
    /// The first.
    pub first: U256,
    /// The last.
    pub last: U256,
}

/// Runs `ferry verify`; prints the report. An error when anything did not match.
pub(crate) async fn run(args: VerifyArgs) -> Result<(), CommandError> {
    let holdings = match (&args.datadir, &args.rpc_url) {
        (Some(datadir), _) => from_datadir(datadir)?,
        (None, Some(url)) => from_node(url).await?,
        (None, None) => return Err(CommandError::Usage("give --datadir or --rpc.url")),
    };
    let mut l1 = L1::connect(&args)?;
    let reported = l1.chain_id().await?;
    if reported != holdings.chain_id {
        return Err(CommandError::Verify(format!(
            "the store is for chain {} but {} is chain {reported}",
            holdings.chain_id, args.l1_rpc_url
        )));
    }
    let report = verify(&holdings, &mut l1, &args).await?;
    if args.json {
        crate::output::print_json(&report);
    } else {
        print_report(&report);
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(CommandError::Verify(format!("{} findings; see the report", report.problems())))
    }
}

fn from_datadir(datadir: &std::path::Path) -> Result<Holdings, CommandError> {
    let store = ferry_storage::Store::open_read_only(datadir)?;
    let config = store.config();
    let next = store.resume_position(store.checkpoint()?);
    let mut messages = Vec::new();
    let mut from = Seq::ZERO;
    loop {
        let chunk = store.messages_from(from, 10_000)?;
        let Some(last) = chunk.last() else { break };
        from = last.seq.next();
        messages.extend(chunk.into_iter().map(|stored| Stored {
            seq: stored.seq,
            hash: stored.hash,
            message: stored.l1.message,
            origin: stored.l1.origin,
            inclusion: stored.inclusion,
            lifecycle: stored.lifecycle,
        }));
    }
    Ok(Holdings {
        chain_id: config.chain_id,
        contract: config.contract,
        from_block: config.from_block,
        next,
        messages,
    })
}

/// The log through a node's public listener, applied as a consumer applies it: each message
/// at its latest origin, with its inclusion and state now.
async fn from_node(url: &str) -> Result<Holdings, CommandError> {
    let client = jsonrpsee::http_client::HttpClient::builder()
        .max_response_size(ferry_rpc_api::MAX_CLIENT_RESPONSE_BYTES)
        .build(url)
        .map_err(|error| CommandError::Verify(format!("cannot reach {url}: {error}")))?;
    let failed = |error: jsonrpsee::core::ClientError| {
        CommandError::Verify(format!("the node at {url} answered: {error}"))
    };
    let status = client.status().await.map_err(failed)?;
    let mut messages: BTreeMap<Seq, Stored> = BTreeMap::new();
    let mut next_seq = 0;
    loop {
        let page = client.get_messages(next_seq, Some(1_000), None).await.map_err(failed)?;
        if page.entries.is_empty() {
            break;
        }
        next_seq = page.next_seq;
        for entry in page.entries {
            match entry.kind {
                EntryKind::Message => {
                    let stored = Stored {
                        seq: entry.seq,
                        hash: entry.hash,
                        message: entry.l1.message,
                        origin: entry.l1.origin,
                        inclusion: entry.inclusion,
                        lifecycle: entry.lifecycle,
                    };
                    messages.insert(entry.seq, stored);
                }
                EntryKind::Reincluded => {
                    if let Some(stored) = messages.get_mut(&entry.message_seq) {
                        stored.origin = entry.l1.origin;
                    }
                }
                EntryKind::Removed | EntryKind::StateChanged => {}
            }
        }
    }
    // Inclusion and state are the node's now, on every entry: the newest entry read says it.
    let resume = status.checkpoint.unwrap_or(Position::block_start(status.from_block));
    Ok(Holdings {
        chain_id: status.chain_id,
        contract: status.contract,
        from_block: status.from_block,
        next: resume,
        messages: messages.into_values().collect(),
    })
}

/// L1, paced.
struct L1 {
    provider: DynProvider,
    pace: tokio::time::Interval,
    progress: indicatif::ProgressBar,
}

impl L1 {
    fn connect(args: &VerifyArgs) -> Result<Self, CommandError> {
        let url = args.l1_rpc_url.parse().map_err(|error| {
            CommandError::Verify(format!("{} is not a URL: {error}", args.l1_rpc_url))
        })?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let mut pace = tokio::time::interval(Duration::from_secs(1) / args.max_rps);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self { provider, pace, progress: indicatif::ProgressBar::hidden() })
    }

    async fn paced(&mut self) {
        self.pace.tick().await;
    }

    async fn chain_id(&mut self) -> Result<u64, CommandError> {
        self.paced().await;
        self.provider.get_chain_id().await.map_err(l1_failed("eth_chainId"))
    }
}

fn l1_failed(what: &'static str) -> impl Fn(alloy::transports::TransportError) -> CommandError {
    move |error| CommandError::Verify(format!("L1 {what} failed: {error}"))
}

/// A message logged on L1.
#[derive(Debug, Clone)]
struct Logged {
    message: Message,
    origin: Origin,
}

async fn verify(
    holdings: &Holdings,
    l1: &mut L1,
    args: &VerifyArgs,
) -> Result<VerifyReport, CommandError> {
    let mut report = VerifyReport {
        chain_id: holdings.chain_id,
        contract: holdings.contract,
        ..VerifyReport::default()
    };
    let checked: Vec<&Stored> =
        holdings.messages.iter().filter(|stored| stored.seq.0 >= args.from_seq).collect();
    report.checked = checked.len() as u64;
    let logged = match scan_range(holdings, &checked, args.from_seq) {
        Some((first, last)) => {
            report.scanned_blocks = Some((first, last));
            scan(l1, holdings.contract, first, last, holdings.next, args.block_range).await?
        }
        None => HashMap::new(),
    };
    report.on_l1 = logged.len() as u64;
    let scanned = report.scanned_blocks;
    let in_scan = |block: u64| scanned.is_some_and(|(first, last)| (first..=last).contains(&block));
    let stored: HashMap<B256, &Stored> =
        holdings.messages.iter().map(|stored| (stored.hash, stored)).collect();
    let mut missing: Vec<Finding> = logged
        .iter()
        .filter(|(hash, _)| !stored.contains_key(*hash))
        .map(|(hash, log)| Finding {
            seq: None,
            hash: *hash,
            nonce: log.message.nonce,
            block: log.origin.block_number,
            fields: Vec::new(),
        })
        .collect();
    missing.sort_by_key(|finding| finding.nonce);
    report.missing = missing;
    l1.progress = progress_bar(checked.len() as u64);
    let contract = FerryMessaging::new(holdings.contract, l1.provider.clone());
    // The contract as of the last block the store covers: later events are not the store's yet.
    let as_of = report.scanned_blocks.map(|(_, last)| last);
    for message in checked {
        let logged = logged.get(&message.hash);
        let checks = Checks { in_scan: in_scan(message.origin.block_number), as_of };
        check_one(message, logged, checks, l1, &contract, &mut report).await?;
        l1.progress.inc(1);
    }
    l1.progress.finish_and_clear();
    report.nonce_gaps = nonce_gaps(holdings, &report);
    Ok(report)
}

/// The blocks to scan on L1: from the start block (or the oldest block among the messages
/// checked, with `--from-seq`) to the one before the checkpoint (its own block too when the
/// checkpoint is inside it).
fn scan_range(holdings: &Holdings, checked: &[&Stored], from_seq: u64) -> Option<(u64, u64)> {
    let last = if holdings.next.index > 0 {
        holdings.next.block
    } else {
        holdings.next.block.checked_sub(1)?
    };
    let oldest = checked.iter().map(|stored| stored.origin.block_number).min();
    let first = if from_seq > 0 {
        oldest?
    } else {
        oldest.map_or(holdings.from_block, |oldest| oldest.min(holdings.from_block))
    };
    (first <= last).then_some((first, last))
}

/// Every `LogMessageToL2` of `contract` in `first..=last` before `next`, by message hash;
/// ranges of `block_range` blocks, halved when the provider refuses one.
async fn scan(
    l1: &mut L1,
    contract: Address,
    first: u64,
    last: u64,
    next: Position,
    block_range: u64,
) -> Result<HashMap<B256, Logged>, CommandError> {
    l1.progress = progress_bar(last - first + 1);
    let mut logged = HashMap::new();
    let (mut from, mut range) = (first, block_range);
    while from <= last {
        let to = last.min(from.saturating_add(range - 1));
        let filter = Filter::new()
            .address(contract)
            .event_signature(LogMessageToL2::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        l1.paced().await;
        let logs = match l1.provider.get_logs(&filter).await {
            Ok(logs) => logs,
            Err(_) if range > 1 => {
                range /= 2;
                continue;
            }
            Err(error) => return Err(l1_failed("eth_getLogs")(error)),
        };
        for log in logs {
            let (Some(block), Some(index), Some(block_hash), Some(transaction_hash)) =
                (log.block_number, log.log_index, log.block_hash, log.transaction_hash)
            else {
                return Err(CommandError::Verify(format!(
                    "L1 gave a log without its place in {from}..={to}"
                )));
            };
            if Position::new(block, index) >= next {
                continue;
            }
            let event = log.log_decode::<LogMessageToL2>().map_err(|error| {
                CommandError::Verify(format!("a log of block {block} does not decode: {error}"))
            })?;
            let message = Message::from(event.inner.data);
            let origin =
                Origin { block_number: block, block_hash, transaction_hash, log_index: index };
            logged.insert(message.hash(), Logged { message, origin });
        }
        l1.progress.inc(to - from + 1);
        from = to + 1;
    }
    l1.progress.finish_and_clear();
    Ok(logged)
}

/// Checks one stored message against what L1 logged under its hash and what the contract
/// holds for it, adding what does not match to `report` (one category each).
/// What applies to one stored message.
#[derive(Debug, Clone, Copy)]
struct Checks {
    /// Its block was scanned on L1.
    in_scan: bool,
    /// The block to read the contract at.
    as_of: Option<u64>,
}

async fn check_one(
    stored: &Stored,
    logged: Option<&Logged>,
    checks: Checks,
    l1: &mut L1,
    contract: &FerryMessaging::FerryMessagingInstance<DynProvider>,
    report: &mut VerifyReport,
) -> Result<(), CommandError> {
    let finding = |fields: Vec<String>| Finding {
        seq: Some(stored.seq),
        hash: stored.hash,
        nonce: stored.message.nonce,
        block: stored.origin.block_number,
        fields,
    };
    let mut fields = logged.map(|logged| differing(stored, logged)).unwrap_or_default();
    if stored.message.hash() != stored.hash {
        fields.push("hash".to_owned());
    }
    match (stored.inclusion, logged) {
        _ if !fields.is_empty() => report.mismatched.push(finding(fields)),
        (Inclusion::Orphaned, Some(_)) => report.orphaned.push(finding(Vec::new())),
        (Inclusion::Orphaned, None) => {}
        (Inclusion::Canonical, None) => {
            if checks.in_scan {
                report.extra.push(finding(Vec::new()));
            }
        }
        (Inclusion::Canonical, Some(_)) => {
            let expected = match stored.lifecycle.state {
                MessageState::Pending | MessageState::CancellationStarted => {
                    stored.message.fee + U256::from(1)
                }
                MessageState::Cancelled | MessageState::Consumed => U256::ZERO,
            };
            l1.paced().await;
            let mut call = contract.l1ToL2Messages(stored.hash);
            if let Some(block) = checks.as_of {
                call = call.block(block.into());
            }
            let found = call.call().await.map_err(|error| {
                CommandError::Verify(format!("L1 eth_call l1ToL2Messages failed: {error}"))
            })?;
            if found != expected {
                report.contract_state.push(finding(vec![format!(
                    "l1ToL2Messages is {found}, the stored state {} says {expected}",
                    stored.lifecycle.state
                )]));
            }
        }
    }
    Ok(())
}

/// The fields in which the stored message differs from the one L1 logged.
fn differing(stored: &Stored, logged: &Logged) -> Vec<String> {
    let (a, b) = (&stored.message, &logged.message);
    let (o, p) = (&stored.origin, &logged.origin);
    [
        ("from", a.from != b.from),
        ("to", a.to != b.to),
        ("selector", a.selector != b.selector),
        ("payload", a.payload != b.payload),
        ("nonce", a.nonce != b.nonce),
        ("fee", a.fee != b.fee),
        ("block", o.block_number != p.block_number),
        ("blockHash", o.block_hash != p.block_hash),
        ("transactionHash", o.transaction_hash != p.transaction_hash),
        ("logIndex", o.log_index != p.log_index),
    ]
    .into_iter()
    .filter(|(_, differs)| *differs)
    .map(|(name, _)| name.to_owned())
    .collect()
}

/// Runs of nonces between the lowest and highest stored canonical ones that are neither
/// stored nor accounted for by a missing message; extras are left out of the sequence.
fn nonce_gaps(holdings: &Holdings, report: &VerifyReport) -> Vec<NonceRun> {
    let extra: std::collections::HashSet<B256> = report.extra.iter().map(|f| f.hash).collect();
    let mut nonces: Vec<U256> = holdings
        .messages
        .iter()
        .filter(|stored| stored.inclusion == Inclusion::Canonical && !extra.contains(&stored.hash))
        .map(|stored| stored.message.nonce)
        .chain(report.missing.iter().map(|finding| finding.nonce))
        .collect();
    nonces.sort_unstable();
    nonces.dedup();
    nonces
        .windows(2)
        .filter(|pair| pair[1] > pair[0] + U256::from(1))
        .map(|pair| NonceRun { first: pair[0] + U256::from(1), last: pair[1] - U256::from(1) })
        .collect()
}

/// A bar on a terminal (hidden when stderr is not one).
fn progress_bar(length: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {eta}") {
        bar.set_style(style);
    }
    bar
}

fn print_report(report: &VerifyReport) {
    println!(
        "chain {}, contract {}: {} stored messages checked; {} on L1 in blocks {}",
        report.chain_id,
        report.contract,
        report.checked,
        report.on_l1,
        report
            .scanned_blocks
            .map_or_else(|| "(none)".to_owned(), |(first, last)| format!("{first}..={last}"))
    );
    let show = |name: &str, findings: &[Finding]| {
        println!("{name:<16}{}", findings.len());
        for finding in findings.iter().take(20) {
            let seq = finding.seq.map_or_else(|| "-".to_owned(), |seq| seq.to_string());
            let fields = if finding.fields.is_empty() {
                String::new()
            } else {
                format!(": {}", finding.fields.join(", "))
            };
            println!(
                "  seq {seq} nonce {} block {} hash {}{fields}",
                finding.nonce, finding.block, finding.hash
            );
        }
    };
    show("missing", &report.missing);
    show("extra", &report.extra);
    show("mismatched", &report.mismatched);
    show("orphaned", &report.orphaned);
    show("contract state", &report.contract_state);
    println!("{:<16}{}", "nonce gaps", report.nonce_gaps.len());
    for gap in report.nonce_gaps.iter().take(20) {
        println!("  nonces {}..={}", gap.first, gap.last);
    }
    println!("{}", if report.is_clean() { "OK: the store matches L1" } else { "FAILED" });
}
