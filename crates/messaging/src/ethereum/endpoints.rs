//! Several L1 endpoints, none trusted alone: in `failover` mode one answers at a time and the
//! next healthy one takes over on errors, on a lagging head or when it contradicts the others
//! (back to the first once it recovers); in `quorum` mode every request goes to all and an
//! answer counts only when `K` of them give it.

use super::{LOG_TARGET, new_heads::follow_new_heads, pacer::Pacer};
use crate::CollectorError;
use alloy::{
    providers::{DynProvider, Provider, RootProvider},
    rpc::client::{ClientBuilder, RpcClient},
    transports::{
        http::{
            Http, HyperClient,
            hyper::body::Bytes,
            hyper_util::{self, client::legacy::connect::HttpConnector, rt::TokioExecutor},
            reqwest::{self, Url},
        },
        ws::{WebSocketConfig, WsConnect},
    },
};
use ferry_primitives::EndpointSnapshot;
use http_body_util::Full;
use std::{
    fmt,
    str::FromStr,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::{sync::watch, task::JoinHandle};
use tracing::warn;

/// How long an endpoint the others outvoted is not chosen to answer: it may be on another
/// chain (or behind a load balancer that is), and its next answers are asked of the others
/// anyway once it answers again.
const OUTVOTED_FOR: Duration = Duration::from_secs(60);

/// The largest WebSocket message accepted from a provider. An `eth_getLogs` answer comes as
/// one message, and tungstenite's default (16 MiB) is smaller than the first answer on a
/// dense chain (62 blocks of 1,000 messages is 60 MiB): the connection would drop and be
/// re-opened forever, since a dropped connection does not shrink the range the way a refusal
/// does. HTTP answers have no such cap; this one only bounds memory.
const MAX_WS_MESSAGE: usize = 512 << 20;

/// How several endpoints share the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L1Mode {
    /// One endpoint at a time, the next healthy one on trouble.
    Failover,
    /// Every request to all of them; an answer counts when this many give it.
    Quorum(usize),
}

impl fmt::Display for L1Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failover => f.write_str("failover"),
            Self::Quorum(k) => write!(f, "quorum of {k}"),
        }
    }
}

/// How the logs of a gathered range are proven against its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyLogs {
    /// Against each block's `logsBloom`: the header of every block of a range is fetched; a
    /// block whose bloom may hold a log of the contract but returned none is asked again by
    /// hash, then by its receipts; a log from a block whose bloom cannot hold it is a lie.
    #[default]
    Bloom,
    /// Against each block's `receiptsRoot`: the receipts of every block whose bloom may hold
    /// a log of the contract are fetched and their trie root rebuilt; the logs are read from
    /// the proven receipts.
    Receipts,
    /// Anchoring only (inside the header window): what the provider says is taken.
    Off,
}

impl FromStr for VerifyLogs {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "bloom" => Ok(Self::Bloom),
            "receipts" => Ok(Self::Receipts),
            "off" => Ok(Self::Off),
            other => Err(format!("{other:?} is not bloom, receipts or off")),
        }
    }
}

impl fmt::Display for VerifyLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bloom => "bloom",
            Self::Receipts => "receipts",
            Self::Off => "off",
        })
    }
}

/// `url` with what could be a credential hidden: user info, and a path or query (hosted
/// providers put the API key there).
pub fn redact(url: &str) -> String {
    let Ok(parsed) = Url::parse(url) else { return "<not a URL>".to_owned() };
    let host = parsed.host_str().unwrap_or_default();
    let port = parsed.port().map(|port| format!(":{port}")).unwrap_or_default();
    let hidden = parsed.path().len() > 1 || parsed.query().is_some();
    let secret = if parsed.username().is_empty() && !hidden { "" } else { "/…" };
    format!("{}://{host}{port}{secret}", parsed.scheme())
}

/// One endpoint and what the node knows of it.
#[derive(Debug)]
pub(super) struct Endpoint {
    /// Its URL, credentials hidden: what logs, metrics and status name it by.
    pub(super) name: String,
    pub(super) provider: DynProvider,
    /// The newest head number its newHeads subscription pushed (WebSocket only).
    pub(super) pushed_heads: Option<watch::Receiver<u64>>,
    head_task: Option<JoinHandle<()>>,
    health: Mutex<Health>,
    /// Keeps its calls under `--l1.max-rps`, when given.
    pacer: Option<Pacer>,
}

