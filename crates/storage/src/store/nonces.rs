//! The runs of consecutive nonces that canonical messages hold: the Nonces table folded into
//! `first → last` rows, kept in the same transactions as Nonces.
//!
//! Why: a starting node restores its gap tracker (which nonces are missing) from the stored
//! nonces. Walking Nonces for that costs a cursor step per stored message, about a second at
//! 10,000,000 messages, on every start. The runs are a few rows (one per gap, plus one), and
//! a commit updates them once per run of nonces it brings, usually once.

use crate::{Error, Result, tables, txn::WriteTxn};
use ferry_primitives::U256;
use std::ops::ControlFlow;

const ONE: U256 = U256::from_limbs([1, 0, 0, 0]);

/// Adds `nonces` (now held by canonical messages; in any order, repeats allowed).
pub(super) fn add(txn: &WriteTxn<'_>, mut nonces: Vec<U256>) -> Result<()> {
    nonces.sort_unstable();
    nonces.dedup();
    let mut nonces = nonces.into_iter();
    let Some(mut first) = nonces.next() else { return Ok(()) };
    let mut last = first;
    for nonce in nonces {
        if last.checked_add(ONE) == Some(nonce) {
            last = nonce;
        } else {
            add_run(txn, first, last)?;
            (first, last) = (nonce, nonce);
        }
    }
    add_run(txn, first, last)
}

/// Adds `first..=last`, merged with every run it overlaps or touches.
fn add_run(txn: &WriteTxn<'_>, mut first: U256, mut last: U256) -> Result<()> {
    while let Some((run_first, run_last)) = run_at_or_below(txn, last.saturating_add(ONE))? {
        if run_last.saturating_add(ONE) < first {
            break;
        }
        txn.delete::<tables::NonceRuns>(&run_first)?;
        first = first.min(run_first);
        last = last.max(run_last);
    }
    txn.put::<tables::NonceRuns>(&first, &last)
}

/// Removes `nonce`, which no canonical message holds any more: its run is cut in two.
pub(super) fn remove(txn: &WriteTxn<'_>, nonce: U256) -> Result<()> {
    let run = run_at_or_below(txn, nonce)?.filter(|(_, last)| *last >= nonce);
    let Some((first, last)) = run else {
        return Err(Error::Corrupt {
            table: tables::Table::NonceRuns.name(),
            key: nonce.to_string(),
            reason: "the nonce was held by a canonical message, but no run holds it".to_owned(),
        });
    };
    txn.delete::<tables::NonceRuns>(&first)?;
    if first < nonce {
        txn.put::<tables::NonceRuns>(&first, &(nonce - ONE))?;
    }
    if nonce < last {
        txn.put::<tables::NonceRuns>(&(nonce + ONE), &last)?;
    }
    Ok(())
}

/// The run with the greatest first nonce not above `nonce`.
fn run_at_or_below(txn: &WriteTxn<'_>, nonce: U256) -> Result<Option<(U256, U256)>> {
    let mut found = None;
    txn.walk_back::<tables::NonceRuns>(Some(&nonce), |first, last| {
        found = Some((first, last));
        Ok(ControlFlow::Break(()))
    })?;
    Ok(found)
}

/// Builds the runs from the Nonces table: the migration from a schema without them.
pub(super) fn rebuild(txn: &WriteTxn<'_>) -> Result<()> {
    let mut nonces = Vec::new();
    txn.walk::<tables::Nonces>(None, |nonce, _| {
        nonces.push(nonce);
        if nonces.len() == 1 << 20 {
            add(txn, std::mem::take(&mut nonces))?;
        }
        Ok(ControlFlow::Continue(()))
    })?;
    add(txn, nonces)
}
