use super::*;
use crate::ChangeMethod;
use ferry_primitives::L1Message;
use ferry_primitives::{U256, test_utils::l1_message};
use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};
use tempfile::TempDir;

const CHAIN_ID: u64 = 31337;
const CONTRACT: Address = Address::repeat_byte(0xcc);

fn config(from_block: u64) -> StoreConfig {
    StoreConfig { chain_id: CHAIN_ID, contract: CONTRACT, from_block }
}

fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config(0)).unwrap();
    (dir, store)
}

fn committed(outcome: CommitOutcome) -> CommitSummary {
    match outcome {
        CommitOutcome::Committed(summary) => summary,
        moved => panic!("expected a commit, got {moved:?}"),
    }
}

/// Commits a batch gathered from wherever `seen` says reading starts.
fn commit_from(
    store: &Store,
    seen: Checkpoint,
    batch: &[L1Message],
    next: Position,
) -> Result<CommitOutcome> {
    store.commit_batch(store.resume_position(seen), batch, next, &[])
}

fn all_messages(store: &Store) -> Vec<StoredMessage> {
    store.messages_from(Seq::ZERO, usize::MAX).unwrap()
}

fn seqs(store: &Store) -> Vec<u64> {
    all_messages(store).iter().map(|m| m.seq.0).collect()
}

#[test]
fn every_table_round_trips() {
    let (dir, store) = temp_store();
    let batch = [l1_message(0, 10, 0), l1_message(1, 10, 3), l1_message(2, 12, 0)];
    let summary = committed(commit_from(&store, None, &batch, Position::block_start(13)).unwrap());
    assert_eq!(summary, CommitSummary { first_seq: Seq(0), stored: 3, skipped: 0 });

    // Messages: what was committed is what is read, in seq order, with hash and origin.
    let stored = all_messages(&store);
    assert_eq!(stored.len(), 3);
    for (seq, (stored, l1)) in stored.iter().zip(&batch).enumerate() {
        assert_eq!(stored.seq, Seq(seq as u64));
        assert_eq!(stored.hash, l1.hash());
        assert_eq!(&stored.l1, l1);
    }
    // MessageHashes: every hash leads to its message; an unknown hash to nothing.
    for stored in &stored {
        assert_eq!(store.message_by_hash(stored.hash).unwrap().as_ref(), Some(stored));
    }
    assert_eq!(store.message_by_hash(B256::repeat_byte(9)).unwrap(), None);
    assert_eq!(store.messages_from(Seq(1), 1).unwrap(), stored[1..2]);
    assert_eq!(store.messages_from(Seq(3), 10).unwrap(), []);
    assert_eq!(store.last_seq().unwrap(), Some(Seq(2)));

    // Checkpoint: written by the commit, then set and deleted explicitly.
    assert_eq!(store.checkpoint().unwrap(), Some(Position::block_start(13)));
    assert_eq!(store.set_checkpoint(Position::new(5, 7)).unwrap(), Some(Position::new(13, 0)));
    assert_eq!(store.checkpoint().unwrap(), Some(Position::new(5, 7)));
    assert_eq!(store.delete_checkpoint().unwrap(), Some(Position::new(5, 7)));
    assert_eq!(store.checkpoint().unwrap(), None);
    assert_eq!(store.delete_checkpoint().unwrap(), None);
    store.set_checkpoint(Position::new(u64::MAX, u64::MAX)).unwrap();

    // Meta and everything else survive a reopen; a new start block is recorded.
    drop(store);
    let store = Store::open(dir.path(), config(7)).unwrap();
    assert_eq!(store.config(), config(7));
    assert_eq!(store.checkpoint().unwrap(), Some(Position::new(u64::MAX, u64::MAX)));
    assert_eq!(all_messages(&store), stored);
    assert_eq!(store.resume_position(None), Position::block_start(7));
}

#[test]
fn schema_version_mismatch_is_a_clear_error_and_changes_nothing() {
    let (dir, store) = temp_store();
    let txn = store.write_txn().unwrap();
    let meta_table = store.inner.tables.get(Table::Meta);
    txn.put(meta_table, meta::SCHEMA_VERSION, 99u32.to_be_bytes(), WriteFlags::empty()).unwrap();
    txn.commit().unwrap();
    drop(store);

    let error = Store::open(dir.path(), config(0)).unwrap_err();
    assert!(matches!(error, Error::SchemaVersion { found: 99, expected: SCHEMA_VERSION, .. }));
    let text = error.to_string();
    assert!(text.contains("schema version 99") && text.contains("reads version 1"), "{text}");
}

