//! `eth_getLogs` entries as ferry reads them, their checks, and their decoding into messages
//! and lifecycle events.

use super::{
    ConsumedMessageToL2, LogMessageToL2, MessageToL2Canceled, MessageToL2CancellationStarted,
};
use crate::MalformedLog;
use alloy::{
    primitives::{Address, B256, Bytes, U64, U256},
    sol_types::SolEvent,
};
use ferry_primitives::{L1Message, LifecycleEvent, LifecycleKind, Message, Origin, Position};
use serde::Deserialize;

/// An `eth_getLogs` entry: only the fields ferry reads, in one pass. alloy's `Log` flattens
/// its inner log through serde's buffered `Content`: fetching and decoding 100,000 logs from
/// Anvil costs 0.24 CPU s that way and 0.19 this way (docs/benchmarks.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageLog {
    /// The event's topics, its signature first.
    pub topics: Vec<B256>,
    /// The event's non-indexed data.
    pub data: Bytes,
    /// `None` while pending.
    pub block_number: Option<U64>,
    /// `None` while pending.
    pub block_hash: Option<B256>,
    /// `None` while pending.
    pub transaction_hash: Option<B256>,
    /// The log's index in its block; `None` while pending.
    pub log_index: Option<U64>,
    /// The block's timestamp, which newer providers give with each log.
    #[serde(default)]
    pub block_timestamp: Option<U64>,
    /// Set when a reorg removed the log (filters and subscriptions only).
    #[serde(default)]
    pub removed: bool,
}

/// A log whose place on the chain is known: what every log of a mined block has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PlacedLog {
    pub(super) position: Position,
    pub(super) block_hash: B256,
    pub(super) transaction_hash: B256,
    pub(super) block_timestamp: Option<u64>,
    topics: Vec<B256>,
    data: Bytes,
}

/// Places every log of an answer, refusing the answer when a log is not one of a mined block
/// of `first..=last` (removed, pending, outside the range) or when the provider gave two
/// different logs at one position: each is a provider fault, to be asked again, never a
/// message to skip. A log the provider repeated exactly is kept once. Answers come sorted as
/// a rule, which the sort below then only checks.
pub(super) fn place(
    logs: Vec<MessageLog>,
    first: u64,
    last: u64,
) -> Result<Vec<PlacedLog>, String> {
    let mut placed = Vec::with_capacity(logs.len());
    for log in logs {
        if log.removed {
            return Err(format!("a log of block {:?} is marked removed", log.block_number));
        }
        let (Some(block), Some(index), Some(block_hash), Some(transaction_hash)) =
            (log.block_number, log.log_index, log.block_hash, log.transaction_hash)
        else {
            return Err(format!(
                "a log has no block number, log index, block hash or transaction hash \
                 (block {:?}, index {:?})",
                log.block_number, log.log_index
            ));
        };
        let position = Position::new(block.to(), index.to());
        if position.block < first || position.block > last {
            return Err(format!(
                "a log of block {} answers a query for {first}..={last}",
                position.block
            ));
        }
        placed.push(PlacedLog {
            position,
            block_hash,
            transaction_hash,
            block_timestamp: log.block_timestamp.map(|timestamp| timestamp.to()),
            topics: log.topics,
            data: log.data,
        });
    }
    placed.sort_by_key(|log| log.position);
    let mut unique: Vec<PlacedLog> = Vec::with_capacity(placed.len());
    for log in placed {
        match unique.last() {
            Some(previous) if previous.position == log.position => {
                if *previous != log {
                    return Err(format!("two different logs at {}", log.position));
                }
            }
            _ => unique.push(log),
        }
    }
    Ok(unique)
}

/// What the logs of a range say, in L1 order each.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub(super) messages: Vec<L1Message>,
    /// Lifecycle events, their timestamps not yet known (0): the caller sets them from the
    /// headers of their blocks.
    pub(super) events: Vec<LifecycleEvent>,
    pub(super) malformed: Vec<MalformedLog>,
}

/// Turns placed logs (ascending) into messages and lifecycle events from `from` on: logs
/// before `from` (earlier in its block) are dropped, logs that do not decode are set aside as
/// malformed.
pub(super) fn decode(logs: Vec<PlacedLog>, from: Position) -> Decoded {
    let mut decoded = Decoded { messages: Vec::with_capacity(logs.len()), ..Decoded::default() };
    for log in logs.into_iter().filter(|log| log.position >= from) {
        match read(&log) {
            Ok(Read::Message(message)) => decoded.messages.push(message),
            Ok(Read::Event(event)) => decoded.events.push(event),
            Err(error) => decoded.malformed.push(MalformedLog {
                position: log.position,
                transaction_hash: Some(log.transaction_hash),
                reason: error.to_string(),
            }),
        }
    }
    decoded
}

