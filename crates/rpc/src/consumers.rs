//! The consumer side: reading the log, and the resumable subscription.
//!
//! Every notification is read from the store, never from an in-memory buffer: a subscriber
//! from seq `n` is sent `n, n+1, ...` as far as the last committed seq, then waits for the
//! drain task's last-seq watch to move and reads on. So a subscriber can start at any seq
//! ever stored, the hand-over from replay to live cannot skip or repeat (there is only one
//! path), and a slow subscriber costs the drain task nothing. A subscriber that waits for
//! `safe` or `finalized` blocks reads the same log through [`visibility`], and also wakes
//! after every commit, which may move the heads it is told by.

use crate::{
    Limits, LogPage, MessageStateResult, ReadOptions, ReorgEntry, RpcError, codes,
    methods::{Context, answer},
    params::{CallParams, Quantity},
    server::RemoteAddr,
};
use ferry_messaging::{Visibility, visibility};
use ferry_primitives::{B256, EntryKind, Finality, LogEntry, Seq};
use ferry_storage::KnownHeads;
use jsonrpsee::{
    PendingSubscriptionSink, RpcModule,
    core::{SubscriptionError, server::SendTimeoutError},
    types::{ErrorObjectOwned, Params},
};
use serde_json::json;
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};
use tracing::{debug, info};

const LOG_TARGET: &str = "ferry::rpc::consumers";

/// `messaging_getMessages`' default and largest `limit`.
const PAGE_LIMIT: (u64, u64) = (100, 1_000);

/// `messaging_getReorgs`' default and largest `limit`.
const REORGS_LIMIT: (u64, u64) = (20, 1_000);

/// Entries a page looks at, for each one it may return, while a finality option leaves some
/// out: bounds the work of one call.
const SCAN_FACTOR: usize = 8;

/// Subscriptions open on the public listener, in all (against
/// `Limits::max_subscriptions_total`) and by peer IP address (against
/// `Limits::max_subscriptions_per_peer`).
#[derive(Debug, Default)]
pub(crate) struct SubscriptionCount(Mutex<Counts>);

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// Why a subscription found no place.
enum NoPlace {
    Total(u32),
    Peer(IpAddr, u32),
}

/// Releases a subscription's place in the counts when it ends.
struct Place<'a> {
    count: &'a SubscriptionCount,
    peer: Option<IpAddr>,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut counts = self.count.lock();
        counts.total -= 1;
        if let Some(peer) = self.peer
            && let Some(open) = counts.by_peer.get_mut(&peer)
        {
            *open -= 1;
            if *open == 0 {
                counts.by_peer.remove(&peer);
            }
        }
        metrics::gauge!("ferry_rpc_subscriptions").decrement(1);
    }
}

impl SubscriptionCount {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts are plain integers, consistent after any panic.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self, limits: &Limits, peer: Option<IpAddr>) -> Result<Place<'_>, NoPlace> {
        let peer = peer.map(peer_group);
        let mut counts = self.lock();
        if counts.total >= limits.max_subscriptions_total as usize {
            return Err(NoPlace::Total(limits.max_subscriptions_total));
        }
        if let Some(peer) = peer {
            let open = counts.by_peer.entry(peer).or_default();
            if *open >= limits.max_subscriptions_per_peer as usize {
                return Err(NoPlace::Peer(peer, limits.max_subscriptions_per_peer));
            }
            *open += 1;
        }
        counts.total += 1;
        metrics::gauge!("ferry_rpc_subscriptions").increment(1);
        Ok(Place { count: self, peer })
    }
}

