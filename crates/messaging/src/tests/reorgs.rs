//! Reorgs against a scripted chain: the header window, the common ancestor, what consumers are
//! told, deep reorgs and the halt, and a randomized run against the consumer property.

use super::harness::Harness;
use crate::{ControllerError, test_utils::Call};
use ferry_primitives::Phase;
use ferry_primitives::{EntryKind, Inclusion, Position, Seq};
use ferry_storage::{ChangeMethod, Error as StorageError};
use ferry_test_support::Dice;

/// The checkpoint changes the node made itself, oldest first: `(from, to)` blocks.
fn reorg_rewinds(h: &Harness) -> Vec<(u64, u64)> {
    let mut rewinds: Vec<_> = h
        .store
        .checkpoint_history(1_000)
        .unwrap()
        .into_iter()
        .filter(|entry| entry.method == ChangeMethod::ReorgRewind)
        .map(|entry| (entry.previous.unwrap().block, entry.current.unwrap().block))
        .collect();
    rewinds.reverse();
    rewinds
}

fn kinds(h: &Harness) -> Vec<(EntryKind, u64)> {
    let entries = h.store.entries_from(Seq::ZERO, usize::MAX).unwrap();
    entries.iter().map(|e| (e.entry.kind, e.entry.message_seq.0)).collect()
}

#[tokio::test]
async fn a_reorg_rewinds_to_its_common_ancestor_and_the_log_says_what_moved() {
    let mut h = Harness::new(0, 100, 0);
    h.start_on_blocks(5, 1).await;

    // Blocks 3..=5 are replaced; their transactions are re-included in the new blocks.
    h.chain.reorg(3);
    h.chain.mine(1);
    h.reorg_handled(1).await;
    assert_eq!(reorg_rewinds(&h), [(6, 3)], "back to the block after the common ancestor");
    use EntryKind::{Message as M, Reincluded as I, Removed as R};
    assert_eq!(
        kinds(&h),
        [
            (M, 0),
            (M, 1),
            (M, 2),
            (M, 3),
            (M, 4),
            (R, 2),
            (R, 3),
            (R, 4),
            (I, 2),
            (I, 3),
            (I, 4),
            (M, 11)
        ]
    );
    h.assert_consumers_hold_the_chain();
    let status = h.snapshot();
    assert_eq!((status.orphaned_since_start, status.reincluded_since_start), (3, 3));
    assert_eq!(status.duplicates_skipped, 0, "re-included, not skipped");
    assert_eq!(h.store.message_counts().unwrap(), (6, 0));
    assert_eq!(h.store.window().unwrap().unwrap().tip, h.chain.header_of(6));
}

#[tokio::test]
async fn messages_a_reorg_dropped_stay_orphaned_across_restarts() {
    let mut h = Harness::new(0, 100, 0);
    h.start_on_blocks(6, 1).await;
    h.chain.reorg_dropping_messages(2);
    h.chain.mine(1);
    h.reorg_handled(1).await;
    h.assert_consumers_hold_the_chain();
    let h = h.restart().await;
    h.caught_up().await;
    h.assert_consumers_hold_the_chain();
    assert_eq!(h.store.orphaned_seqs(10).unwrap(), [Seq(4), Seq(5)]);
    let orphan = &h.stored()[4];
    assert_eq!((orphan.inclusion, orphan.reorg), (Inclusion::Orphaned, Some(0)));
    assert_eq!(h.snapshot().missing_nonces, alloy::primitives::U256::from(2), "their nonces");
}

#[tokio::test]
async fn a_one_block_reorg_after_thousands_of_empty_blocks_rewinds_one_block() {
    let mut h = Harness::new(0, 1_000, 0);
    for _ in 0..14 {
        h.chain.mine(1);
    }
    h.chain.mine_empty(3_000);
    h.start();
    h.caught_up().await;
    let head = h.chain.latest();
    h.chain.reorg(1);
    h.chain.mine_empty(1);
    h.reorg_handled(1).await;
    assert_eq!(reorg_rewinds(&h), [(head + 1, head)]);
    assert_eq!(h.snapshot().orphaned_since_start, 0, "no canonical message is orphaned");
    assert!(kinds(&h).iter().all(|(kind, _)| *kind == EntryKind::Message));
    h.assert_consumers_hold_the_chain();
}

