//! The consumer side on the wire: read options, pages of the log, and message states.

use ferry_primitives::{Finality, LogEntry};
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
