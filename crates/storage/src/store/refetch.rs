//! Storing what a refetched transaction logged: the messages (and lifecycle events) of one L1
//! transaction the node missed, proven against their block by the caller, written through the
//! same path as a batch's, in one write transaction with an audit entry. The checkpoint does
//! not move.

use super::{
    Store,
    commit::{CommitSummary, MessagesWrite},
    window,
};
use crate::{ChangeOrigin, Error, Result, codec::CHECKPOINT, tables};
use ferry_primitives::{B256, L1Message, LifecycleEvent};

/// What a refetched transaction logged: [`Store::store_found`].
#[derive(Debug, Clone, Copy)]
pub struct FoundWrite<'a> {
    /// The transaction.
    pub transaction: B256,
    /// Its messages, in log order.
    pub messages: &'a [L1Message],
    /// Its lifecycle events, in log order.
    pub events: &'a [LifecycleEvent],
    /// Who asked, for the audit trail.
    pub origin: &'a ChangeOrigin,
}

impl Store {
    /// Stores the messages of a refetched transaction the store does not hold (one found
    /// again is skipped, an orphaned one included again, as in [`Store::commit`]) and applies
    /// its lifecycle events, at the end of the log, in one write transaction with an audit
    /// entry. Refused, with nothing written, when the transaction is at or after the
    /// checkpoint: the node reads it there anyway.
    pub fn store_found(&self, write: FoundWrite<'_>) -> Result<CommitSummary> {
        let txn = self.write()?;
        let checkpoint = txn.get::<tables::Checkpoint>(&CHECKPOINT)?;
        let resume = self.resume_position(checkpoint);
        let positions = write.messages.iter().map(|l1| l1.origin.position());
        let events = write.events.iter().map(|event| event.origin.position());
        if let Some(ahead) = positions.chain(events).find(|position| *position >= resume) {
            return Err(Error::NotReadYet { position: ahead, checkpoint: resume });
        }
        let hashes: Vec<B256> = write.messages.iter().map(L1Message::hash).collect();
        let known = window::bounds(&txn)?.heads();
        let window_start = txn.first::<tables::Headers>()?.map_or(u64::MAX, |(number, _)| number);
        let messages = MessagesWrite {
            messages: write.messages,
            hashes: &hashes,
            window_start,
            rewind_to: resume,
        };
        let summary = self.write_entries(&txn, known, messages, write.events)?;
        let origin = ChangeOrigin {
            method: write.origin.method,
            caller: format!(
                "{}; transaction {}: {} stored, {} included again, {} state changes",
                write.origin.caller,
                write.transaction,
                summary.stored,
                summary.reincluded,
                summary.state_changes
            ),
        };
        super::audit::append(&txn, &origin, (checkpoint, checkpoint), None)?;
        self.seal(&txn, || super::StoreWrite::Found {
            transaction: write.transaction,
            messages: write.messages.to_vec(),
            events: write.events.to_vec(),
            origin: write.origin.clone(),
        })?;
        txn.commit("store a refetched transaction")?;
        Ok(summary)
    }
}
