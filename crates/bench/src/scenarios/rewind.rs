//! `rewind`: K blocks re-read on a caught-up store.

use super::start_node;
use crate::{
    chain::BenchChain,
    stats::{millis, percentile},
};
use ferry_primitives::Position;
use std::time::{Duration, Instant};

pub(crate) async fn rewind(messages: u64, blocks: u64, runs: usize) {
    let chain = BenchChain::with_messages(messages).await;
    let head = chain.head;
    let node =
        start_node(&chain.anvil.endpoint(), chain.contract, 1_000, Duration::from_secs(1)).await;
    node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
    let target = head.saturating_sub(blocks);
    let (mut calls, mut firsts, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        node.controller.set_checkpoint(Position::block_start(target), "bench", None).await.unwrap();
        calls.push(started.elapsed());
        node.wait_cursor(|cursor| cursor.block > target).await;
        firsts.push(started.elapsed());
        node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
        totals.push(started.elapsed());
    }
    println!("\n## Rewind {blocks} blocks ({messages} messages on the chain), {runs} runs\n");
    println!("| from the call to | p50 | max |\n| --- | --- | --- |");
    for (what, durations) in [
        ("its return (store written, cursor moved)", &mut calls),
        ("the first re-gathered batch committed", &mut firsts),
        ("the re-scan reaching the head", &mut totals),
    ] {
        let max = *durations.iter().max().unwrap();
        println!("| {what} | {} | {} |", millis(percentile(durations, 50)), millis(max));
    }
    node.stop().await;
}