#[test]
fn a_database_refuses_another_chain_or_contract_naming_both() {
    let (dir, store) = temp_store();
    drop(store);

    let other_chain = StoreConfig { chain_id: 1, ..config(0) };
    let error = Store::open(dir.path(), other_chain).unwrap_err();
    assert!(matches!(error, Error::ChainIdMismatch { stored: CHAIN_ID, configured: 1, .. }));
    let text = error.to_string();
    assert!(text.contains("chain id 31337") && text.contains("not chain id 1"), "{text}");

    let other_contract = StoreConfig { contract: Address::repeat_byte(0xdd), ..config(0) };
    let error = Store::open(dir.path(), other_contract).unwrap_err();
    let text = error.to_string();
    assert!(text.contains(&CONTRACT.to_string()), "{text}");
    assert!(text.contains(&Address::repeat_byte(0xdd).to_string()), "{text}");

    // The refusals wrote nothing: the original configuration still opens.
    Store::open(dir.path(), config(0)).unwrap();
}

#[test]
fn a_batch_gathered_before_a_set_or_delete_is_refused_and_writes_nothing() {
    let (_dir, store) = temp_store();
    committed(commit_from(&store, None, &[l1_message(0, 1, 0)], Position::block_start(2)).unwrap());
    let gathered_from = store.checkpoint().unwrap();
    let batch = [l1_message(1, 2, 0), l1_message(2, 3, 1)];

    // The operator moves the checkpoint while the batch is in flight.
    store.set_checkpoint(Position::block_start(50)).unwrap();
    let outcome = commit_from(&store, gathered_from, &batch, Position::block_start(4)).unwrap();
    assert_eq!(
        outcome,
        CommitOutcome::CheckpointMoved {
            expected: Position::block_start(2),
            found: Some(Position::block_start(50))
        }
    );
    assert_eq!(store.checkpoint().unwrap(), Some(Position::block_start(50)));
    assert_eq!(seqs(&store), [0]);
    assert_eq!(store.message_by_hash(batch[0].hash()).unwrap(), None);

    // The same after a reset (checkpoint deleted).
    store.set_checkpoint(Position::block_start(2)).unwrap();
    store.delete_checkpoint().unwrap();
    let outcome = commit_from(&store, gathered_from, &batch, Position::block_start(4)).unwrap();
    assert_eq!(
        outcome,
        CommitOutcome::CheckpointMoved { expected: Position::block_start(2), found: None }
    );
    assert_eq!(store.checkpoint().unwrap(), None);
    assert_eq!(seqs(&store), [0]);
    assert_eq!(store.message_by_hash(batch[1].hash()).unwrap(), None);

    // And a batch gathered from "no checkpoint" is refused once one is set.
    store.set_checkpoint(Position::block_start(9)).unwrap();
    let outcome = commit_from(&store, None, &batch, Position::block_start(4)).unwrap();
    assert!(matches!(outcome, CommitOutcome::CheckpointMoved { found: Some(_), .. }));
    assert_eq!(seqs(&store), [0]);
}