/// One log, by its first topic: a lifecycle event, or (any other topic, which the filter
/// makes `LogMessageToL2`'s) a message.
fn read(log: &PlacedLog) -> Result<Read, alloy::sol_types::Error> {
    let origin = Origin {
        block_number: log.position.block,
        block_hash: log.block_hash,
        transaction_hash: log.transaction_hash,
        log_index: log.position.index,
    };
    let topics = log.topics.iter().copied();
    let event = |kind, (from, to, selector, payload, nonce): EventFields| {
        Read::Event(LifecycleEvent {
            kind,
            from,
            to,
            selector,
            payload,
            nonce,
            origin,
            timestamp: 0,
            cancellation_delay: None,
        })
    };
    Ok(match log.topics.first() {
        Some(&MessageToL2CancellationStarted::SIGNATURE_HASH) => {
            let e = MessageToL2CancellationStarted::decode_raw_log(topics, &log.data)?;
            event(
                LifecycleKind::CancellationStarted,
                (e.fromAddress, e.toAddress, e.selector, e.payload, e.nonce),
            )
        }
        Some(&MessageToL2Canceled::SIGNATURE_HASH) => {
            let e = MessageToL2Canceled::decode_raw_log(topics, &log.data)?;
            event(
                LifecycleKind::Cancelled,
                (e.fromAddress, e.toAddress, e.selector, e.payload, e.nonce),
            )
        }
        Some(&ConsumedMessageToL2::SIGNATURE_HASH) => {
            let e = ConsumedMessageToL2::decode_raw_log(topics, &log.data)?;
            event(
                LifecycleKind::Consumed,
                (e.fromAddress, e.toAddress, e.selector, e.payload, e.nonce),
            )
        }
        _ => {
            let message = Message::from(LogMessageToL2::decode_raw_log(topics, &log.data)?);
            Read::Message(L1Message { message, origin })
        }
    })
}

/// What one log decodes to.
enum Read {
    Message(L1Message),
    Event(LifecycleEvent),
}

/// The fields every lifecycle event carries: from, to, selector, payload, nonce.
type EventFields = (Address, U256, U256, Vec<U256>, U256);

#[cfg(test)]
mod tests {
    use super::*;

    fn log(block: u64, index: u64, hash: u8) -> MessageLog {
        MessageLog {
            topics: vec![LogMessageToL2::SIGNATURE_HASH],
            data: Bytes::new(),
            block_number: Some(U64::from(block)),
            block_hash: Some(B256::repeat_byte(hash)),
            transaction_hash: Some(B256::repeat_byte(0xee)),
            log_index: Some(U64::from(index)),
            block_timestamp: None,
            removed: false,
        }
    }

    #[test]
    fn provider_faults_refuse_the_whole_answer() {
        let removed = MessageLog { removed: true, ..log(3, 0, 1) };
        let pending = MessageLog { block_hash: None, ..log(3, 0, 1) };
        let no_index = MessageLog { log_index: None, ..log(3, 0, 1) };
        let no_transaction = MessageLog { transaction_hash: None, ..log(3, 0, 1) };
        for (answer, reason) in [
            (vec![log(3, 0, 1), removed], "removed"),
            (vec![pending], "no block number, log index, block hash"),
            (vec![no_index], "no block number, log index"),
            (vec![no_transaction], "transaction hash"),
            (vec![log(3, 0, 1), log(3, 0, 2)], "two different logs at (block 3, index 0)"),
            (vec![log(9, 0, 1)], "a log of block 9 answers a query for 2..=5"),
        ] {
            let error = place(answer, 2, 5).unwrap_err();
            assert!(error.contains(reason), "{error} does not say {reason}");
        }
    }

    #[test]
    fn an_exact_repeat_is_kept_once_and_logs_come_out_in_order() {
        let placed = place(vec![log(4, 1, 1), log(3, 0, 1), log(4, 1, 1)], 2, 5).unwrap();
        let positions: Vec<_> = placed.iter().map(|log| log.position).collect();
        assert_eq!(positions, [Position::new(3, 0), Position::new(4, 1)]);
        let decoded = decode(placed, Position::new(4, 0));
        assert!(decoded.messages.is_empty() && decoded.events.is_empty());
        assert_eq!(decoded.malformed.len(), 1, "an empty body does not decode");
        assert_eq!(decoded.malformed[0].position, Position::new(4, 1));
    }

    #[test]
    fn lifecycle_events_decode_by_their_topic_with_their_fields() {
        use alloy::primitives::b256;
        assert_eq!(
            ConsumedMessageToL2::SIGNATURE_HASH,
            b256!("0x9592d37825c744e33fa80c469683bbd04d336241bb600b574758efd182abe26a"),
            "the topic of Starknet's contract, which logs no fee"
        );
        let (from, to, selector) = (Address::repeat_byte(1), U256::from(2), U256::from(3));
        let (payload, nonce) = (vec![U256::from(4), U256::from(5)], U256::from(6));
        let logs = [
            MessageToL2CancellationStarted::SIGNATURE_HASH,
            MessageToL2Canceled::SIGNATURE_HASH,
            ConsumedMessageToL2::SIGNATURE_HASH,
        ]
        .map(|topic| {
            // The three events have the same fields: one encoding, each event's topic.
            let mut data = ConsumedMessageToL2 {
                fromAddress: from,
                toAddress: to,
                selector,
                payload: payload.clone(),
                nonce,
            }
            .encode_log_data();
            let mut topics = data.topics().to_vec();
            topics[0] = topic;
            data.set_topics_unchecked(topics);
            data
        });
        let answer = logs
            .iter()
            .enumerate()
            .map(|(index, data)| MessageLog {
                topics: data.topics().to_vec(),
                data: data.data.clone(),
                ..log(3, index as u64, 1)
            })
            .collect();
        let decoded = decode(place(answer, 3, 3).unwrap(), Position::new(3, 0));
        let kinds: Vec<_> = decoded.events.iter().map(|event| event.kind).collect();
        use LifecycleKind::*;
        assert_eq!(kinds, [CancellationStarted, Cancelled, Consumed]);
        let message = Message { from, to, selector, payload, nonce, fee: U256::ZERO };
        for (index, event) in decoded.events.iter().enumerate() {
            assert_eq!(event.hash(), message.hash(), "the message's own hash");
            assert_eq!(event.origin.position(), Position::new(3, index as u64));
        }
        assert!(decoded.messages.is_empty() && decoded.malformed.is_empty());
    }
}