/// The address one peer is counted under: an IPv4 address, or an IPv6 address's /64 (one
/// host is given a /64 to choose addresses from).
fn peer_group(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

impl From<NoPlace> for ErrorObjectOwned {
    fn from(refusal: NoPlace) -> Self {
        metrics::counter!("ferry_rpc_refused_total", "listener" => "public", "reason" => "subscriptions")
            .increment(1);
        match refusal {
            NoPlace::Total(limit) => Self::owned(
                codes::SUBSCRIPTION_LIMIT,
                format!("the node serves at most {limit} subscriptions; try again later"),
                Some(json!({ "limit": limit })),
            ),
            NoPlace::Peer(peer, limit) => Self::owned(
                codes::SUBSCRIPTION_LIMIT,
                format!(
                    "{peer} already has {limit} subscriptions open, the most one address (or \
                     IPv6 /64) may hold; close one first"
                ),
                Some(json!({ "limit": limit, "peer": peer.to_string() })),
            ),
        }
    }
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

pub(crate) fn register(module: &mut RpcModule<Context>) {
    let registered = [
        module
            .register_async_method("messaging_getMessages", |params, context, _| async move {
                answer("messaging_getMessages", messages(&params, &context))
            })
            .map(drop),
        module
            .register_async_method("messaging_getMessageByHash", |params, context, _| async move {
                answer(
                    "messaging_getMessageByHash",
                    async {
                        let call = CallParams::parse(&params, &["hash"])?;
                        let hash: B256 = call.required(0)?;
                        Ok(context.controller.store().message_by_hash(hash)?)
                    }
                    .await,
                )
            })
            .map(drop),
        module
            .register_async_method("messaging_getMessageState", |params, context, _| async move {
                answer("messaging_getMessageState", message_state(&params, &context))
            })
            .map(drop),
        module
            .register_async_method("messaging_getReorgs", |params, context, _| async move {
                answer("messaging_getReorgs", reorgs(&params, &context))
            })
            .map(drop),
        module
            .register_subscription(
                "messaging_subscribe",
                "messaging_subscription",
                "messaging_unsubscribe",
                |params, pending, context, extensions| {
                    let peer = extensions.get::<RemoteAddr>().map(|RemoteAddr(addr)| addr.ip());
                    subscribe(params, pending, context, peer)
                },
            )
            .map(drop),
    ];
    for result in registered {
        result.expect("consumer method names are unique");
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

fn messages(params: &Params<'_>, context: &Context) -> Result<LogPage, RpcError> {
    let call = CallParams::parse(params, &["fromSeq", "limit", "options"])?;
    let Quantity(from_seq) = call.required(0)?;
    let limit = limit(&call, 1, PAGE_LIMIT)?;
    let options: ReadOptions = call.optional(2)?.unwrap_or_default();
    page(context, from_seq, limit, options)
}

/// Whether an entry goes to a consumer that asked for executable messages only.
fn executable(entry: &LogEntry) -> bool {
    !matches!(entry.kind, EntryKind::Message | EntryKind::Reincluded)
        || entry.lifecycle.state.is_executable()
}

/// Up to `limit` entries (and `Limits::max_page_bytes`) from `from_seq` that a consumer
/// reading with `options` is told of now, and where to read on: past what was left out, up
/// to the first entry not final yet.
fn page(
    context: &Context,
    from_seq: u64,
    limit: usize,
    options: ReadOptions,
) -> Result<LogPage, RpcError> {
    let store = context.controller.store();
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
        next_seq = seq.0 + 1;
        if page.is_full() {
            break;
        }
    }
    Ok(page.finish(next_seq))
}

fn message_state(
    params: &Params<'_>,
    context: &Context,
) -> Result<Option<MessageStateResult>, RpcError> {
    let call = CallParams::parse(params, &["hash"])?;
    let hash: B256 = call.required(0)?;
    Ok(context.controller.store().message_lifecycle(hash)?.map(MessageStateResult::from))
}

fn reorgs(params: &Params<'_>, context: &Context) -> Result<Vec<ReorgEntry>, RpcError> {
    let call = CallParams::parse(params, &["limit"])?;
    let limit = limit(&call, 0, REORGS_LIMIT)?;
    let (reorgs, _) = context.controller.store().reorgs(limit)?;
    Ok(reorgs.into_iter().map(|(id, record)| ReorgEntry::new(id, record)).collect())
}

/// The error a subscription is closed with when its subscriber cannot keep up.
fn too_slow(last_delivered: Option<u64>, next: u64) -> SubscriptionError {
    let error = json!({
        "code": codes::SLOW_SUBSCRIBER,
        "message": "subscriber too slow: closed to keep the node's memory bounded; \
                    subscribe again from data.resumeFrom",
        "data": { "lastDeliveredSeq": last_delivered, "resumeFrom": next },
    });
    let raw = serde_json::value::to_raw_value(&error).expect("a JSON literal serialises");
    SubscriptionError::from_json(raw)
}

async fn subscribe(
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    context: Arc<Context>,
    peer: Option<IpAddr>,
) -> Result<(), SubscriptionError> {
    let parsed = CallParams::parse(&params, &["fromSeq", "options"]).and_then(|call| {
        let from_seq = call.optional::<Quantity>(0)?.map(|Quantity(seq)| seq);
        let options: ReadOptions = call.optional(1)?.unwrap_or_default();
        Ok((from_seq, options))
    });
    let (from_seq, options) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            pending.reject(ErrorObjectOwned::from(error)).await;
            return Ok(());
        }
    };
    let _place = match context.subscriptions.take(&context.limits, peer) {
        Ok(place) => place,
        Err(refusal) => {
            pending.reject(ErrorObjectOwned::from(refusal)).await;
            return Ok(());
        }
    };
    let status = context.controller.status();
    let mut last_seq = status.subscribe_last_seq();
    let mut writes = status.subscribe_writes();
    // Without fromSeq: live only, from the entry after the newest stored now.
    let mut next = from_seq.unwrap_or_else(|| last_seq.borrow().map_or(0, |seq| seq.0 + 1));
    let Ok(sink) = pending.accept().await else { return Ok(()) };
    let finality = options.finality;
    debug!(target: LOG_TARGET, from = next, live_only = from_seq.is_none(), %finality,
        executable = options.executable, "Subscribed");
    let batch = context.limits.subscription_batch.max(1) as usize;
    loop {
        // Everything written up to the last seq seen, then wait for it (or, waiting for
        // finality, the heads) to move. A write after this read marks the watch changed, so
        // the wait below returns at once.
        let newest = *last_seq.borrow_and_update();
        writes.borrow_and_update();
        while let Some(newest) = newest.filter(|newest| newest.0 >= next) {
            let count = ((newest.0 - next + 1) as usize).min(batch);
            let page = page(&context, next, count, options)
                .map_err(|error| SubscriptionError::from(error.to_string()))?;
            if page.next_seq == next {
                break; // the next entry is not final yet
            }
            if page.entries.is_empty() {
                next = page.next_seq;
                continue;
            }
            let next_seq = page.next_seq;
            let raw = serde_json::value::to_raw_value(&page)
                .map_err(|error| SubscriptionError::from(error.to_string()))?;
            match sink.send_timeout(raw, context.limits.slow_subscriber_timeout).await {
                Ok(()) => next = next_seq,
                Err(SendTimeoutError::Timeout(_)) => {
                    info!(target: LOG_TARGET, next, "Closing a subscriber that cannot keep up");
                    metrics::counter!("ferry_rpc_slow_subscribers_total").increment(1);
                    return Err(too_slow(next.checked_sub(1), next));
                }
                Err(SendTimeoutError::Closed(_)) => return Ok(()),
            }
        }
        let waits_for_finality = finality != Finality::Latest;
        tokio::select! {
            () = sink.closed() => return Ok(()),
            changed = last_seq.changed() => if changed.is_err() { return Ok(()) },
            changed = writes.changed(), if waits_for_finality => if changed.is_err() { return Ok(()) },
        }
    }
}
