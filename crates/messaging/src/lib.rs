//! ferry's ingestion pipeline: everything between the L1 provider and the store.
//!
//! ```text
//! Collector (alloy)  ->  MessageStream  ->  DrainTask  ->  Store (MDBX)
//!   heads, logs           cursor, phases      one commit per batch,
//!                         reorg check         compare-and-set on the checkpoint
//!
//! operator -> MessagingController -> store (write checkpoint)
//!                                 -> RewindSignal (mpsc, oneshot ack) -> DrainTask -> stream.rewind()
//! ```
//!
//! - [`Collector`] fetches heads and `LogMessageToL2` logs; [`EthereumCollector`] is the alloy
//!   implementation (adaptive block range, retries with backoff, newHeads over WebSocket).
//! - [`MessageStream`] holds the in-memory cursor and yields [`Batch`]es in L1 order.
//! - [`DrainTask`] commits each batch with the checkpoint it was gathered from; the cursor moves
//!   only after the commit succeeded.
//! - [`MessagingController`] reads, sets and resets the checkpoint while the task runs.
//! - [`Status`] is what the node reports about all of it.

mod collector;
mod controller;
mod drain;
mod error;
mod ethereum;
mod nonces;
mod status;
mod stream;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

pub use collector::{Collector, Confirmations, Gathered, Heads, MalformedLog};
pub use controller::{
    ChangeAction, ChangeEffect, CheckpointChange, CheckpointPreview, MessagingController,
    RewindSignal,
};
pub use drain::{DrainHandle, DrainTask};
pub use error::{CollectorError, ControllerError};
pub use ethereum::{EthereumCollector, EthereumConfig, LogMessageToL2, MessageLog};
pub use nonces::{NonceGap, NonceTracker};
pub use status::{Phase, Status, StatusSnapshot, UpstreamSnapshot};
pub use stream::{Batch, MessageStream, Reorg, StreamItem};

#[cfg(test)]
mod tests;
