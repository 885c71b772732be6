//! A consumer that never skips or repeats a message: subscribes from a seq, and after any
//! disconnect or node restart subscribes again from the seq after the last one it handed out.

use crate::{MessagesPage, PublicApiClient};
use ferry_primitives::StoredMessage;
use jsonrpsee::{
    core::client::Subscription,
    ws_client::{WsClient, WsClientBuilder},
};
use std::time::Duration;
use tracing::{debug, warn};

const LOG_TARGET: &str = "ferry::rpc::subscriber";

/// The first and the longest wait between reconnection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Reads the node's messages in seq order, exactly once, across disconnects and restarts.
///
/// ```no_run
/// # async fn consume() {
/// let mut subscriber = ferry_rpc::ResumingSubscriber::new("ws://127.0.0.1:5050", 0);
/// loop {
///     for message in subscriber.next().await {
///         println!("{} {}", message.seq, message.hash);
///     }
///     // Persist subscriber.next_seq() with what was done with the messages to resume there.
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct ResumingSubscriber {
    url: String,
    next_seq: u64,
    live: Option<Live>,
    backoff: Duration,
    subscriptions: u64,
}

#[derive(Debug)]
struct Live {
    // Kept alive for the subscription's sake.
    _client: WsClient,
    subscription: Subscription<MessagesPage>,
}

impl ResumingSubscriber {
    /// A subscriber to the node's public listener at `url` (`ws://host:port`), starting at
    /// `from_seq`.
    pub fn new(url: impl Into<String>, from_seq: u64) -> Self {
        Self {
            url: url.into(),
            next_seq: from_seq,
            live: None,
            backoff: BACKOFF.0,
            subscriptions: 0,
        }
    }

    /// The seq of the next message this subscriber will hand out: store it with what the
    /// consumer did with the messages, and resume from it.
    pub const fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// How many times it has subscribed (1 plus the reconnections).
    pub const fn subscriptions(&self) -> u64 {
        self.subscriptions
    }

    /// The next messages, in seq order, starting exactly at [`Self::next_seq`]; waits (and
    /// reconnects, with backoff, as often as needed) until there are some.
    pub async fn next(&mut self) -> Vec<StoredMessage> {
        loop {
            let Some(live) = &mut self.live else {
                match self.subscribe().await {
                    Ok(live) => {
                        self.live = Some(live);
                        self.backoff = BACKOFF.0;
                    }
                    Err(error) => {
                        debug!(target: LOG_TARGET, url = %self.url, %error, backoff = ?self.backoff,
                            "Cannot subscribe; retrying");
                        tokio::time::sleep(self.backoff).await;
                        self.backoff = (self.backoff * 2).min(BACKOFF.1);
                    }
                }
                continue;
            };
            match live.subscription.next().await {
                Some(Ok(page)) => {
                    let messages: Vec<StoredMessage> = page
                        .messages
                        .into_iter()
                        .filter(|message| message.seq.0 >= self.next_seq)
                        .collect();
                    let contiguous = messages
                        .iter()
                        .enumerate()
                        .all(|(i, message)| message.seq.0 == self.next_seq + i as u64);
                    if !contiguous {
                        warn!(target: LOG_TARGET, expected = self.next_seq,
                            "Notification does not continue the stream; subscribing again");
                        self.live = None;
                        continue;
                    }
                    if let Some(last) = messages.last() {
                        self.next_seq = last.seq.0 + 1;
                        return messages;
                    }
                }
                Some(Err(error)) => {
                    warn!(target: LOG_TARGET, %error, "Undecodable notification; subscribing again");
                    self.live = None;
                }
                None => {
                    debug!(target: LOG_TARGET, next = self.next_seq,
                        "Subscription ended (node restart, disconnect, or too slow); resuming");
                    self.live = None;
                }
            }
        }
    }

    async fn subscribe(&mut self) -> Result<Live, jsonrpsee::core::ClientError> {
        let client = WsClientBuilder::default().build(&self.url).await?;
        let subscription = client.subscribe_messages(Some(self.next_seq)).await?;
        self.subscriptions += 1;
        Ok(Live { _client: client, subscription })
    }
}
