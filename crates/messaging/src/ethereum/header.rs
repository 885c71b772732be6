//! Block headers as ferry reads them (`eth_getBlockByNumber`, batched): what anchors a range,
//! what its bloom may hold, and its receipts root.

use super::{EVENT_TOPICS, EthereumCollector, attempt::Attempt};
use crate::CollectorError;
use alloy::{
    primitives::{Address, B256, Bloom, BloomInput, U64, keccak256},
    providers::Provider,
    rpc::client::BatchRequest,
};
use ferry_primitives::BlockHeader;
use serde::Deserialize;

/// Headers per JSON-RPC batch: one round trip for a window's worth, small enough for every
/// provider's batch limit.
const HEADER_BATCH: usize = 50;

/// Header batches asked for at once.
const HEADERS_IN_FLIGHT: usize = 4;

/// The fields of `eth_getBlockByNumber` ferry reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RpcHeader {
    pub(super) number: U64,
    pub(super) hash: B256,
    parent_hash: B256,
    logs_bloom: Bloom,
    pub(super) receipts_root: B256,
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

    /// Whether the block may hold a log that `query` asks for.
    pub(super) fn may_hold(&self, query: &BloomQuery) -> bool {
        self.logs_bloom.contains_input(BloomInput::Hash(query.contract))
            && query
                .topics
                .iter()
                .any(|topic| self.logs_bloom.contains_input(BloomInput::Hash(*topic)))
    }
}

/// A log of the contract that ferry reads (a message or a lifecycle event), as a bloom filter
/// sees it: the hashes of its address and of each event topic, computed once rather than for
/// every block.
#[derive(Debug, Clone)]
pub(super) struct BloomQuery {
    contract: B256,
    topics: Vec<B256>,
}

impl BloomQuery {
    pub(super) fn new(contract: Address) -> Self {
        Self { contract: keccak256(contract), topics: EVENT_TOPICS.iter().map(keccak256).collect() }
    }
}

impl EthereumCollector {
    /// The headers of `first..=last`, every one of which must exist; [`HEADERS_IN_FLIGHT`]
    /// batches at a time (a range of 1,000 blocks is 20 batches).
    pub(super) async fn headers(&self, first: u64, last: u64) -> Result<Vec<RpcHeader>, Attempt> {
        let numbers: Vec<u64> = (first..=last).collect();
        let mut headers = Vec::with_capacity(numbers.len());
        let batch = self.header_batch_size();
        for group in numbers.chunks(batch * HEADERS_IN_FLIGHT) {
            let mut asks = Vec::with_capacity(HEADERS_IN_FLIGHT);
            for chunk in group.chunks(batch) {
                asks.push(self.header_batch(chunk));
            }
            let answered = futures_util::future::join_all(asks).await;
            for (chunk, answers) in group.chunks(batch).zip(answered) {
                let answers = answers.map_err(Attempt::Failed)?;
                for (number, answer) in chunk.iter().zip(answers) {
                    headers.push(existing(*number, answer)?);
                }
            }
        }
        Ok(headers)
    }

    /// Headers per batch: [`HEADER_BATCH`], or fewer where `--l1.max-rps` allows fewer calls
    /// a second.
    pub(super) fn header_batch_size(&self) -> usize {
        let paced = self.endpoints.list.iter().filter_map(|endpoint| endpoint.max_batch());
        paced.fold(HEADER_BATCH, usize::min).max(1)
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
                .request("eth_getBlockByNumber", &detail, numbers.len(), |provider| async move {
                    provider
                        .raw_request::<_, Option<RpcHeader>>(
                            "eth_getBlockByNumber".into(),
                            (U64::from(*number), false),
                        )
                        .await
                })
                .await?;
            return Ok(vec![answer]);
        }
        self.request("eth_getBlockByNumber", &detail, numbers.len(), |provider| async move {
            let mut batch = BatchRequest::new(provider.client());
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
}

/// The header asked for as block `number`, which must exist and be that block.
fn existing(number: u64, answer: Option<RpcHeader>) -> Result<RpcHeader, Attempt> {
    let header = answer.ok_or_else(|| {
        Attempt::Inconsistent(format!("block {number} was reported safe but does not exist"))
    })?;
    if header.number.to::<u64>() != number {
        return Err(Attempt::Inconsistent(format!(
            "asked for block {number}, got block {}",
            header.number
        )));
    }
    Ok(header)
}
