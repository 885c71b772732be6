//! Tests of the store: round trips, refusals that write nothing, races with operator changes,
//! the header window, reorgs, halts and migrations.

use super::*;
use crate::{
    AuditEntry, ChangeMethod, ChangeOrigin, Error, FinalityTags, HaltKind, HaltRecord, KnownHeads,
    ReorgCause, WindowRestart, tables,
};
use ferry_primitives::{
    B256, BlockHeader, Checkpoint, EntryKind, Inclusion, L1Message, Seq, Skipped, StoredMessage,
    U256, test_utils::l1_message,
};
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

fn audited(new: Checkpoint, origin: &ChangeOrigin) -> CheckpointWrite<'_> {
    CheckpointWrite { new, expected: None, origin: Some(origin) }
}

fn summary_of(first_seq: u64, stored: u64, skipped: u64) -> CommitSummary {
    CommitSummary {
        first_seq: Seq(first_seq),
        stored,
        skipped,
        reincluded: 0,
        state_changes: 0,
        unmatched_events: 0,
        entries: stored,
        window_restarted: None,
    }
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
    assert_eq!(summary, summary_of(0, 3, 0));

    // Messages: what was committed is what is read, in seq order, with hash and origin.
    let stored = all_messages(&store);
    assert_eq!(stored.len(), 3);
    for (seq, (stored, l1)) in stored.iter().zip(&batch).enumerate() {
        assert_eq!(stored.seq, Seq(seq as u64));
        assert_eq!(stored.hash, l1.hash());
        assert_eq!(&stored.l1, l1);
        assert_eq!((stored.inclusion, stored.reorg), (Inclusion::Canonical, None));
    }
    // HashIndex: every hash leads to its message; an unknown hash to nothing.
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
    let txn = store.write().unwrap();
    let key = crate::codec::Name("schema_version");
    txn.put::<tables::Meta>(&key, &99u32.to_be_bytes().to_vec()).unwrap();
    txn.commit("test").unwrap();
    drop(store);

    let error = Store::open(dir.path(), config(0)).unwrap_err();
    assert!(matches!(error, Error::SchemaVersion { found: 99, expected: SCHEMA_VERSION, .. }));
    let text = error.to_string();
    let expected = format!("reads version {SCHEMA_VERSION}");
    assert!(text.contains("schema version 99") && text.contains(&expected), "{text}");
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
fn a_read_within_a_byte_budget_stops_after_the_entry_that_reaches_it() {
    let (_dir, store) = temp_store();
    // Ten messages of 1,000 felts (32,000 bytes of payload each).
    let payload = vec![U256::MAX; 1_000];
    let batch: Vec<L1Message> = (0..10)
        .map(|nonce| {
            ferry_primitives::test_utils::l1_message_with_payload(nonce, 1, nonce, payload.clone())
        })
        .collect();
    committed(commit_from(&store, None, &batch, Position::block_start(2)).unwrap());
    let seqs = |entries: Vec<crate::StoredEntry>| -> Vec<u64> {
        entries.iter().map(|stored| stored.entry.seq.0).collect()
    };
    assert_eq!(seqs(store.entries_within(Seq(0), 100, 70_000).unwrap()), [0, 1, 2]);
    assert_eq!(seqs(store.entries_within(Seq(4), 100, 1).unwrap()), [4], "one at least");
    assert_eq!(seqs(store.entries_within(Seq(8), 100, usize::MAX).unwrap()), [8, 9]);
    assert_eq!(store.entries_within(Seq(0), 100, usize::MAX).unwrap().len(), 10);
}

#[test]
fn an_existing_database_opens_for_its_own_chain_without_being_told_it() {
    let empty = tempfile::tempdir().unwrap();
    assert!(Store::open_existing(empty.path(), CONTRACT, 0).unwrap().is_none());
    assert!(!empty.path().join(DATA_FILE).exists(), "nothing is created");

    let (dir, store) = temp_store();
    drop(store);
    let store = Store::open_existing(dir.path(), CONTRACT, 0).unwrap().unwrap();
    assert_eq!(store.config(), config(0));
    drop(store);
    let error = Store::open_existing(dir.path(), Address::repeat_byte(0xdd), 0).unwrap_err();
    assert!(matches!(error, Error::ContractMismatch { .. }), "{error}");
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
    assert_eq!(summary, summary_of(2, 1, 2));
    assert_eq!(summary.last_seq(), Some(Seq(2)));
    assert_eq!(seqs(&store), [0, 1, 2]);
    assert_eq!(store.message_by_hash(rescan[2].hash()).unwrap().unwrap().seq, Seq(2));

    // A batch of nothing but duplicates stores nothing and the next new message gets seq 3.
    store.set_checkpoint(Position::block_start(1)).unwrap();
    let summary = committed(
        commit_from(&store, Some(Position::block_start(1)), &rescan, Position::block_start(2))
            .unwrap(),
    );
    assert_eq!(summary, summary_of(3, 0, 3));
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
fn messages_below_the_highest_stored_nonce_are_looked_up_and_those_above_are_not_repeated() {
    let (_dir, store) = temp_store();
    // Nonces out of order: 5 goes above the frontier, 3 below it, then each again (a provider
    // repeating logs).
    let batch =
        [l1_message(5, 1, 0), l1_message(3, 1, 1), l1_message(5, 1, 2), l1_message(3, 1, 3)];
    let summary = committed(commit_from(&store, None, &batch, Position::block_start(2)).unwrap());
    assert_eq!((summary.stored, summary.skipped), (2, 2));
    // A later batch: one below the frontier, one above, the first again.
    let next = store.checkpoint().unwrap();
    let later = [l1_message(4, 2, 0), l1_message(6, 2, 1), l1_message(4, 2, 2)];
    let summary = committed(commit_from(&store, next, &later, Position::block_start(3)).unwrap());
    assert_eq!((summary.first_seq, summary.stored, summary.skipped), (Seq(2), 2, 1));
    assert_eq!(seqs(&store), [0, 1, 2, 3]);
    for (message, seq) in [(&batch[0], 0), (&batch[1], 1), (&later[0], 2), (&later[1], 3)] {
        assert_eq!(store.message_by_hash(message.hash()).unwrap().unwrap().seq, Seq(seq));
    }
    assert_eq!(runs_of_nonces(&store), [(U256::from(3), U256::from(6))]);
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
    assert_eq!(summary, summary_of(1, 4, 0));
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
        .commit(&BatchWrite {
            from: Position::block_start(0),
            next,
            messages: &batch,
            hashes: &hashes,
            events: &[],
            headers: &[],
            window_floor: 0,
            tags: FinalityTags::default(),
        })
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
fn stored_nonces_are_read_back() {
    let (_dir, store) = temp_store();
    let batch = [l1_message(4, 1, 0), l1_message(1, 2, 0), l1_message(9, 3, 0)];
    committed(commit_from(&store, None, &batch, Position::block_start(4)).unwrap());
    assert_eq!(
        store.stored_nonce_runs().unwrap(),
        [
            (U256::from(1), U256::from(1)),
            (U256::from(4), U256::from(4)),
            (U256::from(9), U256::from(9))
        ]
    );
}

#[test]
fn audited_changes_are_recorded_with_the_change_and_read_newest_first() {
    let (_dir, store) = temp_store();
    let origin = |method, caller: &str| ChangeOrigin { method, caller: caller.to_owned() };
    store.set_checkpoint(Position::block_start(3)).unwrap(); // not audited
    let set = origin(ChangeMethod::SetCheckpoint, "10.0.0.1:5");
    store.change_checkpoint(audited(Some(Position::new(9, 1)), &set)).unwrap();
    let reset = origin(ChangeMethod::ResetCheckpoint, "cli");
    store.change_checkpoint(audited(None, &reset)).unwrap();
    // A reorg rewind is audited as the node's.
    let chain = Chain::new(0);
    committed(commit_range(&store, None, &chain, 0..=2, &[]).unwrap());
    let _ = record(&store, Position::block_start(3), chain.header(1)).unwrap();

    let history = store.checkpoint_history(10).unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|e| (e.id, e.method, e.caller.as_str(), e.previous, e.current))
        .collect();
    assert_eq!(
        summary,
        [
            (
                2,
                ChangeMethod::ReorgRewind,
                "node",
                Some(Position::block_start(3)),
                Some(Position::block_start(2))
            ),
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
    let refused = record(&store, Position::block_start(7), chain.header(0)).unwrap();
    assert!(matches!(refused, ReorgOutcome::CheckpointMoved { .. }));
    assert_eq!(store.checkpoint_history(10).unwrap().len(), 3);
}

#[test]
fn messages_are_counted_by_the_position_they_were_logged_at() {
    let (_dir, store) = temp_store();
    let batch =
        [l1_message(0, 2, 0), l1_message(1, 2, 5), l1_message(2, 4, 0), l1_message(3, 9, 1)];
    committed(commit_from(&store, None, &batch, Position::block_start(10)).unwrap());
    let count = |from, to| store.count_messages_between(from, to).unwrap().0;
    assert_eq!(count(Position::block_start(0), Position::block_start(10)), 4);
    assert_eq!(count(Position::block_start(2), Position::block_start(3)), 2);
    assert_eq!(count(Position::new(2, 1), Position::block_start(9)), 2);
    assert_eq!(count(Position::block_start(5), Position::new(9, 1)), 0);
    assert_eq!(count(Position::block_start(5), Position::new(9, 2)), 1);
}

/// Block hashes a test can fork: block `n` links to block `n - 1` of the same chain, and a fork
/// gives every block from some height on another hash.
#[derive(Debug, Clone)]
struct Chain(Vec<(u64, u8)>);

impl Chain {
    fn new(fork: u8) -> Self {
        Self(vec![(0, fork)])
    }

    fn forked_at(&self, block: u64, fork: u8) -> Self {
        let mut forked = self.clone();
        forked.0.retain(|(first, _)| *first < block);
        forked.0.push((block, fork));
        forked
    }

    fn hash(&self, number: u64) -> B256 {
        let fork = self.0.iter().rev().find(|(first, _)| *first <= number).unwrap().1;
        let mut bytes = [0; 32];
        bytes[0] = fork;
        bytes[24..].copy_from_slice(&number.to_be_bytes());
        B256::from(bytes)
    }

    fn header(&self, number: u64) -> BlockHeader {
        let parent_hash = number.checked_sub(1).map_or(B256::ZERO, |parent| self.hash(parent));
        BlockHeader { number, hash: self.hash(number), parent_hash }
    }

    /// A message whose hash depends on its nonce only, wherever it is logged.
    fn message(&self, nonce: u64, block: u64, index: u64) -> L1Message {
        let payload = vec![U256::from(nonce)];
        let mut l1 =
            ferry_primitives::test_utils::l1_message_with_payload(nonce, block, index, payload);
        l1.origin.block_hash = self.hash(block);
        l1
    }
}

/// The heads the window is read under in these tests: the provider's safe block 3 and
/// finalized block 1, which the first batch holds.
const HEADS: KnownHeads = KnownHeads { safe: Some(3), finalized: Some(1) };

fn tags(chain: &Chain) -> FinalityTags {
    FinalityTags {
        safe: Some(chain.header(3).block_ref()),
        finalized: Some(chain.header(1).block_ref()),
    }
}

/// Commits `blocks` of `chain` with every header, from where the store reads now.
fn commit_range(
    store: &Store,
    floor: Option<u64>,
    chain: &Chain,
    blocks: std::ops::RangeInclusive<u64>,
    messages: &[L1Message],
) -> Result<CommitOutcome> {
    let headers: Vec<_> = blocks.clone().map(|number| chain.header(number)).collect();
    let hashes: Vec<_> = messages.iter().map(L1Message::hash).collect();
    store.commit(&BatchWrite {
        from: store.resume_position(store.checkpoint()?),
        next: Position::block_start(blocks.end() + 1),
        messages,
        hashes: &hashes,
        events: &[],
        headers: &headers,
        window_floor: floor.unwrap_or(0),
        tags: tags(chain),
    })
}

/// A halt for a reorg that replaced every block of the window, up to block 9 of `chain`.
fn beyond_window(chain: &Chain) -> HaltRecord {
    HaltRecord {
        at_millis: 7,
        kind: HaltKind::BeyondWindow,
        replaced: chain.header(9).block_ref(),
        lowest_checked: 0,
        common_ancestor: None,
        finalized: Some(1),
    }
}

fn record(store: &Store, expected: Position, ancestor: BlockHeader) -> Result<ReorgOutcome> {
    store.record_reorg(&ReorgWrite { expected, common_ancestor: ancestor })
}

fn window(store: &Store) -> Option<(u64, u64)> {
    store.window().unwrap().map(|window| (window.bottom.number, window.tip.number))
}

#[test]
fn headers_form_a_linked_window_pruned_below_its_floor_and_cut_where_reading_restarts() {
    let (_dir, store) = temp_store();
    let chain = Chain::new(1);
    committed(commit_range(&store, None, &chain, 0..=9, &[]).unwrap());
    committed(commit_range(&store, None, &chain, 10..=19, &[]).unwrap());
    assert_eq!(window(&store), Some((0, 19)));
    assert_eq!(store.header(7).unwrap(), Some(chain.header(7)));
    committed(commit_range(&store, Some(15), &chain, 20..=29, &[]).unwrap());
    assert_eq!(window(&store), Some((15, 29)), "pruned below the floor");
    assert_eq!(store.headers_down_from(17, 2).unwrap(), [chain.header(17), chain.header(16)]);

    // A rewind keeps the window: the re-scan finds its blocks again, and goes on past them.
    store.set_checkpoint(Position::block_start(25)).unwrap();
    assert_eq!(window(&store), Some((15, 29)));
    committed(commit_range(&store, Some(15), &chain, 25..=30, &[]).unwrap());
    assert_eq!(window(&store), Some((15, 30)));
    // A re-scan that finds one of them changed does not fit: a reorg, nothing written.
    store.set_checkpoint(Position::block_start(20)).unwrap();
    let changed = chain.forked_at(27, 3);
    let outcome = commit_range(&store, Some(15), &changed, 20..=30, &[]).unwrap();
    assert_eq!(
        outcome,
        CommitOutcome::Unlinked { kept: chain.header(27), parent_hash: changed.hash(26) }
    );
    committed(commit_range(&store, Some(15), &chain, 20..=30, &[]).unwrap());

    // A batch read from a chain whose block 30 is another one does not link: nothing written.
    let fork = chain.forked_at(30, 2);
    let outcome = commit_range(&store, None, &fork, 31..=31, &[fork.message(0, 31, 0)]).unwrap();
    assert_eq!(
        outcome,
        CommitOutcome::Unlinked { kept: chain.header(30), parent_hash: fork.hash(30) }
    );
    assert_eq!(store.checkpoint().unwrap(), Some(Position::block_start(31)));
    assert_eq!(store.last_seq().unwrap(), None);
    assert_eq!(window(&store), Some((15, 30)));

    // A range anchored by its last header only (below the window) starts the window again,
    // and says so.
    let last = [chain.header(40)];
    let summary = committed(
        store
            .commit_batch(Position::block_start(31), &[], Position::block_start(41), &last)
            .unwrap(),
    );
    assert_eq!(window(&store), Some((40, 40)));
    assert_eq!(summary.window_restarted, Some(WindowRestart { previous_tip: 30, first: 40 }));

    // Headers that do not end the range, or do not link, are refused.
    let from = Position::block_start(41);
    let unlinked = [chain.header(41), fork.header(42)];
    let short = [chain.header(41)];
    for (headers, next) in [(&unlinked[..], 43), (&short[..], 43)] {
        let error =
            store.commit_batch(from, &[], Position::block_start(next), headers).unwrap_err();
        assert!(matches!(error, Error::BadHeaders { .. }), "{error}");
    }
    assert_eq!(window(&store), Some((40, 40)));
}

#[test]
fn a_reorg_orphans_what_it_removed_and_the_rescan_includes_again_what_is_still_there() {
    let (dir, store) = temp_store();
    let a = Chain::new(1);
    let first = [a.message(0, 2, 0), a.message(1, 5, 0), a.message(2, 5, 1), a.message(3, 8, 0)];
    committed(commit_range(&store, None, &a, 0..=9, &first).unwrap());

    // Blocks 5 and up are replaced: what was stored from them is orphaned.
    let b = a.forked_at(5, 2);
    let ReorgOutcome::Recorded(reorg) =
        record(&store, Position::block_start(10), a.header(4)).unwrap()
    else {
        panic!("not recorded")
    };
    assert_eq!(reorg.orphaned, [Seq(1), Seq(2), Seq(3)]);
    assert_eq!(reorg.released_nonces, [U256::from(1), U256::from(2), U256::from(3)]);
    assert_eq!(reorg.last_seq, Some(Seq(6)));
    assert_eq!(reorg.record.first_notice, Some(Seq(4)));
    assert_eq!(reorg.record.old_tip, Some(a.header(9).block_ref()));
    assert_eq!(store.checkpoint().unwrap(), Some(Position::block_start(5)));
    assert_eq!(window(&store), Some((0, 4)));
    let orphaned = store.message_by_hash(first[1].hash()).unwrap().unwrap();
    assert_eq!((orphaned.inclusion, orphaned.reorg), (Inclusion::Orphaned, Some(reorg.id)));
    assert_eq!(store.stored_nonce_runs().unwrap(), [(U256::ZERO, U256::ZERO)]);

    // The new chain holds nonces 1 and 2 again (block 6) and a new message; nonce 3 is gone.
    let rescan = [b.message(1, 6, 0), b.message(2, 6, 1), b.message(4, 7, 0)];
    let summary = committed(commit_range(&store, None, &b, 5..=9, &rescan).unwrap());
    assert_eq!((summary.stored, summary.reincluded, summary.entries), (1, 2, 3));
    assert_eq!(summary.first_seq, Seq(7));
    let moved = store.message_by_hash(first[1].hash()).unwrap().unwrap();
    assert_eq!(moved.l1.origin, rescan[0].origin, "its origin is the canonical one now");
    assert_eq!((moved.seq, moved.inclusion, moved.reorg), (Seq(1), Inclusion::Canonical, None));
    assert_eq!(
        store.stored_nonce_runs().unwrap(),
        [(U256::ZERO, U256::from(2)), (U256::from(4), U256::from(4))]
    );

    // The log says all of it, in order, and a consumer applying it holds the canonical set.
    drop(store);
    let store = Store::open(dir.path(), config(0)).unwrap();
    let entries = store.entries_from(Seq::ZERO, 100).unwrap();
    let kinds: Vec<_> = entries.iter().map(|e| (e.entry.kind, e.entry.message_seq.0)).collect();
    use EntryKind::{Message as M, Reincluded as I, Removed as R};
    assert_eq!(
        kinds,
        [(M, 0), (M, 1), (M, 2), (M, 3), (R, 1), (R, 2), (R, 3), (I, 1), (I, 2), (M, 9)]
    );
    assert_eq!(
        entries.iter().map(|e| e.entry.seq.0).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(entries[1].entry.l1.origin, first[1].origin, "a message entry shows where it was");
    assert_eq!(entries[7].entry.l1.origin, rescan[0].origin);
    assert_eq!(entries[3].entry.inclusion, Inclusion::Orphaned);
    assert!(entries[4].entry.removed && !entries[7].entry.removed);
    assert_eq!(entries[4].entry.reorg, Some(reorg.id));
    assert_eq!(entries[1].settlement, Settlement::Inclusion { block: 5, retracted: Some(HEADS) });
    assert_eq!(entries[4].settlement, Settlement::Removal { block: 5, recorded: HEADS });
    assert_eq!(entries[7].settlement, Settlement::Inclusion { block: 6, retracted: None });
    assert_eq!(entries[0].settlement, Settlement::Inclusion { block: 2, retracted: None });
    let mut held = HashMap::new();
    for entry in &entries {
        if entry.entry.removed {
            held.remove(&entry.entry.hash);
        } else {
            held.insert(entry.entry.hash, entry.entry.l1.origin);
        }
    }
    let canonical: HashMap<_, _> = [&first[0], &rescan[0], &rescan[1], &rescan[2]]
        .into_iter()
        .map(|l1| (l1.hash(), l1.origin))
        .collect();
    assert_eq!(held, canonical);
    assert_eq!(store.entries_from(Seq(8), 1).unwrap()[0].entry.seq, Seq(8));
    assert_eq!(store.message_counts().unwrap(), (5, 1));
    assert_eq!(store.orphaned_seqs(10).unwrap(), [Seq(3)]);
    let (reorgs, count) = store.reorgs(10).unwrap();
    assert_eq!((count, reorgs[0].1.cause, reorgs[0].1.orphaned), (1, ReorgCause::Detected, 3));
    assert_eq!(reorgs[0].1.common_ancestor, Some(a.header(4).block_ref()));
}

#[test]
fn a_reorg_is_refused_when_the_checkpoint_moved_or_its_ancestor_is_not_in_the_window() {
    let (_dir, store) = temp_store();
    let chain = Chain::new(1);
    committed(commit_range(&store, None, &chain, 0..=9, &[chain.message(0, 8, 0)]).unwrap());
    let moved = record(&store, Position::block_start(3), chain.header(4)).unwrap();
    assert_eq!(
        moved,
        ReorgOutcome::CheckpointMoved {
            expected: Position::block_start(3),
            found: Some(Position::block_start(10))
        }
    );
    let other = Chain::new(2).header(4);
    let error = record(&store, Position::block_start(10), other).unwrap_err();
    assert!(matches!(error, Error::AncestorNotInWindow { number: 4, .. }), "{error}");
    assert_eq!(store.last_seq().unwrap(), Some(Seq(0)), "nothing written");
    assert_eq!(window(&store), Some((0, 9)));
    assert_eq!(store.reorgs(10).unwrap().1, 0);
}

#[test]
fn a_halt_survives_and_the_operators_change_resolves_it_orphaning_from_its_position() {
    let (dir, store) = temp_store();
    let chain = Chain::new(1);
    let batch = [chain.message(0, 2, 0), chain.message(1, 5, 3), chain.message(2, 8, 0)];
    committed(commit_range(&store, None, &chain, 0..=9, &batch).unwrap());
    let halt = beyond_window(&chain);
    assert!(!store.record_halt(Position::block_start(3), &halt).unwrap(), "not where it reads");
    assert!(store.record_halt(Position::block_start(10), &halt).unwrap());
    drop(store);
    let store = Store::open(dir.path(), config(0)).unwrap();
    assert_eq!(store.halt().unwrap(), Some(halt), "it survives a restart");
    let history = store.checkpoint_history(10).unwrap();

    let origin = ChangeOrigin { method: ChangeMethod::SetCheckpoint, caller: "op".to_owned() };
    let error = store.change_checkpoint(audited(Some(Position::new(5, 3)), &origin)).unwrap_err();
    assert!(matches!(error, Error::MidBlockResolve { .. }), "{error}");
    assert_eq!(store.checkpoint_history(10).unwrap(), history, "refused: nothing written");
    let changed =
        store.change_checkpoint(audited(Some(Position::block_start(5)), &origin)).unwrap();
    let resolved = changed.resolved.unwrap();
    assert_eq!(resolved.orphaned, [Seq(1), Seq(2)]);
    assert_eq!(resolved.record.cause, ReorgCause::Resolved);
    assert_eq!(resolved.record.rewind_to, Position::block_start(5));
    assert_eq!(store.halt().unwrap(), None);
    assert_eq!(window(&store), Some((0, 4)));
    let (_, canonical) =
        store.count_messages_between(Position::block_start(5), Position::block_start(10)).unwrap();
    assert_eq!(canonical, 0);
    assert_eq!(store.final_heads().unwrap(), HEADS, "heads below the new position stay");
    // The next change is an ordinary one.
    assert!(
        store
            .change_checkpoint(CheckpointWrite::to(Some(Position::new(7, 1))))
            .unwrap()
            .resolved
            .is_none()
    );
}

#[test]
fn the_window_heads_rise_only_to_blocks_the_window_holds() {
    let (_dir, store) = temp_store();
    let chain = Chain::new(1);
    committed(commit_range(&store, None, &chain, 0..=9, &[]).unwrap());
    assert_eq!(store.final_heads().unwrap(), HEADS);
    // Tags from another chain, or beyond what is stored, do not move them.
    let other = chain.forked_at(2, 7);
    let headers = [chain.header(10)];
    let stranger = FinalityTags {
        safe: Some(other.header(8).block_ref()),
        finalized: Some(chain.header(40).block_ref()),
    };
    committed(
        store
            .commit(&BatchWrite {
                from: Position::block_start(10),
                next: Position::block_start(11),
                messages: &[],
                hashes: &[],
                events: &[],
                headers: &headers,
                window_floor: 0,
                tags: stranger,
            })
            .unwrap(),
    );
    assert_eq!(store.final_heads().unwrap(), HEADS);
}

#[test]
fn a_message_found_canonical_at_another_origin_is_moved_with_a_removal_and_a_reinclusion() {
    let (_dir, store) = temp_store();
    let a = Chain::new(1);
    // Read without headers kept (as blocks the window no longer holds).
    let first = [a.message(0, 5, 0)];
    committed(
        store
            .commit_batch(Position::block_start(0), &first, Position::block_start(10), &[])
            .unwrap(),
    );
    // The operator re-reads from 0 and the chain has moved the message meanwhile.
    store.set_checkpoint(Position::block_start(0)).unwrap();
    let b = a.forked_at(5, 2);
    let summary = committed(commit_range(&store, None, &b, 0..=9, &[b.message(0, 6, 0)]).unwrap());
    assert_eq!((summary.reincluded, summary.entries), (1, 2));
    let kinds: Vec<_> =
        store.entries_from(Seq(1), 10).unwrap().iter().map(|e| e.entry.kind).collect();
    assert_eq!(kinds, [EntryKind::Removed, EntryKind::Reincluded]);
    let (reorgs, _) = store.reorgs(1).unwrap();
    assert_eq!(reorgs[0].1.cause, ReorgCause::Moved);
    let message = store.message_by_hash(a.message(0, 5, 0).hash()).unwrap().unwrap();
    assert_eq!(message.l1.origin.block_number, 6);
}

/// What each of `messages` is stored as: its seq and inclusion, looked up by hash.
fn by_hash(store: &Store, messages: &[&L1Message]) -> Vec<Option<(Seq, Inclusion)>> {
    messages
        .iter()
        .map(|l1| store.message_by_hash(l1.hash()).unwrap().map(|m| (m.seq, m.inclusion)))
        .collect()
}

#[test]
fn dedup_by_nonce_stays_exact_when_reorgs_give_a_nonce_to_other_messages_and_back() {
    let (_dir, store) = temp_store();
    let a = Chain::new(1);
    let one = |payload: u64, block, index| {
        let mut l1 = ferry_primitives::test_utils::l1_message_with_payload(
            7,
            block,
            index,
            vec![U256::from(payload)],
        );
        l1.origin.block_hash = a.hash(block);
        l1
    };
    // Nonce 7 is message x on chain a; a reorg gives it to y, another reorg back to x.
    let x = one(100, 5, 0);
    committed(commit_range(&store, None, &a, 0..=9, &[a.message(0, 2, 0), x.clone()]).unwrap());
    let b = a.forked_at(5, 2);
    let ReorgOutcome::Recorded(_) = record(&store, Position::block_start(10), a.header(4)).unwrap()
    else {
        panic!("not recorded")
    };
    let mut y = one(200, 6, 0);
    y.origin.block_hash = b.hash(6);
    assert_ne!(x.hash(), y.hash());
    let summary = committed(commit_range(&store, None, &b, 5..=9, &[y.clone()]).unwrap());
    assert_eq!((summary.stored, summary.reincluded), (1, 0), "another message with nonce 7");
    let c = b.forked_at(5, 3);
    let ReorgOutcome::Recorded(_) = record(&store, Position::block_start(10), b.header(4)).unwrap()
    else {
        panic!("not recorded")
    };
    let mut x_again = x.clone();
    x_again.origin.block_hash = c.hash(5);
    let summary = committed(commit_range(&store, None, &c, 5..=9, &[x_again.clone()]).unwrap());
    assert_eq!((summary.stored, summary.reincluded), (0, 1), "x found again under nonce 7");
    assert_eq!(
        by_hash(&store, &[&x, &y]),
        [Some((Seq(1), Inclusion::Canonical)), Some((Seq(3), Inclusion::Orphaned))]
    );
    // A re-scan of the same blocks skips it.
    store.set_checkpoint(Position::block_start(5)).unwrap();
    let summary = committed(commit_range(&store, None, &c, 5..=9, &[x_again]).unwrap());
    assert_eq!((summary.stored, summary.skipped, summary.entries), (0, 1, 0));
    // The same new message twice in one answer (a provider that lies) is stored once.
    let mut z = one(300, 7, 0);
    z.origin.block_hash = c.hash(7);
    let mut z_copy = z.clone();
    z_copy.origin.log_index = 1;
    let summary = committed(commit_range(&store, None, &c, 10..=10, &[]).unwrap());
    assert_eq!(summary.entries, 0);
    store.set_checkpoint(Position::block_start(7)).unwrap();
    let summary = committed(commit_range(&store, None, &c, 7..=10, &[z, z_copy]).unwrap());
    assert_eq!((summary.stored, summary.skipped), (1, 1), "a third message with nonce 7");
    assert_eq!(store.message_counts().unwrap().0, 4);
}

/// The runs of consecutive keys of Nonces, computed the slow way.
fn runs_of_nonces(store: &Store) -> Vec<(U256, U256)> {
    let txn = store.read().unwrap();
    let mut runs: Vec<(U256, U256)> = Vec::new();
    txn.walk::<tables::Nonces>(None, |nonce, _| {
        match runs.last_mut() {
            Some((_, last)) if *last + U256::from(1) == nonce => *last = nonce,
            _ => runs.push((nonce, nonce)),
        }
        Ok(std::ops::ControlFlow::Continue(()))
    })
    .unwrap();
    runs
}

#[test]
fn the_runs_of_held_nonces_follow_every_add_and_removal() {
    let (_dir, store) = temp_store();
    // A seeded walk of adds (in any order, with repeats) and removals, checked after each step
    // against the Nonces table itself.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    for step in 0..300 {
        let txn = store.write().unwrap();
        if step % 3 == 2 {
            let nonce = U256::from(next(64));
            if txn.delete::<tables::Nonces>(&nonce).unwrap() {
                super::nonces::remove(&txn, nonce).unwrap();
            }
        } else {
            let added: Vec<_> = (0..next(6)).map(|_| U256::from(next(64))).collect();
            for nonce in &added {
                txn.put::<tables::Nonces>(nonce, &Seq(step)).unwrap();
            }
            super::nonces::add(&txn, added).unwrap();
        }
        txn.commit("test").unwrap();
        assert_eq!(store.stored_nonce_runs().unwrap(), runs_of_nonces(&store), "step {step}");
    }
    assert!(store.stored_nonce_runs().unwrap().len() > 1, "the walk made gaps");
    // A removal of a nonce no run holds is corruption, named.
    let txn = store.write().unwrap();
    let error = super::nonces::remove(&txn, U256::from(1_000)).unwrap_err();
    assert!(error.to_string().contains("1000"), "{error}");
}

#[test]
fn lookups_by_hash_find_messages_in_every_partition_of_the_index() {
    let (_dir, store) = temp_store();
    let per_batch = 20_000;
    let mut all = Vec::new();
    for batch in 0..4 {
        let messages: Vec<_> =
            (0..per_batch).map(|i| l1_message(batch * per_batch + i, batch * 10 + 1, i)).collect();
        let from = store.resume_position(store.checkpoint().unwrap());
        let next = Position::block_start(batch * 10 + 10);
        committed(store.commit_batch(from, &messages, next, &[]).unwrap());
        all.extend(messages);
    }
    // 80,000 seqs span two partitions; a message is found in either, a stranger in neither.
    for (seq, l1) in all.iter().enumerate().step_by(997).chain([(79_999, &all[79_999])]) {
        let found = store.message_by_hash(l1.hash()).unwrap().unwrap();
        assert_eq!((found.seq, &found.l1), (Seq(seq as u64), l1));
    }
    assert_eq!(store.message_by_hash(B256::repeat_byte(3)).unwrap(), None);
    // A re-scan from the start finds every one of them again by nonce.
    store.set_checkpoint(Position::block_start(0)).unwrap();
    let summary = committed(
        store.commit_batch(Position::block_start(0), &all, Position::block_start(40), &[]).unwrap(),
    );
    assert_eq!((summary.stored, summary.skipped), (0, 80_000));
}

#[test]
fn a_version_3_database_is_migrated_to_the_nonce_and_partitioned_hash_indexes() {
    let (dir, store) = temp_store();
    let batch = [l1_message(0, 3, 0), l1_message(1, 4, 0), l1_message(2, 4, 1)];
    committed(commit_from(&store, None, &batch, Position::block_start(5)).unwrap());
    // Make it a version 3 database: its MessageHashes table, and none of the new index rows.
    let txn = store.inner.env.begin_rw_unsync().unwrap();
    let hashes =
        txn.create_db(Some("MessageHashes"), signet_libmdbx::DatabaseFlags::empty()).unwrap();
    for (seq, l1) in batch.iter().enumerate() {
        let seq = (seq as u64).to_be_bytes();
        txn.put(hashes, l1.hash(), seq, signet_libmdbx::WriteFlags::empty()).unwrap();
    }
    txn.commit().unwrap();
    let txn = store.write().unwrap();
    txn.delete_from::<tables::HashIndex>(&crate::codec::HashKey { partition: 0, hash: B256::ZERO })
        .unwrap();
    txn.delete_from::<tables::NonceIndex>(&crate::codec::NonceKey {
        nonce: U256::ZERO,
        seq: Seq::ZERO,
    })
    .unwrap();
    txn.delete_from::<tables::NonceRuns>(&U256::ZERO).unwrap();
    txn.put::<tables::Meta>(&crate::codec::Name("schema_version"), &3u32.to_be_bytes().to_vec())
        .unwrap();
    txn.commit("test").unwrap();
    assert_eq!(store.message_by_hash(batch[0].hash()).unwrap(), None, "no index left");
    assert_eq!(store.stored_nonce_runs().unwrap(), []);
    let before = all_messages(&store);
    drop(store);

    let store = Store::open(dir.path(), config(0)).unwrap();
    assert_eq!(all_messages(&store), before);
    for (seq, l1) in batch.iter().enumerate() {
        assert_eq!(store.message_by_hash(l1.hash()).unwrap().unwrap().seq, Seq(seq as u64));
    }
    let txn = store.inner.env.begin_ro_unsync().unwrap();
    assert!(matches!(txn.open_db(Some("MessageHashes")), Err(signet_libmdbx::MdbxError::NotFound)));
    drop(txn);
    assert_eq!(store.stored_nonce_runs().unwrap(), [(U256::ZERO, U256::from(2))]);
    // Dedup reads the rebuilt nonce index: a re-scan stores nothing again.
    store.set_checkpoint(Position::block_start(0)).unwrap();
    let summary = committed(commit_from(&store, None, &batch, Position::block_start(5)).unwrap());
    assert_eq!((summary.stored, summary.skipped), (0, 3));
}

#[test]
fn a_version_1_database_is_migrated_and_keeps_its_messages_and_checkpoint() {
    let (dir, store) = temp_store();
    let batch = [l1_message(0, 3, 0), l1_message(1, 4, 0)];
    committed(commit_from(&store, None, &batch, Position::block_start(5)).unwrap());
    // Make it a version 1 database: the version, and a Blocks table with rows.
    let txn = store.inner.env.begin_rw_unsync().unwrap();
    let blocks = txn.create_db(Some("Blocks"), signet_libmdbx::DatabaseFlags::empty()).unwrap();
    txn.put(blocks, 4u64.to_be_bytes(), [7; 32], signet_libmdbx::WriteFlags::empty()).unwrap();
    txn.commit().unwrap();
    let txn = store.write().unwrap();
    txn.put::<tables::Meta>(&crate::codec::Name("schema_version"), &1u32.to_be_bytes().to_vec())
        .unwrap();
    txn.commit("test").unwrap();
    let before = all_messages(&store);
    drop(store);

    let store = Store::open(dir.path(), config(0)).unwrap();
    assert_eq!(all_messages(&store), before);
    assert_eq!(store.checkpoint().unwrap(), Some(Position::block_start(5)));
    let txn = store.inner.env.begin_ro_unsync().unwrap();
    assert!(matches!(txn.open_db(Some("Blocks")), Err(signet_libmdbx::MdbxError::NotFound)));
    drop(txn);
    let version =
        store.read().unwrap().get::<tables::Meta>(&crate::codec::Name("schema_version")).unwrap();
    assert_eq!(version, Some(SCHEMA_VERSION.to_be_bytes().to_vec()));
    // The next batch starts the header window and commits as usual.
    let chain = Chain::new(1);
    committed(commit_range(&store, None, &chain, 5..=6, &[chain.message(2, 6, 0)]).unwrap());
    assert_eq!(window(&store), Some((5, 6)));
}
mod journal;
mod lifecycle;
mod refetch;

#[test]
fn a_read_only_open_reads_everything_and_says_what_each_table_holds() {
    let (dir, store) = temp_store();
    let chain = Chain::new(1);
    let messages = [chain.message(0, 2, 0), chain.message(1, 3, 0)];
    committed(commit_range(&store, None, &chain, 0..=4, &messages).unwrap());
    drop(store);
    let store = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(store.config(), config(0));
    assert_eq!(all_messages(&store).len(), 2);
    let info = store.info().unwrap();
    assert_eq!(
        (info.schema_version, info.checkpoint),
        (SCHEMA_VERSION, Some(Position::block_start(5)))
    );
    assert_eq!(info.last_seq, Some(Seq(1)));
    let rows =
        |table: Table| info.tables.iter().find(|stats| stats.table == table).unwrap().entries;
    assert_eq!((rows(Table::Messages), rows(Table::Headers), rows(Table::Nonces)), (2, 5, 2));
    assert!(info.space.file_pages > 0 && info.space.page_size >= 4096);
    assert!(store.set_checkpoint(Position::block_start(0)).is_err(), "nothing can be written");

    // A directory without a database is refused, and nothing is created in it.
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(Store::open_read_only(dir.path()), Err(Error::NoDatabase { .. })));
}

#[test]
fn a_batch_that_would_leave_a_gap_inside_the_window_is_refused() {
    let (_dir, store) = temp_store();
    let chain = Chain::new(1);
    committed(commit_range(&store, None, &chain, 0..=19, &[]).unwrap());
    // An operator skips blocks 20 and 21: a batch from 22 whose headers start there would
    // leave them out of the window, above its floor (10).
    store.set_checkpoint(Position::block_start(22)).unwrap();
    let error = commit_range(&store, Some(10), &chain, 22..=25, &[]).unwrap_err();
    assert!(matches!(error, Error::BadHeaders { .. }), "{error}");
    assert!(error.to_string().contains("gap above the window's newest block 19"), "{error}");
    assert_eq!(window(&store), Some((0, 19)), "nothing written");
    // With the skipped blocks' headers it fits, and the window stays contiguous from its floor.
    let headers: Vec<_> = (20..=25).map(|number| chain.header(number)).collect();
    let summary = committed(
        store
            .commit(&BatchWrite {
                from: Position::block_start(22),
                next: Position::block_start(26),
                messages: &[],
                hashes: &[],
                events: &[],
                headers: &headers,
                window_floor: 10,
                tags: tags(&chain),
            })
            .unwrap(),
    );
    assert_eq!(summary.window_restarted, None);
    assert_eq!(window(&store), Some((10, 25)));
    // Beyond the floor, the window starts again on purpose, and the commit says so.
    store.set_checkpoint(Position::block_start(60)).unwrap();
    let summary = committed(commit_range(&store, Some(55), &chain, 60..=62, &[]).unwrap());
    assert_eq!(summary.window_restarted, Some(WindowRestart { previous_tip: 25, first: 60 }));
    assert_eq!(window(&store), Some((60, 62)));
}

#[test]
fn a_compare_and_set_change_is_refused_with_both_positions_when_the_checkpoint_moved() {
    let (_dir, store) = temp_store();
    let origin = ChangeOrigin { method: ChangeMethod::SetCheckpoint, caller: "op".to_owned() };
    store.set_checkpoint(Position::block_start(7)).unwrap();
    let stale = CheckpointWrite {
        new: Some(Position::block_start(9)),
        expected: Some(Some(Position::block_start(8))),
        origin: Some(&origin),
    };
    let error = store.change_checkpoint(stale).unwrap_err();
    let Error::CheckpointMoved { expected, found } = error else { panic!("{error}") };
    assert_eq!((expected, found), (Some(Position::block_start(8)), Some(Position::block_start(7))));
    assert_eq!(store.checkpoint().unwrap(), Some(Position::block_start(7)), "nothing changed");
    assert!(store.checkpoint_history(10).unwrap().is_empty(), "nothing audited");
    // None stored is a checkpoint too: a reset read as `null` must still be `null`.
    let unset = CheckpointWrite { expected: Some(None), ..stale };
    assert!(matches!(store.change_checkpoint(unset), Err(Error::CheckpointMoved { .. })));
    // The checkpoint the caller read: written.
    let current = CheckpointWrite { expected: Some(Some(Position::block_start(7))), ..stale };
    let changed = store.change_checkpoint(current).unwrap();
    assert_eq!(changed.previous, Some(Position::block_start(7)));
    assert_eq!(store.checkpoint().unwrap(), Some(Position::block_start(9)));
}

#[test]
fn a_forward_move_records_the_blocks_and_stored_messages_it_skips() {
    let (_dir, store) = temp_store();
    let batch = [l1_message(0, 2, 0), l1_message(1, 4, 1), l1_message(2, 9, 0)];
    committed(commit_from(&store, None, &batch, Position::block_start(10)).unwrap());
    let origin = ChangeOrigin { method: ChangeMethod::SetCheckpoint, caller: "op".to_owned() };
    // Back to 3: a re-scan skips nothing.
    let back = store.change_checkpoint(audited(Some(Position::block_start(3)), &origin)).unwrap();
    assert_eq!(back.skipped, None);
    // Forward to the middle of block 9: blocks 3..=9 partly, two stored messages (4 and 9).
    let forward = store.change_checkpoint(audited(Some(Position::new(9, 1)), &origin)).unwrap();
    let skipped = Skipped { blocks: 7, stored_messages: 2 };
    assert_eq!(forward.skipped, Some(skipped));
    let history = store.checkpoint_history(10).unwrap();
    assert_eq!(
        history.iter().map(|entry| entry.skipped).collect::<Vec<_>>(),
        [Some(skipped), None]
    );
}

#[test]
fn a_version_4_database_gets_its_audit_trail_rewritten_with_nothing_skipped() {
    let (dir, store) = temp_store();
    let origin = ChangeOrigin { method: ChangeMethod::SetCheckpoint, caller: "10.0.0.1:5".into() };
    store.change_checkpoint(audited(Some(Position::new(9, 1)), &origin)).unwrap();
    store.change_checkpoint(audited(Some(Position::block_start(3)), &origin)).unwrap();
    let before = store.checkpoint_history(10).unwrap();
    // Make it a version 4 database: audit values without the skipped field.
    let txn = store.write().unwrap();
    let mut rows = Vec::new();
    txn.walk_raw::<tables::Audit>(|key, value| {
        let mut v4 = value[..43].to_vec();
        v4.extend_from_slice(&value[43 + 17..]);
        rows.push((key.to_vec(), v4));
        Ok(())
    })
    .unwrap();
    txn.put::<tables::Meta>(&crate::codec::Name("schema_version"), &4u32.to_be_bytes().to_vec())
        .unwrap();
    txn.commit("test").unwrap();
    let txn = store.inner.env.begin_rw_unsync().unwrap();
    let audit = txn.open_db(Some("Audit")).unwrap();
    for (key, value) in rows {
        txn.put(audit, key, value, signet_libmdbx::WriteFlags::empty()).unwrap();
    }
    txn.commit().unwrap();
    assert!(store.checkpoint_history(10).is_err(), "version 4 values do not read as version 5");
    drop(store);

    let store = Store::open(dir.path(), config(0)).unwrap();
    let after = store.checkpoint_history(10).unwrap();
    let without_skips: Vec<_> =
        before.into_iter().map(|entry| AuditEntry { skipped: None, ..entry }).collect();
    assert_eq!(after, without_skips);
}
