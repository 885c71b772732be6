//! ferry's store: the single source of truth for what was read from L1 and what was handed
//! to consumers.
//!
//! One MDBX environment (through `signet-libmdbx`) holds the tables declared in [`Table`]:
//! the stored messages by seq, their hash index, the source checkpoint and the metadata that
//! ties the database to one chain and one contract. [`Store::commit_batch`] writes a batch's
//! messages, their hash rows and the new checkpoint in one write transaction, and only if the
//! checkpoint is still the one the batch was gathered from; that compare-and-set is what
//! keeps an operator's rewind from being overwritten by a batch in flight.
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
//! }
//! # Ok(())
//! # }
//! ```

mod audit;
mod codec;
mod error;
mod store;
mod tables;

pub use audit::{AuditEntry, ChangeMethod, ChangeOrigin};
pub use error::{Error, Result};
pub use store::{
    CommitOutcome, CommitSummary, RETAINED_BLOCKS, SCHEMA_VERSION, Store, StoreConfig, StoreOptions,
};
pub use tables::Table;
