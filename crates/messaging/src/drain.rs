//! The drain task: takes what the stream yields and writes it, one write transaction per
//! batch or reorg, and applies the rewinds the controller asks for.

use crate::{
    Batch, Collector, DeepReorg, Halt, MessageStream, Phase, Reorg, Status, StreamError, StreamItem,
};
use ferry_primitives::Position;
use ferry_storage::{CommitOutcome, CommitSummary, ReorgOutcome, ReorgWrite, Store};
use std::{fmt, future::Future, sync::Arc, time::Duration};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tracing::{debug, error, info, warn};

const LOG_TARGET: &str = "ferry::messaging::drain";

/// How long to wait before gathering again after a failed gather or commit, at first and at
/// most; it doubles in between.
const RETRY_DELAY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));

/// Requests queued for the task at most; a sender waits (bounded by its own timeout) beyond.
const REQUEST_QUEUE: usize = 16;

/// What the drain task can be asked to do; each request carries its reply.
#[derive(Debug)]
pub enum DrainRequest {
    /// Move the cursor to `to`, which the store already holds; answered once it has moved.
    /// If the change resolved a halt (the store says so), reading goes on.
    Rewind {
        /// The new cursor.
        to: Position,
        /// The answer.
        reply: oneshot::Sender<Result<(), RewindError>>,
    },
}

/// Why a rewind was not applied by the running task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewindError {
    /// The task is not running; the store holds the new value and the next start reads it.
    #[error("the ingestion task is not running")]
    NotRunning,
    /// The task did not answer in time (it is busy committing, or stuck upstream).
    #[error("the ingestion task did not answer within {0:?}")]
    TimedOut(Duration),
    /// The task could not read the store.
    #[error("the ingestion task could not read the store: {0}")]
    Failed(String),
}

/// Why the drain task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainExit {
    /// It was asked to stop.
    Shutdown,
    /// It ended by itself: a bug, which the node reports by exiting non-zero.
    Failed(String),
}

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

/// Sends requests to the drain task; cheap to clone.
#[derive(Debug, Clone)]
pub struct DrainRequests(mpsc::Sender<DrainRequest>);

impl DrainRequests {
    /// Asks the task to move its cursor to `to` and waits at most `within` for it to have done so,
    /// queueing included (invariant: acknowledged rewind; a set returns once the task applied it).
    pub async fn rewind(&self, to: Position, within: Duration) -> Result<(), RewindError> {
        let ask = async {
            let (reply, answer) = oneshot::channel();
            self.0
                .send(DrainRequest::Rewind { to, reply })
                .await
                .map_err(|_| RewindError::NotRunning)?;
            answer.await.map_err(|_| RewindError::NotRunning)?
        };
        tokio::time::timeout(within, ask).await.unwrap_or(Err(RewindError::TimedOut(within)))
    }
}

/// A [`DrainTask`]: stop it, wait for it, send it requests.
#[derive(Debug)]
pub struct DrainHandle {
    requests: DrainRequests,
    stop: Option<oneshot::Sender<()>>,
    exit: Option<oneshot::Receiver<DrainExit>>,
    ended: Option<DrainExit>,
}

impl DrainHandle {
    /// A sender of requests to the task.
    pub fn requests(&self) -> DrainRequests {
        self.requests.clone()
    }

    /// Asks the task to stop: a batch being committed finishes, one being gathered is dropped.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Resolves when the task has ended, with why. Cancel-safe: can be raced in a `select!`
    /// and awaited again.
    pub async fn finished(&mut self) -> DrainExit {
        if let Some(exit) = &mut self.exit {
            let ended = exit.await.unwrap_or_else(|_| {
                DrainExit::Failed("the ingestion task panicked or was dropped".to_owned())
            });
            self.exit = None;
            self.ended = Some(ended);
        }
        self.ended.clone().unwrap_or(DrainExit::Shutdown)
    }

    /// Waits until the task has stopped.
    pub async fn stopped(mut self) -> DrainExit {
        self.finished().await
    }
}

/// The drain task: takes batches from the stream and commits them, one write transaction per
/// batch, records the reorgs the stream finds, and applies rewinds.
///
/// One `select!` loop, in this order of priority: shutdown, requests, the next item. A batch
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
        let (requests_tx, requests) = mpsc::channel(REQUEST_QUEUE);
        let (stop_tx, stop) = oneshot::channel();
        let (exit, exit_rx) = oneshot::channel();
        let handle = DrainHandle {
            requests: DrainRequests(requests_tx),
            stop: Some(stop_tx),
            exit: Some(exit_rx),
            ended: None,
        };
        let drain = Drain { store, status, retry: Retry::default() };
        (Self { stream, drain, requests, stop, exit }, handle)
    }

    /// Spawns the task on the current tokio runtime; it runs until its handle stops it.
    pub fn spawn(self) {
        tokio::spawn(self.run(std::future::pending()));
    }

    /// Runs until `shutdown` resolves or the handle stops it.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self { mut stream, mut drain, mut requests, mut stop, exit } = self;
        info!(target: LOG_TARGET, cursor = %stream.cursor(), "Drain task started");
        publish_state_counts(&drain.store);
        tokio::pin!(shutdown);
        loop {
            let halted = drain.status.halted().is_some();
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = &mut stop => break,
                Some(request) = requests.recv() => drain.answer(&mut stream, request).await,
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

/// Runs a store write off the async runtime: MDBX commits wait for the disk. A panic in it is
/// a bug, reported as a failed write.
async fn blocking<T: Send + 'static>(
    write: impl FnOnce() -> ferry_storage::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(write).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(panicked) => Err(format!("the write panicked: {panicked}")),
    }
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
            DrainRequest::Rewind { to, reply } => {
                // An operator's change resolves a halt in its own transaction: read on if it
                // did.
                let result = self.status.refresh_halt(&self.store).map_err(|error| {
                    self.status.record_storage_error();
                    RewindError::Failed(error.to_string())
                });
                if result.is_ok() {
                    self.rewind(stream, to, RewindCause::Operator);
                }
                let _ = reply.send(result);
            }
        }
    }

    /// Commits `batch`; on success moves the cursor past it. If the checkpoint moved under it,
    /// the cursor follows the store (a lost or late rewind heals itself); if it does not link
    /// to the window, the anchor is checked again. A failed commit is retried later.
    async fn commit<C: Collector>(&mut self, stream: &mut MessageStream<C>, batch: Batch) {
        let started = Instant::now();
        let (store, tags) = (self.store.clone(), self.status.finality_tags());
        let outcome =
            tokio::task::spawn_blocking(move || (write_batch(&store, &batch, tags), batch)).await;
        metrics::histogram!("ferry_commit_seconds").record(started.elapsed().as_secs_f64());
        let (outcome, batch) = match outcome {
            Ok(done) => done,
            Err(panicked) => {
                error!(target: LOG_TARGET, error = %panicked, "Commit task panicked");
                self.status.record_storage_error();
                self.retry.failed();
                return;
            }
        };
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
        let record = Halt::record(reorg);
        let (store, expected) = (self.store.clone(), stream.cursor());
        match blocking(move || store.record_halt(expected, &record)).await {
            Ok(true) => {
                let halt = Halt::of(&record);
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
