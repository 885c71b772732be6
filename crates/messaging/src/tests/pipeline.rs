//! The pipeline end to end over a scripted chain: ordering, confirmations, rewinds in every
//! phase, failed commits, provider errors, malformed logs and nonce gaps.

use super::harness::Harness;
use crate::{
    ControllerError, MessagingController, Status,
    test_utils::{Call, ScriptedLog},
};
use alloy::primitives::U256;
use ferry_primitives::{ChangeAction, ChangeEffect, Phase, Position, Seq};
use std::{sync::Arc, time::Duration};

#[tokio::test]
async fn messages_flow_in_order_and_empty_ranges_advance_the_checkpoint() {
    let mut h = Harness::new(0, 7, 0);
    for _ in 0..10 {
        h.chain.mine(3);
    }
    h.chain.mine_empty(50);
    h.start();
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
    assert_eq!(h.checkpoint(), Some(Position::block_start(61)));
    // L1 order: positions ascend with seqs.
    let positions: Vec<_> = h.stored().iter().map(|m| m.l1.origin.position()).collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(*h.status.subscribe_last_seq().borrow(), Some(Seq(29)));

    // New blocks are picked up as they come.
    h.chain.mine(2);
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
    let status = h.snapshot();
    assert_eq!(status.stored_since_start, 32);
    assert_eq!(status.phase, Phase::Idle);
    assert_eq!(
        (status.lowest_nonce, status.highest_nonce),
        (Some(U256::ZERO), Some(U256::from(31)))
    );
    assert_eq!(status.nonce_gaps, []);
}

#[tokio::test]
async fn confirmations_are_respected() {
    let mut h = Harness::new(3, 100, 0);
    for _ in 0..10 {
        h.chain.mine(1);
    }
    h.start();
    h.wait_for_checkpoint(7).await;
    h.assert_exactly_once(|block| block <= 7);
    // Nothing more until three more blocks make block 10 safe.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.checkpoint(), Some(Position::block_start(8)));
    h.chain.mine_empty(3);
    h.wait_for_checkpoint(10).await;
    h.assert_exactly_once(|block| block <= 10);
    assert_eq!(h.snapshot().safe_head, Some(10));
}

#[tokio::test]
async fn set_and_reset_apply_to_the_running_task_before_they_return() {
    let mut h = Harness::new(0, 100, 0);
    for _ in 0..5 {
        h.chain.mine(2);
    }
    h.start();
    h.caught_up().await;

    // Hold the next gather so the cursor stays where the rewind put it.
    let gate = h.chain.pause(Call::Gather);
    let change = h.controller.set_checkpoint(Position::block_start(2), "test", None).await.unwrap();
    assert_eq!(change.previous, Some(Position::block_start(6)));
    assert_eq!(change.current, Some(Position::block_start(2)));
    assert!(change.rewind_applied);
    assert_eq!(h.checkpoint(), Some(Position::block_start(2)), "store holds the new value");
    assert_eq!(h.snapshot().cursor, Some(Position::block_start(2)), "the task applied it");

    let change = h.controller.reset_checkpoint("test", None).await.unwrap();
    assert_eq!((change.previous, change.current), (Some(Position::block_start(2)), None));
    assert!(change.rewind_applied);
    assert_eq!(h.checkpoint(), None);
    assert_eq!(h.snapshot().cursor, Some(Position::block_start(0)));
    gate.release();

    // The re-scan finds only messages already stored.
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
    let status = h.snapshot();
    assert_eq!(status.duplicates_skipped, 10);
    assert_eq!(status.rewinds, 2);
}

