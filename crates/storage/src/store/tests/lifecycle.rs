//! Lifecycle events in the store: state changes and their notices, re-scans, unmatched events,
//! reorgs that remove events, and the counts.

use super::*;
use ferry_primitives::{
    LifecycleEvent, LifecycleKind, MessageState, StateCounts, test_utils::lifecycle_event,
};

fn event(
    chain: &Chain,
    kind: LifecycleKind,
    of: &L1Message,
    block: u64,
    index: u64,
) -> LifecycleEvent {
    let mut event = lifecycle_event(kind, of, block, index);
    event.origin.block_hash = chain.hash(block);
    event
}

/// Commits `blocks` of `chain` with its messages and lifecycle events, every header kept.
fn commit_with_events(
    store: &Store,
    chain: &Chain,
    blocks: std::ops::RangeInclusive<u64>,
    messages: &[L1Message],
    events: &[LifecycleEvent],
) -> CommitSummary {
    let headers: Vec<_> = blocks.clone().map(|number| chain.header(number)).collect();
    let hashes: Vec<_> = messages.iter().map(L1Message::hash).collect();
    committed(
        store
            .commit(&BatchWrite {
                from: store.resume_position(store.checkpoint().unwrap()),
                next: Position::block_start(blocks.end() + 1),
                messages,
                hashes: &hashes,
                events,
                headers: &headers,
                window_floor: 0,
                tags: tags(chain),
            })
            .unwrap(),
    )
}

fn state_of(store: &Store, message: &L1Message) -> MessageState {
    store.message_by_hash(message.hash()).unwrap().unwrap().lifecycle.state
}

fn counts(
    pending: u64,
    started: u64,
    cancelled: u64,
    consumed: u64,
    unmatched: u64,
) -> StateCounts {
    StateCounts { pending, cancellation_started: started, cancelled, consumed, unmatched }
}

#[test]
fn each_event_changes_the_state_with_a_notice_and_a_rescan_adds_nothing() {
    use LifecycleKind::*;
    let (_dir, store) = temp_store();
    let chain = Chain::new(1);
    let (a, b, c) = (chain.message(0, 2, 0), chain.message(1, 2, 1), chain.message(2, 3, 0));
    // Message a is cancelled; b is consumed in the batch that stores it; c stays pending.
    let first = commit_with_events(
        &store,
        &chain,
        0..=3,
        &[a.clone(), b.clone(), c.clone()],
        &[event(&chain, Consumed, &b, 3, 1), event(&chain, CancellationStarted, &a, 3, 2)],
    );
    assert_eq!((first.stored, first.state_changes, first.entries), (3, 2, 5));
    let second =
        commit_with_events(&store, &chain, 4..=5, &[], &[event(&chain, Cancelled, &a, 5, 0)]);
    assert_eq!((second.first_seq, second.state_changes), (Seq(5), 1));

    let entries: Vec<_> = store.entries_from(Seq::ZERO, 100).unwrap();
    let kinds: Vec<_> = entries.iter().map(|entry| entry.entry.kind).collect();
    use EntryKind::{Message, StateChanged};
    assert_eq!(kinds, [Message, Message, Message, StateChanged, StateChanged, StateChanged]);
    let changes: Vec<_> = entries[3..].iter().map(|entry| entry.entry.change.unwrap()).collect();
    assert_eq!(entries[3].entry.message_seq, Seq(1), "b's consumption");
    assert_eq!(
        (changes[0].previous, changes[0].current),
        (MessageState::Pending, MessageState::Consumed)
    );
    assert_eq!(changes[1].current, MessageState::CancellationStarted);
    assert_eq!(changes[1].at.delay_ends_at, Some(1_000 + 12 * 3 + 300));
    assert_eq!(
        (changes[2].previous, changes[2].current),
        (MessageState::CancellationStarted, MessageState::Cancelled)
    );
    assert!(changes.iter().all(|change| !change.reverted));
    // Every entry shows the message's state now, with the events behind it.
    let a_now = &entries[0].entry.lifecycle;
    assert_eq!(a_now.state, MessageState::Cancelled);
    assert_eq!(a_now.cancellation_started.map(|at| at.block), Some(3));
    assert_eq!(a_now.cancelled.map(|at| (at.block, at.timestamp)), Some((5, 1_060)));
    assert_eq!(entries[4].entry.lifecycle.state, MessageState::Cancelled);
    assert_eq!(state_of(&store, &b), MessageState::Consumed);
    assert_eq!(state_of(&store, &c), MessageState::Pending);
    assert_eq!(store.state_counts().unwrap(), counts(1, 0, 1, 1, 0));
    // A state change is final with the block of its event.
    assert_eq!(entries[5].settlement, Settlement::Inclusion { block: 5, retracted: None });

    // An operator re-scans everything: the same events at the same positions add nothing.
    store.set_checkpoint(Position::block_start(0)).unwrap();
    let rescan = commit_with_events(
        &store,
        &chain,
        0..=5,
        &[a.clone(), b.clone(), c],
        &[
            event(&chain, Consumed, &b, 3, 1),
            event(&chain, CancellationStarted, &a, 3, 2),
            event(&chain, Cancelled, &a, 5, 0),
        ],
    );
    assert_eq!((rescan.entries, rescan.state_changes), (0, 0));
    assert_eq!(store.state_counts().unwrap(), counts(1, 0, 1, 1, 0));
}

