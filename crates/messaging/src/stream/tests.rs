//! Tests of the stream alone: ranges gathered ahead and merged, anchoring inside the window,
//! and what a rewind does to the ranges in flight.

use super::*;
use crate::test_utils::ScriptedCollector;
use ferry_primitives::{Address, BlockHeader, L1Message};
use ferry_storage::StoreConfig;
use tempfile::TempDir;

fn stream(chain: &Arc<ScriptedCollector>) -> (TempDir, MessageStream<ScriptedCollector>) {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { chain_id: 1, contract: Address::ZERO, from_block: 0 };
    let store = Store::open(dir.path(), config).unwrap();
    let status = Arc::new(Status::load(&store).unwrap());
    let stream = MessageStream::new(Arc::clone(chain), store, status, Position::block_start(0));
    (dir, stream)
}

fn batch(item: StreamItem) -> Batch {
    match item {
        StreamItem::Batch(batch) => batch,
        other => panic!("expected a batch, got {other:?}"),
    }
}

fn range(chain: &ScriptedCollector, first: u64, last: u64, covered: bool) -> Gathered {
    let headers = if covered { first..=last } else { last..=last };
    Gathered {
        messages: Vec::new(),
        events: Vec::new(),
        malformed: Vec::new(),
        headers: headers.map(|number| chain.header_of(number)).collect(),
    }
}

#[tokio::test]
async fn ranges_gathered_ahead_commit_as_one_batch_with_their_hashes() {
    let chain = ScriptedCollector::new(0, 10);
    for _ in 0..100 {
        chain.mine(1);
    }
    let (_dir, stream) = stream(&chain);
    let mut stream = stream.with_reorg_window(10);
    let batch = batch(stream.next_item().await.unwrap());
    assert_eq!(batch.from, Position::block_start(0));
    // Four ranges of 10 blocks went out at once and came back together: one batch.
    assert_eq!(batch.next, Position::block_start(40));
    assert_eq!(batch.last_block(), chain.header_of(39));
    let blocks: Vec<_> = batch.messages.iter().map(|m| m.origin.block_number).collect();
    assert_eq!(blocks, (1..40).collect::<Vec<_>>());
    let hashes: Vec<_> = batch.messages.iter().map(L1Message::hash).collect();
    assert_eq!(batch.hashes, hashes);
    // Far below the head the ranges are anchored by their last header only.
    assert_eq!(batch.headers, [chain.header_of(39)]);
}

#[tokio::test]
async fn inside_the_reorg_window_every_header_comes_and_links() {
    let chain = ScriptedCollector::new(0, 10);
    chain.mine_empty(100);
    let (_dir, stream) = stream(&chain);
    let mut stream = stream.with_reorg_window(25);
    let mut headers: Vec<BlockHeader> = Vec::new();
    loop {
        let batch = batch(stream.next_item().await.unwrap());
        if batch.headers.len() > 1 || batch.headers[0].number >= 75 {
            headers.extend(&batch.headers);
        }
        stream.advance(batch.next);
        if batch.next == Position::block_start(101) {
            break;
        }
    }
    assert_eq!(headers.first().map(|h| h.number), Some(75), "the window starts 25 below the head");
    assert_eq!(headers.last().map(|h| h.number), Some(100));
    assert_eq!(ferry_primitives::first_unlinked(&headers), None);
}

#[tokio::test]
async fn a_range_read_from_another_chain_is_not_merged_and_is_gathered_again() {
    let chain = ScriptedCollector::new(0, 10);
    chain.mine_empty(40);
    let (_dir, mut stream) = stream(&chain);
    // 10..=19 continues 0..=9; 20..=29 was read after block 19 changed.
    let mut forked = range(&chain, 20, 29, true);
    forked.headers[0].parent_hash = alloy::primitives::B256::repeat_byte(0xf0);
    stream.pipeline.push_finished(Position::block_start(10), 19, range(&chain, 10, 19, true));
    stream.pipeline.push_finished(Position::block_start(20), 29, forked);
    stream.pipeline.push_finished(Position::block_start(30), 39, range(&chain, 30, 39, true));
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let mut hashed = Pipeline::<ScriptedCollector>::hashed(range(&chain, 0, 9, true));
    stream.pipeline.merge_ready(&mut hashed);
    assert_eq!(hashed.gathered.last_block(), chain.header_of(19), "merged up to the seam");
    assert_eq!(ferry_primitives::first_unlinked(&hashed.gathered.headers), None);
    assert!(stream.pipeline.is_empty(), "the ranges from the seam on are dropped");
}

#[tokio::test]
async fn a_range_anchored_below_the_window_restarts_the_merged_headers() {
    let chain = ScriptedCollector::new(0, 10);
    chain.mine_empty(40);
    let (_dir, mut stream) = stream(&chain);
    stream.pipeline.push_finished(Position::block_start(10), 19, range(&chain, 10, 19, false));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut hashed = Pipeline::<ScriptedCollector>::hashed(range(&chain, 0, 9, false));
    stream.pipeline.merge_ready(&mut hashed);
    assert_eq!(hashed.gathered.headers, [chain.header_of(19)]);
}

