//! The Audit value: one recorded checkpoint change.

use super::{DecodeError, DecodeResult, Value};
use crate::models::{AuditEntry, ChangeMethod};
use ferry_primitives::{Checkpoint, Position, Skipped};

const fn method_code(method: ChangeMethod) -> u8 {
    match method {
        ChangeMethod::SetCheckpoint => 1,
        ChangeMethod::ResetCheckpoint => 2,
        ChangeMethod::ReorgRewind => 3,
        ChangeMethod::RefetchTransaction => 4,
    }
}

const fn method_of(code: u8) -> Option<ChangeMethod> {
    match code {
        1 => Some(ChangeMethod::SetCheckpoint),
        2 => Some(ChangeMethod::ResetCheckpoint),
        3 => Some(ChangeMethod::ReorgRewind),
        4 => Some(ChangeMethod::RefetchTransaction),
        _ => None,
    }
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
        buf.push(method_code(self.method));
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
        let method = method_of(bytes[8])
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
