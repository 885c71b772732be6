//! The store's writes through a journal (high availability): a standby that replays a
//! leader's journal holds the same log, checkpoint, window, reorgs and audit trail; a write
//! the journal refuses, or that does not commit, leaves nothing anywhere.

use super::*;
use crate::{Journal, JournalEntry, JournalRefusal, JournalSpan, Replayed};
use std::sync::{Arc, Mutex};

/// A journal in memory, as JetStream keeps one: an append is taken only after the last write.
#[derive(Debug, Default)]
struct MemoryJournal {
    writes: Mutex<Vec<JournalEntry>>,
    refuse: AtomicBool,
}

impl Journal for MemoryJournal {
    fn append(&self, after: u64, entry: &JournalEntry) -> Result<u64, JournalRefusal> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(JournalRefusal::NotLeader { group: "g".to_owned(), leader: None });
        }
        let mut writes = self.writes.lock().unwrap();
        let last = writes.len() as u64;
        if after != last {
            return Err(JournalRefusal::Behind { after, last });
        }
        writes.push(entry.clone());
        Ok(last + 1)
    }
}

fn leader() -> (TempDir, Store, Arc<MemoryJournal>) {
    let (dir, store) = temp_store();
    let journal = Arc::new(MemoryJournal::default());
    assert!(store.attach_journal(Arc::clone(&journal) as Arc<dyn Journal>));
    assert!(!store.attach_journal(Arc::new(MemoryJournal::default())), "attached once only");
    (dir, store, journal)
}

fn everything(store: &Store) -> impl PartialEq + std::fmt::Debug {
    let entries: Vec<_> =
        store.entries_from(Seq::ZERO, 10_000).unwrap().into_iter().map(|s| s.entry).collect();
    (
        entries,
        store.checkpoint().unwrap(),
        store.window().unwrap(),
        store.reorgs(100).unwrap(),
        store.checkpoint_history(100).unwrap(),
        store.halt().unwrap(),
        store.stored_nonce_runs().unwrap(),
        store.journal_applied().unwrap(),
    )
}

