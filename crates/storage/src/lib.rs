//! ferry's store: the single source of truth for what was read from L1 and what was handed
//! to consumers.
//!
//! One MDBX environment (through `signet-libmdbx`) holds the tables declared in [`Table`]:
//! the log (messages, and the notices that say what a reorg removed and what it included
//! again, and how a message's lifecycle changed), the lifecycles, the nonce and hash indexes,
//! the source checkpoint, the window of canonical headers below it, the reorgs, the audit
//! trail and the metadata that ties the database to one chain and one contract. The records
//! are plain types (`models/`), encoded one explicit way each (`codec/`).
//! [`Store::commit`] writes a batch's entries, its headers and the new checkpoint in one write
//! transaction, and only if the checkpoint is still the one the batch was gathered from and
//! its headers link to the window; that compare-and-set is what keeps an operator's rewind
//! from being overwritten by a batch in flight. [`Store::record_reorg`] writes what a reorg
//! removes, in one transaction too.
//!
//! ```no_run
//! use ferry_primitives::{Address, Position};
//! use ferry_storage::{CommitOutcome, Store, StoreConfig};
//!
//! # fn main() -> Result<(), ferry_storage::Error> {
//! let config = StoreConfig { chain_id: 1, contract: Address::ZERO, from_block: 0 };
//! let store = Store::open("./datadir".as_ref(), config)?;
//! let from = store.resume_position(store.checkpoint()?);
//! match store.commit_batch(from, &[], Position::block_start(1000), &[])? {
//!     CommitOutcome::Committed(summary) => println!("stored {}", summary.stored),
//!     CommitOutcome::CheckpointMoved { found, .. } => println!("rewound to {found:?}"),
//!     CommitOutcome::Unlinked { kept, .. } => println!("block {} was replaced", kept.number),
//! }
//! # Ok(())
//! # }
//! ```

mod clock;
mod codec;
mod error;
mod models;
mod store;
mod tables;
mod txn;

pub use error::{Error, Result};
pub use models::{
    AuditEntry, ChangeMethod, ChangeOrigin, FinalityTags, HaltKind, HaltRecord, KnownHeads,
    ReorgCause, ReorgRecord, WindowBounds,
};
pub use store::{
    BatchWrite, CheckpointChanged, CheckpointWrite, CommitOutcome, CommitSummary, DatabaseInfo,
    FoundWrite, Journal, JournalEntry, JournalRefusal, JournalSpan, ReorgOutcome, ReorgSummary,
    ReorgWrite, Replayed, SCHEMA_VERSION, Settlement, SpaceStats, Store, StoreConfig, StoreOptions,
    StoreWrite, StoredEntry, TableStats, Window, WindowRestart,
};
pub use tables::Table;
