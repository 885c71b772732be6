//! A node over a scripted chain for the listener tests: store, controller, drain task and both
//! listeners on free loopback ports, with raw HTTP helpers.

use ferry_messaging::{DrainHandle, MessagingController, Status, test_utils::ScriptedCollector};
use ferry_primitives::{Address, Position};
use ferry_rpc::{JwtSecret, Limits, RpcConfig, RpcServer};
use ferry_storage::{Store, StoreConfig};
use jsonrpsee::{
    http_client::{HeaderMap, HeaderValue, HttpClient},
    ws_client::{WsClient, WsClientBuilder},
};
use serde_json::Value;
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

pub(crate) const SECRET: &str =
    "0xf00df00df00df00df00df00df00df00df00df00df00df00df00df00df00df00d";

/// A running node: a scripted chain with messages, the ingestion task, both listeners.
pub(crate) struct Node {
    _dir: TempDir,
    pub(crate) store: Store,
    pub(crate) status: Arc<Status>,
    pub(crate) chain: Arc<ScriptedCollector>,
    pub(crate) server: RpcServer,
    pub(crate) secret: Option<JwtSecret>,
    controller: MessagingController,
    /// The listeners' configuration (addresses aside), for restarts.
    rpc: RpcConfig,
    handle: Option<DrainHandle>,
}

impl Node {
    /// A node over a chain of `blocks` blocks with two messages each, caught up.
    pub(crate) async fn start(blocks: u64, secret: Option<&str>) -> Self {
        Self::start_with(ScriptedCollector::new(0, 100), blocks, 2, secret, Limits::default()).await
    }

    /// A node over `chain` extended by `blocks` blocks of `per_block` messages, caught up.
    pub(crate) async fn start_with(
        chain: Arc<ScriptedCollector>,
        blocks: u64,
        per_block: usize,
        secret: Option<&str>,
        limits: Limits,
    ) -> Self {
        let rpc = RpcConfig { limits, ..RpcConfig::default() };
        Self::start_configured(chain, blocks, per_block, secret, rpc).await
    }

    /// Like [`Node::start_with`], with the listeners configured as `rpc` says (on port 0).
    pub(crate) async fn start_configured(
        chain: Arc<ScriptedCollector>,
        blocks: u64,
        per_block: usize,
        secret: Option<&str>,
        rpc: RpcConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config =
            StoreConfig { chain_id: 31337, contract: Address::repeat_byte(0xcc), from_block: 0 };
        let store = Store::open(dir.path(), config).unwrap();
        let status = Arc::new(Status::load(&store).unwrap());
        let controller = MessagingController::new(store.clone(), Arc::clone(&status));
        for _ in 0..blocks {
            chain.mine(per_block);
        }
        let handle = Some(controller.start(Arc::clone(&chain)).unwrap());
        let secret = secret.map(|hex| JwtSecret::from_hex(hex).unwrap());
        let rpc = RpcConfig {
            public_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: secret.clone(),
            ..rpc
        };
        let server = RpcServer::start(rpc.clone(), controller.clone(), "test").await.unwrap();
        let node =
            Self { _dir: dir, store, status, chain, server, secret, controller, rpc, handle };
        node.caught_up().await;
        node
    }

