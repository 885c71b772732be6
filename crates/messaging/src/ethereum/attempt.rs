//! How one attempt at a request that is part of a gather failed: what the gather does next
//! depends on it (shrink the range, ask again, or give up).

use crate::CollectorError;

/// Why one attempt at a gather did not return it.
#[derive(Debug)]
pub(super) enum Attempt {
    /// The provider refused the log range as too large: ask for fewer blocks.
    Refused(CollectorError),
    /// The answers do not fit together (two chains, a fault, a lie): ask again.
    Inconsistent(String),
    /// A request failed for good.
    Failed(CollectorError),
}
