//! The [`Collector`] on an Ethereum JSON-RPC provider, through alloy.
//!
//! Catch-up uses ranged `eth_getLogs` (adaptive range, see [`range`]), anchored to headers
//! fetched first (see [`anchor`]); the chain head is followed with an
//! `eth_subscribe("newHeads")` subscription on `ws://`/`wss://` URLs and by polling on HTTP.
//! alloy-provider's `watch_logs_from` / `watch_canonical_logs_from` fetch one block per
//! request (three requests for an empty block), which suits neither catch-up nor ferry's own
//! anchoring over ranges, so they are not used.
//!
//! Retries: every request is retried with exponential backoff and jitter (the `backon` crate)
//! while the error is transient, and each wait is reported to [`Status`] so operators can see
//! the upstream backing off. alloy's `RetryBackoffLayer` was not used: its delay is constant,
//! it does not retry refused connections or most 5xx answers, it turns a `-32005` range
//! refusal into an opaque string once its retries are spent, and it offers no hook to report
//! the backoff. Every call is counted in `ferry_l1_requests_total{method}`: what a hosted
//! provider bills.

mod anchor;
mod calls;
mod classify;
mod events;
mod heads;
mod logs;
mod range;
mod requests;

use crate::{Collector, CollectorError, Confirmations, Gathered, Heads, Status};
use alloy::{
    primitives::Address,
    providers::{DynProvider, Provider, RootProvider},
    rpc::client::ClientBuilder,
    transports::{
        http::reqwest::{self, Url},
        ws::{WebSocketConfig, WsConnect},
    },
};
use anchor::Attempt;
pub use events::LogMessageToL2;
use events::{
    ConsumedMessageToL2, EVENT_TOPICS, MessageToL2Canceled, MessageToL2CancellationStarted,
};
use ferry_primitives::{BlockHeader, Position};
use heads::{Tags, follow_new_heads};
pub use logs::MessageLog;
use range::{AdaptiveRange, AnswerSize};
use requests::upstream;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{sync::watch, task::JoinHandle, time::Instant};
use tracing::{debug, warn};

const LOG_TARGET: &str = "ferry::messaging::ethereum";

/// The largest WebSocket message accepted from the provider. An `eth_getLogs` answer comes as
/// one message, and tungstenite's default (16 MiB) is smaller than the first answer on a
/// dense chain (62 blocks of 1,000 messages is 60 MiB): the connection would drop and be
/// re-opened forever, since a dropped connection does not shrink the range the way a refusal
/// does. HTTP answers have no such cap; this one only bounds memory.
const MAX_WS_MESSAGE: usize = 512 << 20;

/// How many times a gather whose answers do not fit together is asked again before the
/// stream is told (and retries it later, with its own backoff).
const INCONSISTENT_ATTEMPTS: u32 = 5;

/// How to reach L1 and what to read there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthereumConfig {
    /// `http://`, `https://`, `ws://` or `wss://` JSON-RPC endpoint.
    pub url: String,
    /// The messaging contract.
    pub contract: Address,
    /// How far behind the head to read.
    pub confirmations: Confirmations,
    /// How often to poll for a new head over HTTP (and the fallback over WebSocket).
    pub poll_interval: Duration,
    /// The largest `eth_getLogs` block range to ask for.
    pub max_block_range: u64,
    /// How long one HTTP request may take.
    pub request_timeout: Duration,
    /// The first and the longest wait between retries of a failed request.
    pub retry_delays: (Duration, Duration),
}

impl EthereumConfig {
    /// Defaults for `url` and `contract`: latest head, 1 s polling, 1,000-block ranges.
    pub fn new(url: impl Into<String>, contract: Address) -> Self {
        Self {
            url: url.into(),
            contract,
            confirmations: Confirmations::default(),
            poll_interval: Duration::from_secs(1),
            max_block_range: 1_000,
            request_timeout: Duration::from_secs(30),
            retry_delays: (Duration::from_millis(100), Duration::from_secs(10)),
        }
    }
}

/// The Ethereum [`Collector`].
#[derive(Debug)]
pub struct EthereumCollector {
    provider: DynProvider,
    config: EthereumConfig,
    range: Mutex<AdaptiveRange>,
    status: Arc<Status>,
    /// The newest head number pushed by the newHeads subscription (WebSocket only).
    pushed_heads: Option<watch::Receiver<u64>>,
    head_task: Option<JoinHandle<()>>,
    /// The provider's safe and finalized blocks, and the latest block they were asked at:
    /// they move once an epoch, so they are asked again only when the head moved on.
    tags: Mutex<Option<Tags>>,
    /// The contract's cancellation delay as last read.
    delay: Mutex<Option<u64>>,
}

impl Drop for EthereumCollector {
    fn drop(&mut self) {
        if let Some(task) = &self.head_task {
            task.abort();
        }
    }
}

