//! Which message nonces are stored and which are missing between them: the contract counts its
//! messages, so a gap is a message the node did not see.

use alloy::primitives::U256;
use ferry_primitives::NonceGap;
use std::collections::BTreeMap;

/// Which message nonces are stored, as disjoint ranges, and which are missing between them.
///
/// The messaging contract numbers its messages with a counter, so a nonce missing between two
/// stored ones is a message the node did not see: a provider dropped a log, or the start block
/// was wrong. Rewinding over the range stores it and closes the gap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NonceTracker {
    /// first → last of each stored run, disjoint and not adjacent.
    runs: BTreeMap<U256, U256>,
}

impl NonceTracker {
    /// A tracker holding `nonces`.
    pub fn from_nonces(nonces: impl IntoIterator<Item = U256>) -> Self {
        let mut tracker = Self::default();
        for nonce in nonces {
            tracker.insert(nonce);
        }
        tracker
    }

    /// A tracker holding the runs `(first, last)` of stored nonces: ascending, disjoint and
    /// not adjacent, as [`ferry_storage::Store::stored_nonce_runs`] reads them back.
    pub fn from_runs(runs: impl IntoIterator<Item = (U256, U256)>) -> Self {
        Self { runs: runs.into_iter().collect() }
    }

    /// Records `nonce` as stored.
    pub fn insert(&mut self, nonce: U256) {
        let below = self.runs.range(..=nonce).next_back().map(|(first, last)| (*first, *last));
        if let Some((_, last)) = below
            && last >= nonce
        {
            return;
        }
        let joins_below = below.filter(|(_, last)| *last + U256::from(1) == nonce);
        let above = nonce.checked_add(U256::from(1)).and_then(|next| self.runs.remove_entry(&next));
        let first = joins_below.map_or(nonce, |(first, _)| first);
        let last = above.map_or(nonce, |(_, last)| last);
        self.runs.insert(first, last);
    }

    /// Records `nonce` as no longer stored (a reorg orphaned the message that held it).
    pub fn remove(&mut self, nonce: U256) {
        let Some((first, last)) =
            self.runs.range(..=nonce).next_back().map(|(first, last)| (*first, *last))
        else {
            return;
        };
        if last < nonce {
            return;
        }
        self.runs.remove(&first);
        if first < nonce {
            self.runs.insert(first, nonce - U256::from(1));
        }
        if nonce < last {
            self.runs.insert(nonce + U256::from(1), last);
        }
    }

    /// The lowest and highest stored nonce.
    pub fn range(&self) -> Option<(U256, U256)> {
        let first = self.runs.first_key_value()?.0;
        let last = self.runs.last_key_value()?.1;
        Some((*first, *last))
    }

    /// The missing runs between stored nonces, lowest first.
    pub fn gaps(&self) -> Vec<NonceGap> {
        self.runs
            .iter()
            .zip(self.runs.iter().skip(1))
            .map(|((_, last), (next_first, _))| NonceGap {
                first: *last + U256::from(1),
                last: *next_first - U256::from(1),
            })
            .collect()
    }

    /// How many nonces are missing between the lowest and highest stored one.
    pub fn missing(&self) -> U256 {
        self.gaps().iter().map(|gap| gap.last - gap.first + U256::from(1)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(nonces: &[u64]) -> NonceTracker {
        NonceTracker::from_nonces(nonces.iter().copied().map(U256::from))
    }

    fn gap(first: u64, last: u64) -> NonceGap {
        NonceGap { first: U256::from(first), last: U256::from(last) }
    }

    #[test]
    fn runs_read_back_from_the_store_make_the_same_tracker_as_their_nonces() {
        let nonces = [0, 1, 2, 5, 6, 9];
        let runs = [(0, 2), (5, 6), (9, 9)].map(|(a, b)| (U256::from(a), U256::from(b)));
        assert_eq!(NonceTracker::from_runs(runs), tracker(&nonces));
        assert_eq!(tracker(&nonces).gaps(), [gap(3, 4), gap(7, 8)]);
    }

    #[test]
    fn contiguous_nonces_have_no_gap_in_any_insertion_order() {
        assert_eq!(tracker(&[0, 1, 2, 3]).gaps(), []);
        assert_eq!(tracker(&[3, 1, 0, 2]).gaps(), []);
        assert_eq!(tracker(&[3, 1, 0, 2, 2, 1]).range(), Some((U256::ZERO, U256::from(3))));
        assert_eq!(tracker(&[]).range(), None);
    }

    #[test]
    fn missing_nonces_are_reported_as_ranges_and_closed_when_filled() {
        let mut nonces = tracker(&[0, 1, 5, 6, 9]);
        assert_eq!(nonces.gaps(), [gap(2, 4), gap(7, 8)]);
        assert_eq!(nonces.missing(), U256::from(5));
        for filled in [3, 2, 4, 8] {
            nonces.insert(U256::from(filled));
        }
        assert_eq!(nonces.gaps(), [gap(7, 7)]);
        nonces.insert(U256::from(7));
        assert_eq!(nonces.gaps(), []);
        assert_eq!(nonces.range(), Some((U256::ZERO, U256::from(9))));
    }

    #[test]
    fn a_removed_nonce_opens_a_gap_that_its_return_closes() {
        let mut nonces = tracker(&[0, 1, 2, 3, 4]);
        nonces.remove(U256::from(2));
        assert_eq!(nonces.gaps(), [gap(2, 2)]);
        nonces.remove(U256::from(4));
        nonces.remove(U256::from(0));
        nonces.remove(U256::from(9));
        assert_eq!(nonces.range(), Some((U256::from(1), U256::from(3))));
        nonces.insert(U256::from(2));
        assert_eq!(nonces.gaps(), []);
    }

    #[test]
    fn the_largest_nonce_does_not_overflow() {
        let mut nonces = tracker(&[1]);
        nonces.insert(U256::MAX);
        assert_eq!(
            nonces.gaps(),
            [NonceGap { first: U256::from(2), last: U256::MAX - U256::from(1) }]
        );
    }
}
