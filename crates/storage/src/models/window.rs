//! What the store knows of the chain's heads and its header window.

/// The provider's safe and finalized blocks, by number and hash, as the node fetched them
/// with its heads: a commit raises the window's heads to them only where the hash is the one
/// of the block the store holds (or the batch brings) at that number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FinalityTags {
    /// The provider's `safe` block.
    pub safe: Option<ferry_primitives::BlockRef>,
    /// The provider's `finalized` block.
    pub finalized: Option<ferry_primitives::BlockRef>,
}

/// What the node knew of the chain when it last extended the header window: the lowest block
/// it had to keep, and the provider's safe and finalized blocks, each raised only to a block
/// whose hash is the one the store holds at that number.
///
/// A block at or below these heads is final on the chain the node stored, which fresh heads,
/// fetched from another backend or before the node has seen a reorg, do not promise.
/// Consumers waiting for finality are told by these, and notices record them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowBounds {
    /// The window's floor then: blocks below it were final enough not to keep.
    pub floor: u64,
    /// The provider's safe block.
    pub safe: Option<u64>,
    /// The provider's finalized block.
    pub finalized: Option<u64>,
}

impl WindowBounds {
    /// The heads as notices record them.
    pub const fn heads(&self) -> KnownHeads {
        KnownHeads { safe: self.safe, finalized: self.finalized }
    }
}

/// The L1 safe and finalized heads the node knew when it wrote a notice: whether a consumer
/// following `safe` or `finalized` had been told of what the notice retracts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnownHeads {
    /// The provider's `safe` block.
    pub safe: Option<u64>,
    /// The provider's `finalized` block.
    pub finalized: Option<u64>,
}
