//! `eth_getLogs` entries as ferry reads them, and their decoding into messages.

use super::LogMessageToL2;
use crate::MalformedLog;
use alloy::{
    primitives::{B256, Bytes, U64},
    sol_types::SolEvent,
};
use ferry_primitives::{L1Message, Message, Origin, Position};
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
    /// Set when a reorg removed the log (filters and subscriptions only).
    #[serde(default)]
    pub removed: bool,
}

/// Turns the logs of `from.block..=last` into messages in `(block, logIndex)` order: pending
/// logs (no block number) and logs before `from` are dropped, logs that do not decode are
/// set aside as malformed, a log repeated by the provider is kept once.
pub(super) fn decode_logs(
    mut logs: Vec<MessageLog>,
    from: Position,
    last: u64,
) -> (Vec<L1Message>, Vec<MalformedLog>) {
    logs.retain(|log| !log.removed && log.block_number.is_some());
    logs.sort_by_key(|log| (log.block_number, log.log_index));
    let mut messages = Vec::with_capacity(logs.len());
    let mut malformed = Vec::new();
    let mut previous: Option<Position> = None;
    for log in logs {
        let block = log.block_number.map_or(0, |number| number.to::<u64>());
        let Some(index) = log.log_index.map(|index| index.to::<u64>()) else {
            malformed.push(MalformedLog {
                position: Position::block_start(block),
                transaction_hash: log.transaction_hash,
                reason: "the provider gave no log index".to_owned(),
            });
            continue;
        };
        let position = Position::new(block, index);
        if position < from || block > last || previous == Some(position) {
            continue;
        }
        previous = Some(position);
        match decode_log(&log, position) {
            Ok(message) => messages.push(message),
            Err(reason) => malformed.push(MalformedLog {
                position,
                transaction_hash: log.transaction_hash,
                reason,
            }),
        }
    }
    (messages, malformed)
}

fn decode_log(log: &MessageLog, position: Position) -> Result<L1Message, String> {
    let event = LogMessageToL2::decode_raw_log(log.topics.iter().copied(), &log.data)
        .map_err(|error| error.to_string())?;
    let block_hash = log.block_hash.ok_or("the provider gave no block hash")?;
    let transaction_hash = log.transaction_hash.ok_or("the provider gave no transaction hash")?;
    Ok(L1Message {
        message: Message {
            from: event.fromAddress,
            to: event.toAddress,
            selector: event.selector,
            payload: event.payload,
            nonce: event.nonce,
            fee: event.fee,
        },
        origin: Origin {
            block_number: position.block,
            block_hash,
            transaction_hash,
            log_index: position.index,
        },
    })
}
