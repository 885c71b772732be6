//! Where a message stands after it was sent: the messaging contract's lifecycle events, and
//! the state they leave a message in.
//!
//! Besides `LogMessageToL2`, Starknet's messaging contract logs three events about a message
//! sent before, each with the message's fields (so its hash), never its fee:
//! `MessageToL2CancellationStarted` (the sender started a cancellation),
//! `MessageToL2Canceled` (it completed, after `messageCancellationDelay()`) and
//! `ConsumedMessageToL2` (the L2's state update consumed it). An L2 must not execute a message
//! whose cancellation started; a bridge UI shows each state.

use crate::{Address, B256, Origin, Seq, U256, message::message_hash};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleKind {
    /// `MessageToL2CancellationStarted`: the sender asked to cancel.
    CancellationStarted,
    /// `MessageToL2Canceled`: the cancellation completed; the message can never be consumed.
    Cancelled,
    /// `ConsumedMessageToL2`: the L2 consumed the message.
    Consumed,
}

impl LifecycleKind {
    /// The state an event of this kind puts a message in.
    pub const fn state(self) -> MessageState {
        match self {
            Self::CancellationStarted => MessageState::CancellationStarted,
            Self::Cancelled => MessageState::Cancelled,
            Self::Consumed => MessageState::Consumed,
        }
    }
}

/// A message's state on L1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MessageState {
    /// Sent, neither consumed nor cancelled, and no cancellation started: the L2 may execute
    /// it.
    #[default]
    Pending,
    /// The sender started a cancellation; it completes once the delay ends, unless the L2
    /// consumes the message first. An L2 must not execute it.
    CancellationStarted,
    /// Cancelled on L1 (`l1ToL2Messages(hash)` is 0): never to be executed.
    Cancelled,
    /// Consumed by the L2's state update.
    Consumed,
}

impl MessageState {
    /// Every state, in the order status reports them.
    pub const ALL: [Self; 4] =
        [Self::Pending, Self::CancellationStarted, Self::Cancelled, Self::Consumed];

    /// The name on the wire and in metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::CancellationStarted => "cancellationStarted",
            Self::Cancelled => "cancelled",
            Self::Consumed => "consumed",
        }
    }

    /// Whether an L2 may still execute a message in this state.
    pub const fn is_executable(self) -> bool {
        matches!(self, Self::Pending)
    }
}

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A lifecycle event as the collector reads it from L1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleEvent {
    /// Which event.
    pub kind: LifecycleKind,
    /// The message's L1 sender.
    pub from: Address,
    /// The message's L2 contract.
    pub to: U256,
    /// The message's L2 entry point.
    pub selector: U256,
    /// The message's payload.
    pub payload: Vec<U256>,
    /// The message's nonce.
    pub nonce: U256,
    /// Where the event was logged.
    pub origin: Origin,
    /// The timestamp of the event's block, in Unix seconds.
    pub timestamp: u64,
    /// For a started cancellation: the contract's `messageCancellationDelay()` in seconds,
    /// when the contract answered it.
    pub cancellation_delay: Option<u64>,
}

impl LifecycleEvent {
    /// The hash of the message the event is about (see [`crate::Message::hash`]).
    pub fn hash(&self) -> B256 {
        message_hash(self.from, self.to, self.nonce, self.selector, &self.payload)
    }

    /// When and where it happened.
    pub fn at(&self) -> EventAt {
        EventAt {
            block: self.origin.block_number,
            block_hash: self.origin.block_hash,
            transaction_hash: self.origin.transaction_hash,
            log_index: self.origin.log_index,
            timestamp: self.timestamp,
            delay_ends_at: self
                .cancellation_delay
                .map(|delay| self.timestamp.saturating_add(delay))
                .filter(|_| self.kind == LifecycleKind::CancellationStarted),
        }
    }
}

/// Where and when a lifecycle event was logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventAt {
    /// The block that holds it.
    #[serde(deserialize_with = "crate::quantity::deserialize")]
    pub block: u64,
    /// That block's hash.
    pub block_hash: B256,
    /// The transaction that emitted it.
    pub transaction_hash: B256,
    /// Its index in the block.
    #[serde(deserialize_with = "crate::quantity::deserialize")]
    pub log_index: u64,
    /// The block's timestamp, in Unix seconds.
    #[serde(deserialize_with = "crate::quantity::deserialize")]
    pub timestamp: u64,
    /// For a started cancellation: when it may complete (the timestamp plus the contract's
    /// delay), if the contract told its delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ends_at: Option<u64>,
}

/// A message's state and the events that led to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// Where it stands.
    pub state: MessageState,
    /// The cancellation request in force (the latest, when the sender started it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_started: Option<EventAt>,
    /// When the cancellation completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<EventAt>,
    /// When the L2 consumed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed: Option<EventAt>,
}

