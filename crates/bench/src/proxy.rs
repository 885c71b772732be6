//! An HTTP proxy in front of Anvil that counts the JSON-RPC calls it serves, by method (a
//! batch counts each of its calls): what a hosted provider would bill. Shaped, it is a hosted
//! provider as users meet it: a round trip per request, a limit on calls per second answered
//! with 429, and a bandwidth cap shared by every connection.

use alloy::transports::http::reqwest;
use ferry_messaging::test_utils::{forward_json, read_http_request, write_json_response};
use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{
    io::BufReader,
    net::{TcpListener, TcpStream},
    task::JoinHandle,
    time::Instant,
};

/// What a hosted provider adds to every request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shaping {
    /// The network round trip, waited once per HTTP request.
    pub(crate) rtt: Duration,
    /// Calls per second, each call of a batch counted, as hosted providers count them,
    /// averaged over `burst_seconds` (a token bucket of that many seconds' calls); a request
    /// whose calls exceed what is left is answered HTTP 429 whole.
    pub(crate) rps: u32,
    /// The window the rate is averaged over: how large a burst may be.
    pub(crate) burst_seconds: u32,
    /// The answers' bandwidth, in bytes per second, shared by all connections.
    pub(crate) bytes_per_second: u64,
}

/// The shaping's shared state: the rate limit's tokens and when the link is free again.
#[derive(Debug)]
struct Limits {
    shaping: Shaping,
    tokens: f64,
    refilled: Instant,
    link_free_at: Instant,
}

impl Limits {
    /// Whether a request of `calls` calls may pass now (their tokens taken) or is refused.
    fn admit(&mut self, calls: u64) -> bool {
        let now = Instant::now();
        let rate = f64::from(self.shaping.rps);
        let capacity = rate * f64::from(self.shaping.burst_seconds);
        self.tokens =
            (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate).min(capacity);
        self.refilled = now;
        if self.tokens >= calls as f64 {
            self.tokens -= calls as f64;
            true
        } else {
            false
        }
    }

    /// When an answer of `bytes` has gone through the link, queued behind the others.
    fn transmitted(&mut self, bytes: usize) -> Instant {
        let took = Duration::from_secs_f64(bytes as f64 / self.shaping.bytes_per_second as f64);
        self.link_free_at = self.link_free_at.max(Instant::now()) + took;
        self.link_free_at
    }
}

/// The answer to a refused request, as hosted providers word it.
const RATE_LIMITED: &[u8] =
    br#"{"jsonrpc":"2.0","id":null,"error":{"code":429,"message":"Too Many Requests: rate limit exceeded"}}"#;

/// Calls counted by method.
pub(crate) type Counts = BTreeMap<String, u64>;

pub(crate) struct CountingProxy {
    url: String,
    counts: Arc<Mutex<Counts>>,
    refused: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

/// What every connection of one proxy shares.
#[derive(Clone)]
struct Shared {
    client: reqwest::Client,
    upstream: String,
    counts: Arc<Mutex<Counts>>,
    refused: Arc<AtomicU64>,
    limits: Option<Arc<Mutex<Limits>>>,
    rtt: Duration,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CountingProxy {
    /// A proxy on loopback that only counts.
    pub(crate) async fn start(upstream: String) -> Self {
        Self::start_shaped(upstream, None).await
    }

    /// A proxy that counts, and with `shaping` behaves as a hosted provider.
    pub(crate) async fn start_shaped(upstream: String, shaping: Option<Shaping>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let limits = shaping.map(|shaping| {
            let now = Instant::now();
            let tokens = f64::from(shaping.rps) * f64::from(shaping.burst_seconds);
            Arc::new(Mutex::new(Limits { shaping, tokens, refilled: now, link_free_at: now }))
        });
        let shared = Shared {
            client: reqwest::Client::new(),
            upstream,
            counts: Arc::new(Mutex::new(Counts::new())),
            refused: Arc::new(AtomicU64::new(0)),
            limits,
            rtt: shaping.map_or(Duration::ZERO, |shaping| shaping.rtt),
        };
        let (counts, refused) = (Arc::clone(&shared.counts), Arc::clone(&shared.refused));
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Self { url, counts, refused, task }
    }

    /// Requests refused with 429 so far, and zero from now on.
    pub(crate) fn take_refused(&self) -> u64 {
        self.refused.swap(0, Ordering::Relaxed)
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The counts so far, and zero from now on.
    pub(crate) fn take(&self) -> Counts {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }
}

async fn serve(socket: TcpStream, shared: Shared) {
    let mut reader = BufReader::new(socket);
    while let Some(body) = read_http_request(&mut reader).await {
        tokio::time::sleep(shared.rtt).await;
        let methods = methods(&body);
        let calls = methods.len() as u64;
        let admitted =
            shared.limits.as_ref().is_none_or(|limits| limits.lock().unwrap().admit(calls));
        if admitted {
            let mut counts = shared.counts.lock().unwrap();
            for method in methods {
                *counts.entry(method).or_default() += 1;
            }
        } else {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            if !write_json_response(reader.get_mut(), 429, RATE_LIMITED).await {
                return;
            }
            continue;
        }
        let Some((status, answer)) = forward_json(&shared.client, &shared.upstream, body).await
        else {
            return;
        };
        if let Some(limits) = &shared.limits {
            let sent = limits.lock().unwrap().transmitted(answer.len());
            tokio::time::sleep_until(sent).await;
        }
        if !write_json_response(reader.get_mut(), status, &answer).await {
            return;
        }
    }
}

/// The method of each call of one request (a batch holds several).
fn methods(body: &[u8]) -> Vec<String> {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else { return vec![] };
    let calls = match request {
        serde_json::Value::Array(calls) => calls,
        call => vec![call],
    };
    calls.iter().map(|call| call["method"].as_str().unwrap_or("?").to_owned()).collect()
}
