//! An L1 endpoint a test steers: an HTTP JSON-RPC proxy in front of one or more Anvils that
//! routes each method to a backend of the test's choice (two load-balanced backends at
//! different heads), holds the requests or answers the test names until it releases them
//! (a reorg between two requests of one gather), rewrites the answers it names (a provider
//! that drops or forges logs), and goes down and up again (an endpoint outage).

use alloy::transports::http::reqwest;
use ferry_messaging::test_utils::{forward_json, read_http_request, write_json_response};
use serde_json::Value;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tokio::{
    io::BufReader,
    net::{TcpListener, TcpStream},
    sync::{Notify, watch},
    task::JoinHandle,
};

/// When a held call waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HoldAt {
    /// Before it is forwarded: the backend answers for the chain as it is after the release.
    Request,
    /// After the backend answered: the node gets an answer about the chain before.
    Answer,
}

/// Calls wait here until the test releases them; once released, later ones pass.
pub(crate) struct Gate {
    entered: Notify,
    released: watch::Sender<bool>,
}

impl Gate {
    /// Waits until a held call has arrived.
    pub(crate) async fn entered(&self) {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.entered.notified())
            .await
            .expect("the node sent the held call");
    }

    /// Lets every held call, and every later one, go on.
    pub(crate) fn release(&self) {
        self.released.send_replace(true);
    }

    async fn pass(&self) {
        self.entered.notify_one();
        let _ = self.released.subscribe().wait_for(|released| *released).await;
    }
}

type Matcher = Box<dyn Fn(&Value) -> bool + Send + Sync>;

/// Changes the `result` of a call the matcher accepts.
type Edit = Box<dyn Fn(&Value, &mut Value) + Send + Sync>;

struct Hold {
    matches: Matcher,
    at: HoldAt,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct State {
    upstreams: Vec<String>,
    routes: HashMap<String, usize>,
    holds: Vec<Hold>,
    rewrites: Vec<(Matcher, Edit)>,
    /// Every connection is closed unanswered.
    down: bool,
    /// A hosted provider's limit on calls per second, when set.
    rate: Option<RateLimit>,
}

/// A token bucket of one second's calls, every call of a batch counted; a request whose calls
/// do not fit is answered 429 whole, as hosted providers do.
struct RateLimit {
    calls_per_second: f64,
    tokens: f64,
    refilled: std::time::Instant,
    refused: u64,
}

impl RateLimit {
    fn admit(&mut self, calls: usize) -> bool {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.refilled).as_secs_f64() * self.calls_per_second;
        self.tokens = (self.tokens + refill).min(self.calls_per_second);
        self.refilled = now;
        if self.tokens < calls as f64 {
            self.refused += 1;
            return false;
        }
        self.tokens -= calls as f64;
        true
    }
}

