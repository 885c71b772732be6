use crate::{Batch, Collector, MessageStream, Phase, Reorg, RewindSignal, Status, StreamItem};
use ferry_storage::{ChangeMethod, ChangeOrigin, CommitOutcome, Store};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};
use tracing::{debug, error, info, warn};

const LOG_TARGET: &str = "ferry::messaging::drain";

/// How long to wait before gathering again after a failed gather or commit, at first and at
/// most; it doubles in between.
const RETRY_DELAY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));
/// How many of the newest stored messages a reorg looks through for orphaned ones.
const ORPHAN_SCAN: usize = 10_000;

/// The drain task: takes batches from the stream and commits them, one write transaction per
/// batch, and applies rewind signals from the controller.
///
/// One `select!` loop, in this order of priority: shutdown, rewind signals, the next batch.
/// A batch commits only on top of the checkpoint it was gathered from (invariant 3), and the
/// cursor moves only after the commit succeeded (invariant 2); a failed commit leaves the
/// cursor where the store says it is, and the range is gathered again.
#[derive(Debug)]
pub struct DrainTask<C> {
    stream: MessageStream<C>,
    store: Store,
    status: Arc<Status>,
    rewinds: mpsc::Receiver<RewindSignal>,
}

/// A running [`DrainTask`].
#[derive(Debug)]
pub struct DrainHandle {
    stop: Option<oneshot::Sender<()>>,
    /// `None` once the task has been seen to end.
    task: Option<JoinHandle<()>>,
}

impl DrainHandle {
    /// Asks the task to stop: a batch being committed finishes, one being gathered is dropped.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Resolves when the task has ended, for whatever reason. Cancel-safe: can be raced in a
    /// `select!` and awaited again.
    pub async fn finished(&mut self) {
        if let Some(task) = &mut self.task {
            if let Err(error) = task.await {
                error!(target: LOG_TARGET, %error, "Drain task ended abnormally");
            }
            self.task = None;
        }
    }

    /// Waits until the task has stopped.
    pub async fn stopped(mut self) {
        self.finished().await;
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl<C: Collector> DrainTask<C> {
    /// A task committing what `stream` yields into `store`.
    pub fn new(
        stream: MessageStream<C>,
        store: Store,
        status: Arc<Status>,
        rewinds: mpsc::Receiver<RewindSignal>,
    ) -> Self {
        Self { stream, store, status, rewinds }
    }

    /// Spawns the task on the current tokio runtime.
    pub fn spawn(self) -> DrainHandle {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            let _ = stopped.await;
        }));
        DrainHandle { stop: Some(stop), task: Some(task) }
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self { mut stream, store, status, mut rewinds } = self;
        let mut retry = Retry::default();
        info!(target: LOG_TARGET, cursor = %stream.cursor(), "Drain task started");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(signal) = rewinds.recv() => {
                    stream.rewind(signal.to);
                    status.record_rewind();
                    retry.reset();
                    info!(target: LOG_TARGET, to = %signal.to, "Rewound");
                    let _ = signal.ack.send(());
                }
                item = next_item(&mut stream, retry.at) => match item {
                    Ok(StreamItem::Batch(batch)) => {
                        match commit(&store, &status, &mut stream, batch).await {
                            Ok(()) => retry.reset(),
                            Err(()) => retry.failed(),
                        }
                    }
                    Ok(StreamItem::Reorg(reorg)) => {
                        match recover_from_reorg(&store, &status, &mut stream, reorg).await {
                            Ok(()) => retry.reset(),
                            Err(()) => retry.failed(),
                        }
                    }
                    Err(error) => {
                        warn!(target: LOG_TARGET, %error, cursor = %stream.cursor(),
                            "Gathering failed; retrying");
                        retry.failed();
                    }
                },
            }
        }
        status.set_phase(Phase::Stopped);
        status.set_cursor(None);
        info!(target: LOG_TARGET, cursor = %stream.cursor(), "Drain task stopped");
    }
}

async fn next_item<C: Collector>(
    stream: &mut MessageStream<C>,
    retry_at: Option<Instant>,
) -> Result<StreamItem, crate::CollectorError> {
    if let Some(at) = retry_at {
        tokio::time::sleep_until(at).await;
    }
    stream.next_item().await
}