#[test]
fn a_stored_hash_is_skipped_and_takes_no_seq() {
    let (_dir, store) = temp_store();
    let first = [l1_message(0, 1, 0), l1_message(1, 1, 1)];
    committed(commit_from(&store, None, &first, Position::block_start(2)).unwrap());

    // A re-scan of block 1 after a rewind finds the same two messages and a new one.
    store.set_checkpoint(Position::block_start(1)).unwrap();
    let rescan = [l1_message(0, 1, 0), l1_message(1, 1, 1), l1_message(2, 1, 2)];
    let summary = committed(
        commit_from(&store, Some(Position::block_start(1)), &rescan, Position::block_start(2))
            .unwrap(),
    );
    assert_eq!(summary, CommitSummary { first_seq: Seq(2), stored: 1, skipped: 2 });
    assert_eq!(summary.last_seq(), Some(Seq(2)));
    assert_eq!(seqs(&store), [0, 1, 2]);
    assert_eq!(store.message_by_hash(rescan[2].hash()).unwrap().unwrap().seq, Seq(2));

    // A batch of nothing but duplicates stores nothing and the next new message gets seq 3.
    store.set_checkpoint(Position::block_start(1)).unwrap();
    let summary = committed(
        commit_from(&store, Some(Position::block_start(1)), &rescan, Position::block_start(2))
            .unwrap(),
    );
    assert_eq!(summary, CommitSummary { first_seq: Seq(3), stored: 0, skipped: 3 });
    assert_eq!(summary.last_seq(), None);
    let next = store.checkpoint().unwrap();
    let summary = committed(
        commit_from(&store, next, &[l1_message(3, 5, 0)], Position::block_start(6)).unwrap(),
    );
    assert_eq!(summary.first_seq, Seq(3));

    // The same hash twice in one batch (a provider repeating a log) is stored once.
    let repeated = l1_message(4, 7, 0);
    let mut twin = repeated.clone();
    twin.origin.log_index = 1;
    let next = store.checkpoint().unwrap();
    let summary =
        committed(commit_from(&store, next, &[repeated, twin], Position::block_start(8)).unwrap());
    assert_eq!((summary.stored, summary.skipped), (1, 1));
    assert_eq!(seqs(&store), [0, 1, 2, 3, 4]);
}

#[test]
fn a_failure_in_the_middle_of_a_batch_leaves_nothing_behind() {
    let (_dir, store) = temp_store();
    committed(commit_from(&store, None, &[l1_message(0, 1, 0)], Position::block_start(2)).unwrap());
    let before = store.checkpoint().unwrap();
    let batch: Vec<_> = (1..5).map(|nonce| l1_message(nonce, 2 + nonce, 0)).collect();

    store.fail_next_commit_after(2);
    let error = commit_from(&store, before, &batch, Position::block_start(10)).unwrap_err();
    assert!(matches!(error, Error::InjectedFault { written: 2 }), "{error}");

    // No message, no hash row, no checkpoint change.
    assert_eq!(seqs(&store), [0]);
    assert_eq!(store.last_seq().unwrap(), Some(Seq(0)));
    for l1 in &batch {
        assert_eq!(store.message_by_hash(l1.hash()).unwrap(), None);
    }
    assert_eq!(store.checkpoint().unwrap(), before);

    // The same batch, gathered again, commits whole with the seqs it would have had.
    let summary =
        committed(commit_from(&store, before, &batch, Position::block_start(10)).unwrap());
    assert_eq!(summary, CommitSummary { first_seq: Seq(1), stored: 4, skipped: 0 });
    assert_eq!(seqs(&store), [0, 1, 2, 3, 4]);
}

#[test]
fn a_batch_outside_its_range_is_refused_and_writes_nothing() {
    let (_dir, store) = temp_store();
    store.set_checkpoint(Position::new(10, 2)).unwrap();
    let from = Some(Position::new(10, 2));
    let cases = [
        (vec![l1_message(0, 10, 1)], Position::block_start(11)), // before the gathered range
        (vec![l1_message(0, 11, 0)], Position::block_start(11)), // at `next`, not before it
        (vec![l1_message(0, 10, 5), l1_message(1, 10, 3)], Position::block_start(11)), // unordered
        (vec![], Position::new(10, 1)),                          // next before from
    ];
    for (batch, next) in cases {
        let error = commit_from(&store, from, &batch, next).unwrap_err();
        assert!(matches!(error, Error::BatchOutOfRange { .. }), "{error}");
    }
    assert_eq!(store.checkpoint().unwrap(), from);
    assert_eq!(store.last_seq().unwrap(), None);
}

#[test]
fn a_batch_with_a_hash_missing_is_refused_and_writes_nothing() {
    let (_dir, store) = temp_store();
    let batch = [l1_message(0, 3, 0), l1_message(1, 3, 1)];
    let hashes = [batch[0].hash()];
    let next = Position::block_start(4);
    let error = store
        .commit_hashed_batch(Position::block_start(0), &batch, &hashes, next, &[])
        .unwrap_err();
    assert!(matches!(error, Error::HashCountMismatch { messages: 2, hashes: 1 }), "{error}");
    assert_eq!(store.checkpoint().unwrap(), None);
    assert_eq!(store.last_seq().unwrap(), None);
}

