//! Values that are plain numbers, hashes, positions or bytes.

use super::{DecodeError, DecodeResult, Fields, Value, fields::fixed};
use ferry_primitives::{B256, Position, Seq, U256};

impl Value for u64 {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed(bytes).map(Self::from_be_bytes)
    }
}

impl Value for Seq {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        self.0.encode_into(buf);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        <u64 as Value>::decode(bytes).map(Self)
    }
}

impl Value for B256 {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.as_slice());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed::<32>(bytes).map(Self::from)
    }
}

impl Value for U256 {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.to_be_bytes::<32>());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed::<32>(bytes).map(Self::from_be_bytes)
    }
}

/// The bytes of a Meta setting; each setting says how to read them.
impl Value for Vec<u8> {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        Ok(bytes.to_vec())
    }
}

/// Index tables keep their facts in their keys.
impl Value for () {
    fn encode_into(&self, _: &mut Vec<u8>) {}

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        match bytes.len() {
            0 => Ok(()),
            found => Err(DecodeError::length(0, found)),
        }
    }
}

/// `block` then `index`, both big-endian, so encoded positions sort like [`Position`]s.
impl Value for Position {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.block.to_be_bytes());
        buf.extend_from_slice(&self.index.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let position = Self::new(fields.u64()?, fields.u64()?);
        fields.end()?;
        Ok(position)
    }
}
