//! ferry's core types, shared by every other crate and free of I/O.
//!
//! - [`Position`]: a place in the L1 log stream, `(block, logIndex)`; the source checkpoint
//!   is a `Position` (see [`Checkpoint`]).
//! - [`Seq`]: the sink sequence number a message gets when it is stored.
//! - [`Message`], [`Origin`], [`L1Message`], [`StoredMessage`]: an L1→L2 message, where it
//!   was logged, and what the store keeps of it.
//! - [`Message::hash`]: Starknet's L1→L2 message hash, the deduplication key.
//! - [`LogEntry`], [`EntryKind`], [`Inclusion`]: the node's log as consumers read it: messages,
//!   and the notices that tell what a reorg removed and what it included again.
//! - [`Lifecycle`], [`MessageState`], [`LifecycleEvent`], [`StateChange`]: where a message
//!   stands after it was sent (cancellation started, cancelled, consumed), and the events and
//!   log entries that say so.
//! - [`BlockHeader`]: the part of an L1 header that links a block to its parent.
//! - [`Finality`]: how final a block must be before a consumer hears of it.
//!
//! On the wire (JSON-RPC), integers are accepted as JSON numbers or `0x` hex strings and
//! written as JSON numbers; hashes, addresses and felts are `0x` hex, see [`quantity`].

mod change;
mod entry;
mod header;
mod lifecycle;
mod message;
mod position;
pub mod quantity;
mod refetch;
mod seq;
mod status;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

pub use change::{ChangeAction, ChangeEffect, ResolvedTime, Skipped};
pub use entry::{EntryKind, Finality, Inclusion, LogEntry};
pub use header::{BlockHeader, first_unlinked};
pub use lifecycle::{
    EventAt, EventMessage, Lifecycle, LifecycleEvent, LifecycleKind, MessageLifecycle,
    MessageState, StateChange, StateCounts,
};
pub use message::{L1Message, Message, Origin, StoredMessage};
pub use position::{BlockRef, Checkpoint, Position, ShowCheckpoint};
pub use refetch::{Refetched, RefetchedMessage};
pub use seq::Seq;
pub use status::{
    EndpointSnapshot, HaLeader, HaRole, HaSnapshot, Halt, HaltCause, NonceGap, Phase, SinkSnapshot,
    StatusSnapshot, UpstreamSnapshot, WindowRestartNote,
};

pub use alloy_primitives::{Address, B256, U256};
