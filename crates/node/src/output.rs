//! What the operator commands (`ferry checkpoint`, `status`, `verify`, `db`) share: why a
//! command failed, and how values are printed.

use ferry_primitives::{Checkpoint, Position};
use ferry_rpc::JwtError;
use serde::Serialize;
use std::net::SocketAddr;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The node answered with an error.
    #[error("the node refused: {message} (code {code}{})", data.as_ref().map(|data| format!(", data {data}")).unwrap_or_default())]
    Refused {
        /// JSON-RPC code.
        code: i32,
        /// Message.
        message: String,
        /// Data, if any.
        data: Option<String>,
    },
    /// The node could not be reached or did not answer.
    #[error("cannot talk to the node at {addr}: {reason}")]
    Unreachable {
        /// The listener.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The JWT secret is not usable.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The command line lacks what the command needs (clap checks it first).
    #[error("{0}")]
    Usage(&'static str),
    /// The store could not be read.
    #[error(transparent)]
    Storage(#[from] ferry_storage::Error),
    /// `ferry verify` found differences, or could not check.
    #[error("verify: {0}")]
    Verify(String),
    /// `ferry db` could not answer.
    #[error("db: {0}")]
    Db(String),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
}

pub(crate) fn print_json(value: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

pub(crate) fn describe(checkpoint: Checkpoint) -> String {
    match checkpoint {
        Some(Position { block, index }) => format!("block {block}, log index {index}"),
        None => "none (reading starts at the start block)".to_owned(),
    }
}
