//! Places in the L1 log stream: `(block, logIndex)` positions, the source checkpoint, and a
//! block's number with its hash.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A place in the contract's L1 log stream: the `logIndex` of a log within its block.
///
/// `index` is the log's index in the block, never the transaction index: one L1 transaction
/// can emit several messages, and each needs its own position. Positions order by block,
/// then by index, which is the order in which L1 emitted the logs.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    /// L1 block number.
    #[serde(deserialize_with = "crate::quantity::deserialize")]
    pub block: u64,
    /// Log index within the block.
    #[serde(deserialize_with = "crate::quantity::deserialize")]
    pub index: u64,
}

impl Position {
    /// The position `(block, index)`.
    pub const fn new(block: u64, index: u64) -> Self {
        Self { block, index }
    }

    /// The first log of `block`: reading from here re-scans the whole block.
    pub const fn block_start(block: u64) -> Self {
        Self { block, index: 0 }
    }

    /// How many blocks a reader at `self` still has to read through `safe_head`: the lag
    /// status, metrics and readiness report (0 once past it).
    pub const fn blocks_behind(self, safe_head: u64) -> u64 {
        (safe_head + 1).saturating_sub(self.block)
    }

    /// The position right after the log at `self`, in the same block.
    pub const fn next_log(self) -> Self {
        Self { block: self.block, index: self.index.saturating_add(1) }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(block {}, index {})", self.block, self.index)
    }
}

/// A block by number and hash: which fork a scanned block was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockRef {
    /// Block number.
    #[serde(deserialize_with = "crate::quantity::deserialize")]
    pub number: u64,
    /// Block hash.
    pub hash: alloy_primitives::B256,
}

/// The source checkpoint: the next L1 log position the node will read.
///
/// `None` means "no checkpoint stored": the node starts at its configured start block.
pub type Checkpoint = Option<Position>;

/// A checkpoint as operators read it, in messages and the CLI: the position, or that none is
/// stored (reading starts at the start block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowCheckpoint(pub Checkpoint);

impl fmt::Display for ShowCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(position) => position.fmt(f),
            None => f.write_str("none (reading starts at the start block)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_block_then_log_index() {
        let mut positions = vec![
            Position::new(2, 0),
            Position::new(1, 5),
            Position::new(1, 0),
            Position::new(0, 9),
        ];
        positions.sort();
        assert_eq!(
            positions,
            vec![
                Position::new(0, 9),
                Position::new(1, 0),
                Position::new(1, 5),
                Position::new(2, 0)
            ]
        );
        assert!(Position::new(1, u64::MAX) < Position::new(2, 0));
    }

    #[test]
    fn position_json_takes_numbers_or_hex_and_writes_numbers() {
        let position: Position =
            serde_json::from_str(r#"{"block":"0x3e8","index":2}"#).expect("valid position");
        assert_eq!(position, Position::new(1000, 2));
        assert_eq!(serde_json::to_string(&position).unwrap(), r#"{"block":1000,"index":2}"#);
    }

    #[test]
    fn position_json_refuses_negative_block() {
        let error = serde_json::from_str::<Position>(r#"{"block":-1,"index":0}"#).unwrap_err();
        assert!(error.to_string().contains("-1 is negative"), "{error}");
    }
}
