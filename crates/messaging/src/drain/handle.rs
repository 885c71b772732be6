//! Talking to the drain task: its requests (each carrying its reply), its handle, and how it
//! ended.

use crate::ProvenTransaction;
use ferry_primitives::Position;
use ferry_storage::{ChangeOrigin, CommitSummary, ReorgSummary};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Requests queued for the task at most; a sender waits (bounded by its own timeout) beyond.
const REQUEST_QUEUE: usize = 16;

/// The task's ends of what its handle holds.
#[derive(Debug)]
pub(super) struct TaskEnds {
    pub(super) requests: mpsc::Receiver<DrainRequest>,
    pub(super) stop: oneshot::Receiver<()>,
    pub(super) exit: oneshot::Sender<DrainExit>,
}

/// A handle and the task's ends of it.
pub(super) fn pair() -> (DrainHandle, TaskEnds) {
    let (requests_tx, requests) = mpsc::channel(REQUEST_QUEUE);
    let (stop_tx, stop) = oneshot::channel();
    let (exit, exit_rx) = oneshot::channel();
    let handle = DrainHandle {
        requests: DrainRequests(requests_tx),
        stop: Some(stop_tx),
        exit: Some(exit_rx),
        ended: None,
    };
    (handle, TaskEnds { requests, stop, exit })
}

/// What the drain task can be asked to do; each request carries its reply.
#[derive(Debug)]
pub enum DrainRequest {
    /// Store what a refetched transaction logged that the node missed; answered with what
    /// was written, or why nothing was.
    StoreFound {
        /// The transaction, proven against its block.
        proven: ProvenTransaction,
        /// Who asked, for the audit trail.
        origin: ChangeOrigin,
        /// The answer.
        reply: oneshot::Sender<Result<CommitSummary, String>>,
    },
    /// Move the cursor to `to`, which the store already holds; answered once it has moved.
    Rewind {
        /// The new cursor.
        to: Position,
        /// Set when the change that stored `to` resolved a halt (a reorg deeper than the
        /// window): what it orphaned. The task records it and reads on.
        resolved: Option<ReorgSummary>,
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
}

/// Why the drain task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainExit {
    /// It was asked to stop.
    Shutdown,
    /// It ended by itself: a bug, which the node reports by exiting non-zero.
    Failed(String),
}

/// Sends requests to the drain task; cheap to clone.
#[derive(Debug, Clone)]
pub struct DrainRequests(mpsc::Sender<DrainRequest>);

impl DrainRequests {
    /// Whether the task it talks to has ended.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Asks the task to move its cursor to `to` (and to record the halt `resolved`, if the
    /// change resolved one) and waits at most `within` for it to have done so, queueing
    /// included (invariant: acknowledged rewind; a set returns once the task applied it).
    pub async fn rewind(
        &self,
        to: Position,
        resolved: Option<ReorgSummary>,
        within: Duration,
    ) -> Result<(), RewindError> {
        let ask = async {
            let (reply, answer) = oneshot::channel();
            self.0
                .send(DrainRequest::Rewind { to, resolved, reply })
                .await
                .map_err(|_| RewindError::NotRunning)?;
            answer.await.map_err(|_| RewindError::NotRunning)?
        };
        tokio::time::timeout(within, ask).await.unwrap_or(Err(RewindError::TimedOut(within)))
    }
}

impl DrainRequests {
    /// Asks the task to store what refetched transaction `proven` logged that the node
    /// missed, and waits at most `within` for it.
    pub(crate) async fn store_found(
        &self,
        proven: ProvenTransaction,
        origin: ChangeOrigin,
        within: Duration,
    ) -> Result<CommitSummary, String> {
        let ask = async {
            let (reply, answer) = oneshot::channel();
            self.0
                .send(DrainRequest::StoreFound { proven, origin, reply })
                .await
                .map_err(|_| "the ingestion task is not running".to_owned())?;
            answer.await.map_err(|_| "the ingestion task stopped".to_owned())?
        };
        tokio::time::timeout(within, ask)
            .await
            .unwrap_or_else(|_| Err(format!("the ingestion task did not answer within {within:?}")))
    }
}

/// A [`super::DrainTask`]: stop it, wait for it, send it requests.
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
