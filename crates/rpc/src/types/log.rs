//! The consumer side on the wire: read options, pages of the log, and message states.

use ferry_primitives::{Address, B256, Finality, Lifecycle, LogEntry, Seq, U256};
use ferry_storage::MessageLifecycle;
use serde::{Deserialize, Serialize};

/// The options object of `messaging_getMessages` and `messaging_subscribe`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadOptions {
    /// How final a block must be before the consumer hears of it: `latest` (default; reorgs
    /// show as `removed` and `reincluded` entries), `safe`, or `finalized` (never retracted).
    #[serde(default)]
    pub finality: Finality,
    /// Only messages an L2 may still execute: `message` and `reincluded` entries of a message
    /// that is not `pending` now (its cancellation started, it was cancelled or consumed) are
    /// left out; notices all come, so a sequencer holding a message learns when it leaves
    /// that set.
    #[serde(default)]
    pub executable: bool,
}

/// The answer of `messaging_getMessageState`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageStateResult {
    /// The message hash.
    pub hash: B256,
    /// The seq of the message's entry; `null` when the node read lifecycle events of the
    /// message but never the message itself.
    pub seq: Option<Seq>,
    /// Its state, and the events behind it.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
    /// The message's fields as its lifecycle events carry them, when `seq` is `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<UnmatchedMessage>,
}

/// A message known from its lifecycle events only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnmatchedMessage {
    /// The L1 sender.
    pub from: Address,
    /// The L2 contract.
    pub to: U256,
    /// The L2 entry point.
    pub selector: U256,
    /// The payload.
    pub payload: Vec<U256>,
    /// The nonce.
    pub nonce: U256,
}

impl From<MessageLifecycle> for MessageStateResult {
    fn from(found: MessageLifecycle) -> Self {
        Self {
            hash: found.hash,
            seq: found.seq,
            lifecycle: found.lifecycle,
            unmatched: found.unmatched.map(|message| UnmatchedMessage {
                from: message.from,
                to: message.to,
                selector: message.selector,
                payload: message.payload,
                nonce: message.nonce,
            }),
        }
    }
}

/// A page of the log: the answer of `messaging_getMessages`, and every notification of
/// `messaging_subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogPage {
    /// Entries in seq order: messages, and notices about messages delivered before. Under
    /// `latest` without gaps; under `safe` and `finalized`, entries the consumer must never
    /// see are left out.
    pub entries: Vec<LogEntry>,
    /// The seq to ask for next: past the last entry delivered or left out (or the requested
    /// one when nothing is).
    pub next_seq: u64,
}
