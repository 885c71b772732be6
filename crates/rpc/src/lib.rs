//! ferry's JSON-RPC: the `messaging` namespace on two listeners.
//!
//! - **admin** (default `127.0.0.1:5051`): `messaging_getCheckpoint`, `messaging_setCheckpoint`,
//!   `messaging_resetCheckpoint`, `messaging_getCheckpointHistory`. With a JWT secret every
//!   request needs an HS256 bearer token whose `iat` is within 60 s, as the Engine API does;
//!   without one the listener binds loopback addresses only.
//! - **public** (default `127.0.0.1:5050`): `messaging_status`, `messaging_getMessages`,
//!   `messaging_getMessageByHash`, `messaging_getMessageState`, `messaging_getReorgs`,
//!   `messaging_subscribe` / `messaging_unsubscribe` (resumable by seq, see
//!   `ferry_rpc_api::ResumingSubscriber`), and `rpc.discover` (the OpenRPC document).
//!
//! Both serve HTTP and WebSocket on one port. The methods, their params, results and errors
//! are written down in `rpc-spec/openrpc.json`, which a test checks against this server. The
//! wire types, the error codes and the typed clients are in `ferry-rpc-api`, which consumers
//! depend on without the node.

mod access;
mod admin;
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
mod wire;

pub use access::{AccessRules, Allowed};
pub use auth::{JwtError, JwtSecret};
pub use config::{Limits, RpcConfig};
pub use connection::{Counted, accept_loop};
pub use error::RpcError;
pub use server::{RpcServer, ServerError};
