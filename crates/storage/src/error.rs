//! The store's errors, each variant carrying the table, key or values involved.

use ferry_primitives::{Address, B256, Checkpoint, Position, ShowCheckpoint};
use signet_libmdbx::{MdbxError, ReadError};
use std::path::PathBuf;

/// Result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the store, with the values involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The directory holds no database yet, and none was to be created.
    #[error("{path} holds no ferry database yet")]
    NoDatabase {
        /// The directory.
        path: PathBuf,
    },
    /// An MDBX call failed.
    #[error("mdbx failed to {operation}: {source}")]
    Mdbx {
        /// What the store was doing.
        operation: &'static str,
        /// MDBX's error.
        source: MdbxError,
    },
    /// Writing or deleting in a table failed in MDBX.
    #[error("mdbx failed to write {table}: {source}")]
    Write {
        /// The table being written.
        table: &'static str,
        /// MDBX's error.
        source: MdbxError,
    },
    /// Reading a value failed in MDBX.
    #[error("mdbx failed to read {table}: {source}")]
    Read {
        /// The table being read.
        table: &'static str,
        /// The read error.
        source: ReadError,
    },
    /// A value does not have the layout its table promises.
    #[error("corrupt value in table {table} under key {key}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The key, as hex.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database was written by a ferry with another schema.
    #[error(
        "database at {path} has schema version {found}, this ferry reads version {expected}; \
         use a fresh --datadir or the ferry release that wrote it"
    )]
    SchemaVersion {
        /// The data directory.
        path: PathBuf,
        /// The version stored in the database.
        found: u32,
        /// The version this build reads and writes.
        expected: u32,
    },
    /// The database belongs to another chain (invariant: one chain per database).
    #[error(
        "database at {path} was created for chain id {stored}, not chain id {configured}; \
         use the datadir of chain {configured} or a fresh one"
    )]
    ChainIdMismatch {
        /// The data directory.
        path: PathBuf,
        /// The chain id the database was created for.
        stored: u64,
        /// The chain id this node is configured for.
        configured: u64,
    },
    /// The database belongs to another messaging contract (invariant: one chain per database).
    #[error(
        "database at {path} was created for contract {stored}, not contract {configured}; \
         use the datadir of contract {configured} or a fresh one"
    )]
    ContractMismatch {
        /// The data directory.
        path: PathBuf,
        /// The contract the database was created for.
        stored: Address,
        /// The contract this node is configured for.
        configured: Address,
    },
    /// A batch whose messages or next checkpoint lie outside the range it was gathered from.
    #[error(
        "batch gathered from {from} up to {next} is out of order: message at {position} {reason}"
    )]
    BatchOutOfRange {
        /// Where the batch was gathered from.
        from: Position,
        /// The checkpoint it would set.
        next: Position,
        /// The offending position (`next` itself when `next` is before `from`).
        position: Position,
        /// Why it is out of range.
        reason: &'static str,
    },
    /// A batch whose headers are not the consecutive, linked blocks it must end with.
    #[error("batch gathered from {from} up to {next} has unusable headers: {reason}")]
    BadHeaders {
        /// Where the batch was gathered from.
        from: Position,
        /// The checkpoint it would set.
        next: Position,
        /// What is wrong with them.
        reason: String,
    },
    /// A reorg's common ancestor is not the block the header window holds at that number.
    #[error(
        "block {number} ({hash}) is not in the header window (it holds {kept:?} there): it \
         cannot be the common ancestor of a reorg"
    )]
    AncestorNotInWindow {
        /// The block number.
        number: u64,
        /// The hash given.
        hash: B256,
        /// The hash kept, if any.
        kept: Option<B256>,
    },
    /// While halted by a deep reorg, the checkpoint was to be moved inside a block.
    #[error(
        "while ingestion is halted by a deep reorg the checkpoint must be the start of a block: \
         {position} would leave the logs before it unread; use index 0"
    )]
    MidBlockResolve {
        /// The position asked for.
        position: Position,
    },
    /// An operator's change was made on condition that the checkpoint was `expected`, and it
    /// is not: a reorg, a commit or another change moved it since the caller read it.
    #[error(
        "checkpoint moved: expected {}, found {}; nothing was changed",
        ShowCheckpoint(*expected),
        ShowCheckpoint(*found)
    )]
    CheckpointMoved {
        /// The checkpoint the caller read.
        expected: Checkpoint,
        /// The checkpoint the store holds.
        found: Checkpoint,
    },
    /// A refetched transaction is at or after the checkpoint: the node reads it there.
    #[error(
        "the log at {position} is at or after the checkpoint {checkpoint}: the node reads it \
         there; nothing was stored"
    )]
    NotReadYet {
        /// The position of the first such log.
        position: Position,
        /// Where reading goes on from.
        checkpoint: Position,
    },
    /// A batch handed over with a different number of hashes than messages.
    #[error("batch of {messages} messages came with {hashes} message hashes")]
    HashCountMismatch {
        /// Messages in the batch.
        messages: usize,
        /// Hashes that came with them.
        hashes: usize,
    },
    /// The group's journal did not take a write (high availability); nothing was written.
    #[error(transparent)]
    Journal(#[from] crate::JournalRefusal),
    /// A journal write does not come after the last the store applied.
    #[error("journal write at {seq} does not follow the last one this store applied ({applied})")]
    JournalGap {
        /// The last write applied.
        applied: u64,
        /// The write.
        seq: u64,
    },
    /// A journal write that committed on the leader does not apply here: this store is not
    /// the state the journal describes.
    #[error("journal write {seq} does not apply to this store: {reason}")]
    JournalDiverged {
        /// The write.
        seq: u64,
        /// What the store said.
        reason: String,
    },
    /// A fault injected by a test (feature `test-utils`).
    #[cfg(any(test, feature = "test-utils"))]
    #[error("injected fault after writing {written} messages of the batch")]
    InjectedFault {
        /// How many messages the transaction had written when it failed.
        written: usize,
    },
}

impl Error {
    pub(crate) fn mdbx(operation: &'static str) -> impl FnOnce(MdbxError) -> Self {
        move |source| Self::Mdbx { operation, source }
    }
}
