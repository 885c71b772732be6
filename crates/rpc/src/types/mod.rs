//! The wire types of the `messaging` namespace (serde, camelCase), as `rpc-spec/openrpc.json`
//! describes them; the crates below expose plain Rust types, converted here.

mod checkpoint;
mod log;
mod status;

pub use checkpoint::{
    ChangeAction, ChangeEffect, ChangeOptions, CheckpointChangeResult, CheckpointTarget,
    HistoryEntry, ResolvedTime, SkippedRange,
};
pub use log::{LogPage, MessageStateResult, ReadOptions, UnmatchedMessage};
pub use status::{
    HaltStatus, HeaderWindow, NodeStatus, NonceGap, Phase, PipelineStatus, ReorgEntry, SinkStatus,
    UpstreamStatus, WindowRestartStatus,
};
