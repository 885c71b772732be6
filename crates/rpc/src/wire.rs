//! The wire forms of what the node's crates keep in their own types: the single conversion of
//! each (most wire types are the node's own, from `ferry-primitives`, and need none).

use ferry_messaging::{CheckpointChange, CheckpointPreview};
use ferry_rpc_api::{CheckpointChangeResult, HistoryEntry, ReorgEntry};
use ferry_storage::{AuditEntry, ReorgRecord};

/// Reorg `id` as `messaging_getReorgs` and `messaging_status` report it.
pub(crate) fn reorg_entry(id: u64, record: ReorgRecord) -> ReorgEntry {
    ReorgEntry {
        id,
        time: record.at_millis,
        cause: record.cause.name().to_owned(),
        rewind_to: record.rewind_to,
        common_ancestor: record.common_ancestor,
        old_tip: record.old_tip,
        orphaned: record.orphaned,
        first_notice_seq: record.first_notice,
    }
}

/// An applied set or reset, as its answer.
pub(crate) fn applied(change: CheckpointChange) -> CheckpointChangeResult {
    CheckpointChangeResult {
        dry_run: false,
        previous: change.previous,
        current: change.current,
        rewind_applied: Some(change.rewind_applied),
        effect: None,
        orphaned: (change.orphaned > 0).then_some(change.orphaned),
        resolved: None,
    }
}

/// A dry run's answer.
pub(crate) fn previewed(preview: CheckpointPreview) -> CheckpointChangeResult {
    CheckpointChangeResult {
        dry_run: true,
        previous: preview.previous,
        current: preview.current,
        rewind_applied: None,
        effect: Some(preview.effect),
        orphaned: None,
        resolved: None,
    }
}

/// One audited checkpoint change, as `messaging_getCheckpointHistory` lists it.
pub(crate) fn history_entry(entry: AuditEntry) -> HistoryEntry {
    HistoryEntry {
        id: entry.id,
        time: entry.at_millis,
        method: entry.method.name().to_owned(),
        caller: entry.caller,
        previous: entry.previous,
        current: entry.current,
        skipped: entry.skipped,
    }
}
