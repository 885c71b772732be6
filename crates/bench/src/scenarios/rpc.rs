//! `rpc`: getCheckpoint and status under concurrent clients.

use super::{rpc_server, start_node};
use crate::{
    chain::BenchChain,
    stats::{millis, percentile},
};
use ferry_primitives::Position;
use ferry_rpc_api::{AdminApiClient, PublicApiClient};
use jsonrpsee::http_client::HttpClient;
use std::time::{Duration, Instant};

pub(crate) async fn rpc(requests: usize) {
    let chain = BenchChain::with_messages(10_000).await;
    let node =
        start_node(&chain.anvil.endpoint(), chain.contract, 1_000, Duration::from_secs(1)).await;
    let head = chain.head;
    node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
    let server = rpc_server(node.controller.clone()).await;
    println!("\n## Admin and public RPC over HTTP, {requests} requests per row\n");
    println!("| method | clients | requests/s | p50 | p99 |\n| --- | --- | --- | --- | --- |");
    for method in ["messaging_getCheckpoint", "messaging_status"] {
        for clients in [1, 16, 64] {
            let started = Instant::now();
            let tasks: Vec<_> = (0..clients)
                .map(|_| {
                    let addr = if method == "messaging_status" {
                        server.public_addr()
                    } else {
                        server.admin_addr()
                    };
                    let client = HttpClient::builder().build(format!("http://{addr}")).unwrap();
                    let per_client = requests / clients;
                    tokio::spawn(async move {
                        let mut latencies = Vec::with_capacity(per_client);
                        for _ in 0..per_client {
                            let started = Instant::now();
                            if method == "messaging_status" {
                                client.status().await.unwrap();
                            } else {
                                client.get_checkpoint().await.unwrap();
                            }
                            latencies.push(started.elapsed());
                        }
                        latencies
                    })
                })
                .collect();
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await.unwrap());
            }
            let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
            println!(
                "| {method} | {clients} | {rate:.0} | {} | {} |",
                millis(percentile(&mut latencies, 50)),
                millis(percentile(&mut latencies, 99))
            );
        }
    }
    server.stop();
    node.stop().await;
}
