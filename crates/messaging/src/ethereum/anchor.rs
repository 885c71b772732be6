//! Anchored gathers: the logs of a range and the headers kept for it provably come from one
//! chain (invariant: anchored gathers).
//!
//! Headers are fetched first, then logs; a run of headers must link by parent hash, and every
//! log of a block whose header was fetched must carry that header's hash. That alone would
//! miss a block that holds messages on the headers' chain but none on the chain a load
//! balancer answered the logs from: a header's `logsBloom` says whether the block may hold a
//! log of the contract's event, and every such block without a log in the answer is asked
//! again by hash (`eth_getLogs({blockHash})`, EIP-234), which answers for exactly that block
//! or fails. Providers filter `eth_getLogs` through the same bloom (geth and reth check it
//! before reading a block's receipts), so it is as reliable as the logs themselves. Where
//! the headers cover the whole range, the bloom also decides what to ask: blocks that cannot
//! hold a message are not asked at all, and one or two candidates are asked by hash.

use super::{
    EVENT_TOPICS, EthereumCollector,
    classify::{ErrorClass, classify},
    logs::{MessageLog, PlacedLog, decode, place},
    upstream,
};
use crate::{CollectorError, Gathered};
use alloy::{
    primitives::{Address, B256, Bloom, BloomInput, U64},
    providers::Provider,
    rpc::{client::BatchRequest, types::Filter},
    transports::TransportError,
};
use ferry_primitives::{BlockHeader, LifecycleEvent, LifecycleKind, Position, first_unlinked};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

/// Headers per JSON-RPC batch: one round trip for a window's worth, small enough for every
/// provider's batch limit.
const HEADER_BATCH: usize = 50;

/// Candidate blocks asked by hash rather than with one ranged query, where the headers cover
/// the whole range: at the head a range is a block or two.
const PER_BLOCK_MAX: usize = 2;

/// The fields of `eth_getBlockByNumber` ferry reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RpcHeader {
    number: U64,
    hash: B256,
    parent_hash: B256,
    logs_bloom: Bloom,
    timestamp: U64,
}

impl RpcHeader {
    pub(super) fn header(&self) -> BlockHeader {
        BlockHeader { number: self.number.to(), hash: self.hash, parent_hash: self.parent_hash }
    }

    /// The block's timestamp, in Unix seconds.
    pub(super) fn timestamp(&self) -> u64 {
        self.timestamp.to()
    }

    /// Whether the block may hold a log of `contract` that ferry reads (a message or a
    /// lifecycle event).
    fn may_hold(&self, contract: Address) -> bool {
        self.logs_bloom.contains_input(BloomInput::Raw(contract.as_slice()))
            && EVENT_TOPICS
                .iter()
                .any(|topic| self.logs_bloom.contains_input(BloomInput::Raw(topic.as_slice())))
    }
}

/// Why one attempt at a gather did not return it.
#[derive(Debug)]
pub(super) enum Attempt {
    /// The provider refused the log range as too large: ask for fewer blocks.
    Refused(CollectorError),
    /// The answers do not fit together (two chains, a fault): ask again.
    Inconsistent(String),
    /// A request failed for good.
    Failed(CollectorError),
}

/// The blocks a ranged answer holds logs of, once every log of a block whose header was
/// fetched is found to carry that header's hash.
fn blocks_answered(ranged: &[PlacedLog], headers: &[RpcHeader]) -> Result<HashSet<u64>, Attempt> {
    let by_number: HashMap<u64, &RpcHeader> =
        headers.iter().map(|header| (header.number.to(), header)).collect();
    for log in ranged {
        if let Some(header) = by_number.get(&log.position.block)
            && header.hash != log.block_hash
        {
            return Err(Attempt::Inconsistent(format!(
                "the log at {} carries block hash {}, the header of block {} is {}",
                log.position, log.block_hash, log.position.block, header.hash
            )));
        }
    }
    Ok(ranged.iter().map(|log| log.position.block).collect())
}

