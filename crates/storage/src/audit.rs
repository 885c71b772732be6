//! The audit trail of checkpoint changes: who moved the checkpoint, when, from where to where,
//! and what a forward move skipped.

use crate::{
    Result,
    codec::{DecodeError, DecodeResult, Value},
    tables,
    txn::WriteTxn,
};
use ferry_primitives::{Checkpoint, Position};
use std::fmt;

/// What changed the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeMethod {
    /// `messaging_setCheckpoint`.
    SetCheckpoint,
    /// `messaging_resetCheckpoint`.
    ResetCheckpoint,
    /// The node itself, rewinding below a reorg.
    ReorgRewind,
}

impl ChangeMethod {
    const fn code(self) -> u8 {
        match self {
            Self::SetCheckpoint => 1,
            Self::ResetCheckpoint => 2,
            Self::ReorgRewind => 3,
        }
    }

    const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::SetCheckpoint),
            2 => Some(Self::ResetCheckpoint),
            3 => Some(Self::ReorgRewind),
            _ => None,
        }
    }

    /// The name operators see: the JSON-RPC method, or `reorgRewind`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SetCheckpoint => "messaging_setCheckpoint",
            Self::ResetCheckpoint => "messaging_resetCheckpoint",
            Self::ReorgRewind => "reorgRewind",
        }
    }
}

impl fmt::Display for ChangeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who asks for a checkpoint change; recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeOrigin {
    /// What asked.
    pub method: ChangeMethod,
    /// Who asked: the caller's socket address, or `node` for the node itself.
    pub caller: String,
}

/// What a forward move of the checkpoint jumped over: those blocks' logs are not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    /// Blocks jumped over, wholly or (at either end, when a position is inside a block)
    /// partly.
    pub blocks: u64,
    /// Messages stored already that were logged there (delivered before, skipped now).
    pub stored_messages: u64,
}

/// One recorded checkpoint change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the trail, from 0.
    pub id: u64,
    /// When, in Unix milliseconds.
    pub at_millis: u64,
    /// What changed it.
    pub method: ChangeMethod,
    /// Who asked.
    pub caller: String,
    /// The checkpoint before.
    pub previous: Checkpoint,
    /// The checkpoint after.
    pub current: Checkpoint,
    /// Set when the change moved reading forward: what it jumped over.
    pub skipped: Option<Skipped>,
}

/// Appends a checkpoint change to the audit trail, in the transaction that makes it.
pub(crate) fn append(
    txn: &WriteTxn<'_>,
    origin: &ChangeOrigin,
    (previous, current): (Checkpoint, Checkpoint),
    skipped: Option<Skipped>,
) -> Result<()> {
    let id = txn.last::<tables::Audit>()?.map_or(0, |(id, _)| id + 1);
    let record = AuditRecord {
        at_millis: crate::store::unix_millis(),
        method: origin.method,
        caller: origin.caller.clone(),
        previous,
        current,
        skipped,
    };
    txn.append::<tables::Audit>(&id, &record)
}

fn encode_checkpoint(checkpoint: Checkpoint, buf: &mut Vec<u8>) {
    buf.push(u8::from(checkpoint.is_some()));
    checkpoint.unwrap_or_default().encode_into(buf);
}

/// A flag byte then a position: `1` and the position, or `0` and zeros (one encoding per
/// value: anything else is corrupt).
fn decode_checkpoint(bytes: &[u8]) -> DecodeResult<Checkpoint> {
    match bytes.split_first() {
        Some((0, rest)) if rest.iter().all(|byte| *byte == 0) => Ok(None),
        Some((1, position)) => Position::decode(position).map(Some),
        Some((flag, _)) => {
            Err(DecodeError::invalid(format!("checkpoint flag {flag}: 0 (and zeros) or 1")))
        }
        None => Err(DecodeError::length(17, 0)),
    }
}

/// An Audit value: an [`AuditEntry`] without its id, which is the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditRecord {
    pub(crate) at_millis: u64,
    pub(crate) method: ChangeMethod,
    pub(crate) caller: String,
    pub(crate) previous: Checkpoint,
    pub(crate) current: Checkpoint,
    pub(crate) skipped: Option<Skipped>,
}

impl AuditRecord {
    pub(crate) fn entry(self, id: u64) -> AuditEntry {
        let Self { at_millis, method, caller, previous, current, skipped } = self;
        AuditEntry { id, at_millis, method, caller, previous, current, skipped }
    }

