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
mod logs;
mod range;

use crate::{Collector, CollectorError, Confirmations, Gathered, Heads, Status};
use alloy::{
    primitives::Address,
    providers::{DynProvider, Provider, RootProvider},
    rpc::client::ClientBuilder,
    transports::{
        TransportError,
        http::reqwest::{self, Url},
        ws::{WebSocketConfig, WsConnect},
    },
};
use anchor::{Attempt, RpcHeader};
use backon::{ExponentialBuilder, Retryable};
use classify::{ErrorClass, classify};
use ferry_primitives::{BlockHeader, BlockRef, Position};
pub use logs::MessageLog;
use range::{AdaptiveRange, AnswerSize};
use std::{
    future::Future,
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

/// The provider's safe and finalized blocks move once an epoch (32 blocks on Ethereum): they
/// are asked again once the head has moved this many blocks, not with every head.
const TAG_REFRESH_BLOCKS: u64 = 4;

alloy::sol! {
    /// The messaging contract's event, as Starknet's StarknetMessaging emits it.
    #[derive(Debug, PartialEq, Eq)]
    event LogMessageToL2(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce,
        uint256 fee
    );

    /// The sender started cancelling a message (`startL1ToL2MessageCancellation`).
    #[derive(Debug, PartialEq, Eq)]
    event MessageToL2CancellationStarted(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce
    );

    /// The cancellation completed (`cancelL1ToL2Message`).
    #[derive(Debug, PartialEq, Eq)]
    event MessageToL2Canceled(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce
    );

    /// The L2's state update consumed a message. Starknet's contract logs no fee here (unlike
    /// `LogMessageToL2`): the topic is that of this exact signature.
    #[derive(Debug, PartialEq, Eq)]
    event ConsumedMessageToL2(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce
    );
}

impl From<LogMessageToL2> for ferry_primitives::Message {
    fn from(event: LogMessageToL2) -> Self {
        Self {
            from: event.fromAddress,
            to: event.toAddress,
            selector: event.selector,
            payload: event.payload,
            nonce: event.nonce,
            fee: event.fee,
        }
    }
}

/// The topics of every event ferry reads, asked for in one `eth_getLogs` (an OR-list).
const EVENT_TOPICS: [alloy::primitives::B256; 4] = {
    use alloy::sol_types::SolEvent;
    [
        LogMessageToL2::SIGNATURE_HASH,
        MessageToL2CancellationStarted::SIGNATURE_HASH,
        MessageToL2Canceled::SIGNATURE_HASH,
        ConsumedMessageToL2::SIGNATURE_HASH,
    ]
};

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

#[derive(Debug, Clone, Copy)]
struct Tags {
    asked_at: u64,
    safe: Option<BlockRef>,
    finalized: Option<BlockRef>,
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

    /// Runs `call`, retrying transient failures with exponential backoff and jitter, and
    /// reporting every wait to status; `calls` is how many JSON-RPC calls one attempt makes
    /// (a batch makes several), counted under `method`. Range refusals, bad requests and
    /// unknown blocks are returned at once: the caller knows what they mean.
    async fn retrying<T, F, Fut>(
        &self,
        method: &'static str,
        detail: &str,
        calls: usize,
        mut call: F,
    ) -> Result<T, TransportError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let (min, max) = self.config.retry_delays;
        let backoff = ExponentialBuilder::new()
            .with_min_delay(min)
            .with_max_delay(max)
            .with_jitter()
            .without_max_times();
        let counted = || {
            metrics::counter!("ferry_l1_requests_total", "method" => method)
                .increment(calls as u64);
            self.status.record_upstream_calls(calls as u64);
            call()
        };
        counted
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|error| classify(error) == ErrorClass::Retryable)
            .notify(|error, delay| {
                warn!(target: LOG_TARGET, method, detail, %error, ?delay, "L1 request failed; retrying");
                self.status.record_upstream_backoff(format!("{method} {detail}: {error}"), delay);
            })
            .await
    }

    /// [`Self::retrying`], recording the outcome in status.
    async fn request<T, F, Fut>(
        &self,
        method: &'static str,
        detail: &str,
        calls: usize,
        call: F,
    ) -> Result<T, CollectorError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        match self.retrying(method, detail, calls, call).await {
            Ok(value) => {
                self.status.record_upstream_success();
                Ok(value)
            }
            Err(error) => {
                self.status.record_upstream_failure(format!("{method} {detail}: {error}"));
                Err(upstream(method, detail, error))
            }
        }
    }

    /// `eth_getBlockByNumber` of a tag (`latest`, `safe`, `finalized`).
    async fn tagged(&self, tag: &'static str) -> Result<Option<RpcHeader>, CollectorError> {
        self.request("eth_getBlockByNumber", tag, 1, || {
            self.provider
                .raw_request::<_, Option<RpcHeader>>("eth_getBlockByNumber".into(), (tag, false))
        })
        .await
    }

    /// The provider's safe and finalized blocks, asked again when the head moved on by
    /// [`TAG_REFRESH_BLOCKS`] (or back: a reorg to a shorter chain), and at every head when
    /// the confirmations follow them. A provider without the tags (a chain before the merge)
    /// answers `None`, unless the confirmations need them.
    async fn tags(&self, latest: u64) -> Result<Tags, CollectorError> {
        let reads_by_tag = !matches!(self.config.confirmations, Confirmations::Blocks(_));
        let refresh = if reads_by_tag { 1 } else { TAG_REFRESH_BLOCKS };
        if let Some(tags) = *self.lock_tags()
            && (tags.asked_at..tags.asked_at + refresh).contains(&latest)
        {
            return Ok(tags);
        }
        let (safe, finalized) = tokio::join!(self.tagged("safe"), self.tagged("finalized"));
        let needed = self.config.confirmations;
        let tag = |answer: Result<Option<RpcHeader>, CollectorError>, needed_here: bool| {
            match answer {
                Ok(header) => Ok(header.map(|header| header.header().block_ref())),
                Err(error) if needed_here => Err(error),
                Err(error) => {
                    debug!(target: LOG_TARGET, %error, "The provider gave no safe or finalized block");
                    Ok(None)
                }
            }
        };
        let tags = Tags {
            asked_at: latest,
            safe: tag(safe, needed == Confirmations::Safe)?,
            finalized: tag(finalized, needed == Confirmations::Finalized)?,
        };
        *self.lock_tags() = Some(tags);
        Ok(tags)
    }

    fn lock_tags(&self) -> std::sync::MutexGuard<'_, Option<Tags>> {
        self.tags.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn upstream(method: &str, detail: &str, error: TransportError) -> CollectorError {
    let request = if detail.is_empty() { method.to_owned() } else { format!("{method} {detail}") };
    CollectorError::Upstream { request, reason: error.to_string() }
}