impl EthereumCollector {
    /// One attempt at the logs of `from..=last`, anchored to the headers of the blocks from
    /// `headers_from` (or of `last` alone). Headers below `from`'s block link the window to the
    /// range; only the range's own blocks are asked for logs.
    pub(super) async fn gather_anchored(
        &self,
        from: Position,
        last: u64,
        headers_from: u64,
    ) -> Result<Gathered, Attempt> {
        let first_header = headers_from.min(last);
        let covered = first_header <= from.block;
        // Covering the range, the headers decide which logs to ask (their blooms): first.
        // Anchored by a header at its end only (below the window), the range's logs are asked
        // alongside: every check below holds whichever answer came first.
        let (headers, ranged) = if covered {
            (self.headers(first_header, last).await?, None)
        } else {
            let (headers, logs) =
                tokio::join!(self.headers(first_header, last), self.ranged_logs(from.block, last));
            (headers?, Some(logs?))
        };
        if let Some(number) =
            first_unlinked(&headers.iter().map(RpcHeader::header).collect::<Vec<_>>())
        {
            return Err(Attempt::Inconsistent(format!(
                "the header of block {number} does not link to the one before"
            )));
        }
        let mut logs = self.logs_of(from.block, &headers, ranged).await?;
        logs.sort_unstable_by_key(|log| log.position);
        let mut timestamps: HashMap<u64, u64> =
            headers.iter().map(|header| (header.number.to(), header.timestamp())).collect();
        for log in &logs {
            if let Some(timestamp) = log.block_timestamp {
                timestamps.entry(log.position.block).or_insert(timestamp);
            }
        }
        let mut decoded = decode(logs, from);
        self.time_events(&mut decoded.events, timestamps).await?;
        Ok(Gathered {
            messages: decoded.messages,
            events: decoded.events,
            malformed: decoded.malformed,
            headers: headers.iter().map(RpcHeader::header).collect(),
        })
    }

    /// The logs of the blocks from `first` among `headers` (linked), read from `ranged` (a
    /// ranged answer already in hand) or asked now: the blocks whose bloom may hold a log of
    /// the contract, by hash one or two at a time, or in one ranged query over them; and
    /// every such block the ranged answer said nothing of, by hash.
    async fn logs_of(
        &self,
        first: u64,
        headers: &[RpcHeader],
        ranged: Option<Vec<PlacedLog>>,
    ) -> Result<Vec<PlacedLog>, Attempt> {
        let contract = self.config.contract;
        let mut ask_by_hash: Vec<&RpcHeader> = headers
            .iter()
            .filter(|header| header.number.to::<u64>() >= first && header.may_hold(contract))
            .collect();
        let ranged = match ranged {
            None if ask_by_hash.len() > PER_BLOCK_MAX => {
                let first = ask_by_hash[0].number.to();
                let end = ask_by_hash[ask_by_hash.len() - 1].number.to();
                Some(self.ranged_logs(first, end).await?)
            }
            ranged => ranged,
        };
        let mut logs = Vec::new();
        if let Some(ranged) = ranged {
            let answered = blocks_answered(&ranged, headers)?;
            ask_by_hash.retain(|header| !answered.contains(&header.number.to()));
            logs = ranged;
        }
        for header in ask_by_hash {
            logs.extend(self.block_logs(header).await?);
        }
        Ok(logs)
    }

    /// Sets each lifecycle event's timestamp: from the headers fetched or the logs, else from
    /// the header of its block, which must have the hash the event's log carries; and the
    /// contract's cancellation delay for started cancellations.
    async fn time_events(
        &self,
        events: &mut [LifecycleEvent],
        mut timestamps: HashMap<u64, u64>,
    ) -> Result<(), Attempt> {
        let mut missing: Vec<u64> = events
            .iter()
            .map(|event| event.origin.block_number)
            .filter(|block| !timestamps.contains_key(block))
            .collect();
        missing.dedup();
        for chunk in missing.chunks(HEADER_BATCH) {
            let answers = self.header_batch(chunk).await.map_err(Attempt::Failed)?;
            for (number, answer) in chunk.iter().zip(answers) {
                let header = answer.ok_or_else(|| {
                    Attempt::Inconsistent(format!("block {number} of a log does not exist"))
                })?;
                let logged = events.iter().find(|event| event.origin.block_number == *number);
                if let Some(event) = logged
                    && event.origin.block_hash != header.hash
                {
                    return Err(Attempt::Inconsistent(format!(
                        "the log at {} carries block hash {}, the header of block {number} is {}",
                        event.origin.position(),
                        event.origin.block_hash,
                        header.hash
                    )));
                }
                timestamps.insert(*number, header.timestamp());
            }
        }
        let delay = if events.iter().any(|event| event.kind == LifecycleKind::CancellationStarted) {
            self.cancellation_delay().await
        } else {
            None
        };
        for event in events {
            event.timestamp = timestamps.get(&event.origin.block_number).copied().unwrap_or(0);
            if event.kind == LifecycleKind::CancellationStarted {
                event.cancellation_delay = delay;
            }
        }
        Ok(())
    }

