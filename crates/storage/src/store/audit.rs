//! Appending to the audit trail of checkpoint changes, in the transaction that makes them.

use crate::{ChangeOrigin, Result, clock::unix_millis, codec::AuditRecord, tables, txn::WriteTxn};
use ferry_primitives::{Checkpoint, Skipped};

/// Appends a checkpoint change to the audit trail, in the transaction that makes it.
pub(super) fn append(
    txn: &WriteTxn<'_>,
    origin: &ChangeOrigin,
    (previous, current): (Checkpoint, Checkpoint),
    skipped: Option<Skipped>,
) -> Result<()> {
    let id = txn.last::<tables::Audit>()?.map_or(0, |(id, _)| id + 1);
    let record = AuditRecord {
        at_millis: unix_millis(),
        method: origin.method,
        caller: origin.caller.clone(),
        previous,
        current,
        skipped,
    };
    txn.append::<tables::Audit>(&id, &record)
}