#[tokio::test]
async fn a_reorg_at_the_same_height_is_noticed_without_waiting_for_a_new_block() {
    let mut h = Harness::new(0, 100, 0);
    h.start_on_blocks(3, 2).await;
    h.chain.reorg_with_new_messages(1, &[1]);
    h.reorg_handled(1).await;
    h.assert_consumers_hold_the_chain();
    assert_eq!(h.store.message_counts().unwrap(), (7, 2));
}

#[tokio::test]
async fn a_reorg_while_the_node_was_stopped_is_found_before_reading_on() {
    let mut h = Harness::new(0, 100, 0);
    h.start_on_blocks(8, 1).await;
    h.stop().await;
    h.chain.reorg_with_new_messages(3, &[2, 0, 1]);
    // Nothing new above the old tip: only the anchor check can find it.
    let h = h.restart().await;
    h.reorg_handled(1).await;
    h.assert_consumers_hold_the_chain();
    assert_eq!(reorg_rewinds(&h), [(9, 6)]);
}

#[tokio::test]
async fn a_reorg_deeper_than_the_window_halts_until_an_operator_moves_the_checkpoint() {
    let mut h = Harness::new(0, 5, 0).with_reorg_window(4);
    h.start_on_blocks(20, 1).await;
    let before = h.stored();
    h.chain.reorg_with_new_messages(8, &[1, 1, 0, 0, 1, 0, 0, 0]);
    h.chain.mine(1);
    h.wait_until("ingestion halts", |h| h.snapshot().halted.is_some()).await;
    let status = h.snapshot();
    assert_eq!(status.phase, Phase::Halted);
    let halt = status.halted.unwrap();
    assert!(halt.reason.contains("deeper than the header window"), "{}", halt.reason);
    // Nothing was rewound, removed or added: the store is what it was.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(h.stored(), before);
    assert_eq!(h.checkpoint(), Some(Position::block_start(21)));
    assert!(reorg_rewinds(&h).is_empty());

    // The operator moves the checkpoint below the fork: what was stored from there is
    // orphaned, the re-scan includes again what is still there, and ingestion goes on.
    let preview = h.controller.preview_set(Position::block_start(10), None).await.unwrap();
    assert_eq!(preview.effect.would_orphan, 11);
    let change =
        h.controller.set_checkpoint(Position::block_start(10), "test", None).await.unwrap();
    assert_eq!(change.orphaned, 11);
    assert!(change.rewind_applied);
    h.caught_up().await;
    assert_eq!(h.snapshot().halted, None);
    h.assert_consumers_hold_the_chain();
}

#[tokio::test]
async fn a_reorg_below_the_finalized_block_halts() {
    let mut h = Harness::new(0, 100, 0).with_reorg_window(20);
    h.chain.set_finalized_depth(Some(2));
    h.start_on_blocks(10, 1).await;
    h.chain.reorg(5);
    h.chain.mine(1);
    h.wait_until("ingestion halts", |h| h.snapshot().halted.is_some()).await;
    let halt = h.snapshot().halted.unwrap();
    assert!(halt.reason.contains("below the finalized block"), "{}", halt.reason);
    assert_eq!(halt.common_ancestor, Some(5));
}

#[tokio::test]
async fn a_failing_provider_during_the_ancestor_search_loses_nothing() {
    let mut h = Harness::new(0, 100, 0);
    h.start_on_blocks(6, 1).await;
    h.chain.fail_next(Call::Header, 3);
    h.chain.reorg(4);
    h.chain.mine(1);
    h.reorg_handled(1).await;
    h.assert_consumers_hold_the_chain();
}

