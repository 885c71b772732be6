//! The byte encodings of keys and values: one explicit layout per type, versioned as a whole
//! by [`SCHEMA_VERSION`](crate::SCHEMA_VERSION) in the Meta table.
//!
//! Numbers in keys are fixed-width big-endian so that MDBX's lexicographic byte order is
//! numeric order: iterating Messages walks seqs upwards, and positions compare as they do in
//! Rust. Every table's key and value types are declared once, in `tables.rs`; the records
//! themselves are plain types in `models/`.
//!
//! - `traits.rs`: [`Key`], [`Value`], [`EncodeAs`] and why a value may not decode.
//! - `fields.rs`: reading fixed-width fields off a value.
//! - `keys.rs`: every key type; `scalars.rs`: values that are numbers, hashes, positions.
//! - one file per record: `message.rs`, `header.rs`, `notice.rs`, `halt.rs`, `window.rs`,
//!   `reorg.rs`, `lifecycle.rs`, `audit.rs`.

mod audit;
mod fields;
mod halt;
mod header;
mod keys;
mod lifecycle;
mod message;
mod notice;
mod reorg;
mod scalars;
mod traits;
mod window;

pub(crate) use audit::AuditRecord;
pub(crate) use fields::{Fields, put_optional_u64};
pub(crate) use header::HeaderValue;
pub(crate) use keys::{CHECKPOINT, HALT, HashKey, Name, NonceKey, WINDOW};
pub(crate) use lifecycle::{ChangeRecord, EventRecord, LifecycleRecord};
pub(crate) use message::{MessageRecord, MessageRef, logged_at};
pub(crate) use notice::{NoticeKind, NoticeRecord, OrphanRecord};
pub(crate) use traits::{DecodeError, DecodeResult, EncodeAs, Key, Value};

#[cfg(test)]
mod tests;