impl EthereumCollector {
    /// Connects to `config.url`; WebSocket connections reconnect by themselves (forever, with
    /// backoff) and re-subscribe to new heads.
    pub async fn connect(
        config: EthereumConfig,
        status: Arc<Status>,
    ) -> Result<Self, CollectorError> {
        let url = config.url.trim();
        let is_ws = url.starts_with("ws://") || url.starts_with("wss://");
        let client = if is_ws {
            let limits = WebSocketConfig::default()
                .max_message_size(Some(MAX_WS_MESSAGE))
                .max_frame_size(Some(MAX_WS_MESSAGE));
            let connect = WsConnect::new(url)
                .with_config(limits)
                .with_max_retries(u32::MAX)
                .with_retry_interval(Duration::from_secs(1));
            ClientBuilder::default().ws(connect).await.map_err(|error| {
                CollectorError::Upstream {
                    request: format!("connect {url}"),
                    reason: error.to_string(),
                }
            })?
        } else {
            let parsed: Url = url.parse().map_err(|error| CollectorError::Upstream {
                request: format!("connect {url}"),
                reason: format!("not a valid URL: {error}"),
            })?;
            let http = reqwest::Client::builder().timeout(config.request_timeout).build().map_err(
                |error| CollectorError::Upstream {
                    request: "build the HTTP client".to_owned(),
                    reason: error.to_string(),
                },
            )?;
            ClientBuilder::default().http_with_client(http, parsed)
        };
        let provider = RootProvider::new(client).erased();
        let (pushed_heads, head_task) = if is_ws {
            let (sender, receiver) = watch::channel(0);
            let task =
                tokio::spawn(follow_new_heads(provider.clone(), sender, config.retry_delays));
            (Some(receiver), Some(task))
        } else {
            (None, None)
        };
        Ok(Self {
            range: Mutex::new(AdaptiveRange::new(config.max_block_range)),
            provider,
            config,
            status,
            pushed_heads,
            head_task,
            tags: Mutex::new(None),
            delay: Mutex::new(None),
        })
    }

    /// The chain id the provider reports.
    pub async fn chain_id(&self) -> Result<u64, CollectorError> {
        self.request("eth_chainId", "", 1, || self.provider.get_chain_id()).await
    }
}

impl Collector for EthereumCollector {
    fn range_hint(&self) -> Option<u64> {
        Some(self.lock_range().blocks())
    }

    async fn heads(&self) -> Result<Heads, CollectorError> {
        self.read_heads().await
    }

    async fn wait_for_head(&self, known_latest: u64) {
        let poll = tokio::time::sleep(self.config.poll_interval);
        match &self.pushed_heads {
            Some(pushed) => {
                let mut pushed = pushed.clone();
                tokio::select! {
                    _ = pushed.wait_for(|head| *head > known_latest) => {}
                    () = poll => {}
                }
            }
            None => poll.await,
        }
    }

    async fn gather(
        &self,
        from: Position,
        to_block: u64,
        headers_from: u64,
    ) -> Result<Gathered, CollectorError> {
        let started = Instant::now();
        let (min, max) = self.config.retry_delays;
        let (mut inconsistent, mut delay) = (0, min);
        loop {
            let blocks = self.lock_range().blocks();
            let last = to_block.min(from.block.saturating_add(blocks - 1));
            match self.gather_anchored(from, last, headers_from).await {
                Ok(gathered) => {
                    // A malformed log counts with no payload.
                    let payloads = gathered.messages.iter().map(|l1| l1.message.payload.len());
                    let malformed = gathered.malformed.iter().map(|_| 0);
                    let size = AnswerSize::of_logs(payloads.chain(malformed));
                    self.lock_range().succeeded_with(last - from.block + 1, size);
                    metrics::histogram!("ferry_gather_seconds")
                        .record(started.elapsed().as_secs_f64());
                    return Ok(gathered);
                }
                Err(Attempt::Refused(error)) => {
                    if !self.lock_range().shrink() {
                        return Err(CollectorError::RangeTooLarge {
                            block: from.block,
                            reason: error.to_string(),
                        });
                    }
                    debug!(target: LOG_TARGET, %error, blocks = self.lock_range().blocks(),
                        "Provider refused the log range; halving it");
                }
                Err(Attempt::Inconsistent(reason)) => {
                    inconsistent += 1;
                    metrics::counter!("ferry_l1_inconsistent_answers_total").increment(1);
                    warn!(target: LOG_TARGET, %from, last, %reason, attempt = inconsistent,
                        "L1 answers do not come from one chain; asking again");
                    let reason = format!("inconsistent answers for {from}..={last}: {reason}");
                    if inconsistent >= INCONSISTENT_ATTEMPTS {
                        self.status.record_upstream_failure(reason.clone());
                        return Err(CollectorError::Inconsistent(reason));
                    }
                    self.status.record_upstream_backoff(reason, delay);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(max);
                }
                Err(Attempt::Failed(error)) => return Err(error),
            }
        }
    }

    async fn header(&self, number: u64) -> Result<Option<BlockHeader>, CollectorError> {
        let answer = self.header_batch(&[number]).await?;
        Ok(answer.into_iter().next().flatten().map(|header| header.header()))
    }

    async fn block_timestamp(&self, number: u64) -> Result<Option<u64>, CollectorError> {
        self.timestamp_of(number).await
    }
}

impl EthereumCollector {
    fn lock_range(&self) -> std::sync::MutexGuard<'_, AdaptiveRange> {
        self.range.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
