//! The consumer side: reading the log, and the resumable subscription.
//!
//! Every notification is read from the store, never from an in-memory buffer: a subscriber
//! from seq `n` is sent `n, n+1, ...` as far as the last committed seq, then waits for the
//! drain task's last-seq watch to move and reads on. So a subscriber can start at any seq
//! ever stored, the hand-over from replay to live cannot skip or repeat (there is only one
//! path), and a slow subscriber costs the drain task nothing. A subscriber that waits for
//! `safe` or `finalized` blocks reads the same log through [`visibility`], and also wakes
//! after every commit, which may move the heads it is told by.

mod finality;
mod subscription;

use crate::{
    RpcError,
    context::{Context, RemoteAddr, register},
    params::{CallParams, Quantity},
    wire,
};
use ferry_primitives::{B256, EntryKind, Finality, LogEntry, Seq, StoredMessage};
use ferry_rpc_api::{LogPage, MessageLifecycle, ReadOptions, ReorgEntry};
use ferry_storage::KnownHeads;
use finality::{Visibility, visibility};
use jsonrpsee::{Extensions, RpcModule, types::Params};
use std::sync::Arc;

/// `messaging_getMessages`' default and largest `limit`.
const PAGE_LIMIT: (u64, u64) = (100, 1_000);

/// `messaging_getReorgs`' default and largest `limit`.
const REORGS_LIMIT: (u64, u64) = (20, 1_000);

/// Entries a page looks at, for each one it may return, while a finality option leaves some
/// out: bounds the work of one call.
const SCAN_FACTOR: usize = 8;

/// Registers the consumer methods on the public listener.
pub(crate) fn register_all(module: &mut RpcModule<Context>) {
    register(module, "messaging_getMessages", messages);
    register(module, "messaging_getMessageByHash", message_by_hash);
    register(module, "messaging_getMessageState", message_state);
    register(module, "messaging_getReorgs", reorgs);
    module
        .register_subscription(
            "messaging_subscribe",
            "messaging_subscription",
            "messaging_unsubscribe",
            |params, pending, context, extensions| {
                let peer = extensions.get::<RemoteAddr>().map(|RemoteAddr(addr)| addr.ip());
                subscription::subscribe(params, pending, context, peer)
            },
        )
        .expect("messaging_subscribe is registered once");
}

/// A page being filled: up to a count and a byte budget, though never empty for want of
/// bytes, so that an entry larger than the budget still goes out, alone. Entries are
/// measured by [`LogEntry::json_size_bound`], so a page's JSON never exceeds the budget.
struct PageBuilder {
    entries: Vec<LogEntry>,
    limit: usize,
    bytes: usize,
    max_bytes: usize,
}

impl PageBuilder {
    fn new(limit: usize, max_bytes: u32) -> Self {
        Self { entries: Vec::new(), limit, bytes: 0, max_bytes: max_bytes as usize }
    }

    /// Adds `entry` unless the page is full; `false` when it is (and the entry left out).
    fn push(&mut self, entry: LogEntry) -> bool {
        if self.entries.len() >= self.limit {
            return false;
        }
        let size = entry.json_size_bound();
        if !self.entries.is_empty() && self.bytes + size > self.max_bytes {
            return false;
        }
        self.bytes += size;
        self.entries.push(entry);
        true
    }

    fn is_full(&self) -> bool {
        self.entries.len() >= self.limit || self.bytes >= self.max_bytes
    }

    fn finish(self, next_seq: u64) -> LogPage {
        LogPage { entries: self.entries, next_seq }
    }
}

/// A `limit` param: 1 to `max`, `default` when absent.
fn limit(call: &CallParams, index: usize, (default, max): (u64, u64)) -> Result<usize, RpcError> {
    let limit = call.optional::<Quantity>(index)?.map_or(default, |Quantity(limit)| limit);
    if limit == 0 || limit > max {
        return Err(RpcError::InvalidParam {
            param: "limit",
            reason: format!("{limit} is out of range 1..={max}"),
        });
    }
    Ok(limit as usize)
}

async fn messages(
    params: Params<'static>,
    context: Arc<Context>,
    _: Extensions,
) -> Result<LogPage, RpcError> {
    let call = CallParams::parse(&params, &["fromSeq", "limit", "options"])?;
    let Quantity(from_seq) = call.required(0)?;
    let limit = limit(&call, 1, PAGE_LIMIT)?;
    let options: ReadOptions = call.optional(2)?.unwrap_or_default();
    page(&context, from_seq, limit, options)
}

async fn message_by_hash(
    params: Params<'static>,
    context: Arc<Context>,
    _: Extensions,
) -> Result<Option<StoredMessage>, RpcError> {
    let call = CallParams::parse(&params, &["hash"])?;
    let hash: B256 = call.required(0)?;
    Ok(context.store.message_by_hash(hash)?)
}

/// Whether an entry goes to a consumer that asked for executable messages only.
fn executable(entry: &LogEntry) -> bool {
    !matches!(entry.kind, EntryKind::Message | EntryKind::Reincluded)
        || entry.lifecycle.state.is_executable()
}

/// Up to `limit` entries (and `Limits::max_page_bytes`) from `from_seq` that a consumer
/// reading with `options` is told of now, and where to read on: past what was left out, up
/// to the first entry not final yet.
pub(super) fn page(
    context: &Context,
    from_seq: u64,
    limit: usize,
    options: ReadOptions,
) -> Result<LogPage, RpcError> {
    let store = &context.store;
    let mut page = PageBuilder::new(limit, context.limits.max_page_bytes);
    let mut next_seq = from_seq;
    let waits = options.finality != Finality::Latest;
    let heads = if waits { store.final_heads()? } else { KnownHeads::default() };
    // Read no more than a page can hold, even of entries left out.
    let scan = if waits || options.executable { limit * SCAN_FACTOR } else { limit };
    for stored in store.entries_within(Seq(from_seq), scan, page.max_bytes)? {
        let seq = stored.entry.seq;
        let told = match visibility(stored.settlement, options.finality, heads) {
            Visibility::Wait => break,
            Visibility::Skip => false,
            Visibility::Deliver => !options.executable || executable(&stored.entry),
        };
        if told && !page.push(stored.entry) {
            break;
        }
        next_seq = seq.next().0;
        if page.is_full() {
            break;
        }
    }
    Ok(page.finish(next_seq))
}

async fn message_state(
    params: Params<'static>,
    context: Arc<Context>,
    _: Extensions,
) -> Result<Option<MessageLifecycle>, RpcError> {
    let call = CallParams::parse(&params, &["hash"])?;
    let hash: B256 = call.required(0)?;
    Ok(context.store.message_lifecycle(hash)?)
}

async fn reorgs(
    params: Params<'static>,
    context: Arc<Context>,
    _: Extensions,
) -> Result<Vec<ReorgEntry>, RpcError> {
    let call = CallParams::parse(&params, &["limit"])?;
    let limit = limit(&call, 0, REORGS_LIMIT)?;
    let (reorgs, _) = context.store.reorgs(limit)?;
    Ok(reorgs.into_iter().map(|(id, record)| wire::reorg_entry(id, record)).collect())
}