    /// The headers of `first..=last`, every one of which must exist.
    async fn headers(&self, first: u64, last: u64) -> Result<Vec<RpcHeader>, Attempt> {
        let numbers: Vec<u64> = (first..=last).collect();
        let mut headers = Vec::with_capacity(numbers.len());
        for chunk in numbers.chunks(HEADER_BATCH) {
            let answers = self.header_batch(chunk).await.map_err(Attempt::Failed)?;
            for (number, answer) in chunk.iter().zip(answers) {
                let header = answer.ok_or_else(|| {
                    Attempt::Inconsistent(format!(
                        "block {number} was reported safe but does not exist"
                    ))
                })?;
                if header.number.to::<u64>() != *number {
                    return Err(Attempt::Inconsistent(format!(
                        "asked for block {number}, got block {}",
                        header.number
                    )));
                }
                headers.push(header);
            }
        }
        Ok(headers)
    }

    /// `eth_getBlockByNumber` for each of `numbers`, in one JSON-RPC batch.
    pub(super) async fn header_batch(
        &self,
        numbers: &[u64],
    ) -> Result<Vec<Option<RpcHeader>>, CollectorError> {
        let detail = match numbers {
            [one] => format!("{one}"),
            _ => format!("{}..={} (batch)", numbers[0], numbers[numbers.len() - 1]),
        };
        if let [number] = numbers {
            let answer = self
                .request("eth_getBlockByNumber", &detail, numbers.len(), || {
                    self.provider.raw_request::<_, Option<RpcHeader>>(
                        "eth_getBlockByNumber".into(),
                        (U64::from(*number), false),
                    )
                })
                .await?;
            return Ok(vec![answer]);
        }
        self.request("eth_getBlockByNumber", &detail, numbers.len(), || async {
            let mut batch = BatchRequest::new(self.provider.client());
            let waiters = numbers
                .iter()
                .map(|number| {
                    batch.add_call::<_, Option<RpcHeader>>(
                        "eth_getBlockByNumber",
                        &(U64::from(*number), false),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            batch.send().await?;
            let mut answers = Vec::with_capacity(waiters.len());
            for waiter in waiters {
                answers.push(waiter.await?);
            }
            Ok(answers)
        })
        .await
    }

    /// `eth_getLogs` with `filter`, retried while the failure is transient; each caller says
    /// what the other failures mean for its request.
    async fn get_logs(
        &self,
        filter: &Filter,
        detail: &str,
    ) -> Result<Vec<MessageLog>, TransportError> {
        self.retrying("eth_getLogs", detail, 1, || {
            self.provider.raw_request::<_, Vec<MessageLog>>("eth_getLogs".into(), (filter,))
        })
        .await
    }

    /// `eth_getLogs` over `first..=last`, placed.
    async fn ranged_logs(&self, first: u64, last: u64) -> Result<Vec<PlacedLog>, Attempt> {
        let filter = self.filter().from_block(first).to_block(last);
        let detail = format!("{first}..={last}");
        let logs = match self.get_logs(&filter, &detail).await {
            Ok(logs) => logs,
            Err(error) => {
                let class = classify(&error);
                let failed = upstream("eth_getLogs", &detail, error);
                return Err(match class {
                    ErrorClass::RangeTooLarge => Attempt::Refused(failed),
                    ErrorClass::UnknownBlock => Attempt::Inconsistent(failed.to_string()),
                    _ => {
                        self.status.record_upstream_failure(failed.to_string());
                        Attempt::Failed(failed)
                    }
                });
            }
        };
        self.status.record_upstream_success();
        place(logs, first, last).map_err(Attempt::Inconsistent)
    }

    /// `eth_getLogs({blockHash})` for one block: exactly that block's logs, or a failure when
    /// the provider does not know the block (then its chain is not the headers' one).
    async fn block_logs(&self, header: &RpcHeader) -> Result<Vec<PlacedLog>, Attempt> {
        let number = header.number.to::<u64>();
        let filter = self.filter().at_block_hash(header.hash);
        let detail = format!("block {number} by hash {}", header.hash);
        let logs = match self.get_logs(&filter, &detail).await {
            Ok(logs) => logs,
            Err(error) if classify(&error) == ErrorClass::Fatal => {
                let failed = upstream("eth_getLogs", &detail, error);
                self.status.record_upstream_failure(failed.to_string());
                return Err(Attempt::Failed(failed));
            }
            Err(error) => {
                return Err(Attempt::Inconsistent(
                    upstream("eth_getLogs", &detail, error).to_string(),
                ));
            }
        };
        self.status.record_upstream_success();
        let placed = place(logs, number, number).map_err(Attempt::Inconsistent)?;
        if let Some(log) = placed.iter().find(|log| log.block_hash != header.hash) {
            return Err(Attempt::Inconsistent(format!(
                "asked for the logs of block {number} by hash {}, got one of block hash {}",
                header.hash, log.block_hash
            )));
        }
        Ok(placed)
    }

    fn filter(&self) -> Filter {
        Filter::new().address(self.config.contract).event_signature(EVENT_TOPICS.to_vec())
    }
}
