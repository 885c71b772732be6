//! Storing a refetched transaction: appended once at the end of the log with an audit entry
//! and the checkpoint unmoved; refused, with nothing written, at or after the checkpoint.

use super::*;

fn found<'a>(messages: &'a [L1Message], origin: &'a ChangeOrigin) -> FoundWrite<'a> {
    let transaction = messages[0].origin.transaction_hash;
    FoundWrite { transaction, messages, events: &[], origin }
}

#[test]
fn a_refetched_message_is_appended_once_and_the_checkpoint_stays() {
    let (_dir, store) = temp_store();
    let origin = ChangeOrigin { method: ChangeMethod::RefetchTransaction, caller: "t".into() };
    let read = [l1_message(0, 1, 0), l1_message(2, 3, 0)];
    committed(commit_from(&store, None, &read, Position::block_start(5)).unwrap());
    let missed = [l1_message(1, 2, 0)];

    let summary = store.store_found(found(&missed, &origin)).unwrap();
    assert_eq!((summary.first_seq, summary.stored, summary.entries), (Seq(2), 1, 1));
    let stored = all_messages(&store);
    assert_eq!(stored.len(), 3);
    assert_eq!((stored[2].seq, &stored[2].l1), (Seq(2), &missed[0]));
    assert_eq!(store.checkpoint().unwrap(), Some(Position::block_start(5)));
    let audit = store.checkpoint_history(1).unwrap();
    assert_eq!(audit[0].method, ChangeMethod::RefetchTransaction);
    assert_eq!(audit[0].previous, audit[0].current);

    // Found again: skipped, nothing appended.
    let again = store.store_found(found(&missed, &origin)).unwrap();
    assert_eq!((again.stored, again.skipped, again.entries), (0, 1, 0));
    assert_eq!(all_messages(&store).len(), 3);
}

#[test]
fn a_transaction_at_or_after_the_checkpoint_is_refused_and_writes_nothing() {
    let (_dir, store) = temp_store();
    let origin = ChangeOrigin { method: ChangeMethod::RefetchTransaction, caller: "t".into() };
    committed(commit_from(&store, None, &[l1_message(0, 1, 0)], Position::block_start(5)).unwrap());
    let audit_before = store.checkpoint_history(10).unwrap();
    for ahead in [l1_message(1, 5, 0), l1_message(1, 9, 3)] {
        let error = store.store_found(found(std::slice::from_ref(&ahead), &origin)).unwrap_err();
        let Error::NotReadYet { position, checkpoint } = error else { panic!("{error:?}") };
        assert_eq!((position, checkpoint), (ahead.origin.position(), Position::block_start(5)));
    }
    assert_eq!(all_messages(&store).len(), 1);
    assert_eq!(store.checkpoint_history(10).unwrap(), audit_before);
}
