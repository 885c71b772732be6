//! `latency`: from a block being mined to a subscriber receiving its message.

use super::{rpc_server, start_node};
use crate::{
    chain::wallet_provider,
    stats::{millis, percentile},
};
use alloy::primitives::U256;
use ferry_contracts::FerryMessaging;
use ferry_rpc_api::ResumingSubscriber;
use std::time::{Duration, Instant};

pub(crate) async fn latency(samples: usize) {
    println!(
        "\n## Live latency: block mined on Anvil -> message at a WebSocket subscriber, {samples} samples\n"
    );
    println!("| L1 transport | p50 | p90 | max |\n| --- | --- | --- | --- |");
    for ws in [true, false] {
        let anvil = ferry_test_support::anvil(&[]);
        let contract = FerryMessaging::deploy(wallet_provider(&anvil)).await.unwrap();
        let url = if ws { anvil.ws_endpoint() } else { anvil.endpoint() };
        let node = start_node(&url, *contract.address(), 1_000, Duration::from_secs(1)).await;
        let server = rpc_server(node.controller.clone()).await;
        let mut subscriber = ResumingSubscriber::new(format!("ws://{}", server.public_addr()), 0);
        let mut latencies = Vec::new();
        for i in 0..samples {
            let started = Instant::now();
            let call = contract.sendMessageToL2(U256::from(1), U256::from(2), vec![U256::from(i)]);
            let pending = call.send().await.unwrap();
            let received = subscriber.next().await;
            latencies.push(started.elapsed());
            assert_eq!(received.len(), 1);
            drop(pending);
        }
        let max = *latencies.iter().max().unwrap();
        let transport = if ws { "WebSocket (newHeads pushed)" } else { "HTTP (polling every 1 s)" };
        println!(
            "| {transport} | {} | {} | {} |",
            millis(percentile(&mut latencies, 50)),
            millis(percentile(&mut latencies, 90)),
            millis(max)
        );
        server.stop();
        node.stop().await;
    }
}