#[test]
fn an_event_about_a_message_not_stored_is_kept_and_matched_when_a_rescan_stores_it() {
    use LifecycleKind::*;
    let (dir, store) = temp_store();
    let chain = Chain::new(1);
    let early = chain.message(0, 1, 0);
    // The node starts at block 2: the message of block 1 is not read, its consumption is.
    store.set_checkpoint(Position::block_start(2)).unwrap();
    let summary =
        commit_with_events(&store, &chain, 2..=3, &[], &[event(&chain, Consumed, &early, 3, 0)]);
    assert_eq!((summary.entries, summary.unmatched_events), (0, 1));
    assert_eq!(store.state_counts().unwrap(), counts(0, 0, 0, 0, 1));
    let kept = store.message_lifecycle(early.hash()).unwrap().unwrap();
    assert_eq!((kept.seq, kept.lifecycle.state), (None, MessageState::Consumed));
    let fields = kept.unmatched.unwrap();
    assert_eq!(
        (fields.nonce, fields.payload),
        (early.message.nonce, early.message.payload.clone())
    );
    assert!(store.message_by_hash(early.hash()).unwrap().is_none());

    // Survives a reopen; an operator re-scans from block 0, which stores the message: its
    // entry carries the state, and the lifecycle is matched.
    drop(store);
    let store = Store::open(dir.path(), config(0)).unwrap();
    store.set_checkpoint(Position::block_start(0)).unwrap();
    let rescan = commit_with_events(
        &store,
        &chain,
        0..=3,
        std::slice::from_ref(&early),
        &[event(&chain, Consumed, &early, 3, 0)],
    );
    assert_eq!((rescan.stored, rescan.entries, rescan.unmatched_events), (1, 1, 0));
    assert_eq!(state_of(&store, &early), MessageState::Consumed);
    assert_eq!(store.state_counts().unwrap(), counts(0, 0, 0, 1, 0));
    let matched = store.message_lifecycle(early.hash()).unwrap().unwrap();
    assert_eq!((matched.seq, matched.unmatched), (Some(Seq(0)), None));
}

#[test]
fn a_reorg_that_removes_an_event_reverts_the_state_and_the_new_chain_sets_it_again() {
    use LifecycleKind::*;
    let (_dir, store) = temp_store();
    let chain = Chain::new(1);
    let message = chain.message(0, 2, 0);
    commit_with_events(&store, &chain, 0..=2, std::slice::from_ref(&message), &[]);
    commit_with_events(
        &store,
        &chain,
        3..=4,
        &[],
        &[event(&chain, CancellationStarted, &message, 4, 0)],
    );
    assert_eq!(store.state_counts().unwrap(), counts(0, 1, 0, 0, 0));

    // Blocks 3 and 4 are replaced: the cancellation is undone, the message (block 2) stays.
    let outcome = record(&store, Position::block_start(5), chain.header(2)).unwrap();
    let ReorgOutcome::Recorded(summary) = outcome else { panic!("{outcome:?}") };
    assert_eq!((summary.orphaned.len(), summary.reverted_changes), (0, 1));
    assert_eq!(summary.record.first_notice, Some(Seq(2)));
    assert_eq!(state_of(&store, &message), MessageState::Pending);
    assert_eq!(store.state_counts().unwrap(), counts(1, 0, 0, 0, 0));
    let entries = store.entries_from(Seq(1), 10).unwrap();
    let change = entries[1].entry.change.unwrap();
    assert!(change.reverted);
    assert_eq!(
        (change.previous, change.current),
        (MessageState::CancellationStarted, MessageState::Pending)
    );
    assert_eq!(entries[1].entry.reorg, Some(summary.id));
    // The change told before is marked retracted; the revert is told only to those who saw it.
    assert_eq!(entries[0].settlement, Settlement::Inclusion { block: 4, retracted: Some(HEADS) });
    assert_eq!(entries[1].settlement, Settlement::Removal { block: 4, recorded: HEADS });

    // The new chain holds the cancellation one block later, and the consumption after it.
    let fork = chain.forked_at(3, 2);
    let summary = commit_with_events(
        &store,
        &fork,
        3..=6,
        &[],
        &[
            event(&fork, CancellationStarted, &message, 5, 0),
            event(&fork, Consumed, &message, 6, 0),
        ],
    );
    assert_eq!(summary.state_changes, 2);
    let now = store.message_by_hash(message.hash()).unwrap().unwrap().lifecycle;
    assert_eq!(now.state, MessageState::Consumed);
    assert_eq!(now.cancellation_started.map(|at| at.block), Some(5));
    assert_eq!(store.state_counts().unwrap(), counts(0, 0, 0, 1, 0));

    // A reorg that removes the message's own block orphans it and undoes both events first.
    let outcome = record(&store, Position::block_start(7), fork.header(1)).unwrap();
    let ReorgOutcome::Recorded(summary) = outcome else { panic!("{outcome:?}") };
    assert_eq!((summary.orphaned, summary.reverted_changes), (vec![Seq(0)], 2));
    let tail: Vec<_> = store.entries_from(Seq(5), 10).unwrap();
    let kinds: Vec<_> = tail.iter().map(|entry| entry.entry.kind).collect();
    assert_eq!(kinds, [EntryKind::StateChanged, EntryKind::StateChanged, EntryKind::Removed]);
    let undone: Vec<_> = tail[..2].iter().map(|entry| entry.entry.change.unwrap().event).collect();
    assert_eq!(undone, [Consumed, CancellationStarted], "newest first");
    assert_eq!(store.state_counts().unwrap(), counts(0, 0, 0, 0, 0));
}

