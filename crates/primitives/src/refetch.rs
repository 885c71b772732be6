//! What `messaging_refetchTransaction` did, or would do: the messages one L1 transaction
//! logged, proven against its block, and which of them the node held already.

use crate::{B256, BlockRef, Seq, U256};
use serde::{Deserialize, Serialize};

/// The answer of `messaging_refetchTransaction`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refetched {
    /// Whether this was only a preview.
    pub dry_run: bool,
    /// The transaction.
    pub transaction: B256,
    /// Its block, proven: its receipts' trie root is the header's.
    pub block: BlockRef,
    /// The messages it logged, in log order.
    pub messages: Vec<RefetchedMessage>,
    /// Messages stored now, with new seqs (none in a dry run).
    pub stored: u64,
    /// Orphaned messages included again now.
    pub reincluded: u64,
    /// Lifecycle changes it logged that were applied now.
    pub state_changes: u64,
}

/// One message of a refetched transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefetchedMessage {
    /// Starknet's L1→L2 message hash.
    pub hash: B256,
    /// The contract's nonce for it.
    pub nonce: U256,
    /// Its log index in the block.
    pub log_index: u64,
    /// The seq it was stored under before the call; `null` when the node had missed it.
    pub stored_seq: Option<Seq>,
}
