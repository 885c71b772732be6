//! `ferry verify`: proves a store against L1 without trusting ferry. It reads what the store
//! holds (offline from a datadir, or through a running node's public listener) and checks it
//! against the chain: every message's hash recomputed from its fields, every message logged
//! on L1 in the range the checkpoint covers present with the same fields and origin, nothing
//! stored that L1 does not hold, the contract's `l1ToL2Messages(hash)` agreeing with each
//! message's state, and the nonce sequence without gaps.
//!
//! With `--proofs`, each stored message is also proven against its block: the block's receipts
//! rebuild its header's `receiptsRoot` and hold the message as stored (`proofs.rs`).
//!
//! L1 checks apply to the scanned blocks: from the start block (or from the block of the
//! first message checked, with `--from-seq`) to the checkpoint. The nonce check applies to
//! every stored message. Requests are paced at `--max-rps`; a progress bar shows on a
//! terminal.

use crate::CommandError;
use alloy::{
    primitives::{B256, U256},
    providers::DynProvider,
};
use clap::Args;
use ferry_contracts::FerryMessaging;
use ferry_primitives::{Inclusion, MessageState};
use std::{collections::HashMap, path::PathBuf};

mod holdings;
mod l1;
mod proofs;
mod report;

pub use report::{Finding, NonceRun, VerifyReport};

use holdings::{Holdings, Stored, from_datadir, from_node};
use l1::{L1, Logged, l1_failed_at, scan, scan_range};
use report::{print_report, progress_bar};

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
    /// Also prove each stored message against its block: its receipts (`eth_getBlockReceipts`)
    /// must rebuild the header's `receiptsRoot` and hold the message as stored. Two requests
    /// per block that holds a message.
    #[arg(long)]
    pub proofs: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
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
    for message in &checked {
        let logged = logged.get(&message.hash);
        let checks = Checks { in_scan: in_scan(message.origin.block_number), as_of };
        check_one(message, logged, checks, l1, &contract, &mut report).await?;
        l1.progress.inc(1);
    }
    l1.progress.finish_and_clear();
    if args.proofs {
        proofs::check_proofs(l1, holdings.contract, &checked, &mut report).await?;
    }
    report.nonce_gaps = nonce_gaps(holdings, &report);
    Ok(report)
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
