use crate::CollectorError;
use alloy::primitives::B256;
use ferry_primitives::{BlockRef, L1Message, Position};
use serde::{Deserialize, Serialize};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heads {
    /// The newest block.
    pub latest: u64,
    /// The newest block the node may read under its [`Confirmations`]; `None` while the chain
    /// is shorter than the confirmations asked for.
    pub safe: Option<u64>,
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

/// What one [`Collector::gather`] call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered {
    /// The messages logged from the requested position through `last_block`, in
    /// `(block, logIndex)` order.
    pub messages: Vec<L1Message>,
    /// Logs that carried the message topic but could not be decoded, in the same range.
    pub malformed: Vec<MalformedLog>,
    /// The last block scanned completely, with its hash.
    pub last_block: BlockRef,
    /// The block before the first one gathered, with its hash as the collector saw it while
    /// gathering; `None` from block 0, or when not asked for. Two ranges gathered apart may be
    /// committed together only if this matches the previous range's `last_block`: the chain
    /// they were read from is then the same one.
    pub parent: Option<BlockRef>,
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

    /// The messages logged from `from` (its block, from its log index on) up to at most
    /// `to_block`; it may stop earlier (a provider's range limit), and says where in
    /// [`Gathered::last_block`]. Never skips a block. With `with_parent` it also reads
    /// [`Gathered::parent`] (one more request): only ranges gathered ahead, to be merged, need
    /// it; the range at the chain head does not.
    fn gather(
        &self,
        from: Position,
        to_block: u64,
        with_parent: bool,
    ) -> impl Future<Output = Result<Gathered, CollectorError>> + Send;

    /// How many blocks one [`Collector::gather`] call would cover now; while far behind the
    /// head, the stream keeps several such ranges in flight. `None`: one range at a time.
    fn range_hint(&self) -> Option<u64> {
        None
    }

    /// The canonical hash of block `number`; `None` if the chain has no such block.
    fn block_hash(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<Option<B256>, CollectorError>> + Send;
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