#[test]
fn seqs_are_contiguous_from_zero_across_reopen_and_checkpoint_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut nonce = 0;
    for round in 0..3 {
        let store = Store::open(dir.path(), config(0)).unwrap();
        for block in 0..100 {
            // Every few batches an operator moves or deletes the checkpoint.
            match block % 7 {
                3 => drop(store.set_checkpoint(Position::block_start(1_000 * round)).unwrap()),
                5 => drop(store.delete_checkpoint().unwrap()),
                _ => {}
            }
            let expected = store.checkpoint().unwrap();
            let from = store.resume_position(expected);
            let batch = [l1_message(nonce, from.block, 0), l1_message(nonce + 1, from.block, 1)];
            nonce += 2;
            committed(
                commit_from(&store, expected, &batch, Position::block_start(from.block + 1))
                    .unwrap(),
            );
        }
    }
    let store = Store::open(dir.path(), config(0)).unwrap();
    // 600 messages cross the 256 boundary where little-endian keys would sort wrongly.
    assert_eq!(seqs(&store), (0..600).collect::<Vec<_>>());
    assert_eq!(store.last_seq().unwrap(), Some(Seq(599)));
    let nonces: Vec<_> = all_messages(&store).iter().map(|m| m.l1.message.nonce).collect();
    assert_eq!(nonces, (0..600u64).map(U256::from).collect::<Vec<_>>());
}

/// Encodes the checkpoint a batch was gathered from into its message's payload, so the data
/// itself says which checkpoint every commit saw.
fn seen_payload(seen: Checkpoint) -> Vec<U256> {
    match seen {
        Some(position) => vec![U256::from(position.block), U256::from(position.index)],
        None => vec![],
    }
}

fn seen_checkpoint(stored: &StoredMessage) -> Checkpoint {
    match stored.l1.message.payload.as_slice() {
        [block, index] => Some(Position::new(block.to(), index.to())),
        _ => None,
    }
}

