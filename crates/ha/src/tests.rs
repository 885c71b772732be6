//! The journal's reader against a real `nats-server`: writes in several parts are applied
//! whole, writes abandoned half-way are skipped, and a gap is an error, never a silent skip.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use crate::{
    GroupReport, HaConfig,
    follower::{Follower, journal_last},
    journal::{PART, open_stream},
};
use async_nats::{HeaderMap, jetstream};
use bytes::Bytes;
use ferry_primitives::{Address, Position};
use ferry_storage::{JournalEntry, Store, StoreConfig, StoreWrite};
use ferry_test_support::NatsServer;
use std::time::Duration;

fn config() -> HaConfig {
    HaConfig {
        group: "test".to_owned(),
        lease: Duration::from_secs(2),
        admin: "127.0.0.1:1".to_owned(),
        public: "127.0.0.1:2".to_owned(),
    }
}

fn store_config() -> StoreConfig {
    StoreConfig { chain_id: 1, contract: Address::repeat_byte(1), from_block: 0 }
}

fn set_checkpoint(block: u64) -> Vec<u8> {
    let write = StoreWrite::Checkpoint {
        new: Some(Position::block_start(block)),
        expected: None,
        origin: None,
    };
    serde_json::to_vec(&JournalEntry { at_millis: 1, write }).unwrap()
}

async fn append(jetstream: &jetstream::Context, body: &[u8], part: u64, parts: u64) {
    let mut headers = HeaderMap::new();
    headers.insert(PART, format!("{part}/{parts}").as_str());
    jetstream
        .publish_with_headers(config().journal_subject(), headers, Bytes::copy_from_slice(body))
        .await
        .unwrap()
        .await
        .unwrap();
}

fn silent() -> GroupReport {
    GroupReport::new(|_| {}, |_| {})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_in_parts_apply_whole_and_abandoned_ones_are_skipped_by_every_reader() {
    let nats = NatsServer::start();
    let jetstream = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut stream = open_stream(&jetstream, &config(), store_config(), 1).await.unwrap();
    let first = set_checkpoint(10);
    let abandoned = set_checkpoint(99);
    let second = set_checkpoint(20);
    let (half, rest) = second.split_at(second.len() / 2);
    // 1: a whole write; 2: the first half of one whose leader died; 3-4: a write in two parts;
    // 5: the first part of one still being written.
    append(&jetstream, &first, 1, 1).await;
    append(&jetstream, &abandoned[..8], 1, 2).await;
    append(&jetstream, half, 1, 2).await;
    append(&jetstream, rest, 2, 2).await;
    append(&jetstream, &abandoned[..8], 1, 3).await;
    let last = journal_last(&mut stream).await.unwrap();
    assert_eq!(last, 5);

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), store_config()).unwrap();
    let mut follower =
        Follower::start(&stream, &config().journal_subject(), store.clone(), silent())
            .await
            .unwrap();
    follower.catch_up(last).await.unwrap();
    assert_eq!(store.checkpoint().unwrap(), Some(Position::block_start(20)));
    assert_eq!(store.journal_applied().unwrap(), 4, "applied up to the end of the last write");

    // A reader that applied the first write in an earlier run reads on from message 2 alike.
    let late_dir = tempfile::tempdir().unwrap();
    let late = Store::open(late_dir.path(), store_config()).unwrap();
    let entry: JournalEntry = serde_json::from_slice(&first).unwrap();
    late.replay(ferry_storage::JournalSpan { first: 1, last: 1 }, &entry).unwrap();
    let mut follower =
        Follower::start(&stream, &config().journal_subject(), late.clone(), silent())
            .await
            .unwrap();
    follower.catch_up(last).await.unwrap();
    assert_eq!(late.checkpoint().unwrap(), Some(Position::block_start(20)));
    assert_eq!(late.journal_applied().unwrap(), 4);

    // A message without its part is refused, not skipped.
    jetstream
        .publish(config().journal_subject(), Bytes::from_static(b"{}"))
        .await
        .unwrap()
        .await
        .unwrap();
    let error = follower.catch_up(6).await.unwrap_err();
    assert!(error.contains("does not say which part"), "{error}");
}
