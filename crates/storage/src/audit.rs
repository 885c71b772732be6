//! The audit trail of checkpoint changes: who moved the checkpoint, when, from where to where.

use crate::codec::{DecodeError, DecodeResult, Value};
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
}

impl AuditRecord {
    pub(crate) fn entry(self, id: u64) -> AuditEntry {
        let Self { at_millis, method, caller, previous, current } = self;
        AuditEntry { id, at_millis, method, caller, previous, current }
    }
}

/// Audit value layout: time (u64), method (u8), previous (flag u8 + position 16),
/// current (flag u8 + position 16), caller (UTF-8, the rest).
const HEADER_LEN: usize = 8 + 1 + 17 + 17;

impl Value for AuditRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.reserve(HEADER_LEN + self.caller.len());
        buf.extend_from_slice(&self.at_millis.to_be_bytes());
        buf.push(self.method.code());
        encode_checkpoint(self.previous, buf);
        encode_checkpoint(self.current, buf);
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
        // Written from a String: bytes that are not UTF-8 are damage, not a caller.
        let caller = String::from_utf8(bytes[HEADER_LEN..].to_vec())
            .map_err(|error| DecodeError::invalid(format!("caller is not UTF-8: {error}")))?;
        Ok(Self { at_millis, method, caller, previous, current })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let record = AuditRecord {
            at_millis: 1_700_000_000_123,
            method: ChangeMethod::ResetCheckpoint,
            caller: "127.0.0.1:4242".into(),
            previous: Some(Position::new(9, 2)),
            current: None,
        };
        let mut bytes = Vec::new();
        record.encode_into(&mut bytes);
        assert_eq!(AuditRecord::decode(&bytes).unwrap(), record);
        assert!(AuditRecord::decode(&bytes[..20]).is_err());
        assert_eq!(record.entry(7).id, 7);
    }
}