#[tokio::test]
async fn rewind_while_idle_rescans_at_once() {
    let mut h = Harness::new(0, 2, 0);
    for _ in 0..6 {
        h.chain.mine(1);
    }
    h.start();
    h.caught_up().await;
    h.wait_until("the stream is idle", |h| h.snapshot().phase == Phase::Idle).await;
    let gathers_before = h.chain.gathers().len();

    h.controller.set_checkpoint(Position::block_start(1), "test", None).await.unwrap();
    // No new head is mined: the re-scan must not wait for one.
    h.caught_up().await;
    assert!(h.chain.gathers()[gathers_before..].iter().any(|(from, _)| from.block == 1));
    h.assert_exactly_once(|_| true);
    assert_eq!(h.snapshot().duplicates_skipped, 6);
}

#[tokio::test]
async fn rewind_while_checking_the_head_drops_that_check() {
    let mut h = Harness::new(0, 100, 0);
    for _ in 0..4 {
        h.chain.mine(1);
    }
    h.start();
    h.caught_up().await;
    let gate = h.chain.pause(Call::Heads);
    h.chain.mine(1);
    gate.entered().await;
    assert_eq!(h.snapshot().phase, Phase::CheckingHead);

    let change = h.controller.set_checkpoint(Position::block_start(2), "test", None).await.unwrap();
    assert!(change.rewind_applied);
    assert_eq!(h.snapshot().cursor, Some(Position::block_start(2)));
    gate.release();
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
}

#[tokio::test]
async fn rewind_while_gathering_never_commits_the_abandoned_range() {
    let mut h = Harness::new(0, 100, 0);
    for _ in 0..5 {
        h.chain.mine(1);
    }
    h.start();
    h.caught_up().await;

    // A gather of blocks 6..=8 is in flight when the operator skips to block 8.
    let gate = h.chain.pause(Call::Gather);
    h.chain.mine(2);
    h.chain.mine(2);
    h.chain.mine(1);
    gate.entered().await;
    assert_eq!(h.snapshot().phase, Phase::Gathering);
    assert_eq!(h.chain.gathers().last(), Some(&(Position::block_start(6), 8)));
    let change = h.controller.set_checkpoint(Position::block_start(8), "test", None).await.unwrap();
    assert!(change.rewind_applied);
    gate.release();
    h.wait_for_checkpoint(8).await;

    // Blocks 6 and 7 were skipped: the abandoned gather's messages are not in the store.
    h.assert_exactly_once(|block| block != 6 && block != 7);
    assert_eq!(h.stored().len(), 6);
    // Their nonces (5..=8) show up as a gap.
    let status = h.snapshot();
    assert_eq!(status.missing_nonces, U256::from(4));
}

#[tokio::test]
async fn rewinds_forward_to_the_same_position_and_in_rapid_succession_end_where_the_last_one_says()
{
    let mut h = Harness::new(0, 3, 0);
    for _ in 0..20 {
        h.chain.mine(1);
    }
    h.start();
    h.caught_up().await;

    // Twice to the same position: the second changes nothing.
    let gate = h.chain.pause(Call::Gather);
    h.controller.set_checkpoint(Position::block_start(20), "test", None).await.unwrap();
    let change =
        h.controller.set_checkpoint(Position::block_start(20), "test", None).await.unwrap();
    assert_eq!(change.previous, change.current);
    gate.release();
    h.caught_up().await;
    assert_eq!(h.stored().len(), 20);

    // Many rapid sets, sequential and concurrent, with the stream held in a gather: the
    // last one wins in the store and in the cursor.
    let gate = h.chain.pause(Call::Gather);
    for block in (1..=20).rev() {
        h.controller.set_checkpoint(Position::new(block, 0), "test", None).await.unwrap();
    }
    assert_eq!(h.snapshot().cursor, Some(Position::block_start(1)));
    let sets = (1..=20).map(|block| {
        let controller = h.controller.clone();
        tokio::spawn(async move {
            controller.set_checkpoint(Position::block_start(block), "test", None).await
        })
    });
    for set in sets.collect::<Vec<_>>() {
        assert!(set.await.unwrap().unwrap().rewind_applied);
    }
    assert_eq!(h.snapshot().cursor, h.checkpoint(), "store and cursor agree");
    gate.release();

    // Forward past everything stored, then new messages.
    h.controller.set_checkpoint(Position::block_start(20), "test", None).await.unwrap();
    h.chain.mine(1);
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
}

