//! The Reorgs value.

use super::{DecodeError, DecodeResult, Fields, Value, put_optional_u64};
use crate::models::{ReorgCause, ReorgRecord};
use ferry_primitives::{B256, Position, Seq};

impl Value for ReorgRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.at_millis.to_be_bytes());
        buf.push(match self.cause {
            ReorgCause::Detected => 1,
            ReorgCause::Resolved => 2,
            ReorgCause::Moved => 3,
        });
        self.rewind_to.encode_into(buf);
        for block in [self.common_ancestor, self.old_tip] {
            put_optional_u64(block.map(|block| block.number), buf);
            buf.extend_from_slice(block.map_or(B256::ZERO, |block| block.hash).as_slice());
        }
        buf.extend_from_slice(&self.orphaned.to_be_bytes());
        put_optional_u64(self.first_notice.map(|seq| seq.0), buf);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let at_millis = fields.u64()?;
        let cause = match fields.u8()? {
            1 => ReorgCause::Detected,
            2 => ReorgCause::Resolved,
            3 => ReorgCause::Moved,
            other => return Err(DecodeError::invalid(format!("unknown reorg cause {other}"))),
        };
        let rewind_to = Position::new(fields.u64()?, fields.u64()?);
        let mut block = || -> DecodeResult<_> {
            let number = fields.optional_u64()?;
            let hash = fields.b256()?;
            match number {
                Some(number) => Ok(Some(ferry_primitives::BlockRef { number, hash })),
                None if hash.is_zero() => Ok(None),
                None => Err(DecodeError::invalid(format!("absent block with hash {hash}"))),
            }
        };
        let (common_ancestor, old_tip) = (block()?, block()?);
        let orphaned = fields.u64()?;
        let first_notice = fields.optional_u64()?.map(Seq);
        fields.end()?;
        Ok(Self { at_millis, cause, rewind_to, common_ancestor, old_tip, orphaned, first_notice })
    }
}