#[tokio::test]
async fn a_consumer_applying_the_log_holds_the_chain_after_any_sequence_of_reorgs() {
    const WINDOW: u64 = 12;
    let mut h = Harness::new(0, 7, 0).with_reorg_window(WINDOW);
    let mut dice = Dice::from_env(0x2545_f491_4f6c_dd1d);
    for _ in 0..20 {
        h.chain.mine(dice.roll(3) as usize);
    }
    h.start();
    let mut refusals = 0;
    for round in 0..150 {
        match dice.roll(11) {
            0..=2 => {
                h.chain.mine(dice.roll(4) as usize);
            }
            3 => {
                h.chain.mine_empty(1 + dice.roll(20));
            }
            4..=5 => h.chain.reorg(1 + dice.roll(WINDOW)),
            6 => h.chain.reorg_dropping_messages(1 + dice.roll(WINDOW)),
            7..=8 => {
                let depth = 1 + dice.roll(WINDOW);
                let messages: Vec<usize> = (0..depth).map(|_| dice.roll(3) as usize).collect();
                h.chain.reorg_with_new_messages(depth, &messages);
            }
            9 => h = h.restart().await,
            _ => {
                // An operator re-reads the last blocks, racing whatever the node is doing: a
                // compare-and-set from what they read, read again when the node moved it
                // meanwhile (a stale absolute set could skip what a reorg put back).
                let back = dice.roll(2 * WINDOW);
                refusals += operator_rewinds(&h, back).await;
            }
        }
        if dice.roll(3) == 0 {
            h.chain.mine(1);
            h.caught_up().await;
            h.assert_consumers_hold_the_chain();
            assert_eq!(h.snapshot().halted, None, "round {round}");
        }
    }
    h.chain.mine(1);
    h.caught_up().await;
    h.assert_consumers_hold_the_chain();
    assert_eq!(h.snapshot().halted, None);
    // How often the node moved the checkpoint between the operator's read and write.
    eprintln!("compare-and-set refusals: {refusals}");
}

/// An operator moves the checkpoint `back` blocks below where it reads, by compare-and-set
/// from a fresh read, retried from a new read when refused; how many times it was refused.
async fn operator_rewinds(h: &Harness, back: u64) -> u64 {
    let mut refused = 0;
    loop {
        let read = h.checkpoint();
        let block = read.map_or(0, |checkpoint| checkpoint.block).saturating_sub(back);
        let set = h.controller.set_checkpoint(Position::block_start(block), "test", Some(read));
        match set.await {
            Ok(_) => return refused,
            Err(ControllerError::Storage(StorageError::CheckpointMoved { expected, found })) => {
                assert_eq!(expected, read);
                assert_ne!(found, read);
                refused += 1;
            }
            Err(other) => panic!("the operator's set failed: {other}"),
        }
    }
}

#[tokio::test]
async fn an_operator_rewind_before_the_node_saw_a_reorg_still_finds_it() {
    let mut h = Harness::new(0, 100, 0);
    h.start_on_blocks(12, 1).await;
    h.stop().await;
    // Blocks 8..=12 are replaced by others; before the node has seen it, the operator moves
    // the checkpoint back below them, to block 5.
    h.chain.reorg_with_new_messages(5, &[0, 2, 0, 1, 0]);
    h.controller.set_checkpoint(Position::block_start(5), "test", None).await.unwrap();
    let h = h.restart().await;
    h.reorg_handled(1).await;
    h.assert_consumers_hold_the_chain();
    // The rewind went no further back than the operator's position.
    assert_eq!(reorg_rewinds(&h), [(5, 5)]);
}

#[tokio::test]
async fn a_mid_block_checkpoint_does_not_hide_a_reorg_of_its_block() {
    let mut h = Harness::new(0, 100, 0);
    h.start_on_blocks(4, 3).await;
    h.stop().await;
    h.controller.set_checkpoint(Position::new(4, 1), "test", None).await.unwrap();
    // Only block 4 is replaced: block 3, below the checkpoint's block, is unchanged.
    h.chain.reorg_with_new_messages(1, &[2]);
    let h = h.restart().await;
    h.reorg_handled(1).await;
    h.assert_consumers_hold_the_chain();
}

