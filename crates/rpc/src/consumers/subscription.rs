//! `messaging_subscribe`: every notification read from the store, from the subscriber's seq
//! on, then live as the drain task writes; closed (with the seq to resume from) when the
//! subscriber cannot keep up.

use super::page;
use crate::{
    context::Context,
    params::{CallParams, Quantity},
};
use ferry_primitives::{Finality, Seq};
use ferry_rpc_api::{ReadOptions, codes};
use jsonrpsee::{
    PendingSubscriptionSink, SubscriptionSink,
    core::{SubscriptionError, server::SendTimeoutError},
    types::{ErrorObjectOwned, Params},
};
use serde_json::json;
use std::{net::IpAddr, sync::Arc};
use tracing::{debug, info};

const LOG_TARGET: &str = "ferry::rpc::subscription";

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

/// Sends the subscriber every page it is told of from `next` through `newest`, moving `next`
/// past what was sent (or left out); stops at an entry not final yet. `false` once the
/// subscriber has gone.
async fn send_through(
    context: &Context,
    sink: &SubscriptionSink,
    options: ReadOptions,
    next: &mut u64,
    newest: Seq,
) -> Result<bool, SubscriptionError> {
    let batch = context.limits.subscription_batch.max(1) as usize;
    while newest.0 >= *next {
        let count = ((newest.0 - *next + 1) as usize).min(batch);
        let page = page(context, *next, count, options)
            .map_err(|error| SubscriptionError::from(error.to_string()))?;
        if page.next_seq == *next {
            break; // the next entry is not final yet
        }
        if page.entries.is_empty() {
            *next = page.next_seq;
            continue;
        }
        let next_seq = page.next_seq;
        let raw = serde_json::value::to_raw_value(&page)
            .map_err(|error| SubscriptionError::from(error.to_string()))?;
        match sink.send_timeout(raw, context.limits.slow_subscriber_timeout).await {
            Ok(()) => *next = next_seq,
            Err(SendTimeoutError::Timeout(_)) => {
                info!(target: LOG_TARGET, next, "Closing a subscriber that cannot keep up");
                metrics::counter!("ferry_rpc_slow_subscribers_total").increment(1);
                return Err(too_slow(next.checked_sub(1), *next));
            }
            Err(SendTimeoutError::Closed(_)) => return Ok(false),
        }
    }
    Ok(true)
}

pub(super) async fn subscribe(
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
    let status = &context.status;
    let mut last_seq = status.subscribe_last_seq();
    let mut writes = status.subscribe_writes();
    // Without fromSeq: live only, from the entry after the newest stored now.
    let mut next = from_seq.unwrap_or_else(|| last_seq.borrow().map_or(0, |seq| seq.next().0));
    let Ok(sink) = pending.accept().await else { return Ok(()) };
    let finality = options.finality;
    debug!(target: LOG_TARGET, from = next, live_only = from_seq.is_none(), %finality,
        executable = options.executable, "Subscribed");
    loop {
        // Everything written up to the last seq seen, then wait for it (or, waiting for
        // finality, the heads) to move. A write after this read marks the watch changed, so
        // the wait below returns at once.
        let newest = *last_seq.borrow_and_update();
        writes.borrow_and_update();
        if let Some(newest) = newest
            && !send_through(&context, &sink, options, &mut next, newest).await?
        {
            return Ok(());
        }
        let waits_for_finality = finality != Finality::Latest;
        tokio::select! {
            () = sink.closed() => return Ok(()),
            changed = last_seq.changed() => if changed.is_err() { return Ok(()) },
            changed = writes.changed(), if waits_for_finality => if changed.is_err() { return Ok(()) },
        }
    }
}
