//! What a web page, an idle-socket flood, a greedy client and very large messages can make the
//! listeners do, over real sockets.

use crate::support::{Node, Response, raw_request};
use ferry_messaging::test_utils::{ScriptedCollector, ScriptedLog};
use ferry_primitives::{Address, Message, U256};
use ferry_rpc::{AccessRules, Allowed, Limits, RpcConfig};
use ferry_rpc_api::{PublicApiClient, ResumingSubscriber};
use futures_util::{SinkExt, StreamExt};
use jsonrpsee::ws_client::WsClientBuilder;
use std::{net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    time::Instant,
};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

const SET: &str = r#"{"jsonrpc":"2.0","id":1,"method":"messaging_setCheckpoint","params":[1]}"#;
const RESET: &str = r#"{"jsonrpc":"2.0","id":1,"method":"messaging_resetCheckpoint","params":[]}"#;
const STATUS: &str = r#"{"jsonrpc":"2.0","id":1,"method":"messaging_status","params":[]}"#;

async fn post(addr: SocketAddr, body: &str, headers: &[(&str, &str)]) -> Response {
    raw_request(addr, "POST", body.as_bytes(), headers).await
}

/// A WebSocket handshake to `addr` with these headers: the HTTP status it got, and the
/// socket when it was upgraded.
async fn ws_handshake(
    addr: SocketAddr,
    headers: &[(&'static str, &str)],
) -> (u16, String, Option<WsStream>) {
    let mut request = format!("ws://{addr}").into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, HeaderValue::from_str(value).unwrap());
    }
    let socket = TcpStream::connect(addr).await.unwrap();
    match tokio_tungstenite::client_async(request, socket).await {
        Ok((stream, response)) => (response.status().as_u16(), String::new(), Some(stream)),
        Err(tungstenite::Error::Http(response)) => {
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            (response.status().as_u16(), body.into_owned(), None)
        }
        Err(error) => panic!("handshake failed: {error}"),
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<TcpStream>;

/// Sends one call over `stream` and returns its answer (notifications skipped).
async fn ws_call(stream: &mut WsStream, call: &str) -> serde_json::Value {
    stream.send(tungstenite::Message::text(call)).await.unwrap();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an answer in time")
            .expect("the socket is open")
            .unwrap();
        if let tungstenite::Message::Text(text) = message {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            if value.get("id").is_some() {
                return value;
            }
        }
    }
}

#[tokio::test]
async fn a_web_page_cannot_drive_the_admin_listener() {
    let node = Node::start(3, None).await;
    let admin = node.server.admin_addr();
    let checkpoint = node.checkpoint();
    let port = admin.port();

    // DNS rebinding: the page's own name, resolved to 127.0.0.1.
    let host = format!("evil.example:{port}");
    let refused = post(admin, SET, &[("host", &host)]).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains(&format!("Host \"{host}\"")), "{}", refused.body);
    assert!(refused.body.contains("--admin.vhosts"), "{}", refused.body);
    // A page on another site, with the right Host: its Origin gives it away.
    let localhost = format!("localhost:{port}");
    let refused =
        post(admin, RESET, &[("host", &localhost), ("origin", "https://evil.example")]).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("Origin \"https://evil.example\""), "{}", refused.body);
    // The same over WebSocket, which browsers open to any address.
    let (status, body, stream) = ws_handshake(admin, &[("origin", "https://evil.example")]).await;
    assert_eq!((status, stream.is_none()), (403, true), "{body}");
    assert!(body.contains("Origin \"https://evil.example\""), "{body}");
    let (status, _, stream) = ws_handshake(admin, &[("host", "rebind.example")]).await;
    assert_eq!((status, stream.is_none()), (403, true));
    // Nothing moved, nothing was recorded.
    assert_eq!(node.checkpoint(), checkpoint);
    assert!(node.store.checkpoint_history(10).unwrap().is_empty());

    // The node's own names and loopback addresses are served.
    for host in [localhost.as_str(), &admin.to_string(), &format!("127.0.0.2:{port}"), "[::1]"] {
        let answer = post(admin, SET, &[("host", host)]).await;
        assert_eq!(answer.status, 200, "{host}: {answer:?}");
        assert_eq!(answer.json()["result"]["current"]["block"], 1, "{host}");
    }
    // A non-loopback address is not the admin listener's.
    let refused = post(admin, SET, &[("host", "192.168.1.9")]).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    let (status, _, stream) = ws_handshake(admin, &[]).await;
    assert_eq!(status, 101);
    let answer = ws_call(&mut stream.unwrap(), RESET).await;
    assert_eq!(answer["result"]["current"], serde_json::Value::Null, "{answer}");
    node.stop().await;
}

