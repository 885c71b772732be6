//! The NATS JetStream sink: what it costs ingestion, how fast it catches up, and fan-out of
//! one stream to many JetStream consumers (the node does no work for them).

use crate::{
    chain::BenchChain,
    process::NodeProcess,
    scenarios::{Node, start_node},
    stats::{cpu_seconds, summary},
};
use async_nats::jetstream::{self, consumer::pull};
use ferry_primitives::{Position, Seq};
use ferry_sink::{Publisher, SinkConfig};
use ferry_test_support::NatsServer;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

pub(crate) async fn sink(messages: u64, consumers: &[usize], runs: usize) {
    let chain = BenchChain::with_messages(messages).await;
    let url = chain.anvil.endpoint();
    let nats = NatsServer::start();
    println!(
        "\n## Sink: {messages} messages, {} blocks, one nats-server (file storage)\n",
        chain.head
    );
    println!("| what | messages/s: median (min..max) over {runs} runs |\n| --- | --- |");
    let head = chain.head;
    let mut off = Vec::new();
    let mut on = Vec::new();
    let mut published = Vec::new();
    for run in 0..runs {
        let started = Instant::now();
        let node = start_node(&url, chain.contract, 1_000, Duration::from_secs(1)).await;
        node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
        off.push(messages as f64 / started.elapsed().as_secs_f64());
        node.stop().await;

        let started = Instant::now();
        let node = start_node(&url, chain.contract, 1_000, Duration::from_secs(1)).await;
        let sink = publisher(&node, &nats, &format!("ON{run}"));
        node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
        on.push(messages as f64 / started.elapsed().as_secs_f64());
        wait_published(&node, Seq(messages - 1)).await;
        published.push(messages as f64 / started.elapsed().as_secs_f64());
        sink.stop().await;
        node.stop().await;
    }
    let ratio = on.clone();
    println!("| ingest, sink off | {} |", summary(&mut off));
    println!("| ingest, sink on (the checkpoint at the head) | {} |", summary(&mut on));
    println!(
        "| ingest, sink on, until the stream holds every message | {} |",
        summary(&mut published)
    );
    println!("\nsink on / off (ingest) = {:.2}", median(&ratio) / median(&off));
    catch_up(&url, &chain, &nats, messages, runs).await;
    fan_out(&url, &chain, &nats, messages, consumers).await;
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn publisher(node: &Node, nats: &NatsServer, stream: &str) -> ferry_sink::SinkHandle {
    let mut config = SinkConfig::new(nats.url());
    config.stream = stream.to_owned();
    config.subject_prefix = format!("bench.{}", stream.to_lowercase());
    Publisher::new(config, node.store.clone(), node.status.clone()).unwrap().spawn()
}

async fn wait_published(node: &Node, last: Seq) {
    while node.status.sink().and_then(|sink| sink.published_seq) != Some(last) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A node caught up with the sink off, then the sink started on a new stream: the rate at
/// which it publishes the backlog.
async fn catch_up(url: &str, chain: &BenchChain, nats: &NatsServer, messages: u64, runs: usize) {
    let node = start_node(url, chain.contract, 1_000, Duration::from_secs(1)).await;
    let head = chain.head;
    node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
    let mut rates = Vec::new();
    for run in 0..runs {
        let started = Instant::now();
        let sink = publisher(&node, nats, &format!("CATCHUP{run}"));
        wait_published(&node, Seq(messages - 1)).await;
        rates.push(messages as f64 / started.elapsed().as_secs_f64());
        sink.stop().await;
    }
    println!(
        "| sink catch-up: a backlog of {messages} entries into a new stream | {} |",
        summary(&mut rates)
    );
    node.stop().await;
}

/// The release binary publishes the log; then `count` JetStream consumers each read all of
/// it from the stream: messages delivered per second, and the node's CPU meanwhile.
async fn fan_out(
    url: &str,
    chain: &BenchChain,
    nats: &NatsServer,
    messages: u64,
    consumers: &[usize],
) {
    let nats_url = nats.url();
    let args = ["--sink.nats-url", nats_url.as_str(), "--sink.stream", "FANOUT"];
    let node = NodeProcess::start_with(url, chain.contract, 64, &args).await;
    node.wait_checkpoint(Position::block_start(chain.head + 1)).await;
    while node.status().await.pipeline.sink.is_none_or(|sink| sink.lag_seq > 0) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let per_consumer = messages.min(2_000);
    println!(
        "\n| JetStream consumers, each reading {per_consumer} entries | delivered messages/s | node CPU s meanwhile | nats-server CPU s |\n| --- | --- | --- | --- |"
    );
    let jetstream = jetstream::new(async_nats::connect(&nats_url).await.unwrap());
    let stream = jetstream.get_stream("FANOUT").await.unwrap();
    let nats_pid = nats.pid();
    for &count in consumers {
        let (node_before, nats_before) = (cpu_seconds(node.pid()), cpu_seconds(nats_pid));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(count);
        for _ in 0..count {
            let stream = stream.clone();
            tasks.push(tokio::spawn(async move {
                let consumer = stream.create_consumer(pull::Config::default()).await.unwrap();
                let mut batch =
                    consumer.fetch().max_messages(per_consumer as usize).messages().await.unwrap();
                let mut read = 0;
                while let Some(message) = batch.next().await {
                    message.unwrap().ack().await.unwrap();
                    read += 1;
                }
                read
            }));
        }
        let mut delivered = 0u64;
        for task in tasks {
            delivered += task.await.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "| {count} | {:.0} | {:.2} | {:.2} |",
            delivered as f64 / elapsed,
            cpu_seconds(node.pid()) - node_before,
            cpu_seconds(nats_pid) - nats_before
        );
    }
}
