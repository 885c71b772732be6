//! What a call can fail with, as the caller sees it, and the one conversion into JSON-RPC
//! errors (codes from `ferry_rpc_api::codes`), each carrying the values involved.

use ferry_messaging::ControllerError;
use ferry_primitives::{Checkpoint, Position};
use ferry_rpc_api::codes;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;

/// Why a call failed, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// A param is missing, of the wrong type or out of range.
    #[error("invalid param `{param}`: {reason}")]
    InvalidParam {
        /// The param's name.
        param: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The params as a whole are wrong (too many, not an array or object).
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// The requested block is beyond the L1 head.
    #[error("block {} is beyond the L1 head {head}; nothing was changed", requested.block)]
    BeyondHead {
        /// The requested position.
        requested: Position,
        /// The newest L1 block the node knows.
        head: u64,
    },
    /// A set by time asked for a moment after the newest L1 block.
    #[error(
        "timestamp {requested} is after the newest L1 block {head} (timestamp {head_time}); \
         nothing was changed"
    )]
    TimeBeyondHead {
        /// The moment, in Unix seconds.
        requested: u64,
        /// The newest L1 block.
        head: u64,
        /// Its timestamp.
        head_time: u64,
    },
    /// A set by time could not search L1.
    #[error("cannot resolve timestamp {requested} to an L1 block: {reason}; nothing was changed")]
    L1Unavailable {
        /// The moment, in Unix seconds.
        requested: u64,
        /// Why.
        reason: String,
    },
    /// A compare-and-set change found another checkpoint than the caller read.
    #[error("{message}")]
    CheckpointMoved {
        /// The checkpoint the caller read.
        expected: Checkpoint,
        /// The checkpoint stored.
        found: Checkpoint,
        /// What the store said, naming both.
        message: String,
    },
    /// A refetch of one transaction was refused.
    #[error("cannot refetch transaction {transaction}: {reason}; nothing was stored")]
    RefetchRefused {
        /// The transaction.
        transaction: ferry_primitives::B256,
        /// Why.
        reason: String,
    },
    /// A write reached a standby of a high-availability group.
    #[error("{message}")]
    NotLeader {
        /// The group.
        group: String,
        /// Who leads, when one does.
        leader: Option<Box<ferry_primitives::HaLeader>>,
        /// What the store said, naming both.
        message: String,
    },
    /// The store failed.
    #[error("storage failed, nothing was changed: {0}")]
    Storage(String),
    /// Anything else.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ControllerError> for RpcError {
    fn from(error: ControllerError) -> Self {
        match error {
            ControllerError::BeyondHead { requested, head } => Self::BeyondHead { requested, head },
            ControllerError::Storage(error @ ferry_storage::Error::MidBlockResolve { .. }) => {
                Self::InvalidParam { param: "index", reason: error.to_string() }
            }
            ControllerError::Storage(
                error @ ferry_storage::Error::CheckpointMoved { expected, found },
            ) => Self::CheckpointMoved { expected, found, message: error.to_string() },
            ControllerError::Storage(ferry_storage::Error::Journal(
                refusal @ ferry_storage::JournalRefusal::NotLeader { .. },
            )) => Self::not_leader(refusal),
            ControllerError::Storage(error) => Self::Storage(error.to_string()),
            ControllerError::AlreadyStarted => Self::Internal(error.to_string()),
            ControllerError::RefetchRefused { transaction, reason } => {
                Self::RefetchRefused { transaction, reason }
            }
            ControllerError::TimeBeyondHead { requested, head, head_time } => {
                Self::TimeBeyondHead { requested, head, head_time }
            }
            ControllerError::TimeUnresolved { requested, reason } => {
                Self::L1Unavailable { requested, reason }
            }
        }
    }
}

impl From<ferry_storage::Error> for RpcError {
    fn from(error: ferry_storage::Error) -> Self {
        match error {
            ferry_storage::Error::Journal(
                refusal @ ferry_storage::JournalRefusal::NotLeader { .. },
            ) => Self::not_leader(refusal),
            error => Self::Storage(error.to_string()),
        }
    }
}

impl RpcError {
    fn not_leader(refusal: ferry_storage::JournalRefusal) -> Self {
        let message = refusal.to_string();
        match refusal {
            ferry_storage::JournalRefusal::NotLeader { group, leader } => {
                Self::NotLeader { group, leader: leader.map(Box::new), message }
            }
            _ => Self::Storage(message),
        }
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(error: RpcError) -> Self {
        let message = error.to_string();
        let (code, data) = match &error {
            RpcError::InvalidParam { param, reason } => {
                (codes::INVALID_PARAMS, Some(json!({ "param": param, "reason": reason })))
            }
            RpcError::InvalidParams(reason) => {
                (codes::INVALID_PARAMS, Some(json!({ "reason": reason })))
            }
            RpcError::BeyondHead { requested, head } => {
                (codes::BEYOND_HEAD, Some(json!({ "requested": requested, "head": head })))
            }
            RpcError::TimeBeyondHead { requested, head, head_time } => (
                codes::TIME_BEYOND_HEAD,
                Some(json!({ "timestamp": requested, "head": head, "headTimestamp": head_time })),
            ),
            RpcError::L1Unavailable { requested, reason } => {
                (codes::L1_UNAVAILABLE, Some(json!({ "timestamp": requested, "reason": reason })))
            }
            RpcError::CheckpointMoved { expected, found, .. } => {
                (codes::CHECKPOINT_MOVED, Some(json!({ "expected": expected, "found": found })))
            }
            RpcError::RefetchRefused { transaction, reason } => (
                codes::REFETCH_REFUSED,
                Some(json!({ "transaction": transaction, "reason": reason })),
            ),
            RpcError::NotLeader { group, leader, .. } => {
                (codes::NOT_LEADER, Some(json!({ "group": group, "leader": leader })))
            }
            RpcError::Storage(reason) => {
                (codes::STORAGE_FAILURE, Some(json!({ "reason": reason })))
            }
            RpcError::Internal(_) => (codes::INTERNAL_ERROR, None),
        };
        Self::owned(code, message, data)
    }
}