impl Collector for EthereumCollector {
    fn range_hint(&self) -> Option<u64> {
        Some(self.lock_range().blocks())
    }

    async fn heads(&self) -> Result<Heads, CollectorError> {
        let latest = self.tagged("latest").await?.ok_or_else(|| {
            CollectorError::Inconsistent("the provider has no latest block".to_owned())
        })?;
        let latest = latest.header();
        let tags = self.tags(latest.number).await?;
        let safe = match self.config.confirmations {
            Confirmations::Blocks(confirmations) => latest.number.checked_sub(confirmations),
            Confirmations::Safe => tags.safe.map(|safe| safe.number),
            Confirmations::Finalized => tags.finalized.map(|finalized| finalized.number),
        };
        // A tag above the latest block is from a backend ahead of this answer: not yet usable.
        let below_latest = |tag: Option<BlockRef>| tag.filter(|tag| tag.number <= latest.number);
        Ok(Heads {
            latest: latest.number,
            latest_hash: latest.hash,
            safe: safe.map(|safe| safe.min(latest.number)),
            l1_safe: below_latest(tags.safe),
            finalized: below_latest(tags.finalized),
        })
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

/// Keeps `heads` at the newest head number the provider pushes; re-subscribes after the
/// subscription ends (the WebSocket itself reconnects underneath).
async fn follow_new_heads(
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
