//! The [`Collector`] on an Ethereum JSON-RPC provider, through alloy.
//!
//! Catch-up uses ranged `eth_getLogs` (adaptive range, see [`range`]), anchored to headers
//! fetched first (see [`anchor`]); the chain head is followed with an
//! `eth_subscribe("newHeads")` subscription on `ws://`/`wss://` URLs and by polling on HTTP.
//! alloy-provider's `watch_logs_from` / `watch_canonical_logs_from` fetch one block per
//! request (three requests for an empty block), which suits neither catch-up nor ferry's own
//! anchoring over ranges, so they are not used.
//!
//! Several endpoints (`endpoints.rs`): failover, with second opinions on what the active one
//! says of the chain (`second_opinion.rs`), or quorum; a gather's logs are proven against its
//! blocks' blooms or receipts (`anchor.rs`, `receipts.rs`).
//!
//! Retries: every request is retried with exponential backoff and jitter (the `backon` crate)
//! while the error is transient, and each wait is reported to [`Status`] so operators can see
//! the upstream backing off. alloy's `RetryBackoffLayer` was not used: its delay is constant,
//! it does not retry refused connections or most 5xx answers, it turns a `-32005` range
//! refusal into an opaque string once its retries are spent, and it offers no hook to report
//! the backoff. Every call is counted in `ferry_l1_requests_total{method}`: what a hosted
//! provider bills.

mod anchor;
mod attempt;
mod calls;
mod classify;
mod endpoints;
mod events;
mod getlogs;
mod header;
mod heads;
mod logs;
mod new_heads;
mod pacer;
mod range;
mod receipts;
mod requests;
mod second_opinion;

use crate::{Collector, CollectorError, Confirmations, Gathered, Heads, ProvenTransaction, Status};
use alloy::{
    primitives::{Address, B256},
    providers::Provider,
};
use attempt::Attempt;
use classify::{ErrorClass, classify};
use endpoints::{Endpoint, Endpoints};
pub use endpoints::{L1Mode, VerifyLogs, redact};
pub use events::LogMessageToL2;
use events::{
    ConsumedMessageToL2, EVENT_TOPICS, MessageToL2Canceled, MessageToL2CancellationStarted,
};
use ferry_primitives::{BlockHeader, Position};
use heads::Tags;
pub use logs::MessageLog;
use range::{AdaptiveRange, AnswerSize};
pub use receipts::proven_messages;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::time::Instant;
use tracing::{debug, warn};

const LOG_TARGET: &str = "ferry::messaging::ethereum";

/// How many times a gather whose answers do not fit together is asked again before the
/// stream is told (and retries it later, with its own backoff).
const INCONSISTENT_ATTEMPTS: u32 = 5;

/// How to reach L1 and what to read there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthereumConfig {
    /// `http://`, `https://`, `ws://` or `wss://` JSON-RPC endpoints; several for failover or
    /// quorum (`mode`).
    pub urls: Vec<String>,
    /// How several endpoints share the work.
    pub mode: L1Mode,
    /// Blocks an endpoint's head may lag the best one's before failover sets it aside.
    pub max_head_lag: u64,
    /// How the logs of a range are proven against its blocks.
    pub verify_logs: VerifyLogs,
    /// Disagreements in a row (quorum mode) after which status shows ingestion halted.
    pub disagreement_halt: u32,
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
    /// The most calls sent to one endpoint per second (each call of a batch counts), or no
    /// limit.
    pub max_rps: Option<u32>,
    /// The first and the longest wait between retries of a failed request.
    pub retry_delays: (Duration, Duration),
}

impl EthereumConfig {
    /// Defaults for one endpoint `url` and `contract`: latest head, 1 s polling, 1,000-block
    /// ranges, logs proven against each block's bloom.
    pub fn new(url: impl Into<String>, contract: Address) -> Self {
        Self {
            urls: vec![url.into()],
            mode: L1Mode::Failover,
            max_head_lag: 10,
            verify_logs: VerifyLogs::default(),
            disagreement_halt: 10,
            contract,
            confirmations: Confirmations::default(),
            poll_interval: Duration::from_secs(1),
            max_block_range: 1_000,
            request_timeout: Duration::from_secs(30),
            max_rps: None,
            retry_delays: (Duration::from_millis(100), Duration::from_secs(10)),
        }
    }
}

/// The Ethereum [`Collector`].
#[derive(Debug)]
pub struct EthereumCollector {
    endpoints: Endpoints,
    config: EthereumConfig,
    range: Mutex<AdaptiveRange>,
    status: Arc<Status>,
    /// The provider's safe and finalized blocks, and the latest block they were asked at:
    /// they move once an epoch, so they are asked again only when the head moved on.
    tags: Mutex<Option<Tags>>,
    /// When the endpoints' heads were last asked (several endpoints only).
    probed: Mutex<Option<Instant>>,
    /// The contract's cancellation delay as last read.
    delay: Mutex<Option<u64>>,
    /// The contract's logs as a block's bloom filter sees them.
    bloom: header::BloomQuery,
}

