//! ferry's ingestion pipeline: everything between the L1 provider and the store.
//!
//! ```text
//! Collector (alloy)  ->  MessageStream  ->  DrainTask  ->  Store (MDBX)
//!   heads, logs           cursor, phases      one commit per batch,
//!                         reorg check         compare-and-set on the checkpoint
//!
//! operator -> MessagingController -> store (write checkpoint)
//!                                 -> DrainRequest::Rewind (oneshot reply) -> DrainTask -> stream.rewind()
//! ```
//!
//! - [`Collector`] fetches heads and `LogMessageToL2` logs; [`EthereumCollector`] is the alloy
//!   implementation (adaptive block range, retries with backoff, newHeads over WebSocket).
//! - [`MessageStream`] holds the in-memory cursor and yields [`Batch`]es in L1 order, each
//!   anchored to the window of canonical headers the store keeps, and the reorgs it finds.
//! - [`DrainTask`] commits each batch with the checkpoint it was gathered from (the cursor moves
//!   only after the commit succeeded), records reorgs with what they removed, and halts on
//!   one deeper than the window.
//! - [`MessagingController`] reads, sets and resets the checkpoint while the task runs.
//! - [`Status`] is what the node reports about all of it.

mod blocking;
mod collector;
mod controller;
mod drain;
mod error;
mod ethereum;
mod halt;
mod nonces;
mod refetch;
mod status;
mod stream;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
mod timeline;

pub use collector::{Collector, Confirmations, Gathered, Heads, MalformedLog, ProvenTransaction};
pub use controller::{CheckpointChange, CheckpointPreview, MessagingController};
pub use drain::{DrainExit, DrainHandle, DrainRequest, DrainRequests, DrainTask, RewindError};
pub use error::{CollectorError, ControllerError, StreamError};
pub use ethereum::{
    EthereumCollector, EthereumConfig, L1Mode, LogMessageToL2, MessageLog, VerifyLogs,
    proven_messages, redact,
};
pub use nonces::NonceTracker;
pub use status::Status;
pub use stream::{
    Batch, DEFAULT_REORG_WINDOW, DeepReorg, DeepReorgKind, MessageStream, Reorg, ReplacedBlock,
    StreamItem,
};

#[cfg(test)]
mod tests;