#[tokio::test]
async fn the_public_listener_refuses_foreign_pages_and_names_but_not_addresses() {
    let node = Node::start(3, None).await;
    let public = node.server.public_addr();
    let refused = post(public, STATUS, &[("host", "evil.example")]).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("--rpc.vhosts"), "{}", refused.body);
    let refused = post(public, STATUS, &[("origin", "https://evil.example")]).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("--rpc.cors"), "{}", refused.body);
    let (status, _, stream) = ws_handshake(public, &[("origin", "http://evil.example")]).await;
    assert_eq!((status, stream.is_none()), (403, true));
    // Any IP address, as geth's --http.vhosts: a rebinding needs a name.
    for host in ["10.1.2.3:5050", "localhost", "[2001:db8::1]:80"] {
        let answer = post(public, STATUS, &[("host", host)]).await;
        assert_eq!(answer.status, 200, "{host}: {answer:?}");
    }
    node.stop().await;
}

#[tokio::test]
async fn allowed_names_and_origins_are_served_with_cors() {
    let rpc = RpcConfig {
        public_access: AccessRules {
            hosts: Allowed::from_list(&["node.example".to_owned()]),
            origins: Allowed::from_list(&["https://dash.example".to_owned()]),
        },
        admin_access: AccessRules {
            origins: Allowed::from_list(&["https://ops.example/".to_owned()]),
            ..AccessRules::default()
        },
        ..RpcConfig::default()
    };
    let node = Node::start_configured(ScriptedCollector::new(0, 100), 3, 2, None, rpc).await;
    let public = node.server.public_addr();
    assert_eq!(post(public, STATUS, &[("host", "node.example:5050")]).await.status, 200);
    assert_eq!(post(public, STATUS, &[("host", "localhost")]).await.status, 403, "replaced");

    let dash = [("host", "node.example"), ("origin", "https://dash.example")];
    let answer = post(public, STATUS, &dash).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let head = answer.head.to_ascii_lowercase();
    assert!(head.contains("access-control-allow-origin: https://dash.example"), "{head}");
    let preflight = raw_request(
        public,
        "OPTIONS",
        b"",
        &[
            ("host", "node.example"),
            ("origin", "https://dash.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
    )
    .await;
    assert_eq!(preflight.status, 200, "{preflight:?}");
    let head = preflight.head.to_ascii_lowercase();
    assert!(head.contains("access-control-allow-origin: https://dash.example"), "{head}");
    assert!(head.contains("access-control-allow-methods"), "{head}");
    let other = post(public, STATUS, &[("host", "node.example"), ("origin", "https://x.example")]);
    assert_eq!(other.await.status, 403);

    let (status, _, stream) =
        ws_handshake(node.server.admin_addr(), &[("origin", "https://ops.example")]).await;
    assert_eq!(status, 101);
    let answer = ws_call(&mut stream.unwrap(), SET).await;
    assert_eq!(answer["result"]["current"]["block"], 1, "{answer}");
    node.stop().await;
}

/// Reads `socket` until it is closed (or fails); `false` if it is still open at `deadline`.
async fn closed_by(socket: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0; 1024];
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn idle_sockets_above_the_cap_are_closed_and_the_node_goes_on_serving_and_ingesting() {
    let limits = Limits {
        max_connections: 8,
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(5),
        ws_ping_interval: Duration::from_secs(30),
        ..Limits::default()
    };
    let rpc = RpcConfig { limits, ..RpcConfig::default() };
    let node = Node::start_configured(ScriptedCollector::new(0, 100), 3, 2, None, rpc).await;
    let public = node.server.public_addr();

    // A subscriber's WebSocket: kept by its pings, never taken for idle.
    let client = WsClientBuilder::default().build(node.public_ws_url()).await.unwrap();
    let mut subscription = client.subscribe_messages(None, None).await.unwrap();

    // Seven more sockets take every place; they send nothing (or half a request).
    let mut idle = Vec::new();
    for index in 0..7 {
        let mut socket = TcpStream::connect(public).await.unwrap();
        if index % 2 == 0 {
            socket.write_all(b"POST / HTTP/1.1\r\nhost: local").await.unwrap();
        }
        idle.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Beyond the cap a socket is closed at once.
    let mut extra = Vec::new();
    for _ in 0..20 {
        extra.push(TcpStream::connect(public).await.unwrap());
    }
    for socket in &mut extra {
        assert!(closed_by(socket, Instant::now() + Duration::from_millis(300)).await);
    }
    // The idle ones are closed after the header-read timeout (a silent socket has not even
    // said which protocol it speaks), long before the idle timeout...
    let deadline = Instant::now() + Duration::from_millis(2_000);
    for socket in &mut idle {
        assert!(closed_by(socket, deadline).await, "an idle socket outlived its timeout");
    }
    // ...and the places are free again: requests are served, the subscriber still hears.
    let answer = post(public, STATUS, &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    node.chain.mine(2);
    node.caught_up().await;
    let page = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("the subscriber survived the idle timeout")
        .unwrap()
        .unwrap();
    assert_eq!(page.entries[0].l1.origin.block_number, node.chain.latest());
    node.stop().await;
}

#[tokio::test]
async fn a_request_whose_body_never_arrives_gets_408_and_cannot_hold_a_stop() {
    let limits = Limits { request_timeout: Duration::from_millis(500), ..Limits::default() };
    let rpc = RpcConfig { limits, ..RpcConfig::default() };
    let node = Node::start_configured(ScriptedCollector::new(0, 100), 3, 2, None, rpc).await;
    let public = node.server.public_addr();
    let stalled = |addr: SocketAddr| async move {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             content-length: 100\r\n\r\n{{\"jsonrpc\":"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket
    };
    let mut socket = stalled(public).await;
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer));
    read.await.expect("the stalled request was answered").unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body upload included"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(post(public, STATUS, &[]).await.status, 200);
    node.stop().await;

    // With a long request timeout, a stalled upload cannot hold the listener's stop either.
    let rpc = RpcConfig::default();
    let node = Node::start_configured(ScriptedCollector::new(0, 100), 3, 2, None, rpc).await;
    let _socket = stalled(node.server.public_addr()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    node.server.stop();
    let server = node.stop_and_take_server().await;
    tokio::time::timeout(Duration::from_secs(10), server.stopped())
        .await
        .expect("the listeners stopped despite the stalled upload");
    assert!(started.elapsed() >= Duration::from_secs(4), "in-flight requests get their grace");
}

/// A WebSocket from `local` (any 127.0.0.0/8 address) to `server`.
async fn ws_from(local: [u8; 4], server: SocketAddr) -> WsStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((local, 0))).unwrap();
    let stream = socket.connect(server).await.unwrap();
    let (stream, _) =
        tokio_tungstenite::client_async(format!("ws://{server}"), stream).await.unwrap();
    stream
}

const SUBSCRIBE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"messaging_subscribe","params":[0]}"#;

#[tokio::test]
async fn one_address_cannot_hold_every_subscription() {
    let limits =
        Limits { max_subscriptions_per_peer: 3, max_subscriptions_total: 5, ..Limits::default() };
    let node = Node::start_with(ScriptedCollector::new(0, 100), 3, 2, None, limits).await;
    let public = node.server.public_addr();
    let mut greedy = Vec::new();
    for _ in 0..3 {
        let mut stream = ws_from([127, 0, 0, 1], public).await;
        let answer = ws_call(&mut stream, SUBSCRIBE).await;
        assert!(answer.get("result").is_some(), "{answer}");
        greedy.push(stream);
    }
    let mut fourth = ws_from([127, 0, 0, 1], public).await;
    let refused = ws_call(&mut fourth, SUBSCRIBE).await;
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("127.0.0.1") && message.contains('3'), "{refused}");
    assert_eq!(refused["error"]["data"]["limit"], 3);
    // Another address still gets its places.
    let mut other = ws_from([127, 0, 0, 2], public).await;
    assert!(ws_call(&mut other, SUBSCRIBE).await.get("result").is_some());
    // A closed subscription gives its place back.
    greedy.pop().unwrap().close(None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = ws_call(&mut fourth, SUBSCRIBE).await;
        if answer.get("result").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the place was not given back: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.stop().await;
}

/// A message whose payload is `felts` field elements: about 68 bytes of JSON each.
fn large_message(nonce: u64, felts: usize) -> ScriptedLog {
    ScriptedLog::Message(Message {
        from: Address::repeat_byte(0x5e),
        to: U256::from(0x70),
        selector: U256::from(0x5e1),
        payload: (0..felts).map(|felt| U256::MAX - U256::from(felt + nonce as usize)).collect(),
        nonce: U256::from(nonce),
        fee: U256::from(1),
    })
}

#[tokio::test]
async fn pages_stay_under_the_byte_cap_and_large_messages_reach_a_resuming_subscriber() {
    let chain = ScriptedCollector::new(0, 100);
    let limits = Limits { max_page_bytes: 4 << 20, ..Limits::default() };
    let node = Node::start_with(chain, 0, 0, None, limits).await;
    // Twelve messages of about 1.4 MB each, then one of about 5.4 MB: 22 MB in all, twice
    // jsonrpsee's default frame limit.
    for nonce in 0..12 {
        node.chain.mine_logs(vec![large_message(nonce, 20_000)]);
    }
    node.chain.mine_logs(vec![large_message(12, 80_000)]);
    node.caught_up().await;
    let expected = node.chain.chain_messages();
    assert_eq!(expected.len(), 13);

    let mut subscriber = ResumingSubscriber::new(node.public_ws_url(), 0);
    let mut received = Vec::new();
    while received.len() < expected.len() {
        let entries = tokio::time::timeout(Duration::from_secs(60), subscriber.next())
            .await
            .expect("the large messages arrive");
        received.extend(entries);
    }
    assert_eq!(subscriber.subscriptions(), 1, "no page was too large for the subscriber");
    for (seq, (entry, message)) in received.iter().zip(&expected).enumerate() {
        assert_eq!(entry.seq.0, seq as u64);
        assert_eq!(entry.l1, *message, "message {seq} field by field");
    }

    // Pages under the cap fit even a client with jsonrpsee's default 10 MiB frame limit.
    let client = WsClientBuilder::default().build(node.public_ws_url()).await.unwrap();
    let mut subscription = client.subscribe_messages(Some(0), None).await.unwrap();
    let mut next = 0;
    while next < 13 {
        let page = tokio::time::timeout(Duration::from_secs(60), subscription.next())
            .await
            .expect("a page in time")
            .expect("the subscription stays open")
            .unwrap();
        assert_eq!(page.entries[0].seq.0, next);
        next = page.next_seq;
    }
    drop(client);

    // Over HTTP: a page holds what fits in the cap, the oversized message goes alone.
    let client = jsonrpsee::http_client::HttpClient::builder()
        .max_response_size(ferry_rpc_api::MAX_CLIENT_RESPONSE_BYTES)
        .build(format!("http://{}", node.server.public_addr()))
        .unwrap();
    let mut from = 0;
    let mut pages = Vec::new();
    while from < 13 {
        let page = client.get_messages(from, Some(100), None).await.unwrap();
        assert!(!page.entries.is_empty());
        assert_eq!(page.next_seq, page.entries.last().unwrap().seq.0 + 1);
        let bytes = serde_json::to_vec(&page.entries).unwrap().len();
        assert!(page.entries.len() == 1 || bytes <= 4 << 20, "{bytes} bytes in a page");
        pages.push(page.entries.len());
        from = page.next_seq;
    }
    assert_eq!(pages.iter().sum::<usize>(), 13);
    assert_eq!(*pages.last().unwrap(), 1, "the oversized message alone: {pages:?}");
    assert!(pages.len() >= 5, "{pages:?}");
    node.stop().await;
}
