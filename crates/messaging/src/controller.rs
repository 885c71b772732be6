use crate::{Collector, ControllerError, DrainHandle, DrainTask, MessageStream, Status};
use ferry_primitives::{Checkpoint, Position};
use ferry_storage::{AuditEntry, ChangeMethod, ChangeOrigin, Store};
use serde::{Deserialize, Serialize};
use std::{
    cmp::Ordering,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

const LOG_TARGET: &str = "ferry::messaging::controller";

/// How long a set or reset waits for the drain task to apply the rewind.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Tells the drain task to move its cursor to `to`; it answers on `ack` once it has.
#[derive(Debug)]
pub struct RewindSignal {
    /// The new cursor.
    pub to: Position,
    /// Answered once the cursor is at `to`.
    pub ack: oneshot::Sender<()>,
}

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

/// How a checkpoint change moves reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEffect {
    /// Whether blocks are read again, jumped over, or nothing changes.
    pub action: ChangeAction,
    /// The first block read again or skipped.
    pub from_block: Option<u64>,
    /// The last block read again or skipped (partly, when the position is inside it).
    pub to_block: Option<u64>,
    /// Stored messages logged in that range: found again and skipped on a re-scan; already
    /// delivered, though skipped now, on a skip.
    pub stored_messages: u64,
}

/// See [`ChangeEffect::action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeAction {
    /// The new position is earlier: the blocks in between are read again.
    Rescan,
    /// The new position is later: the blocks in between are not read.
    Skip,
    /// Reading goes on where it is.
    None,
}

/// Reads, sets and resets the source checkpoint, and starts the drain task.
///
/// A set or reset writes the store first, then signals the drain task and waits (bounded)
/// for it to apply the rewind (invariant 4). Changes are serialised, so the last one wins in
/// the store and in the cursor. Cheap to clone; every clone drives the same task.
#[derive(Debug, Clone)]
pub struct MessagingController {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    status: Arc<Status>,
    rewinds: mpsc::Sender<RewindSignal>,
    /// The receiving end, until the drain task is started with it.
    pending_rewinds: Mutex<Option<mpsc::Receiver<RewindSignal>>>,
    /// Serialises sets and resets: store write and signal happen in the same order.
    changes: tokio::sync::Mutex<()>,
}

impl MessagingController {
    /// A controller over `store`; `status` is shared with the drain task it starts.
    pub fn new(store: Store, status: Arc<Status>) -> Self {
        let (rewinds, pending) = mpsc::channel(16);
        Self {
            inner: Arc::new(Inner {
                store,
                status,
                rewinds,
                pending_rewinds: Mutex::new(Some(pending)),
                changes: tokio::sync::Mutex::new(()),
            }),
        }
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
    /// the node knows. `caller` goes to the audit trail.
    pub async fn set_checkpoint(
        &self,
        position: Position,
        caller: &str,
    ) -> Result<CheckpointChange, ControllerError> {
        self.check_head(position)?;
        self.change(Some(position), ChangeMethod::SetCheckpoint, caller).await
    }

    /// Deletes the checkpoint: the node reads from its configured start block next.
    /// `caller` goes to the audit trail.
    pub async fn reset_checkpoint(
        &self,
        caller: &str,
    ) -> Result<CheckpointChange, ControllerError> {
        self.change(None, ChangeMethod::ResetCheckpoint, caller).await
    }

    /// What [`Self::set_checkpoint`] would do, changing nothing (and refused alike).
    pub async fn preview_set(
        &self,
        position: Position,
    ) -> Result<CheckpointPreview, ControllerError> {
        self.check_head(position)?;
        self.preview(Some(position)).await
    }

    /// What [`Self::reset_checkpoint`] would do, changing nothing.
    pub async fn preview_reset(&self) -> Result<CheckpointPreview, ControllerError> {
        self.preview(None).await
    }

    /// The newest `limit` checkpoint changes, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<AuditEntry>, ControllerError> {
        Ok(self.inner.store.checkpoint_history(limit)?)
    }

