//! The operator's side of the pipeline: reading, moving and resetting the checkpoint while the
//! node runs (store first, then an acknowledged rewind of the running task), previews, the
//! audit trail, rewinds by L1 time, and starting the drain task.

use crate::{
    Collector, ControllerError, DrainHandle, DrainRequests, DrainTask, Status,
    blocking::blocking,
    refetch::{Refetch, TransactionSource},
    stream::DEFAULT_REORG_WINDOW,
    timeline::{BlockClock, Unplaced, first_block_at},
};
use ferry_primitives::{
    B256, ChangeAction, ChangeEffect, Checkpoint, Position, Refetched, ResolvedTime,
};
use ferry_storage::{AuditEntry, ChangeMethod, ChangeOrigin, CheckpointWrite, ReorgSummary, Store};
use std::{
    cmp::Ordering,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering as AtomicOrdering},
    },
    time::Duration,
};
use tracing::warn;

const LOG_TARGET: &str = "ferry::messaging::controller";

/// How long a set or reset waits for the drain task to apply the rewind, sending the request
/// included.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a set waits for L1 to tell its head, before judging by the last head seen: a
/// provider that hangs must not hang the admin API.
const HEAD_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a rewind by time may search L1's blocks (some 60 header requests at most).
const TIME_SEARCH_TIMEOUT: Duration = Duration::from_secs(30);

/// What a set or reset changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointChange {
    /// The checkpoint before.
    pub previous: Checkpoint,
    /// The checkpoint now stored (`None` after a reset: reading starts at the start block).
    pub current: Checkpoint,
    /// Whether the running drain task has moved its cursor; `false` when it is not running,
    /// in which case the next start reads the stored value.
    pub rewind_applied: bool,
    /// Messages orphaned by the change: while the node is halted by a deep reorg, a change
    /// orphans what is stored from the new position on (found again by the re-scan if it is
    /// still on the chain).
    pub orphaned: u64,
}

/// What a set or reset would do, without doing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPreview {
    /// The checkpoint now.
    pub previous: Checkpoint,
    /// The checkpoint the change would store.
    pub current: Checkpoint,
    /// What reading would do differently.
    pub effect: ChangeEffect,
}

/// Reads, sets and resets the source checkpoint, and starts the drain task.
///
/// A set or reset writes the store first, then signals the drain task and waits (bounded) for it to
/// apply the rewind (invariant: acknowledged rewind). Changes are serialised, so the last one wins
/// in the store and in the cursor. Cheap to clone; every clone drives the same task.
#[derive(Debug, Clone)]
pub struct MessagingController {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    status: Arc<Status>,
    /// The running drain task's requests, once started.
    drain: Mutex<Option<DrainRequests>>,
    /// Serialises sets and resets: store write and rewind happen in the same order.
    changes: tokio::sync::Mutex<()>,
    /// The header window's depth below the head, for the task it starts.
    reorg_window: AtomicU64,
    /// Where fresh L1 heads and block timestamps come from, once started.
    heads: Mutex<Option<Arc<dyn BlockClock>>>,
    /// Where refetched transactions are read and proven, once started.
    transactions: Mutex<Option<Arc<dyn TransactionSource>>>,
}