#[tokio::test]
async fn a_set_beyond_the_head_is_refused_and_changes_nothing() {
    let mut h = Harness::new(0, 100, 0);
    h.chain.mine(1);
    h.start();
    h.caught_up().await;
    let error =
        h.controller.set_checkpoint(Position::block_start(1_000), "test", None).await.unwrap_err();
    match error {
        ControllerError::BeyondHead { requested, head } => {
            assert_eq!((requested, head), (Position::block_start(1_000), 1));
        }
        other => panic!("expected BeyondHead, got {other}"),
    }
    assert_eq!(h.checkpoint(), Some(Position::block_start(2)));
    assert_eq!(h.snapshot().rewinds, 0);
}

#[tokio::test]
async fn a_set_to_where_reading_is_now_is_accepted_when_caught_up() {
    let mut h = Harness::new(0, 100, 0);
    h.chain.mine(1);
    h.start();
    h.caught_up().await;
    // Caught up at block 1, the node reads block 2 next: beyond the head, but where it is.
    let here = h.checkpoint().unwrap();
    assert_eq!(here, Position::block_start(2));
    let change = h.controller.set_checkpoint(here, "test", None).await.unwrap();
    assert_eq!((change.previous, change.current), (Some(here), Some(here)));
    assert!(change.rewind_applied);
    h.chain.mine(1);
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
}

#[tokio::test]
async fn a_block_mined_a_moment_ago_is_checked_against_a_fresh_head() {
    let mut h = Harness::new(0, 100, 0);
    h.chain.mine(1);
    h.start();
    h.caught_up().await;
    // The task sees block 2 and is held reading it: the head it last told status is 2.
    let gate = h.chain.pause(Call::Gather);
    h.chain.mine(1);
    gate.entered().await;
    assert_eq!(h.snapshot().l1_head, Some(2));
    let mined = h.chain.mine(1);
    let change = h.controller.set_checkpoint(Position::block_start(mined), "test", None).await;
    assert!(change.is_ok(), "block {mined} exists: {change:?}");
    // Beyond the fresh head is still refused.
    let error = h
        .controller
        .set_checkpoint(Position::block_start(mined + 1), "test", None)
        .await
        .unwrap_err();
    assert!(matches!(error, ControllerError::BeyondHead { head, .. } if head == mined), "{error}");
    gate.release();
    h.caught_up().await;
    assert_eq!(h.checkpoint(), Some(Position::block_start(mined + 1)));
    h.assert_exactly_once(|block| block != 2);
}

#[tokio::test]
async fn a_task_that_does_not_answer_makes_every_change_time_out_never_hang() {
    let h = Harness::new(0, 100, 0);
    let stream = crate::MessageStream::new(
        Arc::clone(&h.chain),
        h.store.clone(),
        Arc::clone(&h.status),
        Position::block_start(0),
    );
    // A task that is never run: its queue fills with requests nobody reads.
    let (_task, handle) = crate::DrainTask::new(stream, h.store.clone(), Arc::clone(&h.status));
    let requests = handle.requests();
    let within = Duration::from_millis(20);
    for attempt in 0..40 {
        let asked = tokio::time::timeout(
            Duration::from_secs(2),
            requests.rewind(Position::block_start(0), None, within),
        );
        let answer =
            asked.await.unwrap_or_else(|_| panic!("request {attempt} hung past its bound"));
        assert!(matches!(answer, Err(crate::RewindError::TimedOut(_))), "{attempt}: {answer:?}");
    }
}

