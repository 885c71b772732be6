//! The consumer side: reading stored messages, and the resumable subscription.
//!
//! Every notification is read from the store, never from an in-memory buffer: a subscriber
//! from seq `n` is sent `n, n+1, ...` as far as the last committed seq, then waits for the
//! drain task's last-seq watch to move and reads on. So a subscriber can start at any seq
//! ever stored, the hand-over from replay to live cannot skip or repeat (there is only one
//! path), and a slow subscriber costs the drain task nothing.

use crate::{
    MessagesPage, RpcError, codes,
    methods::{Context, answer},
    params::{CallParams, Quantity},
};
use ferry_primitives::{B256, Seq};
use jsonrpsee::{
    PendingSubscriptionSink, RpcModule,
    core::{SubscriptionError, server::SendTimeoutError},
    types::{ErrorObjectOwned, Params},
};
use serde_json::json;
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use tracing::{debug, info};

const LOG_TARGET: &str = "ferry::rpc::consumers";

/// `messaging_getMessages`' default and largest `limit`.
const PAGE_LIMIT: (u64, u64) = (100, 1_000);

/// Subscriptions open on the public listener, against `Limits::max_subscriptions_total`.
#[derive(Debug, Default)]
pub(crate) struct SubscriptionCount(AtomicUsize);

/// Releases a subscription's place in the count when it ends.
struct Place<'a>(&'a SubscriptionCount);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!("ferry_rpc_subscriptions").decrement(1);
    }
}

impl SubscriptionCount {
    fn take(&self, limit: usize) -> Option<Place<'_>> {
        let taken = self.0.fetch_add(1, Ordering::SeqCst);
        if taken >= limit {
            self.0.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        metrics::gauge!("ferry_rpc_subscriptions").increment(1);
        Some(Place(self))
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
            .register_subscription(
                "messaging_subscribe",
                "messaging_subscription",
                "messaging_unsubscribe",
                |params, pending, context, _| subscribe(params, pending, context),
            )
            .map(drop),
    ];
    for result in registered {
        result.expect("consumer method names are unique");
    }
}

fn messages(params: &Params<'_>, context: &Context) -> Result<MessagesPage, RpcError> {
    let call = CallParams::parse(params, &["fromSeq", "limit"])?;
    let Quantity(from_seq) = call.required(0)?;
    let limit = call.optional::<Quantity>(1)?.map_or(PAGE_LIMIT.0, |Quantity(limit)| limit);
    if limit == 0 || limit > PAGE_LIMIT.1 {
        return Err(RpcError::InvalidParam {
            param: "limit",
            reason: format!("{limit} is out of range 1..={}", PAGE_LIMIT.1),
        });
    }
    let messages = context.controller.store().messages_from(Seq(from_seq), limit as usize)?;
    let next_seq = messages.last().map_or(from_seq, |last| last.seq.0 + 1);
    Ok(MessagesPage { messages, next_seq })
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
) -> Result<(), SubscriptionError> {
    let from_seq = match CallParams::parse(&params, &["fromSeq"])
        .and_then(|call| call.optional::<Quantity>(0))
    {
        Ok(from_seq) => from_seq.map(|Quantity(seq)| seq),
        Err(error) => {
            pending.reject(ErrorObjectOwned::from(error)).await;
            return Ok(());
        }
    };
    let Some(_place) = context.subscriptions.take(context.limits.max_subscriptions_total as usize)
    else {
        let limit = context.limits.max_subscriptions_total;
        pending
            .reject(ErrorObjectOwned::owned(
                codes::SUBSCRIPTION_LIMIT,
                format!("the node serves at most {limit} subscriptions; try again later"),
                Some(json!({ "limit": limit })),
            ))
            .await;
        return Ok(());
    };
    let mut last_seq = context.controller.status().subscribe_last_seq();
    // Without fromSeq: live only, from the message after the newest stored now.
    let mut next = from_seq.unwrap_or_else(|| last_seq.borrow().map_or(0, |seq| seq.0 + 1));
    let Ok(sink) = pending.accept().await else { return Ok(()) };
    debug!(target: LOG_TARGET, from = next, live_only = from_seq.is_none(), "Subscribed");
    let store = context.controller.store().clone();
    let batch = context.limits.subscription_batch.max(1) as usize;
    loop {
        // Everything committed up to the last seq seen, then wait for it to move. A commit
        // after this read marks the watch changed, so the wait below returns at once.
        let newest = *last_seq.borrow_and_update();
        while let Some(newest) = newest.filter(|newest| newest.0 >= next) {
            let count = ((newest.0 - next + 1) as usize).min(batch);
            let messages = store
                .messages_from(Seq(next), count)
                .map_err(|error| SubscriptionError::from(format!("storage failed: {error}")))?;
            let Some(last) = messages.last().map(|message| message.seq.0) else { break };
            let page = MessagesPage { messages, next_seq: last + 1 };
            let raw = serde_json::value::to_raw_value(&page)
                .map_err(|error| SubscriptionError::from(error.to_string()))?;
            match sink.send_timeout(raw, context.limits.slow_subscriber_timeout).await {
                Ok(()) => next = last + 1,
                Err(SendTimeoutError::Timeout(_)) => {
                    info!(target: LOG_TARGET, next, "Closing a subscriber that cannot keep up");
                    metrics::counter!("ferry_rpc_slow_subscribers_total").increment(1);
                    return Err(too_slow(next.checked_sub(1), next));
                }
                Err(SendTimeoutError::Closed(_)) => return Ok(()),
            }
        }
        tokio::select! {
            () = sink.closed() => return Ok(()),
            changed = last_seq.changed() => if changed.is_err() { return Ok(()) },
        }
    }
}