    fn check_head(&self, position: Position) -> Result<(), ControllerError> {
        match self.inner.status.heads().map(|heads| heads.latest) {
            Some(head) if position.block > head => {
                Err(ControllerError::BeyondHead { requested: position, head })
            }
            _ => Ok(()),
        }
    }

    async fn change(
        &self,
        new: Checkpoint,
        method: ChangeMethod,
        caller: &str,
    ) -> Result<CheckpointChange, ControllerError> {
        let _serial = self.inner.changes.lock().await;
        let store = self.inner.store.clone();
        let origin = ChangeOrigin { method, caller: caller.to_owned() };
        let previous = blocking(move || store.change_checkpoint(new, Some(&origin))).await?;
        let to = self.inner.store.resume_position(new);
        warn!(target: LOG_TARGET, %method, caller, previous = ?previous, current = ?new, %to,
            "Checkpoint changed");
        let rewind_applied = self.signal(to).await;
        Ok(CheckpointChange { previous, current: new, rewind_applied })
    }

    async fn preview(&self, new: Checkpoint) -> Result<CheckpointPreview, ControllerError> {
        let store = self.inner.store.clone();
        let (previous, effect) = blocking(move || {
            let previous = store.checkpoint()?;
            let (from, to) = (store.resume_position(previous), store.resume_position(new));
            let (action, range) = match to.cmp(&from) {
                Ordering::Less => (ChangeAction::Rescan, Some((to, from))),
                Ordering::Greater => (ChangeAction::Skip, Some((from, to))),
                Ordering::Equal => (ChangeAction::None, None),
            };
            let stored_messages = match range {
                Some((start, end)) => store.count_messages_between(start, end)?,
                None => 0,
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
            };
            Ok((previous, effect))
        })
        .await?;
        Ok(CheckpointPreview { previous, current: new, effect })
    }

    /// Starts the drain task reading through `collector`, from the stored checkpoint. Only
    /// once per controller: a second call is [`ControllerError::AlreadyStarted`].
    pub fn start<C: Collector>(&self, collector: Arc<C>) -> Result<DrainHandle, ControllerError> {
        let rewinds = self
            .inner
            .pending_rewinds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .ok_or(ControllerError::AlreadyStarted)?;
        // A set racing this start may land after the read below without being signalled;
        // the task's first commit then finds the checkpoint moved and rewinds to it
        // (invariant 3), so the set still wins.
        let store = &self.inner.store;
        let cursor = store.resume_position(store.checkpoint()?);
        let status = Arc::clone(&self.inner.status);
        let stream = MessageStream::new(collector, store.clone(), Arc::clone(&status), cursor);
        Ok(DrainTask::new(stream, store.clone(), status, rewinds).spawn())
    }

    /// Sends the rewind and waits for the acknowledgement; `false` if the task is not running
    /// or did not answer in time (the store holds the new value either way, and a batch
    /// gathered before it can no longer commit).
    async fn signal(&self, to: Position) -> bool {
        let not_started = self
            .inner
            .pending_rewinds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some();
        if not_started {
            return false;
        }
        let (ack, acked) = oneshot::channel();
        if self.inner.rewinds.send(RewindSignal { to, ack }).await.is_err() {
            return false;
        }
        match tokio::time::timeout(ACK_TIMEOUT, acked).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                warn!(target: LOG_TARGET, %to, timeout = ?ACK_TIMEOUT,
                    "The drain task did not acknowledge the rewind in time");
                false
            }
        }
    }
}

/// Runs a store write off the async runtime: MDBX commits wait for the disk.
async fn blocking<T: Send + 'static>(
    write: impl FnOnce() -> ferry_storage::Result<T> + Send + 'static,
) -> Result<T, ControllerError> {
    match tokio::task::spawn_blocking(write).await {
        Ok(result) => Ok(result?),
        Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
    }
}