    /// Stops the listeners and the ingestion task, and starts them again on the same store
    /// and addresses, as a restarted process would.
    pub(crate) async fn restart(&mut self) {
        self.server.stop();
        if let Some(mut handle) = self.handle.take() {
            handle.stop();
            handle.stopped().await;
        }
        let public_addr = self.server.public_addr();
        let admin_addr = self.server.admin_addr();
        self.status = Arc::new(Status::load(&self.store).unwrap());
        self.controller = MessagingController::new(self.store.clone(), Arc::clone(&self.status));
        self.handle = Some(self.controller.start(Arc::clone(&self.chain)).unwrap());
        let rpc = RpcConfig { public_addr, admin_addr, ..self.rpc.clone() };
        // The old listeners release their ports as they stop.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        self.server = loop {
            match RpcServer::start(rpc.clone(), self.controller.clone(), "test").await {
                Ok(server) => break server,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("cannot restart the listeners: {error}"),
            }
        };
    }

    pub(crate) fn public_ws_url(&self) -> String {
        format!("ws://{}", self.server.public_addr())
    }

    pub(crate) async fn caught_up(&self) {
        let target = Some(Position::block_start(self.chain.latest() + 1));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.store.checkpoint().unwrap() != target || self.status.snapshot().cursor != target
        {
            assert!(tokio::time::Instant::now() < deadline, "node did not catch up");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits until the node has recorded `reorgs` reorgs and caught up again.
    pub(crate) async fn wait_until_reorgs(&self, reorgs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.store.reorgs(1).unwrap().1 < reorgs {
            assert!(tokio::time::Instant::now() < deadline, "the reorg was not recorded");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.caught_up().await;
    }

    pub(crate) fn checkpoint(&self) -> Option<Position> {
        self.store.checkpoint().unwrap()
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(secret) = &self.secret {
            let bearer = format!("Bearer {}", secret.token());
            headers.insert("authorization", HeaderValue::from_str(&bearer).unwrap());
        }
        headers
    }

    pub(crate) fn admin_http(&self) -> HttpClient {
        HttpClient::builder()
            .set_headers(self.headers())
            .build(format!("http://{}", self.server.admin_addr()))
            .unwrap()
    }

    pub(crate) async fn admin_ws(&self) -> WsClient {
        WsClientBuilder::default()
            .set_headers(self.headers())
            .build(format!("ws://{}", self.server.admin_addr()))
            .await
            .unwrap()
    }

    pub(crate) fn public_http(&self) -> HttpClient {
        HttpClient::builder().build(format!("http://{}", self.server.public_addr())).unwrap()
    }

    /// Sends `body` as it is to the admin listener; with `authorization` as given.
    pub(crate) async fn admin_raw(&self, body: &[u8], authorization: Option<&str>) -> Response {
        raw_post(self.server.admin_addr(), body, authorization).await
    }

    /// Sends `body` to the admin listener with a valid token (when a secret is set).
    pub(crate) async fn admin_post(&self, body: &str) -> Response {
        let bearer = self.secret.as_ref().map(|secret| format!("Bearer {}", secret.token()));
        raw_post(self.server.admin_addr(), body.as_bytes(), bearer.as_deref()).await
    }

    pub(crate) async fn public_post(&self, body: &str) -> Response {
        raw_post(self.server.public_addr(), body.as_bytes(), None).await
    }

    /// Stops the ingestion task and hands over the listeners, to watch them stop.
    pub(crate) async fn stop_and_take_server(mut self) -> RpcServer {
        if let Some(mut handle) = self.handle.take() {
            handle.stop();
            handle.stopped().await;
        }
        self.server
    }

    pub(crate) async fn stop(mut self) {
        self.server.stop();
        if let Some(mut handle) = self.handle.take() {
            handle.stop();
            handle.stopped().await;
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// The status line and headers.
    pub(crate) head: String,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.body))
    }
}

/// One HTTP/1.1 POST on a fresh connection, exactly as given.
pub(crate) async fn raw_post(
    addr: SocketAddr,
    body: &[u8],
    authorization: Option<&str>,
) -> Response {
    let host = addr.to_string();
    let mut headers = vec![("host", host.as_str())];
    headers.extend(authorization.map(|authorization| ("authorization", authorization)));
    raw_request(addr, "POST", body, &headers).await
}

/// One HTTP/1.1 request on a fresh connection, with exactly these headers (`host` included,
/// when wanted) besides the body's.
pub(crate) async fn raw_request(
    addr: SocketAddr,
    method: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} / HTTP/1.1\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    // A server may answer (413) and close before reading all of a large body.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let head_lines = head.to_owned();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Response { status, head: head_lines, body }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        body.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    body
}
