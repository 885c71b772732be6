//! A flaky L1: a fault-injecting HTTP proxy between the node and Anvil.

use crate::{
    reorgs::canonical,
    scenarios::stored,
    support::{Ferry, anvil, deploy, head, send_many},
};
use alloy::primitives::B256;
use alloy::transports::http::reqwest;
use ferry_messaging::test_utils::{forward_json, read_http_request, write_json_response};
use ferry_primitives::{Origin, Position};
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{
    io::{AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// Counts of what the proxy did.
#[derive(Debug, Default)]
struct Faults {
    dropped: AtomicU64,
    too_many_requests: AtomicU64,
    server_errors: AtomicU64,
    delayed: AtomicU64,
    truncated: AtomicU64,
    forwarded: AtomicU64,
}

/// A deterministic pseudo-random sequence (xorshift), so a failure can be replayed.
struct Dice(Mutex<u64>);

impl Dice {
    fn roll(&self, sides: u64) -> u64 {
        let mut state = self.0.lock().unwrap();
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state % sides
    }
}

async fn serve(socket: TcpStream, upstream: String, faults: Arc<Faults>, dice: Arc<Dice>) {
    let client = reqwest::Client::new();
    let mut reader = BufReader::new(socket);
    loop {
        let Some(body) = read_http_request(&mut reader).await else { return };
        let socket = reader.get_mut();
        // One request in four goes wrong, in one of five ways.
        let fault = if dice.roll(4) == 0 { Some(dice.roll(5)) } else { None };
        let (status, answer) = match fault {
            Some(0) => {
                faults.dropped.fetch_add(1, Ordering::Relaxed);
                return; // the connection drops without an answer
            }
            Some(1) => {
                faults.too_many_requests.fetch_add(1, Ordering::Relaxed);
                (429, b"rate limited".to_vec())
            }
            Some(2) => {
                faults.server_errors.fetch_add(1, Ordering::Relaxed);
                (500, b"internal error".to_vec())
            }
            other => {
                if other == Some(3) {
                    faults.delayed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                let Some((status, text)) = forward_json(&client, &upstream, body).await else {
                    return;
                };
                if other == Some(4) {
                    // Half the body, then the connection closes.
                    faults.truncated.fetch_add(1, Ordering::Relaxed);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        text.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&text[..text.len() / 2]).await;
                    return;
                }
                faults.forwarded.fetch_add(1, Ordering::Relaxed);
                (status, text)
            }
        };
        if !write_json_response(socket, status, &answer).await {
            return;
        }
    }
}

// Multi-threaded: the proxy must serve the node while the test waits for it to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_arrive_once_through_a_flaky_provider() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    for _ in 0..100 {
        send_many(&contract, 100).await;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let faults = Arc::new(Faults::default());
    let dice = Arc::new(Dice(Mutex::new(0x2545_f491_4f6c_dd1d)));
    let upstream = anvil.endpoint();
    let proxy_task = tokio::spawn({
        let faults = Arc::clone(&faults);
        async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                tokio::spawn(serve(
                    socket,
                    upstream.clone(),
                    Arc::clone(&faults),
                    Arc::clone(&dice),
                ));
            }
        }
    });

    let datadir = tempfile::tempdir().unwrap();
    let contract_address = contract.address().to_string();
    let mut ferry = Ferry::start(
        datadir.path(),
        &[
            "--l1.rpc-url",
            &proxy,
            "--l1.contract",
            &contract_address,
            "--poll-interval",
            "100ms",
            "--max-block-range",
            "10",
        ],
    );
    let head = head(&contract).await;
    let saw_backoff = std::cell::Cell::new(false);
    let status = ferry
        .wait_status("all messages through the flaky proxy", |status| {
            saw_backoff.set(saw_backoff.get() || !status.pipeline.upstream.healthy);
            status.checkpoint == Some(Position::block_start(head + 1))
        })
        .await;
    assert_eq!(status.messages_stored, 10_000);
    assert!(status.pipeline.upstream.errors > 0, "{:?}", status.pipeline.upstream);
    let messages = stored(&ferry).await;
    let mut nonces: Vec<u64> = messages.iter().map(|m| m.l1.message.nonce.to::<u64>()).collect();
    nonces.sort_unstable();
    assert_eq!(nonces, (0..10_000).collect::<Vec<_>>(), "all arrive, once");
    // Every message field by field as the contract logged it: its hash (which commits to from,
    // to, nonce, selector and payload) and its origin.
    let chain = canonical(contract.provider(), *contract.address()).await;
    let logged: HashMap<B256, Origin> =
        chain.iter().map(|(hash, (origin, _))| (*hash, *origin)).collect();
    let held: HashMap<B256, Origin> = messages.iter().map(|m| (m.hash, m.l1.origin)).collect();
    assert_eq!(held, logged, "the stored messages are the contract's, field by field");
    let injected = faults.dropped.load(Ordering::Relaxed)
        + faults.too_many_requests.load(Ordering::Relaxed)
        + faults.server_errors.load(Ordering::Relaxed)
        + faults.truncated.load(Ordering::Relaxed);
    assert!(injected >= 5, "the proxy misbehaved: {faults:?}");
    assert!(saw_backoff.get() || status.pipeline.upstream.errors >= injected / 2, "{faults:?}");
    proxy_task.abort();
}
