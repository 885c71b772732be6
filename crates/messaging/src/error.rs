//! The crate's errors: what the collector, the stream and the controller can fail with, each
//! variant carrying the values involved.

use ferry_primitives::Position;

/// Why the L1 collector could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CollectorError {
    /// The provider failed, and retrying did not help or the error is not one to retry.
    #[error("L1 request {request} failed: {reason}")]
    Upstream {
        /// The request, e.g. `eth_getLogs 100..=199`.
        request: String,
        /// The provider's error.
        reason: String,
    },
    /// The provider refuses even a one-block `eth_getLogs` range as too large.
    #[error("L1 provider refuses eth_getLogs for the single block {block}: {reason}")]
    RangeTooLarge {
        /// The block.
        block: u64,
        /// The provider's error.
        reason: String,
    },
    /// The provider's answers contradict each other (a block it called safe does not exist).
    #[error("L1 provider answered inconsistently: {0}")]
    Inconsistent(String),
    /// Fewer than the quorum of L1 endpoints gave the same answer; the reason names each
    /// answer's digest and who gave it.
    #[error("L1 endpoints disagree: {0}")]
    Disagreement(String),
}

/// Why the message stream could not yield its next item; the drain task retries.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// L1 could not answer.
    #[error(transparent)]
    Collector(#[from] CollectorError),
    /// The store could not be read (the header window, during a reorg check).
    #[error("storage failed: {0}")]
    Storage(#[from] ferry_storage::Error),
}

/// Why a checkpoint operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The requested block is beyond the newest L1 block the node knows: probably a typo, and
    /// accepting it would silently skip every message up to it.
    #[error("block {requested} is beyond the L1 head {head}; nothing was changed")]
    BeyondHead {
        /// The requested position.
        requested: Position,
        /// The newest L1 block the node knows.
        head: u64,
    },
    /// The store failed, or refused the change ([`ferry_storage::Error::CheckpointMoved`]: a
    /// compare-and-set found another checkpoint than the caller read); nothing was changed.
    #[error("storage failed: {0}")]
    Storage(#[from] ferry_storage::Error),
    /// [`MessagingController::start`](crate::MessagingController::start) was called twice.
    #[error("the messaging service was already started")]
    AlreadyStarted,
    /// A rewind by time asked for a moment after the newest L1 block.
    #[error(
        "time {requested} is after the newest L1 block {head} (time {head_time}); nothing was \
         changed"
    )]
    TimeBeyondHead {
        /// The requested time, in Unix seconds.
        requested: u64,
        /// The newest L1 block.
        head: u64,
        /// Its timestamp.
        head_time: u64,
    },
    /// A refetch of one transaction was refused (not on the canonical chain, its block not
    /// trusted yet, not read yet, L1 unavailable); nothing was stored.
    #[error("cannot refetch transaction {transaction}: {reason}; nothing was stored")]
    RefetchRefused {
        /// The transaction.
        transaction: alloy::primitives::B256,
        /// Why.
        reason: String,
    },
    /// A rewind by time needs L1's block timestamps, and L1 could not give them.
    #[error("cannot resolve time {requested} to a block: {reason}; nothing was changed")]
    TimeUnresolved {
        /// The requested time, in Unix seconds.
        requested: u64,
        /// Why.
        reason: String,
    },
}
