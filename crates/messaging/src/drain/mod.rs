//! The drain task: takes what the stream yields and writes it, one write transaction per
//! batch or reorg, and applies the rewinds the controller asks for.

use crate::{
    Batch, Collector, DeepReorg, MessageStream, ProvenTransaction, Reorg, Status, StreamError,
    StreamItem, blocking::blocking, halt,
};
use ferry_primitives::{Phase, Position};
use ferry_storage::{CommitOutcome, CommitSummary, ReorgOutcome, ReorgWrite, Store};
use std::{fmt, sync::Arc, time::Duration};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tracing::{debug, error, info, warn};

mod handle;

use handle::TaskEnds;
pub use handle::{DrainExit, DrainHandle, DrainRequest, DrainRequests, RewindError};

const LOG_TARGET: &str = "ferry::messaging::drain";

/// How long to wait before gathering again after a failed gather or commit, at first and at
/// most; it doubles in between.
const RETRY_DELAY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));

/// How often a halted task asks the store whether an operator's change resolved the halt
/// without it hearing of it.
const HALT_RECHECK: Duration = Duration::from_secs(1);

/// Why a rewind happened, for the log and the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RewindCause {
    /// An operator set or reset the checkpoint.
    Operator,
    /// A batch found the checkpoint moved under it (a set that raced it).
    CheckpointMoved,
    /// A reorg inside the window: back to the block after its common ancestor.
    Reorg,
    /// A batch did not link to the window: the anchor is checked again.
    Unlinked,
}

impl fmt::Display for RewindCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Operator => "operator",
            Self::CheckpointMoved => "checkpointMoved",
            Self::Reorg => "reorg",
            Self::Unlinked => "unlinked",
        })
    }
}

/// The drain task: takes batches from the stream and commits them, one write transaction per
/// batch, records the reorgs the stream finds, and applies rewinds.
///
/// One `select!` loop, in this order of priority: a stop, requests, the next item. A batch
/// commits only on top of the checkpoint it was gathered from (invariant: checkpoint
/// compare-and-set), and the cursor moves only after the commit succeeded (invariant: cursor
/// follows commit); a failed commit leaves the cursor where the store says it is, and the range is
/// gathered again. A reorg deeper than the header window halts it: it reads nothing until an
/// operator's rewind.
#[derive(Debug)]
pub struct DrainTask<C> {
    stream: MessageStream<C>,
    drain: Drain,
    requests: mpsc::Receiver<DrainRequest>,
    stop: oneshot::Receiver<()>,
    exit: oneshot::Sender<DrainExit>,
}

/// What the loop works with besides the stream.
#[derive(Debug)]
struct Drain {
    store: Store,
    status: Arc<Status>,
    retry: Retry,
}

impl<C: Collector> DrainTask<C> {
    /// A task committing what `stream` yields into `store`, and its handle.
    pub fn new(stream: MessageStream<C>, store: Store, status: Arc<Status>) -> (Self, DrainHandle) {
        let (handle, TaskEnds { requests, stop, exit }) = handle::pair();
        let drain = Drain { store, status, retry: Retry::default() };
        (Self { stream, drain, requests, stop, exit }, handle)
    }

    /// Starts the task reading through `collector` from the stored checkpoint, keeping the
    /// headers of at least `reorg_window` blocks below the head; dropping the handle stops it.
    pub fn start(
        collector: Arc<C>,
        store: Store,
        status: Arc<Status>,
        reorg_window: u64,
    ) -> ferry_storage::Result<DrainHandle> {
        // A set racing this start may land after the read below without being applied; the
        // task's first commit then finds the checkpoint moved and rewinds to it (invariant:
        // checkpoint compare-and-set), so the set still wins.
        let cursor = store.resume_position(store.checkpoint()?);
        let stream = MessageStream::new(collector, store.clone(), Arc::clone(&status), cursor)
            .with_reorg_window(reorg_window);
        let (task, handle) = Self::new(stream, store, status);
        task.spawn();
        Ok(handle)
    }

    /// Spawns the task on the current tokio runtime; it runs until its handle stops it.
    pub fn spawn(self) {
        tokio::spawn(self.run());
    }

