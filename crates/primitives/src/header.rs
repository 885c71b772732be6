//! The part of an L1 header that links a block to its parent: what the reorg window keeps and
//! every gather is checked against.

use crate::BlockRef;
use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

/// What ferry keeps of an L1 block header: enough to tell whether a block it scanned is still
/// on the canonical chain, and to link it to the block before.
///
/// A run of headers whose every `parent_hash` is the hash of the header before is one chain:
/// the store keeps such a run (the reorg window) and the collector checks every run it
/// fetches the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockHeader {
    /// Block number.
    #[serde(deserialize_with = "crate::quantity::deserialize")]
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Hash of the block before.
    pub parent_hash: B256,
}

impl BlockHeader {
    /// The block's number and hash.
    pub const fn block_ref(&self) -> BlockRef {
        BlockRef { number: self.number, hash: self.hash }
    }

    /// Whether `next` is the block right after this one on the same chain.
    pub fn is_parent_of(&self, next: &Self) -> bool {
        next.number == self.number + 1 && next.parent_hash == self.hash
    }
}

/// Whether `headers` are consecutive blocks of one chain, each the parent of the next; the
/// number of the first block that does not link to the one before, if any.
pub fn first_unlinked(headers: &[BlockHeader]) -> Option<u64> {
    headers.windows(2).find(|pair| !pair[0].is_parent_of(&pair[1])).map(|pair| pair[1].number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(number: u64, hash: u8, parent: u8) -> BlockHeader {
        BlockHeader {
            number,
            hash: B256::repeat_byte(hash),
            parent_hash: B256::repeat_byte(parent),
        }
    }

    #[test]
    fn a_chain_links_by_number_and_parent_hash() {
        assert_eq!(first_unlinked(&[header(1, 1, 0), header(2, 2, 1), header(3, 3, 2)]), None);
        assert_eq!(first_unlinked(&[header(1, 1, 0), header(2, 2, 9)]), Some(2), "parent");
        assert_eq!(first_unlinked(&[header(1, 1, 0), header(3, 3, 1)]), Some(3), "number");
        assert_eq!(first_unlinked(&[]), None);
    }
}
