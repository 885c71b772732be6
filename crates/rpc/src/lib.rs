//! ferry's JSON-RPC: the `messaging` namespace on two listeners.
//!
//! - **admin** (default `127.0.0.1:5051`): `messaging_getCheckpoint`, `messaging_setCheckpoint`,
//!   `messaging_resetCheckpoint`, `messaging_getCheckpointHistory`. With a JWT secret every
//!   request needs an HS256 bearer token whose `iat` is within 60 s, as the Engine API does;
//!   without one the listener binds loopback addresses only.
//! - **public** (default `127.0.0.1:5050`): `messaging_status`, `messaging_getMessages`,
//!   `messaging_getMessageByHash`, `messaging_getReorgs`, `messaging_subscribe` /
//!   `messaging_unsubscribe` (resumable by seq, see [`ResumingSubscriber`]), and `rpc.discover`
//!   (the OpenRPC document).
//!
//! Both serve HTTP and WebSocket on one port. The methods, their params, results and errors
//! are written down in `rpc-spec/openrpc.json`, which a test checks against this server.
//! [`AdminApiClient`] and [`PublicApiClient`] are typed clients for Rust callers.

mod access;
mod admin;
mod api;
mod auth;
mod config;
mod connection;
mod consumers;
mod context;
mod error;
#[cfg(test)]
mod fuzz;
mod params;
mod places;
mod public;
mod server;
mod subscriber;
mod time;
mod types;

pub use access::{AccessRules, Allowed};
pub use api::{AdminApiClient, PublicApiClient};
pub use auth::{JwtError, JwtSecret};
pub use config::{Limits, RpcConfig};
pub use connection::{Counted, accept_loop};
pub use error::{RpcError, codes};
pub use server::{RpcServer, ServerError};
pub use subscriber::ResumingSubscriber;
pub use time::Timestamp;
pub use types::{
    ChangeAction, ChangeEffect, ChangeOptions, CheckpointChangeResult, CheckpointTarget,
    HaltStatus, HeaderWindow, HistoryEntry, LogPage, MessageStateResult, NodeStatus, NonceGap,
    Phase, PipelineStatus, ReadOptions, ReorgEntry, ResolvedTime, SinkStatus, SkippedRange,
    UnmatchedMessage, UpstreamStatus, WindowRestartStatus,
};

/// The largest response (and WebSocket message) the bundled clients accept: twice the
/// listeners' default response cap, so that any page the node sends (at most
/// `Limits::max_page_bytes`, or a single larger entry alone) reaches them. jsonrpsee's own
/// default, 10 MiB, is below what one message of the permissionless contract can take.
pub const MAX_CLIENT_RESPONSE_BYTES: u32 = 64 << 20;

/// The OpenRPC document of the namespace, as served by `rpc.discover`.
pub const OPENRPC_DOCUMENT: &str = include_str!("../../../rpc-spec/openrpc.json");
