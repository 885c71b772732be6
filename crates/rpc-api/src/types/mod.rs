//! The wire types of the `messaging` namespace (serde, camelCase), as `rpc-spec/openrpc.json`
//! describes them. Where the node keeps a value in a plain type that is already its wire form
//! (`StatusSnapshot`, `ChangeEffect`, `Skipped`, `MessageLifecycle`, log entries), that type
//! is the wire type: it lives in `ferry-primitives`, and is re-exported here.

mod checkpoint;
mod log;
mod status;

pub use checkpoint::{
    ChangeOptions, CheckpointChangeResult, CheckpointTarget, HistoryEntry, RefetchOptions,
};
pub use ferry_primitives::{
    Address, B256, BlockRef, ChangeAction, ChangeEffect, Checkpoint, EntryKind, EventAt,
    EventMessage, Finality, Halt, Inclusion, L1Message, Lifecycle, LifecycleKind, LogEntry,
    Message, MessageLifecycle, MessageState, NonceGap, Origin, Phase, Position, Refetched,
    RefetchedMessage, ResolvedTime, Seq, SinkSnapshot, Skipped, StateChange, StateCounts,
    StatusSnapshot, StoredMessage, U256, UpstreamSnapshot, WindowRestartNote,
};
pub use log::{LogPage, ReadOptions};
pub use status::{HeaderWindow, NodeStatus, ReorgEntry};