    /// Reads a value of schema version 4 and before, which had no `skipped` (the layout
    /// without its flag and counts): what the upgrade to version 5 rewrites.
    pub(crate) fn decode_v4(bytes: &[u8]) -> DecodeResult<Self> {
        const V4_HEADER_LEN: usize = 8 + 1 + 17 + 17;
        if bytes.len() < V4_HEADER_LEN {
            return Err(DecodeError::length(V4_HEADER_LEN, bytes.len()));
        }
        let mut upgraded = bytes[..V4_HEADER_LEN].to_vec();
        upgraded.extend_from_slice(&[0; SKIPPED_LEN]);
        upgraded.extend_from_slice(&bytes[V4_HEADER_LEN..]);
        Self::decode(&upgraded)
    }
}

fn encode_skipped(skipped: Option<Skipped>, buf: &mut Vec<u8>) {
    buf.push(u8::from(skipped.is_some()));
    let Skipped { blocks, stored_messages } =
        skipped.unwrap_or(Skipped { blocks: 0, stored_messages: 0 });
    buf.extend_from_slice(&blocks.to_be_bytes());
    buf.extend_from_slice(&stored_messages.to_be_bytes());
}

/// A flag byte then two counts: `1` and the counts, or `0` and zeros.
fn decode_skipped(bytes: &[u8]) -> DecodeResult<Option<Skipped>> {
    let count = |at: usize| <u64 as Value>::decode(&bytes[at..at + 8]);
    match bytes[0] {
        0 if bytes[1..].iter().all(|byte| *byte == 0) => Ok(None),
        1 => Ok(Some(Skipped { blocks: count(1)?, stored_messages: count(9)? })),
        flag => Err(DecodeError::invalid(format!("skipped flag {flag}: 0 (and zeros) or 1"))),
    }
}

/// The length of the `skipped` field: a flag and two counts.
const SKIPPED_LEN: usize = 1 + 8 + 8;

/// Audit value layout (schema version 5): time (u64), method (u8), previous (flag u8 +
/// position 16), current (flag u8 + position 16), skipped (flag u8 + blocks u64 + stored
/// messages u64), caller (UTF-8, the rest).
const HEADER_LEN: usize = 8 + 1 + 17 + 17 + SKIPPED_LEN;

impl Value for AuditRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.reserve(HEADER_LEN + self.caller.len());
        buf.extend_from_slice(&self.at_millis.to_be_bytes());
        buf.push(self.method.code());
        encode_checkpoint(self.previous, buf);
        encode_checkpoint(self.current, buf);
        encode_skipped(self.skipped, buf);
        buf.extend_from_slice(self.caller.as_bytes());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::length(HEADER_LEN, bytes.len()));
        }
        let at_millis = <u64 as Value>::decode(&bytes[..8])?;
        let method = ChangeMethod::from_code(bytes[8])
            .ok_or_else(|| DecodeError::invalid(format!("unknown change method {}", bytes[8])))?;
        let previous = decode_checkpoint(&bytes[9..26])?;
        let current = decode_checkpoint(&bytes[26..43])?;
        let skipped = decode_skipped(&bytes[43..HEADER_LEN])?;
        // Written from a String: bytes that are not UTF-8 are damage, not a caller.
        let caller = String::from_utf8(bytes[HEADER_LEN..].to_vec())
            .map_err(|error| DecodeError::invalid(format!("caller is not UTF-8: {error}")))?;
        Ok(Self { at_millis, method, caller, previous, current, skipped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let mut record = AuditRecord {
            at_millis: 1_700_000_000_123,
            method: ChangeMethod::ResetCheckpoint,
            caller: "127.0.0.1:4242".into(),
            previous: Some(Position::new(9, 2)),
            current: None,
            skipped: None,
        };
        let mut bytes = Vec::new();
        record.encode_into(&mut bytes);
        assert_eq!(AuditRecord::decode(&bytes).unwrap(), record);
        assert!(AuditRecord::decode(&bytes[..20]).is_err());
        assert_eq!(record.clone().entry(7).id, 7);

        record.skipped = Some(Skipped { blocks: 3, stored_messages: 2 });
        bytes.clear();
        record.encode_into(&mut bytes);
        assert_eq!(AuditRecord::decode(&bytes).unwrap(), record);
    }

    #[test]
    fn version_4_values_read_without_a_skip() {
        // Version 4: time, method, previous, current, caller.
        let mut v4 = 1_700_000_000_123u64.to_be_bytes().to_vec();
        v4.push(1);
        encode_checkpoint(Some(Position::new(9, 2)), &mut v4);
        encode_checkpoint(Some(Position::new(12, 0)), &mut v4);
        v4.extend_from_slice(b"127.0.0.1:4242");
        let record = AuditRecord::decode_v4(&v4).unwrap();
        assert_eq!(record.method, ChangeMethod::SetCheckpoint);
        assert_eq!(record.current, Some(Position::new(12, 0)));
        assert_eq!(record.caller, "127.0.0.1:4242");
        assert_eq!(record.skipped, None);
    }
}
