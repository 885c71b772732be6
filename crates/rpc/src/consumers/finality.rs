//! What a consumer that waits for `safe` or `finalized` blocks is told, and when.
//!
//! Such a consumer reads the same log as everyone, with entries it must not see yet held back
//! and entries it must never see skipped, decided from the log alone (so that resuming from
//! any seq replays exactly what it was told before):
//!
//! - an inclusion (a message entry, or a re-inclusion) is told once its block is at or below
//!   the consumer's head, unless a later notice removed it before that: then it is skipped;
//! - a removal is told only if the block it removes the message from was already at or below
//!   the consumer's head when the removal was written (a finalized block replaced: the node
//!   halts on that, so a `finalized` consumer sees one only after an operator resolved it);
//! - the first entry not yet decided holds back everything after it: entries stay in seq order.
//!
//! The heads are those under which the node last linked its stored chain to the provider's
//! ([`ferry_storage::WindowBounds`], [`ferry_storage::Store::final_heads`]): fresh heads,
//! fetched before the node has seen a reorg, could call final a block it stored from a chain
//! that is gone.

use ferry_primitives::Finality;
use ferry_storage::{KnownHeads, Settlement};

/// Whether a consumer is told of an entry now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    /// Told now.
    Deliver,
    /// Never told: what it says was undone before it became final for the consumer.
    Skip,
    /// Not yet: its block is not final enough. Later entries wait for it.
    Wait,
}

/// Whether a consumer following `finality` is told of an entry settled so, given the heads
/// the store's chain was read under now.
pub(crate) fn visibility(
    settlement: Settlement,
    finality: Finality,
    heads: KnownHeads,
) -> Visibility {
    let recorded = |heads: KnownHeads| match finality {
        Finality::Safe => heads.safe,
        _ => heads.finalized,
    };
    if finality == Finality::Latest {
        return Visibility::Deliver;
    }
    let head_now = recorded(heads);
    let final_at = |head: Option<u64>, block: u64| head.is_some_and(|head| head >= block);
    match settlement {
        Settlement::Inclusion { block, retracted: Some(when) } => {
            if final_at(recorded(when), block) { Visibility::Deliver } else { Visibility::Skip }
        }
        Settlement::Inclusion { block, retracted: None } => {
            if final_at(head_now, block) {
                Visibility::Deliver
            } else {
                Visibility::Wait
            }
        }
        Settlement::Removal { block, recorded: when } => {
            if final_at(recorded(when), block) {
                Visibility::Deliver
            } else {
                Visibility::Skip
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads(safe: u64, finalized: u64) -> KnownHeads {
        KnownHeads { safe: Some(safe), finalized: Some(finalized) }
    }

    #[test]
    fn latest_consumers_are_told_everything_at_once() {
        let removal = Settlement::Removal { block: 99, recorded: KnownHeads::default() };
        assert_eq!(
            visibility(removal, Finality::Latest, KnownHeads::default()),
            Visibility::Deliver
        );
    }

    #[test]
    fn an_inclusion_waits_for_its_block_and_one_undone_before_that_is_skipped() {
        let now = heads(90, 80);
        let open = Settlement::Inclusion { block: 85, retracted: None };
        assert_eq!(visibility(open, Finality::Finalized, now), Visibility::Wait);
        assert_eq!(visibility(open, Finality::Safe, now), Visibility::Deliver);
        assert_eq!(visibility(open, Finality::Finalized, KnownHeads::default()), Visibility::Wait);
        let removed_early = KnownHeads { safe: Some(84), finalized: Some(70) };
        let undone = Settlement::Inclusion { block: 85, retracted: Some(removed_early) };
        assert_eq!(visibility(undone, Finality::Finalized, now), Visibility::Skip);
        assert_eq!(visibility(undone, Finality::Safe, now), Visibility::Skip);
        let removal = Settlement::Removal { block: 85, recorded: removed_early };
        assert_eq!(visibility(removal, Finality::Finalized, now), Visibility::Skip);
    }

    #[test]
    fn a_removal_of_a_block_already_final_is_told_with_the_inclusion_before_it() {
        let removed_late = KnownHeads { safe: Some(95), finalized: Some(90) };
        let inclusion = Settlement::Inclusion { block: 85, retracted: Some(removed_late) };
        let removal = Settlement::Removal { block: 85, recorded: removed_late };
        for finality in [Finality::Safe, Finality::Finalized] {
            assert_eq!(visibility(inclusion, finality, KnownHeads::default()), Visibility::Deliver);
            assert_eq!(visibility(removal, finality, KnownHeads::default()), Visibility::Deliver);
        }
    }
}