#[test]
fn a_set_racing_thousands_of_commits_is_never_overwritten() {
    const SETS: u64 = 300;
    const MIN_COMMITS: u64 = 3_000;
    let (_dir, store) = temp_store();
    let done = AtomicBool::new(false);
    // The operator's values: index 1, which the committer's own checkpoints (index 0) never use.
    let set_value = |i: u64| Position::new(1_000_000 * (i + 1), 1);
    // The first commit, from "no checkpoint", before the operator starts.
    let mut first = l1_message(u64::MAX, 0, 0);
    first.message.payload = seen_payload(None);
    committed(commit_from(&store, None, &[first], Position::block_start(1)).unwrap());

    let (commits, deletes) = std::thread::scope(|scope| {
        let committer = scope.spawn(|| {
            let mut commits = 0u64;
            while !done.load(Ordering::Relaxed) || commits < MIN_COMMITS {
                let seen = store.checkpoint().unwrap();
                let from = store.resume_position(seen);
                let mut l1 = l1_message(commits, from.block, from.index);
                l1.message.payload = seen_payload(seen);
                l1.message.nonce = U256::from(commits);
                // Widen the window between gathering and committing.
                for _ in 0..(commits % 3) {
                    std::thread::yield_now();
                }
                let next = Position::block_start(from.block + 1);
                if let CommitOutcome::Committed(_) = commit_from(&store, seen, &[l1], next).unwrap()
                {
                    commits += 1;
                }
            }
            commits
        });

        let mut deletes = 0;
        for i in 0..SETS {
            let value = if i % 5 == 4 {
                store.delete_checkpoint().unwrap();
                deletes += 1;
                None
            } else {
                store.set_checkpoint(set_value(i)).unwrap();
                Some(set_value(i))
            };
            // Wait until a commit has moved the checkpoint off the operator's value.
            let deadline = Instant::now() + Duration::from_secs(20);
            while store.checkpoint().unwrap() == value {
                assert!(Instant::now() < deadline, "no commit moved the checkpoint off {value:?}");
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        done.store(true, Ordering::Relaxed);
        (committer.join().unwrap(), deletes)
    });

    let stored = all_messages(&store);
    assert_eq!(stored.len() as u64, commits + 1);
    assert_eq!(
        stored.iter().map(|m| m.seq.0).collect::<Vec<_>>(),
        (0..=commits).collect::<Vec<_>>()
    );

    // Every operator value was seen by exactly one commit: none was overwritten by a batch
    // gathered before it.
    let mut seen_count: HashMap<Checkpoint, u64> = HashMap::new();
    for message in &stored {
        *seen_count.entry(seen_checkpoint(message)).or_default() += 1;
    }
    for i in (0..SETS).filter(|i| i % 5 != 4) {
        assert_eq!(seen_count.get(&Some(set_value(i))), Some(&1), "set {} lost", set_value(i));
    }
    // The first commit and one after every reset started from "no checkpoint".
    assert_eq!(seen_count.get(&None), Some(&(deletes + 1)));

    // Every other commit saw exactly the checkpoint the previous commit wrote.
    for pair in stored.windows(2) {
        let seen = seen_checkpoint(&pair[1]);
        let previous_next = Position::block_start(pair[0].l1.origin.block_number + 1);
        let operator_value = seen.is_none_or(|position| position.index == 1);
        assert!(
            seen == Some(previous_next) || operator_value,
            "seq {} committed on top of {seen:?}, which nobody wrote",
            pair[1].seq
        );
    }
    let last = stored.last().unwrap();
    assert_eq!(
        store.checkpoint().unwrap(),
        Some(Position::block_start(last.l1.origin.block_number + 1))
    );
}

#[test]
fn a_reset_to_where_the_batch_started_does_not_refuse_it() {
    // "No checkpoint" reads from the start block's first log: a batch gathered from there is
    // the batch a reset asks for, so it commits.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config(5)).unwrap();
    store.set_checkpoint(Position::block_start(5)).unwrap();
    store.delete_checkpoint().unwrap();
    let batch = [l1_message(0, 5, 0)];
    let summary = committed(
        store
            .commit_batch(Position::block_start(5), &batch, Position::block_start(6), &[])
            .unwrap(),
    );
    assert_eq!(summary.stored, 1);
    assert_eq!(store.checkpoint().unwrap(), Some(Position::block_start(6)));
}

#[test]
fn scanned_block_hashes_are_kept_pruned_and_dropped_above_a_rewind() {
    let (_dir, store) = temp_store();
    let block =
        |number: u64| BlockRef { number, hash: B256::left_padding_from(&number.to_be_bytes()) };
    let mut from = Position::block_start(0);
    for number in 0..300 {
        let next = Position::block_start(number + 1);
        committed(store.commit_batch(from, &[], next, &[block(number)]).unwrap());
        from = next;
    }
    assert_eq!(store.block_hash(299).unwrap(), Some(block(299).hash));
    assert_eq!(
        store.block_hash(299 - RETAINED_BLOCKS).unwrap(),
        Some(block(299 - RETAINED_BLOCKS).hash)
    );
    assert_eq!(store.block_hash(299 - RETAINED_BLOCKS - 1).unwrap(), None, "pruned");
    assert_eq!(store.scanned_blocks_down_from(100, 3).unwrap(), [block(100), block(99), block(98)]);
    assert_eq!(store.scanned_blocks_down_from(u64::MAX, 1).unwrap(), [block(299)]);

    // After a rewind to block 200, the re-scan of blocks 200 and 201 (on another fork)
    // replaces the hashes of blocks 200..299, which were scanned before the rewind.
    store.set_checkpoint(Position::block_start(200)).unwrap();
    let fork = BlockRef { number: 200, hash: B256::repeat_byte(0xf0) };
    let fork_end = BlockRef { number: 201, hash: B256::repeat_byte(0xf1) };
    committed(
        store
            .commit_batch(
                Position::block_start(200),
                &[],
                Position::block_start(202),
                &[fork, fork_end],
            )
            .unwrap(),
    );
    assert_eq!(store.block_hash(200).unwrap(), Some(fork.hash));
    assert_eq!(store.block_hash(201).unwrap(), Some(fork_end.hash));
    assert_eq!(store.block_hash(202).unwrap(), None);
    assert_eq!(store.block_hash(199).unwrap(), Some(block(199).hash));
}

#[test]
fn stored_nonces_and_recent_seqs_are_read_back() {
    let (_dir, store) = temp_store();
    let batch = [l1_message(4, 1, 0), l1_message(1, 2, 0), l1_message(9, 3, 0)];
    committed(commit_from(&store, None, &batch, Position::block_start(4)).unwrap());
    assert_eq!(store.stored_nonces().unwrap(), [U256::from(1), U256::from(4), U256::from(9)]);
    assert_eq!(store.recent_seqs_above_block(1, 10).unwrap(), [Seq(1), Seq(2)]);
    assert_eq!(store.recent_seqs_above_block(1, 1).unwrap(), [Seq(2)], "scan is bounded");
    assert_eq!(store.recent_seqs_above_block(3, 10).unwrap(), []);
}

#[test]
fn replace_checkpoint_only_moves_it_from_the_expected_position() {
    let (_dir, store) = temp_store();
    store.set_checkpoint(Position::block_start(10)).unwrap();
    let moved = store.replace_checkpoint(Position::block_start(10), Position::block_start(4), None);
    assert_eq!(moved.unwrap(), Ok(Some(Position::block_start(10))));
    let refused =
        store.replace_checkpoint(Position::block_start(10), Position::block_start(2), None);
    assert_eq!(refused.unwrap(), Err(Some(Position::block_start(4))));
    assert_eq!(store.checkpoint().unwrap(), Some(Position::block_start(4)));
}

#[test]
fn audited_changes_are_recorded_with_the_change_and_read_newest_first() {
    let (_dir, store) = temp_store();
    let origin = |method, caller: &str| ChangeOrigin { method, caller: caller.to_owned() };
    store.set_checkpoint(Position::block_start(3)).unwrap(); // not audited
    store
        .change_checkpoint(
            Some(Position::new(9, 1)),
            Some(&origin(ChangeMethod::SetCheckpoint, "10.0.0.1:5")),
        )
        .unwrap();
    store.change_checkpoint(None, Some(&origin(ChangeMethod::ResetCheckpoint, "cli"))).unwrap();
    let replaced = store.replace_checkpoint(
        Position::block_start(0),
        Position::block_start(1),
        Some(&origin(ChangeMethod::ReorgRewind, "node")),
    );
    assert_eq!(replaced.unwrap(), Ok(None));

    let history = store.checkpoint_history(10).unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|e| (e.id, e.method, e.caller.as_str(), e.previous, e.current))
        .collect();
    assert_eq!(
        summary,
        [
            (2, ChangeMethod::ReorgRewind, "node", None, Some(Position::block_start(1))),
            (1, ChangeMethod::ResetCheckpoint, "cli", Some(Position::new(9, 1)), None),
            (
                0,
                ChangeMethod::SetCheckpoint,
                "10.0.0.1:5",
                Some(Position::block_start(3)),
                Some(Position::new(9, 1))
            ),
        ]
    );
    assert!(history.windows(2).all(|pair| pair[0].at_millis >= pair[1].at_millis));
    assert_eq!(store.checkpoint_history(1).unwrap().len(), 1);
    // A refused compare-and-set records nothing.
    let refused = store.replace_checkpoint(
        Position::block_start(7),
        Position::block_start(2),
        Some(&origin(ChangeMethod::ReorgRewind, "node")),
    );
    assert!(refused.unwrap().is_err());
    assert_eq!(store.checkpoint_history(10).unwrap().len(), 3);
}

#[test]
fn messages_are_counted_by_the_position_they_were_logged_at() {
    let (_dir, store) = temp_store();
    let batch =
        [l1_message(0, 2, 0), l1_message(1, 2, 5), l1_message(2, 4, 0), l1_message(3, 9, 1)];
    committed(commit_from(&store, None, &batch, Position::block_start(10)).unwrap());
    let count = |from, to| store.count_messages_between(from, to).unwrap();
    assert_eq!(count(Position::block_start(0), Position::block_start(10)), 4);
    assert_eq!(count(Position::block_start(2), Position::block_start(3)), 2);
    assert_eq!(count(Position::new(2, 1), Position::block_start(9)), 2);
    assert_eq!(count(Position::block_start(5), Position::new(9, 1)), 0);
    assert_eq!(count(Position::block_start(5), Position::new(9, 2)), 1);
}
