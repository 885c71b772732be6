//! What the store keeps of a message known only from its lifecycle events.

use ferry_primitives::{Address, U256};

/// A message's fields as lifecycle events carry them (no fee): kept for an event whose
/// message the node has not stored, so that an operator can be shown what it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    /// The L1 sender.
    pub from: Address,
    /// The L2 contract.
    pub to: U256,
    /// The L2 entry point.
    pub selector: U256,
    /// The nonce.
    pub nonce: U256,
    /// The payload.
    pub payload: Vec<U256>,
}