#[tokio::test]
async fn a_rewind_starts_with_one_small_range_then_fills_the_pipeline() {
    let chain = ScriptedCollector::new(0, 80);
    chain.mine_empty(1_000);
    let (_dir, mut stream) = stream(&chain);
    stream.rewind(Position::block_start(100));
    let first = batch(stream.next_item().await.unwrap());
    assert_eq!(first.next, Position::block_start(110), "80 / 8 blocks");
    assert_eq!(chain.gathers(), [(Position::block_start(100), 109)], "sent alone");
    stream.advance(first.next);
    let second = batch(stream.next_item().await.unwrap());
    assert_eq!(second.from, Position::block_start(110));
    let gathered: Vec<_> =
        chain.gathers().iter().skip(1).map(|(from, to)| (from.block, *to)).collect();
    assert!(gathered.len() >= 4, "the pipeline is full again: {gathered:?}");
    assert_eq!(gathered[..4], [(110, 189), (190, 269), (270, 349), (350, 429)]);
}

/// Commits `batch` into the stream's store and moves the cursor past it, as the drain does.
fn commit(stream: &mut MessageStream<ScriptedCollector>, batch: &Batch) {
    let outcome =
        stream.store.commit(&batch.write(ferry_storage::FinalityTags::default())).unwrap();
    assert!(matches!(outcome, ferry_storage::CommitOutcome::Committed(_)), "{outcome:?}");
    stream.advance(batch.next);
}

#[tokio::test]
async fn ranges_gathered_ahead_under_a_higher_floor_are_gathered_again_with_the_window_they_need() {
    tokio::time::pause();
    let chain = ScriptedCollector::new(0, 10);
    for _ in 0..100 {
        chain.mine(1);
    }
    chain.set_finalized_depth(Some(2));
    let (_dir, stream) = stream(&chain);
    let mut stream = stream.with_reorg_window(12);
    // Far behind, the first ranges come back merged, anchored by their last header (the floor
    // is 88); the next four are gathered ahead under the same floor, with last headers only.
    let first = batch(stream.next_item().await.unwrap());
    assert_eq!((first.next, first.window_floor), (Position::block_start(40), 88));
    commit(&mut stream, &first);
    // Then the provider's finalized block falls back 60 blocks below the head: the floor is
    // 40, and the blocks from there are inside the window. The heads are fetched again after
    // the refresh interval, while the ranges gathered ahead wait.
    chain.set_finalized_depth(Some(60));
    tokio::time::advance(HEAD_REFRESH + Duration::from_millis(1)).await;
    let second = batch(stream.next_item().await.unwrap());
    assert_eq!(second.window_floor, 40);
    assert_eq!(second.headers[0].number, 40, "every header from the floor, not the stale ranges");
    commit(&mut stream, &second);
    let window = stream.store.window().unwrap().unwrap();
    assert_eq!((window.bottom.number, window.tip.number), (40, second.last_block().number));

    // A reorg whose common ancestor (45) is above the floor and the finalized block (40)
    // heals: the ancestor search finds it in the window.
    chain.reorg(55);
    match stream.next_item().await.unwrap() {
        StreamItem::Reorg(reorg) => assert_eq!(reorg.common_ancestor, chain.header_of(45)),
        other => panic!("expected a reorg inside the window, got {other:?}"),
    }
}

/// Gathers and commits until the cursor reaches `until`.
async fn read_to(stream: &mut MessageStream<ScriptedCollector>, until: u64) {
    while stream.cursor().block < until {
        let batch = batch(stream.next_item().await.unwrap());
        commit(stream, &batch);
    }
}

#[tokio::test]
async fn a_forward_move_into_a_gap_of_the_window_links_from_the_header_kept_below_it() {
    tokio::time::pause();
    let chain = ScriptedCollector::new(0, 10);
    chain.mine_empty(200);
    let (_dir, stream) = stream(&chain);
    let mut stream = stream.with_reorg_window(20);
    read_to(&mut stream, 201).await;
    let window = stream.store.window().unwrap().unwrap();
    assert_eq!((window.bottom.number, window.tip.number), (180, 200));
    // The provider's finalized block falls back: the floor is 50 now.
    chain.set_finalized_depth(Some(150));
    tokio::time::advance(HEAD_REFRESH + Duration::from_millis(1)).await;
    // An operator re-reads from block 100, below the window: one small range commits, and the
    // window holds 100 and 180..=200.
    stream.store.set_checkpoint(Position::block_start(100)).unwrap();
    stream.rewind(Position::block_start(100));
    let first = batch(stream.next_item().await.unwrap());
    commit(&mut stream, &first);
    assert_eq!(first.headers.last().unwrap().number, 100);
    // Then moves forward to 150, into the gap: the range links from the header kept below it
    // (100), not from the window's newest (200), which is above the cursor.
    stream.store.set_checkpoint(Position::block_start(150)).unwrap();
    stream.rewind(Position::block_start(150));
    let bridged = batch(stream.next_item().await.unwrap());
    assert_eq!(bridged.headers[0].number, 101);
    commit(&mut stream, &bridged);
    read_to(&mut stream, 201).await;
    let window = stream.store.window().unwrap().unwrap();
    assert_eq!((window.bottom.number, window.tip.number), (100, 200));
    assert_eq!(stream.store.headers_down_from(200, 1_000).unwrap().len(), 101, "contiguous");
}

#[tokio::test]
async fn catching_up_far_below_the_floor_is_no_window_restart() {
    let chain = ScriptedCollector::new(0, 10);
    chain.mine_empty(300);
    let (_dir, stream) = stream(&chain);
    let mut stream = stream.with_reorg_window(20);
    read_to(&mut stream, 301).await;
    assert_eq!(stream.status.snapshot().window_restarts, 0);
}
