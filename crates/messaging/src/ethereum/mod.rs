//! The [`Collector`] on an Ethereum JSON-RPC provider, through alloy.
//!
//! Catch-up uses ranged `eth_getLogs` (adaptive range, see [`range`]); the chain head is
//! followed with an `eth_subscribe("newHeads")` subscription on `ws://`/`wss://` URLs and by
//! polling on HTTP. alloy-provider's `watch_logs_from` / `watch_canonical_logs_from` fetch one
//! block per request (three requests for an empty block), which suits neither catch-up nor
//! ferry's own reorg check over ranges, so they are not used.
//!
//! Retries: every request is retried with exponential backoff and jitter (the `backon` crate)
//! while the error is transient, and each wait is reported to [`Status`] so operators can see
//! the upstream backing off. alloy's `RetryBackoffLayer` was not used: its delay is constant,
//! it does not retry refused connections or most 5xx answers, it turns a `-32005` range
//! refusal into an opaque string once its retries are spent, and it offers no hook to report
//! the backoff.

mod classify;
mod logs;
mod range;

use crate::{Collector, CollectorError, Confirmations, Gathered, Heads, Status};
use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256},
    providers::{DynProvider, Provider, RootProvider},
    rpc::{client::ClientBuilder, types::Filter},
    sol_types::SolEvent,
    transports::{
        TransportError,
        http::reqwest::{self, Url},
        ws::{WebSocketConfig, WsConnect},
    },
};
use backon::{ExponentialBuilder, Retryable};
use classify::{ErrorClass, classify};
use ferry_primitives::{BlockRef, Position};
pub use logs::MessageLog;
use logs::decode_logs;
use range::AdaptiveRange;
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
}

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
        })
    }

    /// The chain id the provider reports.
    pub async fn chain_id(&self) -> Result<u64, CollectorError> {
        self.request("eth_chainId", || self.provider.get_chain_id()).await
    }

    /// Runs `call`, retrying transient failures with exponential backoff and jitter, and
    /// reporting every wait to status. Range refusals and bad requests are returned at once.
    async fn retrying<T, F, Fut>(&self, name: &str, call: F) -> Result<T, TransportError>
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
        call.retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|error| classify(error) == ErrorClass::Retryable)
            .notify(|error, delay| {
                warn!(target: LOG_TARGET, request = name, %error, ?delay, "L1 request failed; retrying");
                self.status.record_upstream_backoff(format!("{name}: {error}"), delay);
            })
            .await
    }

    /// [`Self::retrying`], recording the outcome in status.
    async fn request<T, F, Fut>(&self, name: &str, call: F) -> Result<T, CollectorError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        match self.retrying(name, call).await {
            Ok(value) => {
                self.status.record_upstream_success();
                Ok(value)
            }
            Err(error) => {
                self.status.record_upstream_failure(format!("{name}: {error}"));
                Err(upstream(name, error))
            }
        }
    }

    async fn block_by_tag(
        &self,
        tag: BlockNumberOrTag,
    ) -> Result<Option<BlockRef>, CollectorError> {
        let name = format!("eth_getBlockByNumber {tag}");
        let block =
            self.request(&name, || self.provider.get_block_by_number(tag).into_future()).await?;
        Ok(block.map(|block| BlockRef { number: block.header.number, hash: block.header.hash }))
    }

    /// `eth_getLogs` over `first..=last`, the hash of `last` and, `with_parent`, that of the
    /// block before `first`, requested together.
    async fn logs_and_bounds(
        &self,
        first: u64,
        last: u64,
        with_parent: bool,
    ) -> Result<(Vec<MessageLog>, Option<BlockRef>, Option<BlockRef>), (ErrorClass, CollectorError)>
    {
        let filter = Filter::new()
            .address(self.config.contract)
            .event_signature(LogMessageToL2::SIGNATURE_HASH)
            .from_block(first)
            .to_block(last);
        let name = format!("eth_getLogs {first}..={last}");
        let logs = self.retrying(&name, || {
            self.provider.raw_request::<_, Vec<MessageLog>>("eth_getLogs".into(), (&filter,))
        });
        let last_block = self.block_by_tag(BlockNumberOrTag::Number(last));
        let parent = async {
            match first.checked_sub(1).filter(|_| with_parent) {
                Some(parent) => self.block_by_tag(BlockNumberOrTag::Number(parent)).await,
                None => Ok(None),
            }
        };
        let (logs, last_block, parent) = tokio::join!(logs, last_block, parent);
        let logs = match logs {
            Ok(logs) => logs,
            Err(error) => {
                let class = classify(&error);
                if class == ErrorClass::Fatal {
                    self.status.record_upstream_failure(format!("{name}: {error}"));
                }
                return Err((class, upstream(&name, error)));
            }
        };
        self.status.record_upstream_success();
        let last_block = last_block.map_err(|error| (ErrorClass::Fatal, error))?;
        let parent = parent.map_err(|error| (ErrorClass::Fatal, error))?;
        Ok((logs, last_block, parent))
    }
}

fn upstream(request: &str, error: TransportError) -> CollectorError {
    CollectorError::Upstream { request: request.to_owned(), reason: error.to_string() }
}

impl Collector for EthereumCollector {
    fn range_hint(&self) -> Option<u64> {
        Some(self.lock_range().blocks())
    }

    async fn heads(&self) -> Result<Heads, CollectorError> {
        let latest = self.request("eth_blockNumber", || self.provider.get_block_number()).await?;
        let safe = match self.config.confirmations {
            Confirmations::Blocks(confirmations) => latest.checked_sub(confirmations),
            Confirmations::Safe => {
                self.block_by_tag(BlockNumberOrTag::Safe).await?.map(|b| b.number)
            }
            Confirmations::Finalized => {
                self.block_by_tag(BlockNumberOrTag::Finalized).await?.map(|b| b.number)
            }
        };
        Ok(Heads { latest, safe: safe.map(|safe| safe.min(latest)) })
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
        with_parent: bool,
    ) -> Result<Gathered, CollectorError> {
        let started = Instant::now();
        loop {
            let blocks = self.lock_range().blocks();
            let last = to_block.min(from.block.saturating_add(blocks - 1));
            match self.logs_and_bounds(from.block, last, with_parent).await {
                Ok((logs, Some(last_block), parent)) => {
                    self.lock_range().succeeded_with(last - from.block + 1, logs.len() as u64);
                    metrics::histogram!("ferry_gather_seconds")
                        .record(started.elapsed().as_secs_f64());
                    let (messages, malformed) = decode_logs(logs, from, last);
                    return Ok(Gathered { messages, malformed, last_block, parent });
                }
                Ok((_, None, _)) => {
                    return Err(CollectorError::Inconsistent(format!(
                        "block {last} was reported safe but does not exist"
                    )));
                }
                Err((ErrorClass::RangeTooLarge, error)) => {
                    if !self.lock_range().shrink() {
                        return Err(CollectorError::RangeTooLarge {
                            block: from.block,
                            reason: error.to_string(),
                        });
                    }
                    debug!(target: LOG_TARGET, %error, blocks = self.lock_range().blocks(),
                        "Provider refused the log range; halving it");
                }
                Err((_, error)) => return Err(error),
            }
        }
    }

    async fn block_hash(&self, number: u64) -> Result<Option<B256>, CollectorError> {
        Ok(self.block_by_tag(BlockNumberOrTag::Number(number)).await?.map(|block| block.hash))
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
