//! Reading a value's fixed-width fields off its front, and writing the optional ones.

use super::{DecodeError, DecodeResult};
use ferry_primitives::{B256, U256};

pub(crate) fn fixed<const N: usize>(bytes: &[u8]) -> DecodeResult<[u8; N]> {
    bytes.try_into().map_err(|_| DecodeError::length(N, bytes.len()))
}

/// Reads fixed-width fields off the front of a value whose length was checked.
pub(crate) struct Fields<'a>(pub(crate) &'a [u8]);

impl<'a> Fields<'a> {
    pub(crate) fn take(&mut self, len: usize) -> DecodeResult<&'a [u8]> {
        if self.0.len() < len {
            return Err(DecodeError::invalid(format!(
                "value ends {} bytes early",
                len - self.0.len()
            )));
        }
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        Ok(head)
    }

    pub(crate) fn b256(&mut self) -> DecodeResult<B256> {
        self.take(32).map(B256::from_slice)
    }

    pub(crate) fn u256(&mut self) -> DecodeResult<U256> {
        self.take(32).map(U256::from_be_slice)
    }

    pub(crate) fn u64(&mut self) -> DecodeResult<u64> {
        self.take(8).and_then(fixed).map(u64::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> DecodeResult<u32> {
        self.take(4).and_then(fixed).map(u32::from_be_bytes)
    }

    pub(crate) fn u8(&mut self) -> DecodeResult<u8> {
        Ok(self.take(1)?[0])
    }

    /// A flag byte then a `u64`: `1` and the value, or `0` and zeros. Anything else is
    /// refused as corrupt rather than read one way and written back another.
    pub(crate) fn optional_u64(&mut self) -> DecodeResult<Option<u64>> {
        let present = self.u8()?;
        let value = self.u64()?;
        match (present, value) {
            (1, value) => Ok(Some(value)),
            (0, 0) => Ok(None),
            (0, value) => Err(DecodeError::invalid(format!("absent value holding {value}"))),
            (flag, _) => Err(DecodeError::invalid(format!("presence flag {flag} (0 or 1)"))),
        }
    }

    pub(crate) fn end(self) -> DecodeResult<()> {
        match self.0.len() {
            0 => Ok(()),
            extra => Err(DecodeError::invalid(format!("{extra} bytes past the end of the value"))),
        }
    }
}

pub(crate) fn put_optional_u64(value: Option<u64>, buf: &mut Vec<u8>) {
    buf.push(u8::from(value.is_some()));
    buf.extend_from_slice(&value.unwrap_or(0).to_be_bytes());
}