    /// Runs until the handle stops it (or drops its stop sender).
    pub async fn run(self) {
        let Self { mut stream, mut drain, mut requests, mut stop, exit } = self;
        info!(target: LOG_TARGET, cursor = %stream.cursor(), "Drain task started");
        // What changed in the store while no task ran (an operator's change resolving a
        // halt, say) shows from here on: the task owns what status says of ingestion.
        drain.resync();
        loop {
            let halted = drain.status.halted().is_some();
            tokio::select! {
                biased;
                _ = &mut stop => break,
                Some(request) = requests.recv() => drain.answer(&mut stream, request).await,
                () = tokio::time::sleep(HALT_RECHECK), if halted => drain.recheck_halt(&mut stream),
                item = next_item(&mut stream, drain.retry.at), if !halted => match item {
                    Ok(StreamItem::Batch(batch)) => drain.commit(&mut stream, batch).await,
                    Ok(StreamItem::Reorg(reorg)) => drain.reorg(&mut stream, reorg).await,
                    Ok(StreamItem::DeepReorg(reorg)) => drain.halt(&mut stream, &reorg).await,
                    Err(error) => {
                        warn!(target: LOG_TARGET, %error, cursor = %stream.cursor(),
                            "Gathering failed; retrying");
                        if let StreamError::Storage(_) = error {
                            drain.status.record_storage_error();
                        }
                        drain.retry.failed();
                    }
                },
            }
        }
        drain.status.set_phase(Phase::Stopped);
        drain.status.set_cursor(None);
        info!(target: LOG_TARGET, cursor = %stream.cursor(), "Drain task stopped");
        let _ = exit.send(DrainExit::Shutdown);
    }
}

async fn next_item<C: Collector>(
    stream: &mut MessageStream<C>,
    retry_at: Option<Instant>,
) -> Result<StreamItem, StreamError> {
    if let Some(at) = retry_at {
        tokio::time::sleep_until(at).await;
    }
    stream.next_item().await
}

impl Drain {
    /// The one rewind path: every rewind moves the cursor, is counted and logged.
    fn rewind<C: Collector>(
        &mut self,
        stream: &mut MessageStream<C>,
        to: Position,
        cause: RewindCause,
    ) {
        stream.rewind(to);
        self.status.record_rewind();
        self.retry.reset();
        metrics::counter!("ferry_rewinds_by_cause_total", "cause" => cause.to_string())
            .increment(1);
        info!(target: LOG_TARGET, %to, %cause, "Rewound");
    }

    async fn answer<C: Collector>(&mut self, stream: &mut MessageStream<C>, request: DrainRequest) {
        match request {
            DrainRequest::Rewind { to, resolved, reply } => {
                // An operator's change resolved a halt in its own transaction: record what it
                // orphaned, and read on.
                if let Some(summary) = resolved {
                    self.status.record_reorg(&summary);
                    self.status.set_halted(None);
                    publish_state_counts(&self.store);
                }
                self.rewind(stream, to, RewindCause::Operator);
                let _ = reply.send(Ok(()));
            }
            DrainRequest::StoreFound { proven, origin, reply } => {
                let _ = reply.send(self.store_found(proven, origin).await);
            }
        }
    }

    /// Stores what a refetched transaction logged (between batches: the store has one
    /// writer), and records it as a commit.
    async fn store_found(
        &self,
        proven: ProvenTransaction,
        origin: ferry_storage::ChangeOrigin,
    ) -> Result<CommitSummary, String> {
        // On the blocking pool: the write may wait for the disk, and for the group's journal.
        let store = self.store.clone();
        let (stored, proven) = blocking(move || {
            let write = ferry_storage::FoundWrite {
                transaction: proven.transaction,
                messages: &proven.messages,
                events: &proven.events,
                origin: &origin,
            };
            (store.store_found(write), proven)
        })
        .await;
        let summary = stored.map_err(|error| {
            self.status.record_storage_error();
            error.to_string()
        })?;
        info!(target: LOG_TARGET, transaction = %proven.transaction, block = proven.block.number,
            stored = summary.stored, reincluded = summary.reincluded,
            "Stored what a refetched transaction logged");
        let nonces = proven.messages.iter().map(|l1| l1.message.nonce);
        // Its malformed logs were counted when the node first moved past them.
        self.status.record_commit(&summary, nonces, &[]);
        publish_state_counts(&self.store);
        Ok(summary)
    }

    /// Reads what status says of ingestion from the store: the stored nonces, the last seq,
    /// a halt, the state counts.
    fn resync(&self) {
        if let Err(error) = self.status.restore(&self.store) {
            error!(target: LOG_TARGET, %error, "Cannot read the store's state for status");
            self.status.record_storage_error();
        }
        publish_state_counts(&self.store);
    }

