//! The error codes of the `messaging` namespace; `rpc-spec/openrpc.json` lists the same.

/// The JSON text does not parse.
pub const PARSE_ERROR: i32 = -32700;
/// Not a JSON-RPC request (an empty batch, a missing `method`).
pub const INVALID_REQUEST: i32 = -32600;
/// No such method on this listener.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// A param is missing, of the wrong type or out of range; the message names it.
pub const INVALID_PARAMS: i32 = -32602;
/// Unexpected failure inside the node.
pub const INTERNAL_ERROR: i32 = -32603;
/// The request body is larger than the listener accepts (HTTP 413).
pub const REQUEST_TOO_BIG: i32 = -32007;
/// A batch holds more requests than the listener accepts.
pub const BATCH_TOO_LARGE: i32 = -32010;
/// The requested block is beyond the newest L1 head the node knows; `data.head` says it.
pub const BEYOND_HEAD: i32 = -32050;
/// The store failed; nothing was changed.
pub const STORAGE_FAILURE: i32 = -32051;
/// A set by time asked for a moment after the newest L1 block; `data` gives that block
/// and its timestamp.
pub const TIME_BEYOND_HEAD: i32 = -32052;
/// A set by time could not search L1's blocks (not connected, failing, too slow);
/// nothing was changed.
pub const L1_UNAVAILABLE: i32 = -32053;
/// A compare-and-set change (`expected` given) found another checkpoint stored: a reorg,
/// a commit or another change moved it since the caller read it. Nothing was changed;
/// `data` gives both. Read again and decide again.
pub const CHECKPOINT_MOVED: i32 = -32054;
/// `messaging_refetchTransaction` was refused: the transaction is not on the canonical chain,
/// its block is neither in the header window nor final, the node has not read that block
/// yet, or L1 could not prove it; `data` names the transaction and the reason. Nothing was
/// stored.
pub const REFETCH_REFUSED: i32 = -32055;
/// A write (checkpoint change, refetch) reached a standby of a high-availability group:
/// only the leader writes. Nothing was changed; `data` names the group and the leader
/// (`node`, `admin`, `public`, `term`), or `leader: null` while none leads. Send it there.
pub const NOT_LEADER: i32 = -32056;
/// A subscription was closed because its subscriber could not keep up; `data` says the
/// last seq delivered and where to resume. Sent as the subscription's error notification.
pub const SLOW_SUBSCRIBER: i32 = -32060;
/// The public listener serves no more subscriptions now.
pub const SUBSCRIPTION_LIMIT: i32 = -32061;