#[derive(Debug, Default)]
struct Health {
    unhealthy: bool,
    /// Until when it is not chosen: the other endpoints outvoted it.
    outvoted_until: Option<std::time::Instant>,
    head: Option<u64>,
    last_error: Option<(String, u64)>,
    requests: u64,
    errors: u64,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(task) = &self.head_task {
            task.abort();
        }
    }
}

/// The client of an `http://` endpoint: hyper without TLS, each request bounded by
/// `request_timeout`. reqwest builds an OpenSSL context and reads the system's CA bundle for
/// every client, TLS or not: 63 ms of CPU at every start, a tenth of a 100,000-message
/// catch-up's (`docs/benchmarks.md`).
fn plain_http_client(url: Url, request_timeout: Duration) -> RpcClient {
    // Small requests go out at once, as reqwest sends them (Nagle's algorithm off).
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build::<_, Full<Bytes>>(connector);
    let service = tower::ServiceBuilder::new()
        .map_err(|error: tower::BoxError| std::io::Error::other(error))
        .timeout(request_timeout)
        .service(hyper);
    let transport = Http::with_client(HyperClient::with_service(service), url);
    let is_local = transport.guess_local();
    ClientBuilder::default().transport(transport, is_local)
}

impl Endpoint {
    /// Connects to `url`; a WebSocket connection reconnects by itself (forever, with backoff)
    /// and re-subscribes to new heads.
    pub(super) async fn connect(
        url: &str,
        request_timeout: Duration,
        retry_delays: (Duration, Duration),
        pacer: Option<Pacer>,
    ) -> Result<Self, CollectorError> {
        let url = url.trim();
        let name = redact(url);
        let failed = |reason: String| CollectorError::Upstream {
            request: format!("connect {name}"),
            reason,
        };
        let is_ws = url.starts_with("ws://") || url.starts_with("wss://");
        let client = if is_ws {
            let limits = WebSocketConfig::default()
                .max_message_size(Some(MAX_WS_MESSAGE))
                .max_frame_size(Some(MAX_WS_MESSAGE));
            let connect = WsConnect::new(url)
                .with_config(limits)
                .with_max_retries(u32::MAX)
                .with_retry_interval(Duration::from_secs(1));
            ClientBuilder::default().ws(connect).await.map_err(|error| failed(error.to_string()))?
        } else {
            let parsed: Url =
                url.parse().map_err(|error| failed(format!("not a valid URL: {error}")))?;
            if parsed.scheme() == "http" {
                plain_http_client(parsed, request_timeout)
            } else {
                let http = reqwest::Client::builder()
                    .timeout(request_timeout)
                    .build()
                    .map_err(|error| failed(error.to_string()))?;
                ClientBuilder::default().http_with_client(http, parsed)
            }
        };
        let provider = RootProvider::new(client).erased();
        let (pushed_heads, head_task) = if is_ws {
            let (sender, receiver) = watch::channel(0);
            let task = tokio::spawn(follow_new_heads(provider.clone(), sender, retry_delays));
            (Some(receiver), Some(task))
        } else {
            (None, None)
        };
        let health = Mutex::new(Health::default());
        Ok(Self { name, provider, pushed_heads, head_task, health, pacer })
    }

    /// `request` (of `calls` calls), sent once the endpoint's rate allows it.
    pub(super) async fn paced<T>(&self, calls: usize, request: impl Future<Output = T>) -> T {
        if let Some(pacer) = &self.pacer {
            pacer.admit(calls).await;
        }
        request.await
    }

    /// The most calls one batch to it may hold.
    pub(super) fn max_batch(&self) -> Option<usize> {
        self.pacer.as_ref().map(Pacer::max_batch)
    }

    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Healthy, and not outvoted lately: one failover may choose.
    pub(super) fn trusted(&self) -> bool {
        let health = self.health();
        !health.unhealthy
            && health.outvoted_until.is_none_or(|until| std::time::Instant::now() >= until)
    }

    /// Marks it outvoted by the others, with `reason`: not chosen for [`OUTVOTED_FOR`].
    pub(super) fn record_outvoted(&self, reason: String) {
        let mut health = self.health();
        health.outvoted_until = Some(std::time::Instant::now() + OUTVOTED_FOR);
        health.errors += 1;
        health.last_error = Some((reason, unix_millis()));
    }

    pub(super) fn head(&self) -> Option<u64> {
        self.health().head
    }

    pub(super) fn record_calls(&self, calls: u64) {
        self.health().requests += calls;
    }

