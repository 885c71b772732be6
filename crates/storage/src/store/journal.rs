//! The store's writes as a replicated log (high availability): a node leading a group appends
//! each write to the group's journal *before* it commits it, inside the write transaction, and
//! records the journal's sequence of it in the same transaction; a standby replays the
//! journal's writes in order through the same code, recording each sequence likewise.
//!
//! So a member's store is always exactly the journal's writes up to sequence `n` applied in
//! order, `n` stored with them (`journal_applied`). A write may take several journal messages
//! (a large batch is cut to the servers' message size); a write whose messages were not all
//! appended (its leader died in between) is skipped by every member alike. The journal refuses
//! an append unless it ends where the writer read it (JetStream's expected last sequence): two
//! leaders can never both write, and a write that never reached the journal was never
//! committed anywhere. Only writes that
//! commit are appended (refusals such as a moved checkpoint return before it), so replaying
//! one on the same state commits too, with the leader's time (`clock.rs`).

use super::{BatchWrite, CheckpointWrite, CommitOutcome, FoundWrite, ReorgOutcome, ReorgWrite};
use crate::{
    ChangeOrigin, Error, FinalityTags, HaltRecord, Result, Store,
    codec::Name,
    tables,
    txn::{Txn, WriteTxn},
};
use ferry_primitives::{
    B256, BlockHeader, BlockRef, Checkpoint, L1Message, LifecycleEvent, Position,
};
use serde::{Deserialize, Serialize};
use std::{fmt, sync::Arc};

/// Meta: the journal sequence of the last write applied (absent: none).
const JOURNAL_APPLIED: Name = Name("journal_applied");

/// One write of the store, owned: what a leader appends to the journal and a standby replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "write")]
pub enum StoreWrite {
    /// [`Store::commit`]: a gathered batch.
    #[serde(rename_all = "camelCase")]
    Commit {
        /// Where it was gathered from.
        from: Position,
        /// Where reading goes on.
        next: Position,
        /// Its messages.
        messages: Vec<L1Message>,
        /// Its lifecycle events.
        events: Vec<LifecycleEvent>,
        /// Its headers.
        headers: Vec<BlockHeader>,
        /// The window's floor.
        window_floor: u64,
        /// The provider's safe block.
        safe: Option<BlockRef>,
        /// The provider's finalized block.
        finalized: Option<BlockRef>,
    },
    /// [`Store::record_reorg`].
    #[serde(rename_all = "camelCase")]
    Reorg {
        /// Where reading was.
        expected: Position,
        /// The newest block of the window still canonical.
        common_ancestor: BlockHeader,
    },
    /// [`Store::record_halt`].
    #[serde(rename_all = "camelCase")]
    Halt {
        /// Where reading was.
        expected: Position,
        /// Why ingestion halts.
        record: HaltRecord,
    },
    /// [`Store::change_checkpoint`]: an operator's change (or a test's).
    #[serde(rename_all = "camelCase")]
    Checkpoint {
        /// The new checkpoint.
        new: Checkpoint,
        /// The compare-and-set.
        expected: Option<Checkpoint>,
        /// Who asked.
        origin: Option<ChangeOrigin>,
    },
    /// [`Store::store_found`]: what a refetched transaction logged.
    #[serde(rename_all = "camelCase")]
    Found {
        /// The transaction.
        transaction: B256,
        /// Its messages.
        messages: Vec<L1Message>,
        /// Its lifecycle events.
        events: Vec<LifecycleEvent>,
        /// Who asked.
        origin: ChangeOrigin,
    },
}

impl StoreWrite {
    /// What the write is, for logs.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Commit { .. } => "commit",
            Self::Reorg { .. } => "reorg",
            Self::Halt { .. } => "halt",
            Self::Checkpoint { .. } => "checkpoint",
            Self::Found { .. } => "found",
        }
    }
}

/// A write with the time its transaction started on the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// When, in Unix milliseconds: what the records it writes say on every member.
    pub at_millis: u64,
    /// The write.
    #[serde(flatten)]
    pub write: StoreWrite,
}

/// Where a group's writes go before they commit. Called inside the write transaction, on the
/// blocking thread that runs it.
pub trait Journal: Send + Sync + fmt::Debug {
    /// Appends `entry` after the journal's write `after` (0: none; writes abandoned half-way
    /// since may lie between), once the journal holds all of it: the sequence that ends it.
    fn append(&self, after: u64, entry: &JournalEntry) -> Result<u64, JournalRefusal>;

    /// Why a write would be refused now without trying it (a standby's), if it would.
    fn check_writable(&self) -> Result<(), JournalRefusal> {
        Ok(())
    }
}

/// Where a write lies in the journal: its first and last message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalSpan {
    /// Its first message's sequence.
    pub first: u64,
    /// Its last message's sequence: what the store records once it is applied.
    pub last: u64,
}

/// Why the journal did not take a write; nothing was committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalRefusal {
    /// This node does not hold the group's lease: writes go to the leader.
    #[error(
        "this node is a standby of HA group {group}: {}; nothing was changed",
        match leader {
            Some(leader) => format!(
                "send writes to the leader, node {} (term {}), admin at {}",
                leader.node, leader.term, leader.admin
            ),
            None => "no member leads the group now; try again in a few seconds".to_owned(),
        }
    )]
    NotLeader {
        /// The group.
        group: String,
        /// Who leads, as far as this node knows.
        leader: Option<ferry_primitives::HaLeader>,
    },
    /// The journal holds writes this store has not applied (another leader wrote, or this
    /// node's own commit failed after its append): the store must catch up first.
    #[error("the journal does not end at write {after} (it ends at {last}): catch up first")]
    Behind {
        /// Where the store is.
        after: u64,
        /// Where the journal ends, when known.
        last: u64,
    },
    /// The journal could not be reached, or did not answer in time.
    #[error("the journal is unavailable: {0}")]
    Unavailable(String),
}

