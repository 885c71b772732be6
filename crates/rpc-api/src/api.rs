//! The namespace as Rust traits: the typed clients of both listeners.
//!
//! The server (`ferry-rpc`) registers the same methods by hand (in `crates/rpc/src/admin.rs`,
//! `crates/rpc/src/public.rs` and `crates/rpc/src/consumers/`) so that it can name the param
//! at fault in every invalid-params error; its tests drive it through these clients, and check
//! both against `rpc-spec/openrpc.json`.

use crate::{
    ChangeOptions, CheckpointChangeResult, CheckpointTarget, HistoryEntry, LogPage,
    MessageLifecycle, NodeStatus, ReadOptions, RefetchOptions, Refetched, ReorgEntry,
};
use ferry_primitives::{B256, Position, StoredMessage};
use jsonrpsee::proc_macros::rpc;

/// The admin listener: reading and moving the checkpoint.
#[rpc(client, namespace = "messaging")]
pub trait AdminApi {
    /// The stored checkpoint: the next L1 log position the node reads, or null when reading
    /// starts at the configured start block.
    #[method(name = "getCheckpoint")]
    async fn get_checkpoint(&self) -> RpcResult<Option<Position>>;

    /// Moves the checkpoint to `(block, index)`; the node re-scans from there (or skips to
    /// there) at once. `index` defaults to 0: the whole block is read again. `block` may be
    /// `{"timestamp": <Unix seconds or RFC 3339>}`: the first block at or after that moment.
    #[method(name = "setCheckpoint")]
    async fn set_checkpoint(
        &self,
        block: CheckpointTarget,
        index: Option<u64>,
        options: Option<ChangeOptions>,
    ) -> RpcResult<CheckpointChangeResult>;

    /// Deletes the checkpoint; the node re-reads from its configured start block.
    #[method(name = "resetCheckpoint")]
    async fn reset_checkpoint(
        &self,
        options: Option<ChangeOptions>,
    ) -> RpcResult<CheckpointChangeResult>;

    /// Reads one L1 transaction's receipt, proves it against its block (receipts root; the
    /// block in the header window or final, and read already) and stores the messages it
    /// logged that the node missed, through the normal dedup path; the checkpoint does not
    /// move. With `{"dryRun": true}` nothing is stored.
    #[method(name = "refetchTransaction")]
    async fn refetch_transaction(
        &self,
        transaction: B256,
        options: Option<RefetchOptions>,
    ) -> RpcResult<Refetched>;

    /// The newest checkpoint changes, newest first (default 20, at most 1,000).
    #[method(name = "getCheckpointHistory")]
    async fn get_checkpoint_history(&self, limit: Option<u64>) -> RpcResult<Vec<HistoryEntry>>;
}

/// The public listener.
#[rpc(client, namespace = "messaging")]
pub trait PublicApi {
    /// The node's state: chain, contract, heads, cursor, checkpoint, lag, counters, nonce
    /// range and gaps, upstream health, version.
    #[method(name = "status")]
    async fn status(&self) -> RpcResult<NodeStatus>;

    /// Entries of the log from `from_seq` on, in seq order (default 100, at most 1,000):
    /// messages, and the notices that say what a reorg removed and included again; with a
    /// finality option, only what is final enough.
    #[method(name = "getMessages")]
    async fn get_messages(
        &self,
        from_seq: u64,
        limit: Option<u64>,
        options: Option<ReadOptions>,
    ) -> RpcResult<LogPage>;

    /// The stored message with this Starknet L1->L2 message hash, as it is now (its origin,
    /// whether it is orphaned), or null.
    #[method(name = "getMessageByHash")]
    async fn get_message_by_hash(&self, hash: B256) -> RpcResult<Option<StoredMessage>>;

    /// Where the message with this hash stands on L1 (pending, cancellation started,
    /// cancelled, consumed) and the events behind it; also for a message known only from its
    /// lifecycle events (`seq` null). Null if the node knows nothing of it.
    #[method(name = "getMessageState")]
    async fn get_message_state(&self, hash: B256) -> RpcResult<Option<MessageLifecycle>>;

    /// The newest reorgs the node recorded, newest first (default 20, at most 1,000).
    #[method(name = "getReorgs")]
    async fn get_reorgs(&self, limit: Option<u64>) -> RpcResult<Vec<ReorgEntry>>;

    /// Entries of the log from `from_seq` on (replayed from the store), then live as they are
    /// written; without `from_seq`, live only. Each notification is a page of entries; resume
    /// with its `nextSeq`. WebSocket only.
    #[subscription(name = "subscribe" => "subscription", unsubscribe = "unsubscribe", item = LogPage)]
    async fn subscribe_messages(
        &self,
        from_seq: Option<u64>,
        options: Option<ReadOptions>,
    ) -> SubscriptionResult;
}
