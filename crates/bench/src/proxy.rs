//! An HTTP proxy in front of Anvil that counts the JSON-RPC calls passing through it, by
//! method (a batch counts each of its calls): what a hosted provider would bill.

use alloy::transports::http::reqwest;
use ferry_messaging::test_utils::{forward_json, read_http_request, write_json_response};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};
use tokio::{
    io::BufReader,
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// Calls counted by method.
pub(crate) type Counts = BTreeMap<String, u64>;

pub(crate) struct CountingProxy {
    url: String,
    counts: Arc<Mutex<Counts>>,
    task: JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CountingProxy {
    pub(crate) async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let counts = Arc::new(Mutex::new(Counts::new()));
        let task = tokio::spawn({
            let counts = Arc::clone(&counts);
            async move {
                let client = reqwest::Client::new();
                while let Ok((socket, _)) = listener.accept().await {
                    let (client, upstream, counts) =
                        (client.clone(), upstream.clone(), Arc::clone(&counts));
                    tokio::spawn(serve(socket, client, upstream, counts));
                }
            }
        });
        Self { url, counts, task }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The counts so far, and zero from now on.
    pub(crate) fn take(&self) -> Counts {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }
}

async fn serve(
    socket: TcpStream,
    client: reqwest::Client,
    upstream: String,
    counts: Arc<Mutex<Counts>>,
) {
    let mut reader = BufReader::new(socket);
    while let Some(body) = read_http_request(&mut reader).await {
        if let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) {
            let calls = match request {
                serde_json::Value::Array(calls) => calls,
                call => vec![call],
            };
            let mut counts = counts.lock().unwrap();
            for call in calls {
                let method = call["method"].as_str().unwrap_or("?").to_owned();
                *counts.entry(method).or_default() += 1;
            }
        }
        let Some((status, answer)) = forward_json(&client, &upstream, body).await else { return };
        if !write_json_response(reader.get_mut(), status, &answer).await {
            return;
        }
    }
}
