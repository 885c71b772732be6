//! The admin listener's JWT authentication over the network: missing, expired and forged
//! tokens (401, nothing changed), no binding beyond loopback without a secret, and `cast rpc`.

use crate::support::{Node, SECRET};
use ferry_messaging::{MessagingController, Status};
use ferry_primitives::{Address, Position};
use ferry_rpc::{JwtSecret, RpcConfig, RpcServer, ServerError};
use ferry_rpc_api::{AdminApiClient, PublicApiClient};
use ferry_storage::{Store, StoreConfig};
use jsonrpsee::{
    http_client::{HeaderMap, HeaderValue},
    ws_client::WsClientBuilder,
};
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

const SET: &str = r#"{"jsonrpc":"2.0","id":1,"method":"messaging_setCheckpoint","params":[1]}"#;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn without_a_valid_token_admin_requests_get_401_and_change_nothing() {
    let node = Node::start(3, Some(SECRET)).await;
    let secret = JwtSecret::from_hex(SECRET).unwrap();
    let forger = JwtSecret::from_hex(&SECRET.replace('f', "e")).unwrap();
    let checkpoint = node.checkpoint();
    let refused = [
        ("no header", None),
        ("not a bearer token", Some(format!("Basic {}", secret.token()))),
        ("garbage", Some("Bearer not.a.jwt".to_owned())),
        ("empty token", Some("Bearer ".to_owned())),
        ("forged signature", Some(format!("Bearer {}", forger.token()))),
        ("stale", Some(format!("Bearer {}", secret.token_issued_at(now() - 120)))),
        ("issued in the future", Some(format!("Bearer {}", secret.token_issued_at(now() + 120)))),
    ];
    for (what, authorization) in refused {
        let response = node.admin_raw(SET.as_bytes(), authorization.as_deref()).await;
        assert_eq!(response.status, 401, "{what}: {response:?}");
        assert_eq!(node.checkpoint(), checkpoint, "{what} changed the checkpoint");
    }

    // A WebSocket handshake without a token is refused too.
    let ws = WsClientBuilder::default().build(format!("ws://{}", node.server.admin_addr())).await;
    let error = ws.expect_err("handshake without a token must fail").to_string();
    assert!(error.contains("401"), "{error}");

    // A fresh token works over HTTP and WebSocket; tokens up to a minute old too.
    let response = node.admin_post(SET).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.json()["result"]["rewindApplied"].as_bool().unwrap());
    let mut headers = HeaderMap::new();
    let bearer = format!("Bearer {}", secret.token_issued_at(now() - 30));
    headers.insert("authorization", HeaderValue::from_str(&bearer).unwrap());
    let ws = WsClientBuilder::default()
        .set_headers(headers)
        .build(format!("ws://{}", node.server.admin_addr()))
        .await
        .unwrap();
    assert!(ws.get_checkpoint().await.unwrap().is_some());
    // The public listener needs no token.
    node.public_http().status().await.unwrap();
    node.stop().await;
}

#[tokio::test]
async fn without_a_secret_the_admin_listener_refuses_to_bind_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { chain_id: 1, contract: Address::ZERO, from_block: 0 };
    let store = Store::open(dir.path(), config).unwrap();
    let controller =
        MessagingController::new(store.clone(), Arc::new(Status::load(&store).unwrap()));
    let exposed = SocketAddr::from(([0, 0, 0, 0], 5051));
    let rpc = RpcConfig { admin_addr: exposed, ..RpcConfig::default() };
    let error = RpcServer::start(rpc, controller, "test").await.unwrap_err();
    assert!(matches!(error, ServerError::AdminNotLoopback { addr } if addr == exposed));
    assert!(error.to_string().contains("0.0.0.0:5051"), "{error}");
    assert!(error.to_string().contains("--admin.jwt-secret"), "{error}");
    assert_eq!(store.checkpoint().unwrap(), None::<Position>);
}

#[tokio::test]
async fn cast_rpc_with_the_jwt_secret_drives_the_admin_listener() {
    let node = Node::start(3, Some(SECRET)).await;
    let url = format!("http://{}", node.server.admin_addr());
    let cast = move |args: &[&str]| {
        let mut command = ferry_test_support::cast();
        command.args(["rpc", "--rpc-url", &url]).args(args);
        async move {
            let output =
                tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
            (output.status.success(), String::from_utf8_lossy(&output.stdout).trim().to_owned())
        }
    };
    let secret = &SECRET[2..];
    let (ok, out) = cast(&["--jwt-secret", secret, "messaging_getCheckpoint"]).await;
    assert!(ok, "{out}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!({"block": 4, "index": 0})
    );
    let (ok, out) = cast(&["--jwt-secret", secret, "messaging_setCheckpoint", "2"]).await;
    assert!(ok, "{out}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["current"], serde_json::json!({"block": 2, "index": 0}));
    let history = node.store.checkpoint_history(1).unwrap();
    assert_eq!(history[0].current, Some(Position::block_start(2)));
    // Without the secret, cast is refused and nothing changes.
    let before = node.store.checkpoint_history(10).unwrap().len();
    let (ok, _) = cast(&["messaging_setCheckpoint", "1"]).await;
    assert!(!ok);
    assert_eq!(node.store.checkpoint_history(10).unwrap().len(), before);
    node.stop().await;
}
