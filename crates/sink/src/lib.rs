//! ferry's distributed sink: the ordered log, published to one NATS JetStream stream exactly
//! once and in order, so that consumers on any machine read it there (durable consumers with
//! acks, replicated streams) instead of each holding a WebSocket to the node.
//!
//! The MDBX store stays the source of truth; the [`Publisher`] reads it as a consumer does and
//! only ever lags it, so ingestion never waits for NATS. Exactly once and in order, across
//! crashes and lost acks: entry `seq` is stream sequence `seq + 1`, published with
//! `Nats-Expected-Last-Sequence: seq` (the stream must hold exactly the entries before it),
//! `Nats-Msg-Id: <node id>:<seq>` (a retry inside the duplicate window is recognised) and, on
//! a single-replica stream within a connection, `Nats-Expected-Last-Msg-Id` naming the entry
//! before it (so nothing lands after an entry the stream refused, whatever another writer
//! added; a replicated stream acks every entry and a hole fences the node). On
//! every (re)connection the publisher reads where the stream stands and goes on from there.
//! The stream's description names the node that owns it: another ferry is fenced out.
//!
//! Every message carries the headers in [`headers`]; its body is the entry's JSON, the same
//! as `messaging_getMessages` returns.

mod config;
mod connection;
mod publisher;
mod report;

pub use config::SinkConfig;
pub use connection::connect;
pub use publisher::{Publisher, SinkHandle};
pub use report::SinkReport;

/// The headers of every message in the stream.
pub mod headers {
    /// The entry's seq in ferry's log (the stream sequence is one more).
    pub const SEQ: &str = "Ferry-Seq";
    /// `message`, `removed`, `reincluded` or `stateChanged`.
    pub const KIND: &str = "Ferry-Kind";
    /// The message hash (Starknet's L1→L2 hash).
    pub const HASH: &str = "Ferry-Hash";
    /// The seq of the message entry the entry is about.
    pub const MESSAGE_SEQ: &str = "Ferry-Message-Seq";
    /// The L1 block of the entry's origin.
    pub const L1_BLOCK: &str = "Ferry-L1-Block";
    /// That block's hash.
    pub const L1_BLOCK_HASH: &str = "Ferry-L1-Block-Hash";
    /// The L1 transaction.
    pub const L1_TRANSACTION: &str = "Ferry-L1-Transaction";
    /// The log's index in its block.
    pub const L1_LOG_INDEX: &str = "Ferry-L1-Log-Index";
}