#[tokio::test]
async fn without_a_running_task_set_writes_the_store_and_the_next_start_reads_it() {
    let mut h = Harness::new(0, 100, 0);
    for _ in 0..4 {
        h.chain.mine(1);
    }
    let change = h.controller.set_checkpoint(Position::block_start(3), "test", None).await.unwrap();
    assert!(!change.rewind_applied);
    assert_eq!(h.checkpoint(), Some(Position::block_start(3)));

    h.start();
    h.caught_up().await;
    h.assert_exactly_once(|block| block >= 3);
    assert!(matches!(
        h.controller.start(Arc::clone(&h.chain)),
        Err(ControllerError::AlreadyStarted)
    ));

    // Once the task is gone, set still writes the store and says it was not applied.
    h.stop().await;
    let change = h.controller.set_checkpoint(Position::block_start(1), "test", None).await.unwrap();
    assert!(!change.rewind_applied);
    assert_eq!(h.checkpoint(), Some(Position::block_start(1)));
    assert_eq!(h.snapshot().phase, Phase::Stopped);
}

#[tokio::test]
async fn a_set_racing_thousands_of_commits_is_never_overwritten() {
    const SETS: usize = 100;
    const COMMITS_BETWEEN_SETS: usize = 20;
    // One block per batch and one message per block: a commit per block.
    let mut h = Harness::new(0, 1, 0);
    h.start();
    // The miner keeps the chain a little ahead of the store, so there is always a range in
    // flight for a skip to race.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let miner = tokio::spawn({
        let (chain, store, stop) = (Arc::clone(&h.chain), h.store.clone(), Arc::clone(&stop));
        async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let checkpoint = store.checkpoint().unwrap().map_or(0, |position| position.block);
                if chain.latest() < checkpoint + 50 {
                    chain.mine(1);
                }
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
        }
    });

    // The operator skips forward to the head the node knows, again and again. A batch
    // gathered before a skip that still committed would store messages from skipped blocks.
    let mut skipped = Vec::new();
    for _ in 0..SETS {
        let stored = h.stored().len();
        h.wait_until("commits go on between sets", |h| {
            h.stored().len() >= stored + COMMITS_BETWEEN_SETS
        })
        .await;
        let head = h.snapshot().l1_head.unwrap();
        let change =
            h.controller.set_checkpoint(Position::block_start(head), "test", None).await.unwrap();
        assert!(change.rewind_applied);
        let from = change.previous.map_or(0, |previous| previous.block);
        skipped.push(from..head);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    miner.await.unwrap();
    h.caught_up().await;
    h.assert_exactly_once(|block| !skipped.iter().any(|range| range.contains(&block)));
    assert!(h.stored().len() >= SETS * COMMITS_BETWEEN_SETS);
}

#[tokio::test]
async fn a_transaction_with_several_messages_survives_a_restart_between_them() {
    let h = Harness::new(0, 100, 0);
    h.chain.mine(1);
    let block = h.chain.mine(4);
    h.chain.mine(1);

    // A previous run stored the transaction's first two messages and checkpointed the log
    // index after them.
    let chain_messages = h.chain.chain_messages();
    let in_block: Vec<_> =
        chain_messages.iter().filter(|m| m.origin.block_number <= block).cloned().collect();
    let first_two = &in_block[..3];
    let outcome = h
        .store
        .commit_batch(Position::block_start(0), first_two, Position::new(block, 2), &[])
        .unwrap();
    assert!(matches!(outcome, ferry_storage::CommitOutcome::Committed(_)));

    let h = h.restart().await;
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
    let stored = h.stored();
    let in_tx: Vec<_> = stored.iter().filter(|m| m.l1.origin.block_number == block).collect();
    assert_eq!(in_tx.len(), 4);
    assert!(
        in_tx.iter().all(|m| m.l1.origin.transaction_hash == in_tx[0].l1.origin.transaction_hash)
    );
    assert_eq!(h.snapshot().duplicates_skipped, 0, "resumed at the log index, not the block");

    // And a restart after everything was stored resumes exactly: nothing again, nothing lost.
    h.chain.mine(2);
    let h = h.restart().await;
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
    assert_eq!(h.snapshot().duplicates_skipped, 0);
}

