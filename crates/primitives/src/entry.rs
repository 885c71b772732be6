//! ferry's log as consumers read it: entries (messages and notices) in the
//! `eth_subscribe("logs")` convention, inclusion, and the finality a consumer waits for.

use crate::{B256, L1Message, Lifecycle, Seq, StateChange};
use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// What one entry of ferry's log says. Every entry has its own seq; consumers apply them in
/// seq order, as `eth_subscribe("logs")` consumers apply logs: an entry with `removed: false`
/// puts its message (under its hash, with the entry's origin), one with `removed: true` drops
/// it, and a `stateChanged` entry sets the message's state to its `change.current`. A consumer
/// that does so holds exactly the canonical set of messages, their origins and their states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EntryKind {
    /// A message seen for the first time.
    Message,
    /// A reorg removed the block that held a message delivered before.
    Removed,
    /// A message removed by a reorg is on the canonical chain again, at the entry's origin.
    Reincluded,
    /// A lifecycle event (cancellation started, cancelled, consumed) changed the message's
    /// state, or a reorg removed one and changed it back: see [`LogEntry::change`].
    StateChanged,
}

impl EntryKind {
    /// `removed: true` in the log-subscription convention.
    pub const fn is_removal(self) -> bool {
        matches!(self, Self::Removed)
    }
}

/// Whether a stored message is on the canonical chain, as far as the node has read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Inclusion {
    /// Its block is on the chain the node follows.
    #[default]
    Canonical,
    /// A reorg removed its block and the node has not found it again since.
    Orphaned,
}

/// One entry of the log: a message, or a notice about a message delivered before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// The entry's seq: its offset in the log, from 0, contiguous, never reused.
    pub seq: Seq,
    /// What the entry says.
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// The seq of the message entry this one is about (its own seq for a message).
    pub message_seq: Seq,
    /// The message hash (Starknet's L1→L2 hash).
    pub hash: B256,
    /// The message and the origin this entry is about: where it was first read, where a reorg
    /// removed it from, or where it was included again.
    #[serde(flatten)]
    pub l1: L1Message,
    /// `true` for a removal, as in `eth_subscribe("logs")`.
    pub removed: bool,
    /// The reorg a notice comes from (see `messaging_getReorgs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorg: Option<u64>,
    /// The message's inclusion now, which later entries may have changed.
    pub inclusion: Inclusion,
    /// The message's state now (and the events behind it), which later entries may have
    /// changed.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
    /// For a `stateChanged` entry: the change it records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<StateChange>,
}

impl LogEntry {
    /// The most bytes the entry can take as JSON: every field at its widest (a felt of the
    /// payload is at most a 66-character hex string, quotes and comma), without writing it.
    /// Pages are capped in bytes by this bound: exact for the payloads that matter (large
    /// ones), and free to compute.
    pub fn json_size_bound(&self) -> usize {
        /// Everything but the payload: names, 3 hashes, 4 felts, an address, 6 numbers, and
        /// four lifecycle events (three in the state, one in a change) of 2 hashes and 4
        /// numbers each.
        const FIXED: usize = 2_560;
        /// `"0x` + 64 hex digits + `",`.
        const FELT: usize = 69;
        FIXED + FELT * self.l1.message.payload.len()
    }
}

/// How final a block must be before a consumer is told about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Finality {
    /// Everything as soon as it is stored; reorgs show as removals and re-inclusions.
    #[default]
    Latest,
    /// Messages once their block is at or below the provider's `safe` block.
    Safe,
    /// Messages once their block is at or below the provider's `finalized` block: never
    /// retracted.
    Finalized,
}

impl fmt::Display for Finality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Latest => "latest",
            Self::Safe => "safe",
            Self::Finalized => "finalized",
        })
    }
}

impl FromStr for Finality {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "latest" => Ok(Self::Latest),
            "safe" => Ok(Self::Safe),
            "finalized" => Ok(Self::Finalized),
            other => Err(format!("{other:?} is not one of \"latest\", \"safe\", \"finalized\"")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::l1_message;

    #[test]
    fn entries_are_flat_messages_with_the_log_subscription_removed_flag() {
        let entry = LogEntry {
            seq: Seq(12),
            kind: EntryKind::Removed,
            message_seq: Seq(3),
            hash: B256::repeat_byte(7),
            l1: l1_message(3, 40, 1),
            removed: true,
            reorg: Some(2),
            inclusion: Inclusion::Orphaned,
            lifecycle: Lifecycle::default(),
            change: None,
        };
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["type"], "removed");
        assert_eq!(json["seq"], 12);
        assert_eq!(json["messageSeq"], 3);
        assert_eq!(json["removed"], true);
        assert_eq!(json["block"], 40);
        assert_eq!(json["inclusion"], "orphaned");
        assert_eq!(json["reorg"], 2);
        assert_eq!(serde_json::from_value::<LogEntry>(json).unwrap(), entry);
    }

    fn widest_at(with_delay: bool) -> crate::EventAt {
        crate::EventAt {
            block: u64::MAX,
            block_hash: B256::repeat_byte(0xff),
            transaction_hash: B256::repeat_byte(0xff),
            log_index: u64::MAX,
            timestamp: u64::MAX,
            delay_ends_at: with_delay.then_some(u64::MAX),
        }
    }

    #[test]
    fn the_size_bound_holds_for_the_widest_entries() {
        use crate::U256;
        for felts in [0, 1, 7, 1_000] {
            let mut l1 = crate::test_utils::l1_message_with_payload(
                u64::MAX,
                u64::MAX,
                u64::MAX,
                vec![U256::MAX; felts],
            );
            l1.message.to = U256::MAX;
            l1.message.selector = U256::MAX;
            l1.message.nonce = U256::MAX;
            l1.message.fee = U256::MAX;
            let entry = LogEntry {
                seq: Seq(u64::MAX),
                kind: EntryKind::Reincluded,
                message_seq: Seq(u64::MAX),
                hash: B256::repeat_byte(0xff),
                l1,
                removed: false,
                reorg: Some(u64::MAX),
                inclusion: Inclusion::Orphaned,
                lifecycle: Lifecycle {
                    state: crate::MessageState::Cancelled,
                    cancellation_started: Some(widest_at(true)),
                    cancelled: Some(widest_at(false)),
                    consumed: Some(widest_at(false)),
                },
                change: Some(StateChange {
                    event: crate::LifecycleKind::CancellationStarted,
                    at: widest_at(true),
                    previous: crate::MessageState::CancellationStarted,
                    current: crate::MessageState::CancellationStarted,
                    reverted: true,
                }),
            };
            let written = serde_json::to_vec(&entry).unwrap().len();
            assert!(written <= entry.json_size_bound(), "{felts} felts: {written}");
            assert!(entry.json_size_bound() - written < 1_024, "{felts} felts: close to it");
        }
    }

    #[test]
    fn finality_names_parse_and_bad_ones_are_named() {
        assert_eq!("finalized".parse(), Ok(Finality::Finalized));
        assert_eq!(serde_json::to_value(Finality::Safe).unwrap(), "safe");
        assert!("final".parse::<Finality>().unwrap_err().contains("\"final\""));
    }
}
