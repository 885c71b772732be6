//! What verify found, and how it is printed.

use alloy::primitives::{Address, B256, U256};
use ferry_primitives::Seq;
use serde::Serialize;

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
    /// With `--proofs`: blocks whose receipts proved out against their header.
    pub proven_blocks: u64,
    /// With `--proofs`: stored canonical messages their block does not prove (the reason in
    /// `fields`).
    pub unproven: Vec<Finding>,
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
            && self.unproven.is_empty()
    }

    /// How many findings, in all.
    pub fn problems(&self) -> usize {
        self.missing.len()
            + self.extra.len()
            + self.mismatched.len()
            + self.orphaned.len()
            + self.contract_state.len()
            + self.nonce_gaps.len()
            + self.unproven.len()
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

/// A bar on a terminal (hidden when stderr is not one).
pub(super) fn progress_bar(length: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {eta}") {
        bar.set_style(style);
    }
    bar
}

pub(super) fn print_report(report: &VerifyReport) {
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
    if report.proven_blocks > 0 || !report.unproven.is_empty() {
        println!("{:<16}{} blocks", "proven", report.proven_blocks);
        show("unproven", &report.unproven);
    }
    println!("{:<16}{}", "nonce gaps", report.nonce_gaps.len());
    for gap in report.nonce_gaps.iter().take(20) {
        println!("  nonces {}..={}", gap.first, gap.last);
    }
    println!("{}", if report.is_clean() { "OK: the store matches L1" } else { "FAILED" });
}