    pub(super) fn record_success(&self) {
        self.health().unhealthy = false;
    }

    pub(super) fn record_head(&self, head: u64) {
        let mut health = self.health();
        health.head = Some(head);
        health.unhealthy = false;
    }

    /// Marks it failing, with `error`.
    pub(super) fn record_error(&self, error: String) {
        let mut health = self.health();
        health.unhealthy = true;
        health.errors += 1;
        health.last_error = Some((error, unix_millis()));
    }

    fn snapshot(&self, active: bool) -> EndpointSnapshot {
        let health = self.health();
        EndpointSnapshot {
            url: self.name.clone(),
            active,
            healthy: !health.unhealthy,
            head: health.head,
            last_error: health.last_error.as_ref().map(|(error, _)| error.clone()),
            last_error_at: health.last_error.as_ref().map(|(_, at)| *at),
            requests: health.requests,
            errors: health.errors,
        }
    }
}

/// The endpoints, and which one answers now (failover).
#[derive(Debug)]
pub(super) struct Endpoints {
    pub(super) list: Vec<Endpoint>,
    pub(super) mode: L1Mode,
    /// Blocks an endpoint's head may lag the best one's before it is set aside.
    pub(super) max_head_lag: u64,
    active: AtomicUsize,
}

impl Endpoints {
    pub(super) fn new(list: Vec<Endpoint>, mode: L1Mode, max_head_lag: u64) -> Self {
        Self { list, mode, max_head_lag, active: AtomicUsize::new(0) }
    }

    /// The endpoint answering now (failover; the first in quorum mode).
    pub(super) fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Sets `from` aside for `reason` and hands over to the next healthy endpoint after it (or
    /// the next one at all, when none is healthy); the endpoint now answering.
    pub(super) fn fail_over(&self, from: usize, reason: &str) -> usize {
        let count = self.list.len();
        if count == 1 {
            return from;
        }
        self.list[from].record_error(reason.to_owned());
        let next = (1..count)
            .map(|step| (from + step) % count)
            .find(|index| self.list[*index].trusted())
            .unwrap_or((from + 1) % count);
        self.switch(from, next, reason);
        next
    }

    /// Makes `to` the endpoint that answers, if `from` still is; logged and counted.
    pub(super) fn switch(&self, from: usize, to: usize, reason: &str) {
        if from == to
            || self.active.compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let (from, to) = (&self.list[from].name, &self.list[to].name);
        warn!(target: LOG_TARGET, %from, %to, reason, "L1 endpoint switched");
        metrics::counter!("ferry_upstream_switches_total", "from" => from.clone(), "to" => to.clone())
            .increment(1);
    }

    /// After a round of heads: back to the first endpoint when it is healthy, not behind and
    /// not outvoted lately, or away from the active one when its head lags the best by more
    /// than allowed.
    pub(super) fn rebalance(&self) {
        let best = self.list.iter().filter_map(Endpoint::head).max();
        let Some(best) = best else { return };
        let fresh = |endpoint: &Endpoint| {
            endpoint.trusted()
                && endpoint.head().is_some_and(|head| head + self.max_head_lag >= best)
        };
        let active = self.active();
        if active != 0 && fresh(&self.list[0]) {
            self.switch(active, 0, "the first endpoint is back");
        } else if !fresh(&self.list[active])
            && let Some(next) = self.list.iter().position(fresh)
        {
            let reason = format!(
                "its head {:?} lags the best one ({best}) by more than {} blocks",
                self.list[active].head(),
                self.max_head_lag
            );
            self.switch(active, next, &reason);
        }
    }

    /// What status shows of each endpoint.
    pub(super) fn snapshot(&self) -> Vec<EndpointSnapshot> {
        let active = self.active();
        let quorum = matches!(self.mode, L1Mode::Quorum(_));
        self.list
            .iter()
            .enumerate()
            .map(|(index, endpoint)| endpoint.snapshot(quorum || index == active))
            .collect()
    }
}

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_named_without_their_credentials() {
        assert_eq!(redact("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(
            redact("https://eth-mainnet.g.alchemy.com/v2/SECRET"),
            "https://eth-mainnet.g.alchemy.com/…"
        );
        assert_eq!(redact("wss://user:pass@node.example:8546"), "wss://node.example:8546/…");
        assert_eq!(redact("https://rpc.example/?key=SECRET"), "https://rpc.example/…");
        assert!(!redact("https://x.example/SECRET").contains("SECRET"));
    }
}
