//! The WindowState value.

use super::{DecodeResult, Fields, Value, put_optional_u64};
use crate::models::WindowBounds;

impl Value for WindowBounds {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.floor.to_be_bytes());
        put_optional_u64(self.safe, buf);
        put_optional_u64(self.finalized, buf);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let bounds = Self {
            floor: fields.u64()?,
            safe: fields.optional_u64()?,
            finalized: fields.optional_u64()?,
        };
        fields.end()?;
        Ok(bounds)
    }
}