impl EthereumCollector {
    /// Connects to every endpoint of `config.urls`; WebSocket connections reconnect by
    /// themselves (forever, with backoff) and re-subscribe to new heads.
    pub async fn connect(
        config: EthereumConfig,
        status: Arc<Status>,
    ) -> Result<Self, CollectorError> {
        if config.urls.is_empty() {
            return Err(CollectorError::Upstream {
                request: "connect".to_owned(),
                reason: "no L1 endpoint given".to_owned(),
            });
        }
        if let L1Mode::Quorum(quorum) = config.mode
            && (quorum == 0 || quorum > config.urls.len())
        {
            return Err(CollectorError::Upstream {
                request: "connect".to_owned(),
                reason: format!("a quorum of {quorum} needs 1 to {} endpoints", config.urls.len()),
            });
        }
        let mut list = Vec::with_capacity(config.urls.len());
        for url in &config.urls {
            let pacer = config.max_rps.map(pacer::Pacer::new);
            list.push(
                Endpoint::connect(url, config.request_timeout, config.retry_delays, pacer).await?,
            );
        }
        status.set_disagreement_limit(config.disagreement_halt);
        let collector = Self {
            range: Mutex::new(AdaptiveRange::new(config.max_block_range)),
            endpoints: Endpoints::new(list, config.mode, config.max_head_lag),
            bloom: header::BloomQuery::new(config.contract),
            config,
            status,
            tags: Mutex::new(None),
            probed: Mutex::new(None),
            delay: Mutex::new(None),
        };
        collector.publish_endpoints();
        Ok(collector)
    }

    /// The chain id the endpoints report; every one that answers must report the same. While
    /// none answers (an L1 outage at start) they are asked again, with backoff shown in status,
    /// so that a node restarted meanwhile serves what it stored and reads on once L1 is back; an
    /// endpoint still down when another has answered is left to failover and to the second
    /// opinions. An answer asking again will not change (a JSON-RPC error, HTTP 401) ends it.
    pub async fn chain_id(&self) -> Result<u64, CollectorError> {
        let (min, max) = self.config.retry_delays;
        let mut delay = min;
        loop {
            let answers = self
                .ask_each("eth_chainId", "at start", None, |provider| async move {
                    provider.get_chain_id().await
                })
                .await;
            let mut ids = Vec::new();
            let mut unreachable = Vec::new();
            for (index, answer) in answers {
                let name = self.endpoints.list[index].name.as_str();
                match answer {
                    Ok(id) => ids.push((name, id)),
                    Err(error) if classify(&error) == ErrorClass::Retryable => {
                        unreachable.push(format!("eth_chainId at {name}: {error}"));
                    }
                    Err(error) => {
                        return Err(CollectorError::Upstream {
                            request: format!("eth_chainId at {name}"),
                            reason: error.to_string(),
                        });
                    }
                }
            }
            if let Some(&(first, id)) = ids.first() {
                if let Some((other, other_id)) = ids.iter().find(|(_, other_id)| *other_id != id) {
                    return Err(CollectorError::Inconsistent(format!(
                        "the L1 endpoints are on different chains: {first} reports chain id {id}, \
                         {other} reports {other_id}"
                    )));
                }
                if !unreachable.is_empty() {
                    warn!(target: LOG_TARGET, unreachable = %unreachable.join("; "),
                        "Starting with the L1 endpoints that answered; the others stay unhealthy until they answer");
                }
                return Ok(id);
            }
            let reason = unreachable.join("; ");
            warn!(target: LOG_TARGET, %reason, ?delay, "No L1 endpoint answers yet; asking again");
            self.status.record_upstream_backoff(reason, delay);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(max);
        }
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
        let active = &self.endpoints.list[self.endpoints.active()];
        match &active.pushed_heads {
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
            let attempt = match self.gather_anchored(from, last, headers_from).await {
                Ok(gathered) => self.cross_check(gathered.last_block()).await.map(|()| gathered),
                Err(failed) => Err(failed),
            };
            match attempt {
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

    async fn confirm_replaced(&self, number: u64, kept: B256) -> Result<bool, CollectorError> {
        self.confirm_replaced_with_others(number, kept).await
    }

    async fn proven_transaction(
        &self,
        hash: B256,
    ) -> Result<Option<ProvenTransaction>, CollectorError> {
        self.prove_transaction(hash).await
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
