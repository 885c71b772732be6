//! The Headers value: a block of the header window.

use super::{DecodeResult, Fields, Value};
use ferry_primitives::{B256, BlockHeader};

/// A Headers value: the block's hash and its parent's (the number is the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderValue {
    pub(crate) hash: B256,
    pub(crate) parent_hash: B256,
}

impl HeaderValue {
    pub(crate) const fn of(header: &BlockHeader) -> Self {
        Self { hash: header.hash, parent_hash: header.parent_hash }
    }

    pub(crate) const fn at(self, number: u64) -> BlockHeader {
        BlockHeader { number, hash: self.hash, parent_hash: self.parent_hash }
    }
}

impl Value for HeaderValue {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.hash.as_slice());
        buf.extend_from_slice(self.parent_hash.as_slice());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let value = Self { hash: fields.b256()?, parent_hash: fields.b256()? };
        fields.end()?;
        Ok(value)
    }
}
