//! `catchup`: empty blocks after the contract's last message.

use super::start_node;
use crate::{chain::wallet_provider, stats::summary};
use alloy::{
    primitives::U256,
    providers::{Provider, ext::AnvilApi},
};
use ferry_contracts::FerryMessaging;
use ferry_primitives::Position;
use std::time::{Duration, Instant};

pub(crate) async fn catchup(blocks: u64, max_block_range: u64, runs: usize) {
    // Prague makes mining slow down with the chain's length (see `chain::CHAIN_ARGS`): 2,000
    // blocks take 20 s at block 8,000, where Cancun without kept states mines ~35,000 empty
    // blocks/s.
    let anvil = ferry_test_support::anvil(&crate::chain::CHAIN_ARGS);
    let provider = wallet_provider(&anvil);
    let contract = FerryMessaging::deploy(provider.clone()).await.unwrap();
    contract
        .sendMessageToL2(U256::from(1), U256::from(2), vec![])
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let started = Instant::now();
    let mut mined = 0;
    while mined < blocks {
        let step = (blocks - mined).min(10_000);
        provider.anvil_mine(Some(step), None).await.unwrap();
        mined += step;
    }
    let head = provider.get_block_number().await.unwrap();
    eprintln!("mined {blocks} empty blocks in {:?}", started.elapsed());
    println!("\n## Catch-up over {blocks} empty blocks (max-block-range {max_block_range})\n");
    let mut rates = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let node = start_node(
            &anvil.endpoint(),
            *contract.address(),
            max_block_range,
            Duration::from_secs(1),
        )
        .await;
        node.wait_cursor(|cursor| cursor == Position::block_start(head + 1)).await;
        rates.push(head as f64 / started.elapsed().as_secs_f64());
        node.stop().await;
    }
    println!("| what | blocks/s: median (min..max) over {runs} runs |\n| --- | --- |");
    println!("| ferry from block 0 to the head ({head} blocks) | {} |", summary(&mut rates));
}
