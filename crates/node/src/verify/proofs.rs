//! `--proofs`: each stored message proven against its block as the node proves what it reads
//! (`--l1.verify-logs receipts`): the block at the stored number is the stored hash on L1,
//! its receipts rebuild the header's `receiptsRoot`, and the message is among the logs of
//! those receipts with every field and its place as stored. Against any endpoint: an answer
//! that does not prove out is a finding, never taken on trust.

use super::{Stored, VerifyReport, l1::L1, l1_failed_at, report::Finding};
use crate::CommandError;
use alloy::{
    eips::BlockId,
    primitives::{Address, B256},
    providers::Provider,
};
use ferry_primitives::{Inclusion, L1Message};
use std::collections::BTreeMap;

/// Proves every canonical message of `checked` against its block, adding a finding to
/// `report.unproven` for each that does not prove out; counts the blocks proven.
pub(super) async fn check_proofs(
    l1: &mut L1,
    contract: Address,
    checked: &[&Stored],
    report: &mut VerifyReport,
) -> Result<(), CommandError> {
    let mut by_block: BTreeMap<(u64, B256), Vec<&Stored>> = BTreeMap::new();
    for stored in checked.iter().filter(|stored| stored.inclusion == Inclusion::Canonical) {
        let key = (stored.origin.block_number, stored.origin.block_hash);
        by_block.entry(key).or_default().push(stored);
    }
    l1.progress = super::report::progress_bar(by_block.len() as u64);
    for ((number, hash), messages) in by_block {
        match proven_in(l1, contract, number, hash).await? {
            Ok(proven) => {
                report.proven_blocks += 1;
                for stored in messages {
                    let held = proven.iter().any(|l1| {
                        l1.hash() == stored.hash
                            && l1.message == stored.message
                            && l1.origin == stored.origin
                    });
                    if !held {
                        let reason = "not among the logs of its block's proven receipts";
                        report.unproven.push(finding(stored, reason.to_owned()));
                    }
                }
            }
            Err(reason) => {
                let findings = messages.into_iter().map(|stored| finding(stored, reason.clone()));
                report.unproven.extend(findings);
            }
        }
        l1.progress.inc(1);
    }
    l1.progress.finish_and_clear();
    Ok(())
}

/// The messages block `number` with `hash` proves, or why it proves nothing.
async fn proven_in(
    l1: &mut L1,
    contract: Address,
    number: u64,
    hash: B256,
) -> Result<Result<Vec<L1Message>, String>, CommandError> {
    l1.paced().await;
    let at_number = l1
        .provider
        .get_block_by_number(number.into())
        .await
        .map_err(l1_failed_at("eth_getBlockByNumber", number))?;
    let Some(block) = at_number else {
        return Ok(Err(format!("L1 has no block {number}")));
    };
    if block.header.hash != hash {
        return Ok(Err(format!(
            "block {number} on L1 is {}, not the stored {hash}",
            block.header.hash
        )));
    }
    l1.paced().await;
    let receipts = l1
        .provider
        .get_block_receipts(BlockId::from(hash))
        .await
        .map_err(l1_failed_at("eth_getBlockReceipts", number))?;
    let Some(receipts) = receipts else {
        return Ok(Err(format!("L1 has no receipts for block {number} ({hash})")));
    };
    let root = block.header.receipts_root;
    Ok(ferry_messaging::proven_messages(&receipts, (number, hash), root, contract))
}

fn finding(stored: &Stored, reason: String) -> Finding {
    Finding {
        seq: Some(stored.seq),
        hash: stored.hash,
        nonce: stored.message.nonce,
        block: stored.origin.block_number,
        fields: vec![reason],
    }
}