/// What [`Store::replay`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// The write was applied.
    Applied,
    /// The store had applied it already.
    AlreadyApplied,
}

/// The journal entry a replaying handle applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Replaying {
    span: JournalSpan,
    pub(super) at_millis: u64,
}

impl Store {
    /// Makes every write of this store (and its clones) go through `journal` first. Once: a
    /// second call is ignored and says so.
    pub fn attach_journal(&self, journal: Arc<dyn Journal>) -> bool {
        self.inner.journal.set(journal).is_ok()
    }

    /// Refuses at once what the journal would refuse anyway: a standby's writes (before an
    /// operator's change reads L1 or the store, say).
    pub fn check_writable(&self) -> Result<()> {
        match self.inner.journal.get() {
            Some(journal) => Ok(journal.check_writable()?),
            None => Ok(()),
        }
    }

    /// The journal sequence of the last write this store applied (0: none).
    pub fn journal_applied(&self) -> Result<u64> {
        applied(&self.read()?)
    }

    /// Applies the journal write at `span`, the next complete one after
    /// [`Store::journal_applied`] (only writes abandoned half-way lie between); one applied
    /// already is skipped. The write must commit: it did on the leader, on the same state.
    pub fn replay(&self, span: JournalSpan, entry: &JournalEntry) -> Result<Replayed> {
        let applied = self.journal_applied()?;
        let seq = span.last;
        if seq <= applied {
            return Ok(Replayed::AlreadyApplied);
        }
        if span.first <= applied || span.first > span.last {
            return Err(Error::JournalGap { applied, seq: span.first });
        }
        let replaying = Self {
            replaying: Some(Replaying { span, at_millis: entry.at_millis }),
            ..self.clone()
        };
        replaying.apply(seq, &entry.write)?;
        Ok(Replayed::Applied)
    }

    /// Runs `write` (journal write `seq`) on this replaying handle: it must commit.
    fn apply(&self, seq: u64, write: &StoreWrite) -> Result<()> {
        let diverged = |reason: String| Error::JournalDiverged { seq, reason };
        match write {
            StoreWrite::Commit {
                from,
                next,
                messages,
                events,
                headers,
                window_floor,
                safe,
                finalized,
            } => {
                let hashes: Vec<B256> = messages.iter().map(L1Message::hash).collect();
                let batch = BatchWrite {
                    from: *from,
                    next: *next,
                    messages,
                    hashes: &hashes,
                    events,
                    headers,
                    window_floor: *window_floor,
                    tags: FinalityTags { safe: *safe, finalized: *finalized },
                };
                match self.commit(&batch)? {
                    CommitOutcome::Committed(_) => {}
                    other => return Err(diverged(format!("the batch was refused: {other:?}"))),
                }
            }
            StoreWrite::Reorg { expected, common_ancestor } => {
                let write = ReorgWrite { expected: *expected, common_ancestor: *common_ancestor };
                if let ReorgOutcome::CheckpointMoved { found, .. } = self.record_reorg(&write)? {
                    return Err(diverged(format!("the checkpoint is {found:?}")));
                }
            }
            StoreWrite::Halt { expected, record } => {
                if !self.record_halt(*expected, record)? {
                    return Err(diverged(format!("reading is not at {expected}")));
                }
            }
            StoreWrite::Checkpoint { new, expected, origin } => {
                self.change_checkpoint(CheckpointWrite {
                    new: *new,
                    expected: *expected,
                    origin: origin.as_ref(),
                })?;
            }
            StoreWrite::Found { transaction, messages, events, origin } => {
                self.store_found(FoundWrite {
                    transaction: *transaction,
                    messages,
                    events,
                    origin,
                })?;
            }
        }
        Ok(())
    }

    /// Ends a write transaction that will commit: appends the write to the journal (a
    /// leader's) or checks it comes after the last one applied (a standby's replay), and
    /// records where it ends in the transaction. Without a journal, nothing.
    pub(super) fn seal(
        &self,
        txn: &WriteTxn<'_>,
        write: impl FnOnce() -> StoreWrite,
    ) -> Result<()> {
        let applied = applied(txn)?;
        let span = match (self.replaying, self.inner.journal.get()) {
            (Some(replaying), _) => replaying.span,
            (None, Some(journal)) => {
                let entry = JournalEntry { at_millis: crate::clock::unix_millis(), write: write() };
                let last = journal.append(applied, &entry)?;
                JournalSpan { first: last, last }
            }
            (None, None) => return Ok(()),
        };
        if span.first <= applied {
            return Err(Error::JournalGap { applied, seq: span.first });
        }
        let seq = span.last;
        txn.put::<tables::Meta>(&JOURNAL_APPLIED, &seq.to_be_bytes().to_vec())?;
        Ok(())
    }
}

fn applied<K: signet_libmdbx::TransactionKind>(txn: &Txn<'_, K>) -> Result<u64> {
    let Some(bytes) = txn.get::<tables::Meta>(&JOURNAL_APPLIED)? else { return Ok(0) };
    let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| Error::Corrupt {
        table: tables::Table::Meta.name(),
        key: JOURNAL_APPLIED.0.to_owned(),
        reason: format!("{} bytes, not 8", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

impl From<BatchWrite<'_>> for StoreWrite {
    fn from(batch: BatchWrite<'_>) -> Self {
        Self::Commit {
            from: batch.from,
            next: batch.next,
            messages: batch.messages.to_vec(),
            events: batch.events.to_vec(),
            headers: batch.headers.to_vec(),
            window_floor: batch.window_floor,
            safe: batch.tags.safe,
            finalized: batch.tags.finalized,
        }
    }
}
