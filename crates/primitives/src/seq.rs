//! The sink sequence: each entry's offset in ferry's log, by which consumers resume.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The sink sequence number: the append-only offset a message gets when it is stored.
///
/// Seqs start at 0, are contiguous and are never reused or rewound, whatever happens to the
/// source checkpoint; consumers resume by seq, as with a Kafka offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// The first seq ever assigned.
    pub const ZERO: Self = Self(0);

    /// The seq after this one.
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Seq {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

impl From<Seq> for u64 {
    fn from(seq: Seq) -> Self {
        seq.0
    }
}

impl<'de> Deserialize<'de> for Seq {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::quantity::deserialize(deserializer).map(Self)
    }
}
