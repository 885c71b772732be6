//! A reorg the node must not heal by itself: the record it keeps in the store (it survives
//! restarts until an operator resolves it) and what status says of it.

use crate::{DeepReorg, DeepReorgKind};
use ferry_primitives::{Halt, HaltCause};
use ferry_storage::{HaltKind, HaltRecord};
use std::time::{SystemTime, UNIX_EPOCH};

/// The record a deep reorg writes.
pub(crate) fn record(reorg: &DeepReorg) -> HaltRecord {
    let (kind, lowest_checked, common_ancestor, finalized) = match reorg.kind {
        DeepReorgKind::BeyondWindow { lowest } => {
            (HaltKind::BeyondWindow, lowest.number, None, None)
        }
        DeepReorgKind::BelowFinalized { common_ancestor, finalized } => (
            HaltKind::BelowFinalized,
            common_ancestor.number + 1,
            Some(common_ancestor.number),
            Some(finalized),
        ),
    };
    HaltRecord {
        at_millis: unix_millis(),
        kind,
        replaced: ferry_primitives::BlockRef {
            number: reorg.replaced.number,
            hash: reorg.replaced.kept,
        },
        lowest_checked,
        common_ancestor,
        finalized,
    }
}

/// What status says of a halt the store holds.
pub(crate) fn status_of(record: &HaltRecord) -> Halt {
    let reason = match record.kind {
        HaltKind::BeyondWindow => format!(
            "reorg deeper than the header window: block {} (the lowest kept) was replaced \
             too; no rewind is safe without an operator: move the checkpoint to the start of \
             a block before the fork (messaging_setCheckpoint); what was stored from there is \
             orphaned and found again",
            record.lowest_checked
        ),
        HaltKind::BelowFinalized => format!(
            "reorg below the finalized block {}: the chain replaced blocks after {}; the \
             provider's finality is broken or it lies; move the checkpoint \
             (messaging_setCheckpoint) once the chain is trusted again",
            record.finalized.unwrap_or_default(),
            record.common_ancestor.unwrap_or_default()
        ),
    };
    let cause = match record.kind {
        HaltKind::BeyondWindow => HaltCause::ReorgBeyondWindow,
        HaltKind::BelowFinalized => HaltCause::ReorgBelowFinalized,
    };
    Halt {
        cause,
        reason,
        replaced_block: Some(record.replaced.number),
        common_ancestor: record.common_ancestor,
        finalized: record.finalized,
        since: record.at_millis,
    }
}

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}
