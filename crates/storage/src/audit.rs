//! The audit trail of checkpoint changes: who moved the checkpoint, when, from where to where.

use crate::codec::{self, DecodeResult, LengthMismatch};
use ferry_primitives::Checkpoint;
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
    match checkpoint {
        Some(position) => {
            buf.push(1);
            buf.extend_from_slice(&codec::encode_position(position));
        }
        None => {
            buf.push(0);
            buf.extend_from_slice(&[0; 16]);
        }
    }
}

fn decode_checkpoint(bytes: &[u8]) -> DecodeResult<Checkpoint> {
    match bytes.split_first() {
        Some((0, _)) => Ok(None),
        Some((_, position)) => codec::decode_position(position).map(Some),
        None => Err(LengthMismatch::new(17, 0)),
    }
}

/// Audit value layout: time (u64), method (u8), previous (flag u8 + position 16),
/// current (flag u8 + position 16), caller (UTF-8, the rest).
const HEADER_LEN: usize = 8 + 1 + 17 + 17;

pub(crate) fn encode_entry(
    at_millis: u64,
    origin: &ChangeOrigin,
    previous: Checkpoint,
    current: Checkpoint,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN + origin.caller.len());
    buf.extend_from_slice(&at_millis.to_be_bytes());
    buf.push(origin.method.code());
    encode_checkpoint(previous, &mut buf);
    encode_checkpoint(current, &mut buf);
    buf.extend_from_slice(origin.caller.as_bytes());
    buf
}

pub(crate) fn decode_entry(id: u64, bytes: &[u8]) -> DecodeResult<AuditEntry> {
    if bytes.len() < HEADER_LEN {
        return Err(LengthMismatch::new(HEADER_LEN, bytes.len()));
    }
    let at_millis = codec::decode_u64(&bytes[..8])?;
    let method = ChangeMethod::from_code(bytes[8]).ok_or(LengthMismatch::new(HEADER_LEN, 0))?;
    let previous = decode_checkpoint(&bytes[9..26])?;
    let current = decode_checkpoint(&bytes[26..43])?;
    let caller = String::from_utf8_lossy(&bytes[HEADER_LEN..]).into_owned();
    Ok(AuditEntry { id, at_millis, method, caller, previous, current })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_primitives::Position;

    #[test]
    fn entries_round_trip() {
        let origin =
            ChangeOrigin { method: ChangeMethod::ResetCheckpoint, caller: "127.0.0.1:4242".into() };
        let bytes = encode_entry(1_700_000_000_123, &origin, Some(Position::new(9, 2)), None);
        let entry = decode_entry(7, &bytes).unwrap();
        assert_eq!(
            entry,
            AuditEntry {
                id: 7,
                at_millis: 1_700_000_000_123,
                method: ChangeMethod::ResetCheckpoint,
                caller: "127.0.0.1:4242".into(),
                previous: Some(Position::new(9, 2)),
                current: None,
            }
        );
        assert!(decode_entry(0, &bytes[..20]).is_err());
    }
}
