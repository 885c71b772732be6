//! The NATS JetStream sink: what it costs ingestion, how fast it catches up, and fan-out of
//! one stream to many JetStream consumers (the node does no work for them).

use crate::{
    chain::BenchChain,
    process::NodeProcess,
    scenarios::{Node, start_node},
    stats::{cpu_seconds, summary},
};
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, pull},
};
use ferry_primitives::{Position, Seq};
use ferry_sink::{Publisher, SinkConfig, SinkReport};
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
    println!(
        "| what | messages/s: median (min..max) over {runs} runs | CPU s per run: Anvil / this process / nats-server |\n| --- | --- | --- |"
    );
    let head = chain.head;
    let mut off = Vec::new();
    let mut on = Vec::new();
    let mut published = Vec::new();
    let pids = (chain.anvil.child().id(), std::process::id(), nats.pid());
    let cpu = || [cpu_seconds(pids.0), cpu_seconds(pids.1), cpu_seconds(pids.2)];
    let (mut cpu_off, mut cpu_on) = ([0.0; 3], [0.0; 3]);
    for run in 0..runs {
        let before = cpu();
        let started = Instant::now();
        let node = start_node(&url, chain.contract, 1_000, Duration::from_secs(1)).await;
        node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
        off.push(messages as f64 / started.elapsed().as_secs_f64());
        node.stop().await;
        let after = cpu();
        (0..3).for_each(|i| cpu_off[i] += after[i] - before[i]);
        let before = cpu();

        let started = Instant::now();
        let node = start_node(&url, chain.contract, 1_000, Duration::from_secs(1)).await;
        let sink = publisher(&node, &nats, &format!("ON{run}"));
        node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
        on.push(messages as f64 / started.elapsed().as_secs_f64());
        wait_published(&node, Seq(messages - 1)).await;
        published.push(messages as f64 / started.elapsed().as_secs_f64());
        sink.stop().await;
        node.stop().await;
        let after = cpu();
        (0..3).for_each(|i| cpu_on[i] += after[i] - before[i]);
    }
    let ratio = on.clone();
    let per_run = |cpu: [f64; 3]| {
        let runs = runs as f64;
        format!("{:.2} / {:.2} / {:.2}", cpu[0] / runs, cpu[1] / runs, cpu[2] / runs)
    };
    println!("| ingest, sink off | {} | {} |", summary(&mut off), per_run(cpu_off));
    println!(
        "| ingest, sink on (the checkpoint at the head) | {} | {} (until the stream holds all) |",
        summary(&mut on),
        per_run(cpu_on)
    );
    println!(
        "| ingest, sink on, until the stream holds every message | {} | (same runs) |",
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
    let status = node.status.clone();
    let report = SinkReport::new(node.status.subscribe_last_seq(), move |change| {
        status.update_sink(change);
    });
    Publisher::new(config, node.store.clone(), report).unwrap().spawn()
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
    let jetstream = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    // The node is caught up and idle: this process's CPU meanwhile is the publisher's.
    let cpu = || [cpu_seconds(std::process::id()), cpu_seconds(nats.pid())];
    let before = cpu();
    for run in 0..runs {
        let name = format!("CATCHUP{run}");
        let started = Instant::now();
        let sink = publisher(&node, nats, &name);
        // The stream itself, not the status (shared with the publishers before).
        loop {
            if let Ok(mut stream) = jetstream.get_stream(&name).await
                && stream.info().await.is_ok_and(|info| info.state.last_sequence == messages)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        rates.push(messages as f64 / started.elapsed().as_secs_f64());
        sink.stop().await;
    }
    let after = cpu();
    let per_run = |i: usize| (after[i] - before[i]) / runs as f64;
    println!(
        "| sink catch-up: a backlog of {messages} entries into a new stream | {} | - / {:.2} / {:.2} |",
        summary(&mut rates),
        per_run(0),
        per_run(1)
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
    let node = published_node(url, chain, nats).await;
    let per_consumer = messages.min(2_000);
    let delivery = "delivery only: ephemeral pull consumers, no acks";
    println!(
        "\n| JetStream consumers, each reading {per_consumer} entries ({delivery}) | delivered messages/s | node CPU s meanwhile | nats-server CPU s |\n| --- | --- | --- | --- |"
    );
    let streams = connect_streams(&nats.url(), consumers).await;
    let nats_pid = nats.pid();
    for &count in consumers {
        let (node_before, nats_before) = (cpu_seconds(node.pid()), cpu_seconds(nats_pid));
        let started = Instant::now();
        let tasks: Vec<_> = (0..count)
            .map(|index| tokio::spawn(read_stream(streams[index / 50].clone(), per_consumer)))
            .collect();
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

/// The release binary with its sink on stream `FANOUT`, once the stream holds the whole log:
/// the consumers then read a finished stream, and the node has nothing left to publish.
async fn published_node(url: &str, chain: &BenchChain, nats: &NatsServer) -> NodeProcess {
    let nats_url = nats.url();
    let args = ["--sink.nats-url", nats_url.as_str(), "--sink.stream", "FANOUT"];
    let node = NodeProcess::start_with(url, chain.contract, 64, &args).await;
    node.wait_checkpoint(Position::block_start(chain.head + 1)).await;
    while node.status().await.pipeline.sink.is_none_or(|sink| sink.lag_seq > 0) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node
}

/// Handles on stream `FANOUT`, one connection per 50 consumers of the largest count:
/// consumers stand for readers on other machines, which would not share one connection.
async fn connect_streams(nats_url: &str, consumers: &[usize]) -> Vec<jetstream::stream::Stream> {
    let mut streams = Vec::new();
    for _ in 0..consumers.iter().max().copied().unwrap_or(1).div_ceil(50) {
        let jetstream = jetstream::new(async_nats::connect(nats_url).await.unwrap());
        streams.push(jetstream.get_stream("FANOUT").await.unwrap());
    }
    streams
}

/// One ephemeral consumer reading `count` entries of `stream`, 100 per fetch, with no acks:
/// delivery alone, as an ordered reader of the log does. The entries it read.
async fn read_stream(stream: jetstream::stream::Stream, count: u64) -> u64 {
    let config = pull::Config { ack_policy: AckPolicy::None, ..Default::default() };
    let consumer = stream.create_consumer(config).await.unwrap();
    let mut read = 0;
    while read < count {
        let mut batch = consumer
            .fetch()
            .max_messages(100)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .unwrap();
        while let Some(message) = batch.next().await {
            message.unwrap();
            read += 1;
        }
    }
    read
}