pub(crate) struct L1Proxy {
    url: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for L1Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `call` is `eth_getBlockByNumber` of a block by number (not `latest` or a tag): the
/// header a gather asks for.
pub(crate) fn header_by_number(call: &Value) -> bool {
    call["method"] == "eth_getBlockByNumber"
        && call["params"][0].as_str().is_some_and(|block| block.starts_with("0x"))
}

impl L1Proxy {
    /// A proxy sending every call to `upstreams[0]` until routed otherwise.
    pub(crate) async fn start(upstreams: Vec<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State { upstreams, ..State::default() }));
        let task = tokio::spawn({
            let state = Arc::clone(&state);
            async move {
                let client = reqwest::Client::new();
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(serve(socket, client.clone(), Arc::clone(&state)));
                }
            }
        });
        Self { url, state, task }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Sends calls of `method` to `upstreams[upstream]`.
    pub(crate) fn route(&self, method: &str, upstream: usize) {
        self.state.lock().unwrap().routes.insert(method.to_owned(), upstream);
    }

    /// Sends every call to `upstreams[0]` again.
    pub(crate) fn route_all_to_first(&self) {
        self.state.lock().unwrap().routes.clear();
    }

    /// Rewrites the answer to every call that `matches` accepts: `edit` gets the call and its
    /// `result`.
    pub(crate) fn rewrite(
        &self,
        matches: impl Fn(&Value) -> bool + Send + Sync + 'static,
        edit: impl Fn(&Value, &mut Value) + Send + Sync + 'static,
    ) {
        self.state.lock().unwrap().rewrites.push((Box::new(matches), Box::new(edit)));
    }

    /// Serves `calls_per_second` calls a second at most (a batch counts each of its calls)
    /// and refuses requests above it with HTTP 429.
    pub(crate) fn limit_rate(&self, calls_per_second: u32) {
        let calls_per_second = f64::from(calls_per_second);
        let refilled = std::time::Instant::now();
        let limit = RateLimit { calls_per_second, tokens: calls_per_second, refilled, refused: 0 };
        self.state.lock().unwrap().rate = Some(limit);
    }

    /// Requests refused with 429 so far.
    pub(crate) fn refused(&self) -> u64 {
        self.state.lock().unwrap().rate.as_ref().map_or(0, |rate| rate.refused)
    }

    /// Answers truthfully again.
    pub(crate) fn stop_rewriting(&self) {
        self.state.lock().unwrap().rewrites.clear();
    }

    /// Closes every connection unanswered (`true`), or serves again.
    pub(crate) fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Holds calls that `matches` accepts at `at`, until the returned gate is released.
    pub(crate) fn hold(
        &self,
        matches: impl Fn(&Value) -> bool + Send + Sync + 'static,
        at: HoldAt,
    ) -> Arc<Gate> {
        let gate = Arc::new(Gate { entered: Notify::new(), released: watch::Sender::new(false) });
        let hold = Hold { matches: Box::new(matches), at, gate: Arc::clone(&gate) };
        self.state.lock().unwrap().holds.push(hold);
        gate
    }
}

async fn serve(socket: TcpStream, client: reqwest::Client, state: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(socket);
    while let Some(body) = read_http_request(&mut reader).await {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let calls = match &request {
            Value::Array(calls) => calls.clone(),
            call => vec![call.clone()],
        };
        let admitted = {
            let mut state = state.lock().unwrap();
            state.rate.as_mut().is_none_or(|rate| rate.admit(calls.len()))
        };
        if !admitted {
            let refused =
                br#"{"jsonrpc":"2.0","id":null,"error":{"code":429,"message":"Too Many Requests"}}"#;
            if !write_json_response(reader.get_mut(), 429, refused).await {
                return;
            }
            continue;
        }
        let (upstream, hold) = {
            let state = state.lock().unwrap();
            if state.down {
                return;
            }
            let method = calls.first().and_then(|call| call["method"].as_str()).unwrap_or("");
            let upstream = state.upstreams[state.routes.get(method).copied().unwrap_or(0)].clone();
            let hold = state
                .holds
                .iter()
                .find(|hold| calls.iter().any(|call| (hold.matches)(call)))
                .map(|hold| (hold.at, Arc::clone(&hold.gate)));
            (upstream, hold)
        };
        if let Some((HoldAt::Request, gate)) = &hold {
            gate.pass().await;
        }
        let Some((status, answer)) = forward_json(&client, &upstream, body).await else { return };
        if let Some((HoldAt::Answer, gate)) = &hold {
            gate.pass().await;
        }
        let answer = rewrite(&state, &calls, answer);
        if !write_json_response(reader.get_mut(), status, &answer).await {
            return;
        }
    }
}

/// `answer` (one call's, or a batch's by id) with the proxy's rewrites applied.
fn rewrite(state: &Mutex<State>, calls: &[Value], answer: Vec<u8>) -> Vec<u8> {
    let state = state.lock().unwrap();
    let edits: Vec<(&Value, &Edit)> = calls
        .iter()
        .flat_map(|call| {
            state
                .rewrites
                .iter()
                .filter(|(matches, _)| matches(call))
                .map(move |(_, edit)| (call, edit))
        })
        .collect();
    if edits.is_empty() {
        return answer;
    }
    let Ok(mut parsed) = serde_json::from_slice::<Value>(&answer) else { return answer };
    let mut answers: Vec<&mut Value> = match &mut parsed {
        Value::Array(answers) => answers.iter_mut().collect(),
        answer => vec![answer],
    };
    for (call, edit) in edits {
        if let Some(answer) = answers.iter_mut().find(|answer| answer["id"] == call["id"])
            && let Some(result) = answer.get_mut("result")
        {
            edit(call, result);
        }
    }
    serde_json::to_vec(&parsed).unwrap()
}
