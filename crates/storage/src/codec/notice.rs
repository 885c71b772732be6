//! The Notices and Orphans values: log entries that are not messages, and what orphaned a
//! message.

use super::{
    ChangeRecord, DecodeError, DecodeResult, Fields, Value,
    message::{decode_origin, encode_origin},
    put_optional_u64,
};
use crate::models::KnownHeads;
use ferry_primitives::{Origin, Seq};

/// What a notice says about the message it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoticeKind {
    /// A reorg removed it.
    Removed,
    /// It is on the canonical chain again.
    Reincluded,
    /// A lifecycle event changed its state, or a reorg removed one (schema version 3).
    StateChanged(ChangeRecord),
}

/// A Notices value: a log entry that is not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoticeRecord {
    pub(crate) kind: NoticeKind,
    /// The seq of the message entry.
    pub(crate) message: Seq,
    /// The reorg it comes from: always one for a removal or a re-inclusion, and for a state
    /// change that a reorg reverted.
    pub(crate) reorg: Option<u64>,
    /// Where the message was removed from, or included again; for a state change, where the
    /// message was when it changed.
    pub(crate) origin: Origin,
    /// The heads when it was written.
    pub(crate) heads: KnownHeads,
}

impl Value for NoticeRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        // Removals and re-inclusions keep the layout of schema version 2.
        buf.push(match self.kind {
            NoticeKind::Removed => 1,
            NoticeKind::Reincluded => 2,
            NoticeKind::StateChanged(_) => 3,
        });
        buf.extend_from_slice(&self.message.0.to_be_bytes());
        match self.kind {
            NoticeKind::StateChanged(_) => put_optional_u64(self.reorg, buf),
            _ => buf.extend_from_slice(
                &self.reorg.expect("removals and re-inclusions come from a reorg").to_be_bytes(),
            ),
        }
        encode_origin(&self.origin, buf);
        put_optional_u64(self.heads.safe, buf);
        put_optional_u64(self.heads.finalized, buf);
        if let NoticeKind::StateChanged(change) = &self.kind {
            change.encode(buf);
        }
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let kind = fields.u8()?;
        let message = Seq(fields.u64()?);
        let reorg = match kind {
            1 | 2 => Some(fields.u64()?),
            3 => fields.optional_u64()?,
            other => return Err(DecodeError::invalid(format!("unknown notice kind {other}"))),
        };
        let origin = decode_origin(&mut fields)?;
        let heads = KnownHeads { safe: fields.optional_u64()?, finalized: fields.optional_u64()? };
        let kind = match kind {
            1 => NoticeKind::Removed,
            2 => NoticeKind::Reincluded,
            _ => NoticeKind::StateChanged(ChangeRecord::decode(&mut fields)?),
        };
        fields.end()?;
        Ok(Self { kind, message, reorg, origin, heads })
    }
}

/// An Orphans value: which reorg orphaned the message, and the entry that said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrphanRecord {
    pub(crate) reorg: u64,
    pub(crate) notice: Seq,
}

impl Value for OrphanRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.reorg.to_be_bytes());
        buf.extend_from_slice(&self.notice.0.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let record = Self { reorg: fields.u64()?, notice: Seq(fields.u64()?) };
        fields.end()?;
        Ok(record)
    }
}