impl MessagingController {
    /// A controller over `store`; `status` is shared with the drain task it starts.
    pub fn new(store: Store, status: Arc<Status>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                status,
                drain: Mutex::new(None),
                changes: tokio::sync::Mutex::new(()),
                reorg_window: AtomicU64::new(DEFAULT_REORG_WINDOW),
                heads: Mutex::new(None),
                transactions: Mutex::new(None),
            }),
        }
    }

    /// Keeps the headers of at least `blocks` blocks below the head (see
    /// [`crate::MessageStream::with_reorg_window`]) in the task [`Self::start`] starts.
    pub fn with_reorg_window(self, blocks: u64) -> Self {
        self.inner.reorg_window.store(blocks, AtomicOrdering::Relaxed);
        self
    }

    /// The store this controller writes.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The status shared with the drain task.
    pub fn status(&self) -> &Arc<Status> {
        &self.inner.status
    }

    /// The stored checkpoint.
    pub fn get_checkpoint(&self) -> Result<Checkpoint, ControllerError> {
        Ok(self.inner.store.checkpoint()?)
    }

    /// Sets the checkpoint to `position`: the node reads from there next, re-scanning or
    /// skipping. Refused, with nothing written, when the block is beyond the newest L1 head
    /// the node knows, or when `expected` is given and the stored checkpoint is not that one
    /// (a compare-and-set: the caller computed `position` from a read that a reorg or another
    /// change has overtaken since). `caller` goes to the audit trail.
    pub async fn set_checkpoint(
        &self,
        position: Position,
        caller: &str,
        expected: Option<Checkpoint>,
    ) -> Result<CheckpointChange, ControllerError> {
        self.check_head(position).await?;
        self.change(Some(position), ChangeMethod::SetCheckpoint, caller, expected).await
    }

    /// Deletes the checkpoint: the node reads from its configured start block next. With
    /// `expected`, only if the stored checkpoint is that one. `caller` goes to the audit
    /// trail.
    pub async fn reset_checkpoint(
        &self,
        caller: &str,
        expected: Option<Checkpoint>,
    ) -> Result<CheckpointChange, ControllerError> {
        self.change(None, ChangeMethod::ResetCheckpoint, caller, expected).await
    }

    /// What [`Self::set_checkpoint`] would do, changing nothing (and refused alike).
    pub async fn preview_set(
        &self,
        position: Position,
        expected: Option<Checkpoint>,
    ) -> Result<CheckpointPreview, ControllerError> {
        self.check_head(position).await?;
        self.preview(Some(position), expected).await
    }

    /// What [`Self::reset_checkpoint`] would do, changing nothing (and refused alike).
    pub async fn preview_reset(
        &self,
        expected: Option<Checkpoint>,
    ) -> Result<CheckpointPreview, ControllerError> {
        self.preview(None, expected).await
    }

    /// The first L1 block at or after `time` (Unix seconds), for a rewind by time: the start
    /// block when `time` is before it; refused when it is after the newest block, or while
    /// the node has no L1 connection to search.
    pub async fn resolve_time(&self, time: u64) -> Result<ResolvedTime, ControllerError> {
        let unresolved =
            |reason: String| ControllerError::TimeUnresolved { requested: time, reason };
        let clock =
            self.inner.heads.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let Some(clock) = clock else {
            return Err(unresolved("the node is not connected to L1 yet".to_owned()));
        };
        let start = self.inner.store.config().from_block;
        let search = first_block_at(clock.as_ref(), time, start);
        match tokio::time::timeout(TIME_SEARCH_TIMEOUT, search).await {
            Ok(Ok(resolution)) => Ok(resolution),
            Ok(Err(Unplaced::Future { head, head_time })) => {
                Err(ControllerError::TimeBeyondHead { requested: time, head, head_time })
            }
            Ok(Err(Unplaced::Failed(reason))) => Err(unresolved(reason)),
            Err(_) => Err(unresolved(format!(
                "L1 did not answer within {} s",
                TIME_SEARCH_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Reads L1 transaction `hash`, proves it against its block and stores the messages it
    /// logged that the node missed (through the normal dedup path; the checkpoint does not
    /// move), audited under `caller`; with `dry_run`, only says what it would store. Refused
    /// when the transaction is not on the canonical chain, its block is neither in the
    /// header window nor final, or the node has not read its block yet.
    pub async fn refetch_transaction(
        &self,
        hash: B256,
        caller: &str,
        dry_run: bool,
    ) -> Result<Refetched, ControllerError> {
        let source =
            self.inner.transactions.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let drain =
            self.inner.drain.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let refetch =
            Refetch { store: &self.inner.store, status: &self.inner.status, source, drain };
        let refetched = refetch.run(hash, caller, dry_run).await?;
        if !dry_run {
            warn!(target: LOG_TARGET, caller, transaction = %hash, stored = refetched.stored,
                reincluded = refetched.reincluded, "Transaction refetched");
        }
        Ok(refetched)
    }

    /// Refuses an operator's write at once on a standby of a high-availability group, naming
    /// the leader (before anything reads L1 for it).
    pub fn check_writable(&self) -> Result<(), ControllerError> {
        Ok(self.inner.store.check_writable()?)
    }

    /// The newest `limit` checkpoint changes, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<AuditEntry>, ControllerError> {
        Ok(self.inner.store.checkpoint_history(limit)?)
    }

    /// Refuses a block beyond the L1 head: where reading is now (or before) is always fine,
    /// and a block beyond the head last seen is checked against a fresh head first (it may
    /// have been mined a moment ago).
    async fn check_head(&self, position: Position) -> Result<(), ControllerError> {
        let store = &self.inner.store;
        if position <= store.resume_position(store.checkpoint()?) {
            return Ok(());
        }
        let known = self.inner.status.heads().map(|heads| heads.latest);
        if known.is_none_or(|head| position.block <= head) {
            return Ok(());
        }
        let source =
            self.inner.heads.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let head = match source {
            Some(source) => match tokio::time::timeout(HEAD_CHECK_TIMEOUT, source.latest()).await {
                Ok(Ok(head)) => head,
                Ok(Err(error)) => {
                    warn!(target: LOG_TARGET, %error, "Cannot ask L1 for its head; judging by the last one seen");
                    known.unwrap_or_default()
                }
                Err(_) => {
                    warn!(target: LOG_TARGET, timeout = ?HEAD_CHECK_TIMEOUT,
                        "L1 did not tell its head in time; judging by the last one seen");
                    known.unwrap_or_default()
                }
            },
            None => known.unwrap_or_default(),
        };
        if position.block > head {
            return Err(ControllerError::BeyondHead { requested: position, head });
        }
        Ok(())
    }

    async fn change(
        &self,
        new: Checkpoint,
        method: ChangeMethod,
        caller: &str,
        expected: Option<Checkpoint>,
    ) -> Result<CheckpointChange, ControllerError> {
        let _serial = self.inner.changes.lock().await;
        let store = self.inner.store.clone();
        let origin = ChangeOrigin { method, caller: caller.to_owned() };
        // Halted by a deep reorg, the store resolves the halt with the change: the operator
        // says where the chain is to be read again.
        let write = move || {
            store.change_checkpoint(CheckpointWrite { new, expected, origin: Some(&origin) })
        };
        let changed = blocking(write).await?;
        if let Some(skipped) = changed.skipped {
            metrics::counter!("ferry_checkpoint_skips_total").increment(1);
            metrics::counter!("ferry_checkpoint_skipped_blocks_total").increment(skipped.blocks);
            warn!(target: LOG_TARGET, caller, blocks = skipped.blocks,
                stored_messages = skipped.stored_messages,
                "Checkpoint moved forward: the logs of the blocks skipped are not read");
        }
        let orphaned = changed.resolved.as_ref().map_or(0, |summary| summary.orphaned.len() as u64);
        let to = self.inner.store.resume_position(new);
        warn!(target: LOG_TARGET, %method, caller, previous = ?changed.previous, current = ?new,
            %to, orphaned, "Checkpoint changed");
        // The drain task records what the change resolved, with the rewind: it alone says
        // what ingestion does.
        let rewind_applied = self.apply(to, changed.resolved).await;
        Ok(CheckpointChange { previous: changed.previous, current: new, rewind_applied, orphaned })
    }

    async fn preview(
        &self,
        new: Checkpoint,
        expected: Option<Checkpoint>,
    ) -> Result<CheckpointPreview, ControllerError> {
        let store = self.inner.store.clone();
        let halted = self.inner.store.halt()?.is_some();
        let (previous, effect) = blocking(move || {
            let previous = store.checkpoint()?;
            if let Some(expected) = expected.filter(|expected| *expected != previous) {
                return Err(ferry_storage::Error::CheckpointMoved { expected, found: previous });
            }
            let (from, to) = (store.resume_position(previous), store.resume_position(new));
            let (action, range) = match to.cmp(&from) {
                Ordering::Less => (ChangeAction::Rescan, Some((to, from))),
                Ordering::Greater => (ChangeAction::Skip, Some((from, to))),
                Ordering::Equal => (ChangeAction::None, None),
            };
            let stored_messages = match range {
                Some((start, end)) => store.count_messages_between(start, end)?.0,
                None => 0,
            };
            let would_orphan = if halted {
                store.count_messages_between(to, Position::new(u64::MAX, u64::MAX))?.1
            } else {
                0
            };
            // The range ends in the block before `end`, or in `end`'s block if it is inside it.
            let last_block = |end: Position| {
                if end.index == 0 { end.block.saturating_sub(1) } else { end.block }
            };
            let effect = ChangeEffect {
                action,
                from_block: range.map(|(start, _)| start.block),
                to_block: range.map(|(_, end)| last_block(end)),
                stored_messages,
                would_orphan,
            };
            Ok((previous, effect))
        })
        .await?;
        Ok(CheckpointPreview { previous, current: new, effect })
    }

    /// Starts the drain task reading through `collector`, from the stored checkpoint. One
    /// task at a time: a call while one runs is [`ControllerError::AlreadyStarted`] (a group
    /// member starts one each time it is elected, after the last one stopped). Dropping the
    /// handle stops the task.
    pub fn start<C: Collector + std::fmt::Debug>(
        &self,
        collector: Arc<C>,
    ) -> Result<DrainHandle, ControllerError> {
        let mut drain = self.inner.drain.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if drain.as_ref().is_some_and(|requests| !requests.is_closed()) {
            return Err(ControllerError::AlreadyStarted);
        }
        let window = self.inner.reorg_window.load(AtomicOrdering::Relaxed);
        *self.inner.heads.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some(Arc::clone(&collector) as Arc<dyn BlockClock>);
        *self.inner.transactions.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some(Arc::clone(&collector) as Arc<dyn TransactionSource>);
        let (store, status) = (self.inner.store.clone(), Arc::clone(&self.inner.status));
        let handle = DrainTask::start(collector, store, status, window)?;
        *drain = Some(handle.requests());
        Ok(handle)
    }

    /// Asks the running task to move its cursor to `to` and waits (bounded, sending included)
    /// for it; `false` if it is not running or did not answer in time (the store holds the
    /// new value either way, and a batch gathered before it can no longer commit).
    async fn apply(&self, to: Position, resolved: Option<ReorgSummary>) -> bool {
        let requests =
            self.inner.drain.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let Some(requests) = requests else { return false };
        match requests.rewind(to, resolved, ACK_TIMEOUT).await {
            Ok(()) => true,
            Err(error) => {
                warn!(target: LOG_TARGET, %to, %error, "The rewind was not applied by the running task");
                false
            }
        }
    }
}