#[test]
fn a_standby_replaying_the_journal_holds_what_the_leader_holds() {
    let (_dir, store, journal) = leader();
    let chain = Chain::new(1);
    let origin = ChangeOrigin { method: ChangeMethod::SetCheckpoint, caller: "op".into() };
    // Messages, a reorg that orphans one, the fork's batch that includes it again elsewhere,
    // an operator's rewind and its re-scan, a halt and the change that resolves it, and a
    // refetched transaction.
    let first = [chain.message(0, 5, 0), chain.message(1, 8, 0)];
    committed(commit_range(&store, None, &chain, 0..=9, &first).unwrap());
    let ReorgOutcome::Recorded(_) =
        record(&store, Position::block_start(10), chain.header(6)).unwrap()
    else {
        panic!("the reorg was not recorded")
    };
    let fork = chain.forked_at(7, 2);
    let moved = [fork.message(1, 9, 0), fork.message(2, 10, 0)];
    committed(commit_range(&store, None, &fork, 7..=12, &moved).unwrap());
    store.change_checkpoint(audited(Some(Position::block_start(3)), &origin)).unwrap();
    committed(commit_range(&store, None, &fork, 3..=14, &moved).unwrap());
    assert!(store.record_halt(Position::block_start(15), &beyond_window(&fork)).unwrap());
    store.change_checkpoint(audited(Some(Position::block_start(11)), &origin)).unwrap();
    committed(commit_range(&store, None, &fork, 11..=16, &[fork.message(2, 10, 0)][..0]).unwrap());
    let refetch = ChangeOrigin { method: ChangeMethod::RefetchTransaction, caller: "op".into() };
    let missed = [fork.message(7, 12, 1)];
    store
        .store_found(FoundWrite {
            transaction: missed[0].origin.transaction_hash,
            messages: &missed,
            events: &[],
            origin: &refetch,
        })
        .unwrap();
    let writes = journal.writes.lock().unwrap().clone();
    assert_eq!(writes.len() as u64, store.journal_applied().unwrap());
    let names: Vec<_> = writes.iter().map(|entry| entry.write.name()).collect();
    assert_eq!(
        names,
        [
            "commit",
            "reorg",
            "commit",
            "checkpoint",
            "commit",
            "halt",
            "checkpoint",
            "commit",
            "found"
        ]
    );

    // A standby replays them, a few at a time as they arrive, some twice.
    let (standby_dir, mut standby) = temp_store();
    for (index, entry) in writes.iter().enumerate() {
        let seq = index as u64 + 1;
        let span = JournalSpan { first: seq, last: seq };
        assert_eq!(standby.replay(span, entry).unwrap(), Replayed::Applied, "write {seq}");
        assert_eq!(standby.replay(span, entry).unwrap(), Replayed::AlreadyApplied);
        if index == 4 {
            // Reopened in the middle: it goes on from what it holds.
            drop(standby);
            standby = Store::open(standby_dir.path(), config(0)).unwrap();
            assert_eq!(standby.journal_applied().unwrap(), seq);
        }
    }
    assert_eq!(everything(&standby), everything(&store));
    let orphaned = standby.entries_from(Seq::ZERO, 100).unwrap();
    assert!(orphaned.iter().any(|stored| stored.entry.kind == EntryKind::Removed));
    assert!(orphaned.iter().any(|stored| stored.entry.kind == EntryKind::Reincluded));

    // A write the journal holds in several messages, after one abandoned half-way (messages
    // 1 and 2): applied, and recorded where it ends.
    let (_split_dir, split) = temp_store();
    let span = JournalSpan { first: 3, last: 5 };
    assert_eq!(split.replay(span, &writes[0]).unwrap(), Replayed::Applied);
    assert_eq!(split.journal_applied().unwrap(), 5);
    // One overlapping what was applied is refused, and changes nothing.
    let overlapping = JournalSpan { first: 4, last: 6 };
    let error = split.replay(overlapping, &writes[1]).unwrap_err();
    assert!(matches!(error, Error::JournalGap { applied: 5, seq: 4 }), "{error}");
    assert_eq!(split.journal_applied().unwrap(), 5);
    assert_eq!(split.last_seq().unwrap(), Some(Seq(1)));
}

#[test]
fn a_write_the_journal_refuses_or_that_is_refused_first_leaves_nothing_anywhere() {
    let (_dir, store, journal) = leader();
    let chain = Chain::new(1);
    committed(commit_range(&store, None, &chain, 0..=4, &[chain.message(0, 2, 0)]).unwrap());
    let before = everything(&store);

    // Not the leader: nothing is committed.
    journal.refuse.store(true, Ordering::SeqCst);
    let error = commit_range(&store, None, &chain, 5..=6, &[chain.message(1, 5, 0)]).unwrap_err();
    assert!(matches!(error, Error::Journal(JournalRefusal::NotLeader { .. })), "{error}");
    let origin = ChangeOrigin { method: ChangeMethod::SetCheckpoint, caller: "op".into() };
    let error = store.change_checkpoint(audited(Some(Position::block_start(1)), &origin));
    assert!(matches!(error, Err(Error::Journal(_))));
    assert_eq!(everything(&store), before);
    journal.refuse.store(false, Ordering::SeqCst);

    // Someone else appended: the store is behind the journal, and commits nothing until it
    // has caught up.
    let foreign = journal.writes.lock().unwrap()[0].clone();
    journal.writes.lock().unwrap().push(foreign);
    let error = commit_range(&store, None, &chain, 5..=6, &[]).unwrap_err();
    assert!(matches!(error, Error::Journal(JournalRefusal::Behind { after: 1, last: 2 })));
    assert_eq!(everything(&store), before);
    journal.writes.lock().unwrap().pop();

    // A batch refused by the store (gathered before a move) is never journaled.
    let outcome =
        store.commit_batch(Position::block_start(2), &[], Position::block_start(9), &[]).unwrap();
    assert!(matches!(outcome, CommitOutcome::CheckpointMoved { .. }));
    assert_eq!(journal.writes.lock().unwrap().len(), 1);
    assert_eq!(everything(&store), before);
}
