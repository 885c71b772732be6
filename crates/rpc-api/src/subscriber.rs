//! A consumer that never skips or repeats a message: subscribes from a seq, and after any
//! disconnect or node restart subscribes again from the seq after the last one it handed out.

use crate::{LogPage, PublicApiClient, ReadOptions};
use ferry_primitives::{Finality, LogEntry};
use jsonrpsee::{
    core::client::Subscription,
    ws_client::{WsClient, WsClientBuilder},
};
use std::time::Duration;
use tracing::{debug, warn};

const LOG_TARGET: &str = "ferry::rpc::subscriber";

/// The first and the longest wait between reconnection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Reads the node's log in seq order, each entry exactly once, across disconnects and
/// restarts.
///
/// A consumer applies each entry as `eth_subscribe("logs")` consumers do: an entry with
/// `removed: false` puts its message (by hash, at the entry's origin), one with
/// `removed: true` drops it. Following `finalized` ([`Self::with_finality`]), only messages
/// from finalized blocks arrive, and none is ever retracted.
///
/// ```no_run
/// # async fn consume() {
/// let mut subscriber = ferry_rpc_api::ResumingSubscriber::new("ws://127.0.0.1:5050", 0);
/// loop {
///     for entry in subscriber.next().await {
///         println!("{} {:?} {} removed={}", entry.seq, entry.kind, entry.hash, entry.removed);
///     }
///     // Persist subscriber.next_seq() with what was done with the entries to resume there.
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct ResumingSubscriber {
    url: String,
    finality: Finality,
    executable: bool,
    next_seq: u64,
    live: Option<Live>,
    backoff: Duration,
    subscriptions: u64,
}

#[derive(Debug)]
struct Live {
    // Kept alive for the subscription's sake.
    _client: WsClient,
    subscription: Subscription<LogPage>,
}

impl ResumingSubscriber {
    /// A subscriber to the node's public listener at `url` (`ws://host:port`), starting at
    /// `from_seq`.
    pub fn new(url: impl Into<String>, from_seq: u64) -> Self {
        Self {
            url: url.into(),
            finality: Finality::Latest,
            executable: false,
            next_seq: from_seq,
            live: None,
            backoff: BACKOFF.0,
            subscriptions: 0,
        }
    }

    /// Follows blocks only once they are `finality` (`safe`, `finalized`).
    pub fn with_finality(mut self, finality: Finality) -> Self {
        self.finality = finality;
        self
    }

    /// Receives only messages an L2 may still execute (see [`ReadOptions::executable`]),
    /// and every notice.
    pub fn executable_only(mut self) -> Self {
        self.executable = true;
        self
    }

    /// The seq this subscriber reads on from: store it with what the consumer did with the
    /// entries, and resume from it.
    pub const fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// How many times it has subscribed (1 plus the reconnections).
    pub const fn subscriptions(&self) -> u64 {
        self.subscriptions
    }

    /// The next entries, in seq order, from [`Self::next_seq`] on (exactly there under
    /// `latest`; past entries left out under a finality); waits (and reconnects, with backoff,
    /// as often as needed) until there are some.
    pub async fn next(&mut self) -> Vec<LogEntry> {
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
                    let entries: Vec<LogEntry> = page
                        .entries
                        .into_iter()
                        .filter(|entry| entry.seq.0 >= self.next_seq)
                        .collect();
                    let latest = self.finality == Finality::Latest;
                    let in_order =
                        entries.iter().enumerate().all(|(i, entry)| {
                            let after =
                                i.checked_sub(1).map_or(self.next_seq, |i| entries[i].seq.next().0);
                            if latest { entry.seq.0 == after } else { entry.seq.0 >= after }
                        }) && entries.last().is_none_or(|last| last.seq.0 < page.next_seq);
                    if !in_order {
                        warn!(target: LOG_TARGET, expected = self.next_seq,
                            "Notification does not continue the stream; subscribing again");
                        self.live = None;
                        continue;
                    }
                    self.next_seq = self.next_seq.max(page.next_seq);
                    if !entries.is_empty() {
                        return entries;
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
        let client = WsClientBuilder::default()
            .max_response_size(crate::MAX_CLIENT_RESPONSE_BYTES)
            .max_frame_size(crate::MAX_CLIENT_RESPONSE_BYTES)
            .build(&self.url)
            .await?;
        let options = ReadOptions { finality: self.finality, executable: self.executable };
        let subscription = client.subscribe_messages(Some(self.next_seq), Some(options)).await?;
        self.subscriptions += 1;
        Ok(Live { _client: client, subscription })
    }
}