#[tokio::test]
async fn a_failed_commit_leaves_the_cursor_and_the_range_is_gathered_again() {
    let mut h = Harness::new(0, 100, 0);
    h.chain.mine(1);
    h.start();
    h.caught_up().await;

    h.store.fail_next_commit_after(1);
    h.chain.mine(3);
    h.wait_until("the commit failed", |h| h.snapshot().storage_errors == 1).await;
    assert_eq!(h.checkpoint(), Some(Position::block_start(2)));
    assert_eq!(h.snapshot().cursor, Some(Position::block_start(2)), "cursor did not move");
    assert_eq!(h.stored().len(), 1);

    h.caught_up().await;
    h.assert_exactly_once(|_| true);
    let from_two = h.chain.gathers().iter().filter(|(from, _)| from.block == 2).count();
    assert_eq!(from_two, 2, "the range was gathered again");
}

#[tokio::test]
async fn provider_errors_are_retried_until_they_pass() {
    let mut h = Harness::new(0, 100, 0);
    h.chain.mine(2);
    h.chain.fail_next(Call::Heads, 2);
    h.chain.fail_next(Call::Gather, 2);
    h.start();
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
    assert_eq!(h.chain.gathers().len(), 3, "two failed gathers, then one that passed");
}

#[tokio::test]
async fn malformed_logs_are_counted_and_skipped_and_the_checkpoint_moves_past_them() {
    let mut h = Harness::new(0, 100, 0);
    h.chain.mine(1);
    let nonce = 1;
    let message = |nonce: u64| {
        let mut l1 = ferry_primitives::test_utils::l1_message(nonce, 0, 0);
        l1.message.from = crate::test_utils::SENDER;
        ScriptedLog::Message(l1.message)
    };
    let block = h.chain.mine_logs(vec![message(nonce), ScriptedLog::Malformed, message(2)]);
    h.start();
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
    assert_eq!(h.stored().len(), 3);
    assert_eq!(h.snapshot().malformed_logs, 1);
    assert_eq!(h.checkpoint(), Some(Position::block_start(block + 1)));
}

#[tokio::test]
async fn a_nonce_gap_is_reported_and_closed_by_a_rewind() {
    // The provider drops the log of nonce 1 (block 2) from every range it answers.
    let h = Harness::caught_up_without(4, Position::new(2, 0)).await;
    let status = h.snapshot();
    assert_eq!(status.missing_nonces, U256::from(1));
    assert_eq!(status.nonce_gaps.len(), 1);
    assert_eq!(
        (status.nonce_gaps[0].first, status.nonce_gaps[0].last),
        (U256::from(1), U256::from(1))
    );

    // The operator re-scans from block 2; the missed message arrives with a new seq.
    h.chain.unhide_logs();
    h.controller.set_checkpoint(Position::block_start(2), "test", None).await.unwrap();
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
    assert_eq!(h.snapshot().nonce_gaps, []);
    let recovered = h.stored().into_iter().find(|m| m.l1.message.nonce == U256::from(1)).unwrap();
    assert_eq!(recovered.seq, Seq(3));

    // Status is rebuilt from the store after a restart.
    let status = Status::load(&h.store).unwrap().snapshot();
    assert_eq!(
        (status.lowest_nonce, status.highest_nonce),
        (Some(U256::ZERO), Some(U256::from(3)))
    );
    assert_eq!(status.last_seq, Some(Seq(3)));
}

#[tokio::test]
async fn a_controller_without_heads_accepts_any_block() {
    let h = Harness::new(0, 100, 0);
    let controller = MessagingController::new(h.store.clone(), Arc::clone(&h.status));
    let change = controller.set_checkpoint(Position::new(123, 4), "test", None).await.unwrap();
    assert_eq!(change.current, Some(Position::new(123, 4)));
    assert_eq!(controller.get_checkpoint().unwrap(), Some(Position::new(123, 4)));
}