#[tokio::test]
async fn a_halt_survives_a_restart_until_an_operator_resolves_it() {
    let mut h = Harness::new(0, 5, 0).with_reorg_window(3);
    h.start_on_blocks(12, 1).await;
    h.chain.reorg_with_new_messages(6, &[1, 0, 0, 1, 0, 0]);
    h.chain.mine(1);
    h.wait_until("ingestion halts", |h| h.snapshot().halted.is_some()).await;
    let mut h = h.restart().await;
    assert!(h.snapshot().halted.is_some(), "the halt is in the store");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(h.checkpoint(), Some(Position::block_start(13)), "it reads nothing");
    // Resolving needs the start of a block.
    let refused = h.controller.set_checkpoint(Position::new(4, 1), "test", None).await.unwrap_err();
    assert!(refused.to_string().contains("start of a block"), "{refused}");
    let change = h.controller.set_checkpoint(Position::block_start(4), "test", None).await.unwrap();
    assert!(change.orphaned > 0 && change.rewind_applied, "{change:?}");
    h.caught_up().await;
    assert_eq!(h.snapshot().halted, None);
    h.assert_consumers_hold_the_chain();
    h.stop().await;
}

/// The blocks the header window holds, lowest and newest.
fn window(h: &Harness) -> (u64, u64) {
    let window = h.store.window().unwrap().expect("a header window");
    (window.bottom.number, window.tip.number)
}

#[tokio::test]
async fn an_operator_forward_move_inside_the_window_keeps_it_contiguous_and_a_later_reorg_heals() {
    const WINDOW: u64 = 12;
    let mut h = Harness::new(0, 100, 0).with_reorg_window(WINDOW);
    while h.chain.latest() < 30 {
        h.chain.mine(1);
    }
    h.start();
    h.caught_up().await;
    h.stop().await;
    // While the node is stopped, blocks 28..=30 are replaced and the chain grows to 36.
    h.chain.reorg(3);
    while h.chain.latest() < 36 {
        h.chain.mine(1);
    }
    let gate = h.chain.pause(Call::Gather);
    let h = h.restart().await;
    // The start-up anchor check finds the reorg and rewinds to block 28; the re-scan is held.
    h.wait_until("the reorg is recorded", |h| h.snapshot().reorgs_detected == 1).await;
    assert_eq!(h.checkpoint(), Some(Position::block_start(28)));
    assert_eq!(window(&h), (18, 27));
    // An operator moves the checkpoint forward, inside the window, past blocks 28 and 29.
    let change =
        h.controller.set_checkpoint(Position::block_start(30), "test", None).await.unwrap();
    assert!(change.rewind_applied);
    gate.release();
    h.caught_up().await;
    // The headers of the skipped blocks were fetched and linked: the window reaches the floor.
    assert_eq!(window(&h), (36 - WINDOW, 36));
    assert_eq!(h.store.headers_down_from(36, 100).unwrap().len() as u64, WINDOW + 1);

    // A reorg inside the window that reaches below the move heals, and the re-scan finds the
    // skipped blocks' messages again.
    h.chain.reorg(10);
    h.chain.mine(1);
    h.wait_until("the second reorg is handled", |h| h.snapshot().reorgs_detected == 2).await;
    h.caught_up().await;
    assert_eq!(h.snapshot().halted, None);
    assert_eq!(reorg_rewinds(&h), [(31, 28), (37, 27)]);
    h.assert_consumers_hold_the_chain();
}

