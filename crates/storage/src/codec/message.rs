//! The Messages value: a stored message, its hash and where it was logged.

use super::{DecodeError, DecodeResult, EncodeAs, Fields, Value, fields::fixed};
use ferry_primitives::{Address, B256, L1Message, Message, Origin, Position};

/// A Messages value: the message's hash and what was found on L1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageRecord {
    pub(crate) hash: B256,
    pub(crate) l1: L1Message,
}

/// A message to store, borrowed: encodes as a [`MessageRecord`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageRef<'a> {
    pub(crate) hash: B256,
    pub(crate) l1: &'a L1Message,
}

/// Length of a Messages value without its payload:
/// hash 32, from 20, to 32, selector 32, nonce 32, fee 32, block 8, block hash 32,
/// transaction hash 32, log index 8, payload length 4.
pub(super) const MESSAGE_HEADER_LEN: usize = 32 + 20 + 32 * 4 + 8 + 32 + 32 + 8 + 4;

impl EncodeAs<MessageRecord> for MessageRef<'_> {
    fn encode_as(&self, buf: &mut Vec<u8>) {
        let Message { from, to, selector, payload, nonce, fee } = &self.l1.message;
        buf.reserve(MESSAGE_HEADER_LEN + 32 * payload.len());
        buf.extend_from_slice(self.hash.as_slice());
        buf.extend_from_slice(from.as_slice());
        for felt in [to, selector, nonce, fee] {
            buf.extend_from_slice(&felt.to_be_bytes::<32>());
        }
        encode_origin(&self.l1.origin, buf);
        let payload_len =
            u32::try_from(payload.len()).expect("payload lengths are bounded by L1 gas");
        buf.extend_from_slice(&payload_len.to_be_bytes());
        for felt in payload {
            buf.extend_from_slice(&felt.to_be_bytes::<32>());
        }
    }
}

impl Value for MessageRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        MessageRef { hash: self.hash, l1: &self.l1 }.encode_as(buf);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        if bytes.len() < MESSAGE_HEADER_LEN {
            return Err(DecodeError::length(MESSAGE_HEADER_LEN, bytes.len()));
        }
        let payload_len =
            u32::from_be_bytes(fixed(&bytes[MESSAGE_HEADER_LEN - 4..MESSAGE_HEADER_LEN])?) as usize;
        let expected = MESSAGE_HEADER_LEN + 32 * payload_len;
        if bytes.len() != expected {
            return Err(DecodeError::length(expected, bytes.len()));
        }
        let mut fields = Fields(bytes);
        let hash = fields.b256()?;
        let from = Address::from_slice(fields.take(20)?);
        let (to, selector) = (fields.u256()?, fields.u256()?);
        let (nonce, fee) = (fields.u256()?, fields.u256()?);
        let origin = decode_origin(&mut fields)?;
        fields.take(4)?;
        let payload = (0..payload_len).map(|_| fields.u256()).collect::<DecodeResult<_>>()?;
        fields.end()?;
        let message = Message { from, to, selector, payload, nonce, fee };
        Ok(Self { hash, l1: L1Message { message, origin } })
    }
}

/// Block 8, block hash 32, transaction hash 32, log index 8.
/// Where an encoded Messages value says its message was logged, read off its fixed-width
/// origin without decoding the rest: for walks over every stored message.
pub(crate) fn logged_at(bytes: &[u8]) -> DecodeResult<Position> {
    /// The origin's block and log index, after hash 32, from 20 and four felts of 32.
    const BLOCK: usize = 32 + 20 + 32 * 4;
    const LOG_INDEX: usize = BLOCK + 8 + 32 + 32;
    if bytes.len() < MESSAGE_HEADER_LEN {
        return Err(DecodeError::length(MESSAGE_HEADER_LEN, bytes.len()));
    }
    let number = |at: usize| fixed::<8>(&bytes[at..at + 8]).map(u64::from_be_bytes);
    Ok(Position::new(number(BLOCK)?, number(LOG_INDEX)?))
}

pub(super) fn encode_origin(origin: &Origin, buf: &mut Vec<u8>) {
    buf.extend_from_slice(&origin.block_number.to_be_bytes());
    buf.extend_from_slice(origin.block_hash.as_slice());
    buf.extend_from_slice(origin.transaction_hash.as_slice());
    buf.extend_from_slice(&origin.log_index.to_be_bytes());
}

pub(super) fn decode_origin(fields: &mut Fields<'_>) -> DecodeResult<Origin> {
    Ok(Origin {
        block_number: fields.u64()?,
        block_hash: fields.b256()?,
        transaction_hash: fields.b256()?,
        log_index: fields.u64()?,
    })
}