/// Commits `batch`; on success moves the cursor past it, on `CheckpointMoved` rewinds the
/// cursor to the stored checkpoint (a lost or late signal heals itself). `Err` means the
/// commit failed and the same range must be gathered again later.
async fn commit<C: Collector>(
    store: &Store,
    status: &Status,
    stream: &mut MessageStream<C>,
    batch: Batch,
) -> Result<(), ()> {
    let started = Instant::now();
    let writer = store.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let scanned = batch.scanned_blocks();
        let outcome = writer.commit_hashed_batch(
            batch.from,
            &batch.messages,
            &batch.hashes,
            batch.next,
            &scanned,
        );
        (outcome, batch)
    })
    .await;
    metrics::histogram!("ferry_commit_seconds").record(started.elapsed().as_secs_f64());
    let (outcome, batch) = match outcome {
        Ok(done) => done,
        Err(panicked) => {
            error!(target: LOG_TARGET, error = %panicked, "Commit task panicked");
            status.record_storage_error();
            return Err(());
        }
    };
    match outcome {
        Ok(CommitOutcome::Committed(summary)) => {
            debug!(target: LOG_TARGET, from = %batch.from, next = %batch.next,
                stored = summary.stored, skipped = summary.skipped,
                elapsed = ?started.elapsed(), "Committed");
            status.record_commit(
                &summary,
                batch.messages.iter().map(|l1| l1.message.nonce),
                &batch.malformed,
            );
            stream.advance(batch.next);
            Ok(())
        }
        Ok(CommitOutcome::CheckpointMoved { expected, found }) => {
            let to = store.resume_position(found);
            info!(target: LOG_TARGET, %expected, found = ?found, "Checkpoint moved under a batch; dropped it");
            stream.rewind(to);
            Ok(())
        }
        Err(error) => {
            error!(target: LOG_TARGET, %error, from = %batch.from, next = %batch.next,
                "Commit failed; the range will be gathered again");
            status.record_storage_error();
            Err(())
        }
    }
}

/// Moves the stored checkpoint back below a reorg (unless an operator moved it meanwhile)
/// and the cursor with it.
async fn recover_from_reorg<C: Collector>(
    store: &Store,
    status: &Status,
    stream: &mut MessageStream<C>,
    reorg: Reorg,
) -> Result<(), ()> {
    let from = stream.cursor();
    let writer = store.clone();
    let ancestor = reorg.common_ancestor.unwrap_or(reorg.rewind_to.block.saturating_sub(1));
    let result = tokio::task::spawn_blocking(move || {
        let origin = ChangeOrigin { method: ChangeMethod::ReorgRewind, caller: "node".to_owned() };
        let moved = writer.replace_checkpoint(from, reorg.rewind_to, Some(&origin))?;
        let orphaned = writer.recent_seqs_above_block(ancestor, ORPHAN_SCAN)?;
        Ok::<_, ferry_storage::Error>((moved, orphaned))
    })
    .await;
    let (moved, orphaned) = match result {
        Ok(Ok(done)) => done,
        Ok(Err(error)) => {
            error!(target: LOG_TARGET, %error, "Cannot rewind below a reorg; retrying");
            status.record_storage_error();
            return Err(());
        }
        Err(panicked) => {
            error!(target: LOG_TARGET, error = %panicked, "Reorg recovery task panicked");
            status.record_storage_error();
            return Err(());
        }
    };
    match moved {
        Ok(_) => {
            error!(target: LOG_TARGET, block = reorg.block, scanned = %reorg.scanned_hash,
                canonical = ?reorg.canonical_hash, rewind_to = %reorg.rewind_to,
                orphaned_seqs = ?orphaned, "Reorg below the checkpoint; re-scanning");
            status.record_reorg(&orphaned);
            status.record_rewind();
            stream.rewind(reorg.rewind_to);
        }
        Err(found) => {
            // An operator moved the checkpoint since: theirs wins.
            stream.rewind(store.resume_position(found));
        }
    }
    Ok(())
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