impl Lifecycle {
    /// The lifecycle after `events`, in L1 order. Cancelled and consumed are final on L1 (the
    /// contract zeroes the message): a cancellation started after either changes nothing.
    pub fn of<'a>(events: impl IntoIterator<Item = (LifecycleKind, &'a EventAt)>) -> Self {
        let mut lifecycle = Self::default();
        for (kind, at) in events {
            lifecycle.apply(kind, *at);
        }
        lifecycle
    }

    /// Applies one more event.
    pub const fn apply(&mut self, kind: LifecycleKind, at: EventAt) {
        match kind {
            LifecycleKind::CancellationStarted => {
                if matches!(self.state, MessageState::Pending | MessageState::CancellationStarted) {
                    self.state = MessageState::CancellationStarted;
                    self.cancellation_started = Some(at);
                }
            }
            LifecycleKind::Cancelled => {
                self.state = MessageState::Cancelled;
                self.cancelled = Some(at);
            }
            LifecycleKind::Consumed => {
                self.state = MessageState::Consumed;
                self.consumed = Some(at);
            }
        }
    }
}

/// What a `stateChanged` entry of the log says: a lifecycle event moved a message from one
/// state to another, or a reorg removed the event and moved it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateChange {
    /// The event.
    pub event: LifecycleKind,
    /// Where and when it was logged.
    pub at: EventAt,
    /// The state before.
    pub previous: MessageState,
    /// The state after: what a consumer applying the log holds now for the message.
    pub current: MessageState,
    /// `true` when a reorg removed the event (the change undoes it), as `removed` does for
    /// messages.
    pub reverted: bool,
}

/// How many stored messages are in each state, and how many lifecycle events name a message
/// the node has not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateCounts {
    /// Canonical messages with no lifecycle event.
    pub pending: u64,
    /// Messages whose cancellation started.
    pub cancellation_started: u64,
    /// Cancelled messages.
    pub cancelled: u64,
    /// Consumed messages.
    pub consumed: u64,
    /// Messages the node has lifecycle events for but never read (sent before its start
    /// block, or in a range it skipped): kept, and matched if a re-scan finds them.
    pub unmatched: u64,
}

impl StateCounts {
    /// The count for `state`.
    pub const fn of(&self, state: MessageState) -> u64 {
        match state {
            MessageState::Pending => self.pending,
            MessageState::CancellationStarted => self.cancellation_started,
            MessageState::Cancelled => self.cancelled,
            MessageState::Consumed => self.consumed,
        }
    }

    /// The count for `state`, to change.
    pub const fn of_mut(&mut self, state: MessageState) -> &mut u64 {
        match state {
            MessageState::Pending => &mut self.pending,
            MessageState::CancellationStarted => &mut self.cancellation_started,
            MessageState::Cancelled => &mut self.cancelled,
            MessageState::Consumed => &mut self.consumed,
        }
    }
}

/// A message's fields as lifecycle events carry them (no fee): kept for an event whose
/// message the node has not stored, so that an operator can be shown what it was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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

/// A message's lifecycle as operators and bridge UIs look it up by hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageLifecycle {
    /// The message hash.
    pub hash: B256,
    /// The seq of the message's entry; `None` while the node has not stored the message
    /// (its events were read, the message itself not: it was sent before the start block, or
    /// in a range that was skipped).
    pub seq: Option<Seq>,
    /// Its state and the events behind it.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
    /// The message's fields as the events carry them, while the message is not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<EventMessage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(block: u64) -> EventAt {
        EventAt {
            block,
            block_hash: B256::repeat_byte(1),
            transaction_hash: B256::repeat_byte(2),
            log_index: 0,
            timestamp: 1_000 + block,
            delay_ends_at: None,
        }
    }

    #[test]
    fn a_started_cancellation_is_replaced_by_a_later_one_and_ends_in_a_final_state() {
        use LifecycleKind::*;
        let (first, again, done) = (at(1), at(2), at(3));
        let started = Lifecycle::of([(CancellationStarted, &first), (CancellationStarted, &again)]);
        assert_eq!(started.state, MessageState::CancellationStarted);
        assert_eq!(started.cancellation_started, Some(again));
        let cancelled = Lifecycle::of([(CancellationStarted, &first), (Cancelled, &done)]);
        assert_eq!(cancelled.state, MessageState::Cancelled);
        assert_eq!(cancelled.cancellation_started, Some(first), "the request stays shown");
        let consumed = Lifecycle::of([(Consumed, &first), (CancellationStarted, &again)]);
        assert_eq!(consumed.state, MessageState::Consumed, "consumed is final");
        assert_eq!(consumed.cancellation_started, None);
        assert!(Lifecycle::of([]).state.is_executable());
        assert!(!started.state.is_executable());
    }

    #[test]
    fn the_delay_end_is_told_for_started_cancellations_only() {
        let mut event = LifecycleEvent {
            kind: LifecycleKind::CancellationStarted,
            from: Address::ZERO,
            to: U256::from(1),
            selector: U256::from(2),
            payload: vec![U256::from(3)],
            nonce: U256::from(4),
            origin: Origin {
                block_number: 7,
                block_hash: B256::ZERO,
                transaction_hash: B256::ZERO,
                log_index: 1,
            },
            timestamp: 100,
            cancellation_delay: Some(300),
        };
        assert_eq!(event.at().delay_ends_at, Some(400));
        event.kind = LifecycleKind::Consumed;
        assert_eq!(event.at().delay_ends_at, None);
        let json =
            serde_json::to_value(Lifecycle::of([(LifecycleKind::Consumed, &event.at())])).unwrap();
        assert_eq!(json["state"], "consumed");
        assert_eq!(json["consumed"]["block"], 7);
        assert!(json.get("cancelled").is_none());
    }
}
