//! The `eth_getLogs` floor: every message log of a chain fetched and decoded with nothing else done, the speed ferry is measured against.

use alloy::{
    primitives::Address,
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use ferry_messaging::{LogMessageToL2, MessageLog};
use std::collections::VecDeque;

/// How the floor decodes an `eth_getLogs` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decode {
    /// alloy's `Log`, then `log_decode`: what a plain alloy fetcher does.
    Alloy,
    /// ferry's one-pass [`MessageLog`], then `decode_raw_log`: what ferry does.
    Lean,
}

/// Fetches and decodes every message log of `0..=head` in ranges of `range` blocks, with up to
/// `in_flight` requests at once; the logs decoded.
pub(crate) async fn floor(
    provider: &DynProvider,
    contract: Address,
    head: u64,
    (range, in_flight, decode): (u64, usize, Decode),
) -> u64 {
    let mut queue = VecDeque::new();
    let mut decoded = 0;
    let mut first = 0;
    while first <= head || !queue.is_empty() {
        while first <= head && queue.len() < in_flight {
            let last = (first + range - 1).min(head);
            let filter = Filter::new()
                .address(contract)
                .event_signature(LogMessageToL2::SIGNATURE_HASH)
                .from_block(first)
                .to_block(last);
            let provider = provider.clone();
            queue.push_back(tokio::spawn(async move {
                let count = match decode {
                    Decode::Alloy => {
                        let logs = provider.get_logs(&filter).await.unwrap();
                        logs.iter().filter(|log| log.log_decode::<LogMessageToL2>().is_ok()).count()
                    }
                    Decode::Lean => {
                        let logs: Vec<MessageLog> =
                            provider.raw_request("eth_getLogs".into(), (&filter,)).await.unwrap();
                        logs.iter()
                            .filter(|log| {
                                let topics = log.topics.iter().copied();
                                LogMessageToL2::decode_raw_log(topics, &log.data).is_ok()
                            })
                            .count()
                    }
                };
                count as u64
            }));
            first = last + 1;
        }
        if let Some(task) = queue.pop_front() {
            decoded += task.await.unwrap();
        }
    }
    decoded
}
