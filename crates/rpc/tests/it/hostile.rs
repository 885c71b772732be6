//! Hostile requests over the network: malformed JSON, oversized bodies and batches, bad params,
//! and concurrent admin storms; none changes what it must not.

use crate::support::{Node, raw_request};
use ferry_rpc_api::codes;

/// Where a hostile request goes.
#[derive(Debug, Clone, Copy)]
enum Listener {
    Admin,
    Public,
}

fn call(method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#)
}

fn set(params: &str) -> String {
    call("messaging_setCheckpoint", params)
}

/// `(what, listener, body, HTTP status, JSON-RPC code, text the error message must hold)`.
fn cases() -> Vec<(&'static str, Listener, String, u16, i64, &'static str)> {
    use Listener::*;
    let invalid = i64::from(codes::INVALID_PARAMS);
    let batch: Vec<String> = (0..51)
        .map(|id| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"messaging_getCheckpoint"}}"#))
        .collect();
    vec![
        (
            "block not hex",
            Admin,
            set(r#"["abc"]"#),
            200,
            invalid,
            r#"invalid param `block`: "abc" is malformed hex"#,
        ),
        (
            "block negative",
            Admin,
            set("[-1]"),
            200,
            invalid,
            "invalid param `block`: -1 is negative",
        ),
        (
            "block fractional",
            Admin,
            set("[1.5]"),
            200,
            invalid,
            "invalid param `block`: 1.5 is not an integer",
        ),
        (
            "block beyond u64",
            Admin,
            set("[18446744073709551616]"),
            200,
            invalid,
            "invalid param `block`: 18446744073709551616 is beyond u64",
        ),
        (
            "block in exponent form",
            Admin,
            set("[1e3]"),
            200,
            invalid,
            "invalid param `block`: 1000 is not an integer",
        ),
        (
            "block hex beyond u64",
            Admin,
            set(r#"["0x10000000000000000"]"#),
            200,
            invalid,
            "is beyond u64",
        ),
        ("block empty hex", Admin, set(r#"["0x"]"#), 200, invalid, r#""0x" is malformed hex"#),
        (
            "block wrong type",
            Admin,
            set("[true]"),
            200,
            invalid,
            "invalid param `block`: invalid type: boolean `true`",
        ),
        ("block null", Admin, set("[null]"), 200, invalid, "invalid param `block`: missing"),
        ("no params", Admin, set("[]"), 200, invalid, "invalid param `block`: missing"),
        (
            "params omitted",
            Admin,
            r#"{"jsonrpc":"2.0","id":1,"method":"messaging_setCheckpoint"}"#.to_owned(),
            200,
            invalid,
            "invalid param `block`: missing",
        ),
        (
            "index negative",
            Admin,
            set("[1, -2]"),
            200,
            invalid,
            "invalid param `index`: -2 is negative",
        ),
        (
            "index wrong type",
            Admin,
            set("[1, {}]"),
            200,
            invalid,
            "invalid param `index`: invalid type: map",
        ),
        (
            "options wrong type",
            Admin,
            set("[1, 0, 5]"),
            200,
            invalid,
            "invalid param `options`: invalid type: integer `5`",
        ),
        (
            "options unknown field",
            Admin,
            set(r#"[1, 0, {"dryrun": true}]"#),
            200,
            invalid,
            "invalid param `options`: unknown field `dryrun`",
        ),
        (
            "dryRun wrong type",
            Admin,
            set(r#"[1, 0, {"dryRun": "yes"}]"#),
            200,
            invalid,
            "invalid param `options`: invalid type: string",
        ),
        (
            "extra params",
            Admin,
            set("[1, 0, null, 4]"),
            200,
            invalid,
            "expected at most 3 params (block, index, options), got 4",
        ),
        ("unknown named param", Admin, set(r#"{"blok": 1}"#), 200, invalid, "unknown param `blok`"),
        (
            "params a string",
            Admin,
            set(r#""1000""#),
            200,
            invalid,
            "params must be an array or an object",
        ),
        (
            "params to a method without any",
            Admin,
            call("messaging_getCheckpoint", "[1]"),
            200,
            invalid,
            "expected at most 0 params (none), got 1",
        ),
        (
            "reset options wrong type",
            Admin,
            call("messaging_resetCheckpoint", r#"[{"dryRun": 1}]"#),
            200,
            invalid,
            "invalid param `options`",
        ),
        (
            "history limit zero",
            Admin,
            call("messaging_getCheckpointHistory", "[0]"),
            200,
            invalid,
            "invalid param `limit`: 0 is out of range 1..=1000",
        ),
        (
            "history limit too large",
            Admin,
            call("messaging_getCheckpointHistory", "[5000]"),
            200,
            invalid,
            "5000 is out of range",
        ),
        (
            "status with params",
            Public,
            call("messaging_status", r#"["x"]"#),
            200,
            invalid,
            "expected at most 0 params",
        ),
        (
            "beyond the head",
            Admin,
            set("[1000000]"),
            200,
            i64::from(codes::BEYOND_HEAD),
            "block 1000000 is beyond the L1 head 5",
        ),
        (
            "invalid JSON",
            Admin,
            r#"{"jsonrpc":"2.0","id":1,"method":"#.to_owned(),
            200,
            i64::from(codes::PARSE_ERROR),
            "Parse error",
        ),
        (
            "not a request",
            Admin,
            r#"{"jsonrpc":"2.0","id":1}"#.to_owned(),
            200,
            i64::from(codes::INVALID_REQUEST),
            "Invalid request",
        ),
        (
            "wrong jsonrpc version",
            Admin,
            r#"{"jsonrpc":"1.0","id":1,"method":"messaging_getCheckpoint"}"#.to_owned(),
            200,
            i64::from(codes::INVALID_REQUEST),
            "Invalid request",
        ),
        (
            "empty batch",
            Admin,
            "[]".to_owned(),
            200,
            i64::from(codes::INVALID_REQUEST),
            "Invalid request",
        ),
        (
            "oversized batch",
            Admin,
            format!("[{}]", batch.join(",")),
            200,
            i64::from(codes::BATCH_TOO_LARGE),
            "batch request was too large",
        ),
        (
            "unknown method",
            Admin,
            call("messaging_deleteEverything", "[]"),
            200,
            i64::from(codes::METHOD_NOT_FOUND),
            "Method not found",
        ),
        (
            "wrong case",
            Admin,
            set("[1]").replace("setCheckpoint", "SETCHECKPOINT"),
            200,
            i64::from(codes::METHOD_NOT_FOUND),
            "Method not found",
        ),
        (
            "admin method on the public listener",
            Public,
            set("[1]"),
            200,
            i64::from(codes::METHOD_NOT_FOUND),
            "Method not found",
        ),
        (
            "oversized body",
            Admin,
            set(&format!("[1, 0, {{\"pad\": \"{}\"}}]", "x".repeat(2 << 20))),
            413,
            i64::from(codes::REQUEST_TOO_BIG),
            "Request is too big",
        ),
    ]
}

/// Header names and values, as sent.
type Headers = Vec<(&'static str, &'static str)>;

/// `(what, listener, headers, HTTP status, text the refusal must hold)`, for requests a web
/// page can make: `{port}` in a header is the listener's port.
fn header_cases() -> Vec<(&'static str, Listener, Headers, u16, &'static str)> {
    use Listener::*;
    let upgrade = |origin| {
        vec![
            ("host", "127.0.0.1:{port}"),
            ("origin", origin),
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]
    };
    vec![
        (
            "DNS rebinding",
            Admin,
            vec![("host", "evil.example:{port}")],
            403,
            "Host \"evil.example:",
        ),
        (
            "a foreign page",
            Admin,
            vec![("origin", "https://evil.example")],
            403,
            "Origin \"https://evil.example\"",
        ),
        ("a sandboxed page or a file", Admin, vec![("origin", "null")], 403, "Origin \"null\""),
        (
            "a LAN address as Host",
            Admin,
            vec![("host", "192.168.1.9:{port}")],
            403,
            "Host \"192.168.1.9:",
        ),
        (
            "a name under localhost",
            Admin,
            vec![("host", "localhost.evil.example")],
            403,
            "--admin.vhosts",
        ),
        ("a foreign page's WebSocket", Admin, upgrade("https://evil.example"), 403, "Origin"),
        ("DNS rebinding, public", Public, vec![("host", "evil.example")], 403, "--rpc.vhosts"),
        (
            "a foreign page, public",
            Public,
            vec![("origin", "http://evil.example")],
            403,
            "--rpc.cors",
        ),
        (
            "a foreign page's WebSocket, public",
            Public,
            upgrade("http://evil.example"),
            403,
            "Origin",
        ),
    ]
}

#[tokio::test]
async fn hostile_requests_get_exact_errors_and_change_nothing() {
    let node = Node::start(5, None).await;
    let checkpoint = node.checkpoint();
    let history = node.store.checkpoint_history(100).unwrap().len();
    let cases = cases();
    assert!(cases.len() >= 25);
    for (what, listener, body, status, code, message) in cases {
        let response = match listener {
            Listener::Admin => node.admin_post(&body).await,
            Listener::Public => node.public_post(&body).await,
        };
        assert_eq!(response.status, status, "{what}: {response:?}");
        let json = response.json();
        let error = if json.is_array() { &json[0]["error"] } else { &json["error"] };
        assert_eq!(error["code"].as_i64(), Some(code), "{what}: {json}");
        let text = error["message"].as_str().unwrap_or_default().to_owned()
            + " "
            + &error["data"].to_string();
        assert!(text.contains(message), "{what}: {text:?} does not contain {message:?}");
        assert_eq!(node.checkpoint(), checkpoint, "{what} changed the checkpoint");
    }
    for (what, listener, headers, status, message) in header_cases() {
        let addr = match listener {
            Listener::Admin => node.server.admin_addr(),
            Listener::Public => node.server.public_addr(),
        };
        let port = addr.port().to_string();
        let mut headers: Vec<(&str, String)> = headers
            .into_iter()
            .map(|(name, value)| (name, value.replace("{port}", &port)))
            .collect();
        if !headers.iter().any(|(name, _)| *name == "host") {
            headers.push(("host", addr.to_string()));
        }
        let headers: Vec<(&str, &str)> =
            headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let handshake = headers.iter().any(|(name, _)| *name == "upgrade");
        let (method, body) = if handshake { ("GET", String::new()) } else { ("POST", set("[1]")) };
        let response = raw_request(addr, method, body.as_bytes(), &headers).await;
        assert_eq!(response.status, status, "{what}: {response:?}");
        assert!(response.body.contains(message), "{what}: {:?} lacks {message:?}", response.body);
        assert_eq!(node.checkpoint(), checkpoint, "{what} changed the checkpoint");
    }
    assert_eq!(node.store.checkpoint_history(100).unwrap().len(), history, "nothing was audited");
    node.stop().await;
}

#[tokio::test]
async fn concurrent_sets_during_ingest_leave_the_last_writers_value() {
    let node = Node::start(20, None).await;
    let client = node.admin_http();
    let sets = (1..=20u64).map(|block| {
        let client = client.clone();
        tokio::spawn(async move {
            use ferry_rpc_api::AdminApiClient;
            client.set_checkpoint(block.into(), None, None).await.unwrap()
        })
    });
    let mut changes = Vec::new();
    for set in sets.collect::<Vec<_>>() {
        changes.push(set.await.unwrap());
    }
    // The sets were serialised: each one's previous is another one's current (or the start).
    node.caught_up().await;
    let history = node.store.checkpoint_history(100).unwrap();
    assert_eq!(history.len(), 20);
    let last = history[0].current;
    assert!(changes.iter().any(|change| change.current == last));
    node.stop().await;
}
