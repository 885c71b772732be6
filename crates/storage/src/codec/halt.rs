//! The Halt value.

use super::{DecodeError, DecodeResult, Fields, Value, put_optional_u64};
use crate::models::{HaltKind, HaltRecord};

impl Value for HaltRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.at_millis.to_be_bytes());
        buf.push(match self.kind {
            HaltKind::BeyondWindow => 1,
            HaltKind::BelowFinalized => 2,
        });
        buf.extend_from_slice(&self.replaced.number.to_be_bytes());
        buf.extend_from_slice(self.replaced.hash.as_slice());
        buf.extend_from_slice(&self.lowest_checked.to_be_bytes());
        put_optional_u64(self.common_ancestor, buf);
        put_optional_u64(self.finalized, buf);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let at_millis = fields.u64()?;
        let kind = match fields.u8()? {
            1 => HaltKind::BeyondWindow,
            2 => HaltKind::BelowFinalized,
            other => return Err(DecodeError::invalid(format!("unknown halt kind {other}"))),
        };
        let replaced = ferry_primitives::BlockRef { number: fields.u64()?, hash: fields.b256()? };
        let record = Self {
            at_millis,
            kind,
            replaced,
            lowest_checked: fields.u64()?,
            common_ancestor: fields.optional_u64()?,
            finalized: fields.optional_u64()?,
        };
        fields.end()?;
        Ok(record)
    }
}
