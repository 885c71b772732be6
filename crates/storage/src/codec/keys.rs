//! Every key type: fixed-width big-endian where it is a number, so that MDBX's byte order is
//! numeric order; names for settings and singleton rows.

use super::{DecodeError, DecodeResult, Key, fields::fixed};
use ferry_primitives::{B256, Seq, U256};

impl Key for u64 {
    fn encode(&self) -> impl AsRef<[u8]> {
        self.to_be_bytes()
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed(bytes).map(Self::from_be_bytes)
    }
}

impl Key for Seq {
    fn encode(&self) -> impl AsRef<[u8]> {
        self.0.to_be_bytes()
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        <u64 as Key>::decode(bytes).map(Self)
    }
}

impl Key for B256 {
    fn encode(&self) -> impl AsRef<[u8]> {
        self.0
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed::<32>(bytes).map(Self::from)
    }
}

impl Key for U256 {
    fn encode(&self) -> impl AsRef<[u8]> {
        self.to_be_bytes::<32>()
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed::<32>(bytes).map(Self::from_be_bytes)
    }
}

/// A key of the hash index: the partition of the message's seq, then the message's hash (see
/// `store/index.rs` for why the partition comes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HashKey {
    /// The seq of the message's entry divided by the partition size.
    pub(crate) partition: u64,
    /// The message's hash.
    pub(crate) hash: B256,
}

impl Key for HashKey {
    fn encode(&self) -> impl AsRef<[u8]> {
        let mut bytes = [0; 40];
        bytes[..8].copy_from_slice(&self.partition.to_be_bytes());
        bytes[8..].copy_from_slice(self.hash.as_slice());
        bytes
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let bytes: [u8; 40] = fixed(bytes)?;
        let (partition, hash) = bytes.split_at(8);
        Ok(Self { partition: <u64 as Key>::decode(partition)?, hash: <B256 as Key>::decode(hash)? })
    }
}

/// A key of the nonce index: a message's nonce, then the seq of its entry, so that the
/// messages stored with one nonce (several after reorgs) are neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonceKey {
    /// The message's nonce.
    pub(crate) nonce: U256,
    /// The seq of its message entry.
    pub(crate) seq: Seq,
}

impl Key for NonceKey {
    fn encode(&self) -> impl AsRef<[u8]> {
        let mut bytes = [0; 40];
        bytes[..32].copy_from_slice(&self.nonce.to_be_bytes::<32>());
        bytes[32..].copy_from_slice(&self.seq.0.to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let bytes: [u8; 40] = fixed(bytes)?;
        let (nonce, seq) = bytes.split_at(32);
        Ok(Self { nonce: <U256 as Key>::decode(nonce)?, seq: <Seq as Key>::decode(seq)? })
    }
}

/// Two numbers in one key, compared first by the first: `(block, seq)`, `(message, notice)`.
impl<A: From<u64> + Into<u64> + Copy, B: From<u64> + Into<u64> + Copy> Key for (A, B) {
    fn encode(&self) -> impl AsRef<[u8]> {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.0.into().to_be_bytes());
        bytes[8..].copy_from_slice(&self.1.into().to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let bytes: [u8; 16] = fixed(bytes)?;
        let (first, second) = bytes.split_at(8);
        Ok((A::from(<u64 as Key>::decode(first)?), B::from(<u64 as Key>::decode(second)?)))
    }
}

/// A key that is a name: a Meta setting, or the only row of a singleton table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Name(pub(crate) &'static str);

/// The Checkpoint table's only key.
pub(crate) const CHECKPOINT: Name = Name("checkpoint");
/// The WindowState table's only key.
pub(crate) const WINDOW: Name = Name("window");
/// The Halt table's only key.
pub(crate) const HALT: Name = Name("halt");

impl Key for Name {
    fn encode(&self) -> impl AsRef<[u8]> {
        self.0.as_bytes()
    }

    fn decode(_: &[u8]) -> DecodeResult<Self> {
        Err(DecodeError::invalid("named keys are looked up by name, never listed"))
    }
}