    /// While halted, the store is asked now and then whether an operator's change resolved
    /// the halt without the task hearing of it (its request timed out before it was queued):
    /// then the task takes its state from the store and reads on from the stored checkpoint.
    fn recheck_halt<C: Collector>(&mut self, stream: &mut MessageStream<C>) {
        match self.store.halt() {
            Ok(Some(_)) => {}
            Ok(None) => {
                info!(target: LOG_TARGET, "The halt was resolved by an operator's change; reading on");
                self.resync();
                match self.store.checkpoint() {
                    Ok(found) => {
                        let to = self.store.resume_position(found);
                        self.rewind(stream, to, RewindCause::Operator);
                    }
                    Err(error) => {
                        error!(target: LOG_TARGET, %error, "Cannot read the checkpoint");
                        self.status.record_storage_error();
                    }
                }
            }
            Err(error) => {
                error!(target: LOG_TARGET, %error, "Cannot read whether ingestion is halted");
                self.status.record_storage_error();
            }
        }
    }

    /// Commits `batch`; on success moves the cursor past it. If the checkpoint moved under it,
    /// the cursor follows the store (a lost or late rewind heals itself); if it does not link
    /// to the window, the anchor is checked again. A failed commit is retried later.
    async fn commit<C: Collector>(&mut self, stream: &mut MessageStream<C>, batch: Batch) {
        let started = Instant::now();
        let (store, tags) = (self.store.clone(), self.status.finality_tags());
        let (outcome, batch) = blocking(move || (write_batch(&store, &batch, tags), batch)).await;
        metrics::histogram!("ferry_commit_seconds").record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(CommitOutcome::Committed(summary)) => {
                self.committed(&summary, &batch, started);
                stream.advance(batch.next);
                self.retry.reset();
            }
            Ok(CommitOutcome::CheckpointMoved { expected, found }) => {
                info!(target: LOG_TARGET, %expected, found = ?found,
                    "Checkpoint moved under a batch; dropped it");
                self.rewind(
                    stream,
                    self.store.resume_position(found),
                    RewindCause::CheckpointMoved,
                );
            }
            Ok(CommitOutcome::Unlinked { kept, parent_hash }) => {
                warn!(target: LOG_TARGET, block = kept.number, kept = %kept.hash, %parent_hash,
                    "A batch does not link to the header window; checking it again");
                let cursor = stream.cursor();
                self.rewind(stream, cursor, RewindCause::Unlinked);
            }
            Err(error) => {
                error!(target: LOG_TARGET, %error, from = %batch.from, next = %batch.next,
                    "Commit failed; the range will be gathered again");
                self.status.record_storage_error();
                self.retry.failed();
            }
        }
    }

    /// Reports a committed batch: logs, status counters, nonces.
    fn committed(&self, summary: &CommitSummary, batch: &Batch, started: Instant) {
        debug!(target: LOG_TARGET, from = %batch.from, next = %batch.next,
            stored = summary.stored, skipped = summary.skipped,
            reincluded = summary.reincluded, state_changes = summary.state_changes,
            elapsed = ?started.elapsed(), "Committed");
        if summary.unmatched_events > 0 {
            warn!(target: LOG_TARGET, events = summary.unmatched_events, from = %batch.from,
                next = %batch.next,
                "Lifecycle events about messages not stored (sent before the start block?); kept to match later");
        }
        if summary.reincluded > 0 {
            info!(target: LOG_TARGET, reincluded = summary.reincluded, from = %batch.from,
                "Orphaned messages found again on the canonical chain");
        }
        if let Some(restart) = summary.window_restarted {
            warn!(target: LOG_TARGET, previous_tip = restart.previous_tip, first = restart.first,
                floor = batch.window_floor,
                "The header window starts again: what it kept ends below its floor (the node \
                 fell behind further than the window, or the checkpoint moved beyond it); a \
                 reorg reaching below the new first block halts ingestion");
            self.status.record_window_restart(restart);
        }
        self.status.record_commit(
            summary,
            batch.messages.iter().map(|l1| l1.message.nonce),
            &batch.malformed,
        );
    }

    /// Records a reorg inside the window (its removals with it) and rewinds to the block after
    /// its common ancestor, unless an operator moved the checkpoint meanwhile.
    async fn reorg<C: Collector>(&mut self, stream: &mut MessageStream<C>, reorg: Reorg) {
        let write =
            ReorgWrite { expected: stream.cursor(), common_ancestor: reorg.common_ancestor };
        let store = self.store.clone();
        match blocking(move || store.record_reorg(&write)).await {
            Ok(ReorgOutcome::Recorded(summary)) => {
                error!(target: LOG_TARGET, id = summary.id, block = reorg.replaced.number,
                    kept = %reorg.replaced.kept, canonical = ?reorg.replaced.canonical,
                    common_ancestor = reorg.common_ancestor.number,
                    orphaned = summary.orphaned.len(), rewind_to = %summary.record.rewind_to,
                    reverted_changes = summary.reverted_changes,
                    "Reorg: orphaned what it removed; reading again from its common ancestor");
                self.status.record_reorg(&summary);
                publish_state_counts(&self.store);
                self.rewind(stream, summary.record.rewind_to, RewindCause::Reorg);
                // The blocks it replaced are read again anchored, whatever the floor is now.
                stream.anchor_through(summary.record.old_tip.map_or(0, |tip| tip.number));
            }
            Ok(ReorgOutcome::CheckpointMoved { found, .. }) => {
                self.rewind(
                    stream,
                    self.store.resume_position(found),
                    RewindCause::CheckpointMoved,
                );
            }
            Err(error) => {
                error!(target: LOG_TARGET, %error, "Cannot record a reorg; retrying");
                self.status.record_storage_error();
                self.retry.failed();
            }
        }
    }

    /// Halts ingestion (a reorg the node must not heal by itself), if the store still reads
    /// where the reorg was found: an operator's change that raced it wins.
    async fn halt<C: Collector>(&mut self, stream: &mut MessageStream<C>, reorg: &DeepReorg) {
        let record = halt::record(reorg);
        let (store, expected) = (self.store.clone(), stream.cursor());
        match blocking(move || store.record_halt(expected, &record)).await {
            Ok(true) => {
                let halt = halt::status_of(&record);
                error!(target: LOG_TARGET, block = reorg.replaced.number,
                    kept = %reorg.replaced.kept, canonical = ?reorg.replaced.canonical,
                    reason = %halt.reason,
                    "Ingestion halted: waiting for an operator to move the checkpoint");
                self.status.set_halted(Some(halt));
                self.status.set_phase(Phase::Halted);
            }
            Ok(false) => {
                info!(target: LOG_TARGET, "A deep reorg was found where the node no longer reads");
                match self.store.checkpoint() {
                    Ok(found) => {
                        let to = self.store.resume_position(found);
                        self.rewind(stream, to, RewindCause::CheckpointMoved);
                    }
                    Err(_) => self.retry.failed(),
                }
            }
            Err(error) => {
                error!(target: LOG_TARGET, %error, "Cannot record a halt; retrying");
                self.status.record_storage_error();
                self.retry.failed();
            }
        }
    }
}