#[tokio::test]
async fn an_operators_set_computed_before_a_reorg_is_refused_and_changes_nothing() {
    let mut h = Harness::new(0, 100, 0).with_reorg_window(12);
    while h.chain.latest() < 30 {
        h.chain.mine(1);
    }
    h.start();
    h.caught_up().await;
    h.stop().await;
    h.chain.reorg_with_new_messages(3, &[1, 2, 1]);
    while h.chain.latest() < 36 {
        h.chain.mine(1);
    }
    // The operator reads the checkpoint (31) and means to re-read block 30 ...
    let read = h.checkpoint();
    assert_eq!(read, Some(Position::block_start(31)));
    let gate = h.chain.pause(Call::Gather);
    let h = h.restart().await;
    // ... but the node finds the reorg first and rewinds to 28.
    h.wait_until("the reorg is recorded", |h| h.snapshot().reorgs_detected == 1).await;
    let history = h.store.checkpoint_history(100).unwrap();
    let stale = h.controller.set_checkpoint(Position::block_start(30), "test", Some(read)).await;
    let Err(ControllerError::Storage(StorageError::CheckpointMoved { expected, found })) = stale
    else {
        panic!("a stale set must be refused: {stale:?}")
    };
    assert_eq!((expected, found), (read, Some(Position::block_start(28))));
    assert_eq!(h.checkpoint(), Some(Position::block_start(28)), "nothing changed");
    assert_eq!(h.store.checkpoint_history(100).unwrap(), history, "nothing audited");
    // A dry run with the stale read is refused alike.
    let preview = h.controller.preview_set(Position::block_start(30), Some(read)).await;
    assert!(
        matches!(preview, Err(ControllerError::Storage(StorageError::CheckpointMoved { .. }))),
        "{preview:?}"
    );
    // Read again: the set is made from where the node is.
    let change =
        h.controller.set_checkpoint(Position::block_start(27), "test", Some(found)).await.unwrap();
    assert_eq!(change.previous, found);
    gate.release();
    h.caught_up().await;
    assert_eq!(h.snapshot().halted, None);
    // Nothing the reorg put in blocks 28..=30 was skipped.
    h.assert_consumers_hold_the_chain();
}

#[tokio::test]
async fn a_forward_move_beyond_the_window_restarts_it_on_purpose_and_says_so() {
    const WINDOW: u64 = 8;
    let mut h = Harness::new(0, 100, 0).with_reorg_window(WINDOW);
    while h.chain.latest() < 20 {
        h.chain.mine(1);
    }
    h.start();
    h.caught_up().await;
    let gate = h.chain.pause(Call::Gather);
    h.chain.mine_empty(40);
    h.wait_until("the node sees the new head", |h| h.snapshot().l1_head == Some(60)).await;
    // The operator skips to block 55: far beyond the window's tip (20) and its floor (52).
    let read = h.checkpoint();
    let change =
        h.controller.set_checkpoint(Position::block_start(55), "test", Some(read)).await.unwrap();
    assert!(change.rewind_applied);
    let skip = h.store.checkpoint_history(1).unwrap().remove(0).skipped.unwrap();
    assert_eq!((skip.blocks, skip.stored_messages), (34, 0));
    gate.release();
    h.caught_up().await;
    // The window starts again at the floor, not at the move: the blocks below the new position
    // and above the floor are linked too.
    assert_eq!(window(&h), (60 - WINDOW, 60));
    let status = h.snapshot();
    assert_eq!(status.window_restarts, 1);
    let restart = status.last_window_restart.unwrap();
    assert_eq!((restart.previous_tip, restart.first), (20, 60 - WINDOW));
    // A reorg reaching below the move but inside the window heals.
    h.chain.reorg(7);
    h.chain.mine(1);
    h.reorg_handled(1).await;
    assert_eq!(h.snapshot().halted, None);
}

#[tokio::test]
async fn a_halt_resolved_without_the_task_hearing_of_it_is_noticed_and_reading_goes_on() {
    let mut h = Harness::new(0, 5, 0).with_reorg_window(3);
    h.start_on_blocks(12, 1).await;
    h.chain.reorg_with_new_messages(6, &[1, 0, 0, 1, 0, 0]);
    h.chain.mine(1);
    h.wait_until("ingestion halts", |h| h.snapshot().halted.is_some()).await;
    // The change reaches the store but not the task (as when its request timed out before it
    // was queued): the task finds the halt gone from the store and reads on from there.
    let origin = ferry_storage::ChangeOrigin {
        method: ChangeMethod::SetCheckpoint,
        caller: "elsewhere".to_owned(),
    };
    let write = ferry_storage::CheckpointWrite {
        new: Some(Position::block_start(4)),
        expected: None,
        origin: Some(&origin),
    };
    let resolved = h.store.change_checkpoint(write).unwrap().resolved.unwrap();
    assert!(!resolved.orphaned.is_empty());
    h.caught_up().await;
    assert_eq!(h.snapshot().halted, None);
    assert_ne!(h.snapshot().phase, Phase::Halted);
    h.assert_consumers_hold_the_chain();
}
