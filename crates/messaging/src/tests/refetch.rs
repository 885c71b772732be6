//! Replaying one transaction: a message the provider dropped is stored by refetching its
//! transaction, once, without moving the checkpoint; a transaction L1 does not hold, or one
//! the node has not read yet, is refused with nothing written.

use super::harness::Harness;
use crate::ControllerError;
use alloy::primitives::U256;
use ferry_primitives::{B256, Position, Seq};
use ferry_storage::ChangeMethod;

#[tokio::test]
async fn a_message_the_provider_dropped_is_stored_once_by_refetching_its_transaction() {
    // The provider drops the log of nonce 1 (block 2) from every range it answers.
    let h = Harness::caught_up_without(4, Position::new(2, 0)).await;
    assert_eq!(h.snapshot().missing_nonces, U256::from(1));
    let checkpoint = h.checkpoint();
    let missed = h.chain.chain_messages().into_iter().find(|l1| l1.origin.block_number == 2);
    let missed = missed.unwrap();
    let transaction = missed.origin.transaction_hash;

    // A dry run proves it and says what would be stored; nothing changes.
    let preview = h.controller.refetch_transaction(transaction, "test", true).await.unwrap();
    assert!(preview.dry_run);
    assert_eq!(preview.block.number, 2);
    assert_eq!(preview.block.hash, h.chain.hash_of(2));
    assert_eq!(preview.messages.len(), 1);
    assert_eq!(preview.messages[0].hash, missed.hash());
    assert_eq!(preview.messages[0].nonce, U256::from(1));
    assert_eq!(preview.messages[0].stored_seq, None);
    assert_eq!(preview.stored, 0);
    assert_eq!(h.stored().len(), 3);

    // The refetch stores it at the end of the log, field by field as the chain holds it.
    let done = h.controller.refetch_transaction(transaction, "test", false).await.unwrap();
    assert_eq!((done.stored, done.reincluded), (1, 0));
    let stored = h.stored();
    assert_eq!(stored.len(), 4);
    let recovered = stored.iter().find(|m| m.l1.hash() == missed.hash()).unwrap();
    assert_eq!(recovered.seq, Seq(3));
    assert_eq!(recovered.l1, missed);
    h.assert_exactly_once(|_| true);
    assert_eq!(h.snapshot().nonce_gaps, []);
    assert_eq!(h.snapshot().missing_nonces, U256::ZERO);
    assert_eq!(*h.status.subscribe_last_seq().borrow(), Some(Seq(3)));
    // The checkpoint did not move; the trail says who stored what.
    assert_eq!(h.checkpoint(), checkpoint);
    let audit = h.controller.history(1).unwrap();
    assert_eq!(audit[0].method, ChangeMethod::RefetchTransaction);
    assert_eq!(audit[0].previous, audit[0].current);
    assert!(audit[0].caller.contains(&transaction.to_string()), "{}", audit[0].caller);

    // Refetching it again finds it stored and writes nothing.
    let again = h.controller.refetch_transaction(transaction, "test", false).await.unwrap();
    assert_eq!((again.stored, again.messages[0].stored_seq), (0, Some(Seq(3))));
    assert_eq!(h.stored().len(), 4);

    // New blocks still flow after it, in order.
    h.chain.unhide_logs();
    h.chain.mine(1);
    h.caught_up().await;
    h.assert_exactly_once(|_| true);
    assert_eq!(h.stored().last().unwrap().seq, Seq(4));
}

#[tokio::test]
async fn a_transaction_l1_does_not_hold_or_the_node_has_not_read_is_refused() {
    let mut h = Harness::new(2, 100, 0);
    for _ in 0..6 {
        h.chain.mine(1);
    }
    h.start();
    // Two confirmations: blocks 5 and 6 are not read yet.
    h.wait_for_checkpoint(4).await;
    let before = (h.stored(), h.checkpoint(), h.controller.history(10).unwrap());

    let unknown = B256::repeat_byte(0x77);
    let refused = h.controller.refetch_transaction(unknown, "test", false).await.unwrap_err();
    let ControllerError::RefetchRefused { transaction, reason } = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(transaction, unknown);
    assert!(reason.contains("no such transaction"), "{reason}");

    // The newest block is not confirmed: the node reads it later, through the range.
    let newest = h.chain.chain_messages().pop().unwrap();
    let refused = h
        .controller
        .refetch_transaction(newest.origin.transaction_hash, "test", false)
        .await
        .unwrap_err();
    let ControllerError::RefetchRefused { reason, .. } = refused else { panic!("{refused:?}") };
    assert!(reason.contains("final") || reason.contains("checkpoint"), "{reason}");

    // A reorg the node has not seen yet (it is stopped) replaces blocks 4 to 6.
    h.stop().await;
    let in_block_4 = |h: &Harness| {
        let message = h.chain.chain_messages().into_iter().find(|l1| l1.origin.block_number == 4);
        message.unwrap().origin.transaction_hash
    };
    let replaced = in_block_4(&h);
    h.chain.reorg_with_new_messages(3, &[1, 1, 1]);
    // A transaction whose block was replaced is no longer on L1.
    let refused = h.controller.refetch_transaction(replaced, "test", false).await.unwrap_err();
    let ControllerError::RefetchRefused { reason, .. } = refused else { panic!("{refused:?}") };
    assert!(reason.contains("no such transaction"), "{reason}");
    // One in the new block 4 is refused while the window still holds the old block there.
    let replacing = in_block_4(&h);
    let refused = h.controller.refetch_transaction(replacing, "test", false).await.unwrap_err();
    let ControllerError::RefetchRefused { reason, .. } = refused else { panic!("{refused:?}") };
    assert!(reason.contains("disagree"), "{reason}");

    assert_eq!((h.stored(), h.checkpoint(), h.controller.history(10).unwrap()), before);
}