/// When to gather again after a failure: `None` means at once.
#[derive(Debug, Default)]
struct Retry {
    at: Option<Instant>,
    delay: Option<Duration>,
}

impl Retry {
    fn reset(&mut self) {
        *self = Self::default();
    }

    fn failed(&mut self) {
        let delay = self.delay.map_or(RETRY_DELAY.0, |delay| (delay * 2).min(RETRY_DELAY.1));
        self.delay = Some(delay);
        self.at = Some(Instant::now() + delay);
    }
}

/// Commits `batch` (on the blocking pool: MDBX waits for the disk), and publishes the state
/// counts when it changed them.
fn write_batch(
    store: &Store,
    batch: &Batch,
    tags: ferry_storage::FinalityTags,
) -> ferry_storage::Result<CommitOutcome> {
    let outcome = store.commit(&batch.write(tags));
    if let Ok(CommitOutcome::Committed(summary)) = &outcome
        && (summary.stored > 0 || summary.state_changes + summary.unmatched_events > 0)
    {
        publish_state_counts(store);
    }
    outcome
}

/// Sets `ferry_messages{state}` to the store's counts: how many messages are pending,
/// cancellation started, cancelled or consumed, and how many lifecycles are unmatched.
pub(crate) fn publish_state_counts(store: &Store) {
    match store.state_counts() {
        Ok(counts) => {
            for state in ferry_primitives::MessageState::ALL {
                metrics::gauge!("ferry_messages", "state" => state.name())
                    .set(counts.of(state) as f64);
            }
            metrics::gauge!("ferry_messages", "state" => "unmatched").set(counts.unmatched as f64);
        }
        Err(error) => {
            warn!(target: LOG_TARGET, %error, "Cannot read the message state counts");
        }
    }
}