#[tokio::test]
async fn previews_change_nothing_and_say_what_would_be_rescanned_or_skipped() {
    let mut h = Harness::new(0, 100, 0);
    for _ in 0..6 {
        h.chain.mine(2);
    }
    h.start();
    h.caught_up().await;
    h.controller.set_checkpoint(Position::block_start(4), "test", None).await.unwrap();
    h.caught_up().await;
    let history_before = h.controller.history(100).unwrap().len();

    // Back to block 2: blocks 2..=6 are read again; 10 stored messages were logged there.
    let preview = h.controller.preview_set(Position::block_start(2), None).await.unwrap();
    assert_eq!(preview.previous, Some(Position::block_start(7)));
    assert_eq!(preview.current, Some(Position::block_start(2)));
    assert_eq!(
        preview.effect,
        ChangeEffect {
            action: ChangeAction::Rescan,
            from_block: Some(2),
            to_block: Some(6),
            would_orphan: 0,
            stored_messages: 10
        }
    );
    // A reset re-reads everything.
    let preview = h.controller.preview_reset(None).await.unwrap();
    assert_eq!(preview.current, None);
    assert_eq!(preview.effect.action, ChangeAction::Rescan);
    assert_eq!((preview.effect.from_block, preview.effect.stored_messages), (Some(0), 12));

    // Forward into the middle of block 9: blocks 7..=9 are skipped (9 partly).
    h.chain.mine_empty(3);
    h.caught_up().await;
    h.controller.set_checkpoint(Position::block_start(7), "test", None).await.unwrap();
    let gate = h.chain.pause(Call::Gather);
    h.controller.set_checkpoint(Position::block_start(7), "test", None).await.unwrap();
    let preview = h.controller.preview_set(Position::new(9, 1), None).await.unwrap();
    assert_eq!(
        preview.effect,
        ChangeEffect {
            action: ChangeAction::Skip,
            from_block: Some(7),
            to_block: Some(9),
            would_orphan: 0,
            stored_messages: 0
        }
    );
    let same = h.controller.preview_set(Position::block_start(7), None).await.unwrap();
    assert_eq!(same.effect.action, ChangeAction::None);
    // Previews refuse what the change would refuse.
    assert!(matches!(
        h.controller.preview_set(Position::block_start(500), None).await,
        Err(ControllerError::BeyondHead { head: 9, .. })
    ));
    gate.release();

    // None of the previews changed the store or the trail.
    h.caught_up().await;
    assert_eq!(h.controller.history(100).unwrap().len(), history_before + 2);
    h.assert_exactly_once(|_| true);
}

#[tokio::test]
async fn every_applied_change_is_in_the_audit_trail() {
    let mut h = Harness::new(0, 100, 0);
    for _ in 0..3 {
        h.chain.mine(1);
    }
    h.start();
    h.caught_up().await;
    h.controller.set_checkpoint(Position::new(2, 0), "127.0.0.1:1111", None).await.unwrap();
    h.caught_up().await;
    h.controller.reset_checkpoint("127.0.0.1:2222", None).await.unwrap();
    h.caught_up().await;
    // A reorg rewind is recorded too, as the node's own change.
    h.chain.reorg(1);
    h.chain.mine(1);
    h.wait_until("the reorg is detected", |h| h.snapshot().reorgs_detected == 1).await;
    assert!(
        h.controller
            .set_checkpoint(Position::block_start(99), "127.0.0.1:3333", None)
            .await
            .is_err()
    );

    let history = h.controller.history(10).unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|entry| (entry.method, entry.caller.as_str(), entry.previous, entry.current))
        .collect();
    use ferry_storage::ChangeMethod::*;
    assert_eq!(
        summary,
        [
            (ReorgRewind, "node", Some(Position::block_start(4)), Some(Position::block_start(3))),
            (ResetCheckpoint, "127.0.0.1:2222", Some(Position::block_start(4)), None),
            (
                SetCheckpoint,
                "127.0.0.1:1111",
                Some(Position::block_start(4)),
                Some(Position::block_start(2))
            ),
        ]
    );
}
