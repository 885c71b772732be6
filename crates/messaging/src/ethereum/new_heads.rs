//! The newHeads subscription of a WebSocket endpoint: it wakes the stream the moment a block
//! arrives instead of at the next poll.

use super::LOG_TARGET;
use alloy::providers::{DynProvider, Provider};
use std::time::Duration;
use tokio::sync::watch;
use tracing::warn;

/// Keeps `heads` at the newest head number the provider pushes; re-subscribes after the
/// subscription ends (the WebSocket itself reconnects underneath).
pub(super) async fn follow_new_heads(
    provider: DynProvider,
    heads: watch::Sender<u64>,
    (min_delay, max_delay): (Duration, Duration),
) {
    let mut delay = min_delay;
    loop {
        match provider.subscribe_blocks().await {
            Ok(subscription) => {
                delay = min_delay;
                let mut subscription = subscription;
                loop {
                    match subscription.recv().await {
                        Ok(header) => {
                            heads.send_if_modified(|newest| {
                                let newer = header.number > *newest;
                                *newest = (*newest).max(header.number);
                                newer
                            });
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
                warn!(target: LOG_TARGET, "newHeads subscription ended; subscribing again");
            }
            Err(error) => {
                warn!(target: LOG_TARGET, %error, ?delay, "Cannot subscribe to newHeads; retrying");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(max_delay);
    }
}
