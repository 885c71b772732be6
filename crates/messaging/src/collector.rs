//! Where L1 data comes from, as the pipeline sees it: the [`Collector`] trait (heads, anchored
//! gathers, headers and block times), what a gather returns, and the confirmations setting.
//! The Ethereum implementation is in `ethereum/`; tests script one in `test_utils`.

use crate::CollectorError;
use alloy::primitives::B256;
use ferry_primitives::{BlockHeader, BlockRef, L1Message, LifecycleEvent, Position};
use std::{fmt, future::Future, str::FromStr};

/// How far behind the L1 head the node reads: the blocks it reads are final enough for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmations {
    /// `latest - n`; `Blocks(0)` reads up to the latest block.
    Blocks(u64),
    /// The provider's `safe` block.
    Safe,
    /// The provider's `finalized` block.
    Finalized,
}

impl Default for Confirmations {
    fn default() -> Self {
        Self::Blocks(0)
    }
}

impl fmt::Display for Confirmations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blocks(n) => write!(f, "{n}"),
            Self::Safe => f.write_str("safe"),
            Self::Finalized => f.write_str("finalized"),
        }
    }
}

impl FromStr for Confirmations {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "safe" => Ok(Self::Safe),
            "finalized" => Ok(Self::Finalized),
            number => number.parse().map(Self::Blocks).map_err(|_| {
                format!("{text:?} is not a number of blocks, \"safe\" or \"finalized\"")
            }),
        }
    }
}

/// The L1 heads as the node last saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    /// The newest block.
    pub latest: u64,
    /// Its hash: a reorg that replaces the newest block without adding one shows here.
    pub latest_hash: B256,
    /// The newest block the node may read under its [`Confirmations`]; `None` while the chain
    /// is shorter than the confirmations asked for.
    pub safe: Option<u64>,
    /// The provider's `safe` block, whatever the confirmations (consumers may wait for it).
    pub l1_safe: Option<BlockRef>,
    /// The provider's `finalized` block, whatever the confirmations: no reorg may reach
    /// below it, and consumers may wait for it.
    pub finalized: Option<BlockRef>,
}

impl Heads {
    /// The tags, as a commit checks them against the blocks it stores.
    pub const fn tags(&self) -> ferry_storage::FinalityTags {
        ferry_storage::FinalityTags { safe: self.l1_safe, finalized: self.finalized }
    }
}

/// A log with the messaging contract's `LogMessageToL2` topic that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedLog {
    /// Where it was logged.
    pub position: Position,
    /// The transaction that emitted it.
    pub transaction_hash: Option<B256>,
    /// Why it could not be decoded.
    pub reason: String,
}

/// What one [`Collector::gather`] call found: everything in it read from one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered {
    /// The messages logged from the requested position through the last header's block, in
    /// `(block, logIndex)` order.
    pub messages: Vec<L1Message>,
    /// The lifecycle events (cancellations started and completed, consumptions) of the same
    /// range, in L1 order, with the timestamps of their blocks.
    pub events: Vec<LifecycleEvent>,
    /// Logs that carried the topic of a message or a lifecycle event but could not be
    /// decoded, in the same range.
    pub malformed: Vec<MalformedLog>,
    /// The headers of the blocks from the one asked for (at least the last block), ascending
    /// and linked; every log of a block among them carries its hash. The last one is the last
    /// block scanned completely; the first ones may be below the range (see
    /// [`Collector::gather`]).
    pub headers: Vec<BlockHeader>,
}

impl Gathered {
    /// The last block scanned completely.
    pub fn last_block(&self) -> BlockHeader {
        *self.headers.last().expect("a gathered range has at least its last header")
    }
}

/// What one L1 transaction logged, read from its block's receipts once their trie root is the
/// block header's: what `messaging_refetchTransaction` stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenTransaction {
    /// The transaction.
    pub transaction: B256,
    /// Its block, as the chain holds it now.
    pub block: BlockHeader,
    /// The messages it logged, in log order.
    pub messages: Vec<L1Message>,
    /// The lifecycle events it logged, in log order, with the block's timestamp.
    pub events: Vec<LifecycleEvent>,
    /// Logs with a message topic that do not decode.
    pub malformed: Vec<MalformedLog>,
}

/// Where L1 data comes from. The Ethereum implementation is [`EthereumCollector`]; tests
/// script one.
///
/// [`EthereumCollector`]: crate::EthereumCollector
pub trait Collector: Send + Sync + 'static {
    /// The latest block and the newest block the node may read.
    fn heads(&self) -> impl Future<Output = Result<Heads, CollectorError>> + Send;

    /// Resolves when a block newer than `known_latest` may exist: a newHeads notification, or
    /// the next poll tick.
    fn wait_for_head(&self, known_latest: u64) -> impl Future<Output = ()> + Send;

    /// The messages logged from `from` (its block, from its log index on) up to at most `to_block`;
    /// it may stop earlier (a provider's range limit), and says where with its last header. Never
    /// skips a block. Headers come for every block from `headers_from` on (the reorg window), and
    /// for the last block in any case; the logs of those blocks are checked against them, so that
    /// nothing returned mixes two chains (invariant: anchored gathers). An answer that cannot be
    /// anchored so is asked again, never returned. `headers_from` may be below `from`'s block:
    /// after an operator's forward move, the headers of the blocks skipped link the window to
    /// the range (their logs are not read).
    fn gather(
        &self,
        from: Position,
        to_block: u64,
        headers_from: u64,
    ) -> impl Future<Output = Result<Gathered, CollectorError>> + Send;

    /// How many blocks one [`Collector::gather`] call would cover now; while far behind the
    /// head, the stream keeps several such ranges in flight. `None`: one range at a time.
    fn range_hint(&self) -> Option<u64> {
        None
    }

    /// Whether block `number` is no longer the kept block `kept`, as every endpoint tells it:
    /// asked before a reorg is acted on. `false` when another endpoint still holds `kept`
    /// there: the one that said otherwise answers from another chain, and is set aside. With
    /// one endpoint there is no second opinion: `true`.
    fn confirm_replaced(
        &self,
        number: u64,
        kept: B256,
    ) -> impl Future<Output = Result<bool, CollectorError>> + Send {
        let _ = (number, kept);
        std::future::ready(Ok(true))
    }

    /// What transaction `hash` logged of the contract's events, proven against its block
    /// (which must be the chain's at its number); `None` when the chain holds no such
    /// transaction (never mined, or mined in a block a reorg replaced).
    fn proven_transaction(
        &self,
        hash: B256,
    ) -> impl Future<Output = Result<Option<ProvenTransaction>, CollectorError>> + Send;

    /// The canonical header of block `number`; `None` if the chain has no such block.
    fn header(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<Option<BlockHeader>, CollectorError>> + Send;

    /// The timestamp of canonical block `number`, in Unix seconds; `None` if the chain has no
    /// such block. A rewind by time searches blocks by it.
    fn block_timestamp(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<Option<u64>, CollectorError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmations_parse_numbers_and_tags_and_name_bad_values() {
        assert_eq!("12".parse(), Ok(Confirmations::Blocks(12)));
        assert_eq!("safe".parse(), Ok(Confirmations::Safe));
        assert_eq!("finalized".parse(), Ok(Confirmations::Finalized));
        let error = "-1".parse::<Confirmations>().unwrap_err();
        assert!(error.contains("\"-1\""), "{error}");
    }
}