#[test]
fn a_version_2_database_is_migrated_with_empty_lifecycles() {
    let (dir, store) = temp_store();
    let batch = [l1_message(0, 3, 0)];
    committed(commit_from(&store, None, &batch, Position::block_start(5)).unwrap());
    let txn = store.write().unwrap();
    txn.put::<tables::Meta>(&crate::codec::Name("schema_version"), &2u32.to_be_bytes().to_vec())
        .unwrap();
    txn.commit("test").unwrap();
    drop(store);
    let store = Store::open(dir.path(), config(0)).unwrap();
    assert_eq!(store.state_counts().unwrap(), counts(1, 0, 0, 0, 0));
    assert_eq!(state_of(&store, &batch[0]), MessageState::Pending);
    let version =
        store.read().unwrap().get::<tables::Meta>(&crate::codec::Name("schema_version")).unwrap();
    assert_eq!(version, Some(SCHEMA_VERSION.to_be_bytes().to_vec()));
}

#[test]
fn an_operator_resolving_a_halt_undoes_the_events_from_the_position_set() {
    use LifecycleKind::*;
    let (_dir, store) = temp_store();
    let chain = Chain::new(1);
    let (kept, late) = (chain.message(0, 2, 0), chain.message(1, 6, 0));
    commit_with_events(
        &store,
        &chain,
        0..=9,
        &[kept.clone(), late],
        &[event(&chain, Consumed, &kept, 3, 0), event(&chain, CancellationStarted, &kept, 5, 0)],
    );
    assert_eq!(state_of(&store, &kept), MessageState::Consumed);
    let halt = beyond_window(&chain);
    assert!(store.record_halt(Position::block_start(10), &halt).unwrap());
    let resolved =
        store.change_checkpoint(CheckpointWrite::to(Some(Position::block_start(4)))).unwrap();
    let resolved = resolved.resolved.unwrap();
    // The started cancellation (block 5, after the consumption: it changed nothing) is
    // dropped without a notice; the consumption of block 3 stays; the message of block 6 is
    // orphaned.
    assert_eq!((resolved.orphaned, resolved.reverted_changes), (vec![Seq(1)], 0));
    assert_eq!(state_of(&store, &kept), MessageState::Consumed);
    let lifecycle = store.message_by_hash(kept.hash()).unwrap().unwrap().lifecycle;
    assert_eq!(lifecycle.cancellation_started, None);
    assert_eq!(store.state_counts().unwrap(), counts(0, 0, 0, 1, 0));
    // Resolving lower undoes the consumption too, with a notice.
    assert!(store.record_halt(Position::block_start(4), &halt).unwrap());
    let resolved =
        store.change_checkpoint(CheckpointWrite::to(Some(Position::block_start(3)))).unwrap();
    assert_eq!(resolved.resolved.unwrap().reverted_changes, 1);
    assert_eq!(state_of(&store, &kept), MessageState::Pending);
    assert_eq!(store.state_counts().unwrap(), counts(1, 0, 0, 0, 0));
}

#[test]
fn a_message_stored_by_a_batch_without_events_still_takes_over_its_unmatched_lifecycle() {
    use LifecycleKind::*;
    let (_dir, store) = temp_store();
    let chain = Chain::new(1);
    let early = chain.message(0, 1, 0);
    store.set_checkpoint(Position::block_start(2)).unwrap();
    commit_with_events(&store, &chain, 2..=3, &[], &[event(&chain, Consumed, &early, 3, 0)]);
    assert_eq!(store.state_counts().unwrap(), counts(0, 0, 0, 0, 1));
    // The re-scan's batch covers the message's block only: no event comes with it.
    store.set_checkpoint(Position::block_start(0)).unwrap();
    let summary = commit_with_events(&store, &chain, 0..=1, std::slice::from_ref(&early), &[]);
    assert_eq!((summary.stored, summary.state_changes), (1, 0));
    assert_eq!(state_of(&store, &early), MessageState::Consumed);
    assert_eq!(store.state_counts().unwrap(), counts(0, 0, 0, 1, 0));
}
