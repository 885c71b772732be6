//! The byte encodings of keys and values: one explicit layout per table, versioned as a
//! whole by [`SCHEMA_VERSION`](crate::SCHEMA_VERSION) in the Meta table.
//!
//! Numbers in keys are fixed-width big-endian so that MDBX's lexicographic byte order is
//! numeric order: iterating Messages walks seqs upwards, and positions compare as they do in
//! Rust.

use ferry_primitives::{Address, B256, L1Message, Message, Origin, Position, Seq, U256};

/// The Checkpoint table's only key.
pub(crate) const CHECKPOINT_KEY: &[u8] = b"checkpoint";

/// Meta keys.
pub(crate) mod meta {
    pub(crate) const SCHEMA_VERSION: &[u8] = b"schema_version";
    pub(crate) const CHAIN_ID: &[u8] = b"chain_id";
    pub(crate) const CONTRACT: &[u8] = b"contract";
    pub(crate) const FROM_BLOCK: &[u8] = b"from_block";
}

/// A value whose bytes do not have the layout its table promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} bytes, found {found}")]
pub(crate) struct LengthMismatch {
    expected: usize,
    found: usize,
}

impl LengthMismatch {
    pub(crate) const fn new(expected: usize, found: usize) -> Self {
        Self { expected, found }
    }
}

pub(crate) type DecodeResult<T> = Result<T, LengthMismatch>;

fn fixed<const N: usize>(bytes: &[u8]) -> DecodeResult<[u8; N]> {
    bytes.try_into().map_err(|_| LengthMismatch { expected: N, found: bytes.len() })
}

pub(crate) const fn u64_key(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

pub(crate) fn decode_u64(bytes: &[u8]) -> DecodeResult<u64> {
    fixed(bytes).map(u64::from_be_bytes)
}

pub(crate) fn decode_u32(bytes: &[u8]) -> DecodeResult<u32> {
    fixed(bytes).map(u32::from_be_bytes)
}

pub(crate) fn decode_b256(bytes: &[u8]) -> DecodeResult<B256> {
    fixed::<32>(bytes).map(B256::from)
}

pub(crate) fn decode_address(bytes: &[u8]) -> DecodeResult<Address> {
    fixed::<20>(bytes).map(Address::from)
}

/// `block` then `index`, both big-endian, so encoded positions sort like [`Position`]s.
pub(crate) fn encode_position(position: Position) -> [u8; 16] {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&position.block.to_be_bytes());
    bytes[8..].copy_from_slice(&position.index.to_be_bytes());
    bytes
}

pub(crate) fn decode_position(bytes: &[u8]) -> DecodeResult<Position> {
    let bytes: [u8; 16] = fixed(bytes)?;
    let (block, index) = bytes.split_at(8);
    Ok(Position::new(decode_u64(block)?, decode_u64(index)?))
}

/// Length of a Messages value without its payload:
/// hash 32, from 20, to 32, selector 32, nonce 32, fee 32, block 8, block hash 32,
/// transaction hash 32, log index 8, payload length 4.
const MESSAGE_HEADER_LEN: usize = 32 + 20 + 32 * 4 + 8 + 32 + 32 + 8 + 4;

/// Appends the Messages value of `message` (whose hash is `hash`) to `buf`.
pub(crate) fn encode_message(hash: B256, l1: &L1Message, buf: &mut Vec<u8>) {
    let Message { from, to, selector, payload, nonce, fee } = &l1.message;
    let Origin { block_number, block_hash, transaction_hash, log_index } = &l1.origin;
    buf.reserve(MESSAGE_HEADER_LEN + 32 * payload.len());
    buf.extend_from_slice(hash.as_slice());
    buf.extend_from_slice(from.as_slice());
    for felt in [to, selector, nonce, fee] {
        buf.extend_from_slice(&felt.to_be_bytes::<32>());
    }
    buf.extend_from_slice(&block_number.to_be_bytes());
    buf.extend_from_slice(block_hash.as_slice());
    buf.extend_from_slice(transaction_hash.as_slice());
    buf.extend_from_slice(&log_index.to_be_bytes());
    let payload_len = u32::try_from(payload.len()).expect("payload lengths are bounded by L1 gas");
    buf.extend_from_slice(&payload_len.to_be_bytes());
    for felt in payload {
        buf.extend_from_slice(&felt.to_be_bytes::<32>());
    }
}

/// Reads fixed-width fields off the front of a value.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, len: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        head
    }

    fn b256(&mut self) -> B256 {
        B256::from_slice(self.take(32))
    }

    fn u256(&mut self) -> U256 {
        U256::from_be_slice(self.take(32))
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take(8).try_into().expect("took 8 bytes"))
    }
}

/// The position a Messages value was logged at, read without decoding the rest.
pub(crate) fn message_position(bytes: &[u8]) -> DecodeResult<Position> {
    if bytes.len() < MESSAGE_HEADER_LEN {
        return Err(LengthMismatch { expected: MESSAGE_HEADER_LEN, found: bytes.len() });
    }
    Ok(Position::new(decode_u64(&bytes[180..188])?, decode_u64(&bytes[252..260])?))
}

/// Decodes a Messages value into the message's hash and content.
pub(crate) fn decode_message(bytes: &[u8]) -> DecodeResult<(B256, L1Message)> {
    if bytes.len() < MESSAGE_HEADER_LEN {
        return Err(LengthMismatch { expected: MESSAGE_HEADER_LEN, found: bytes.len() });
    }
    let payload_len = decode_u32(&bytes[MESSAGE_HEADER_LEN - 4..MESSAGE_HEADER_LEN])? as usize;
    let expected = MESSAGE_HEADER_LEN + 32 * payload_len;
    if bytes.len() != expected {
        return Err(LengthMismatch { expected, found: bytes.len() });
    }
    let mut fields = Fields(bytes);
    let hash = fields.b256();
    let from = Address::from_slice(fields.take(20));
    let (to, selector, nonce, fee) = (fields.u256(), fields.u256(), fields.u256(), fields.u256());
    let block_number = fields.u64();
    let (block_hash, transaction_hash) = (fields.b256(), fields.b256());
    let log_index = fields.u64();
    fields.take(4);
    let payload = (0..payload_len).map(|_| fields.u256()).collect();
    let message = Message { from, to, selector, payload, nonce, fee };
    let origin = Origin { block_number, block_hash, transaction_hash, log_index };
    Ok((hash, L1Message { message, origin }))
}

/// The seq stored as a MessageHashes value or a Messages key.
pub(crate) fn decode_seq(bytes: &[u8]) -> DecodeResult<Seq> {
    decode_u64(bytes).map(Seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_u256() -> impl Strategy<Value = U256> {
        any::<[u8; 32]>().prop_map(U256::from_be_bytes)
    }

    prop_compose! {
        fn arb_l1_message()(
            from in any::<[u8; 20]>(),
            (to, selector, nonce, fee) in (arb_u256(), arb_u256(), arb_u256(), arb_u256()),
            payload in prop::collection::vec(arb_u256(), 0..8),
            block_number in any::<u64>(),
            (block_hash, transaction_hash) in (any::<[u8; 32]>(), any::<[u8; 32]>()),
            log_index in any::<u64>(),
        ) -> L1Message {
            L1Message {
                message: Message { from: Address::from(from), to, selector, payload, nonce, fee },
                origin: Origin {
                    block_number,
                    block_hash: B256::from(block_hash),
                    transaction_hash: B256::from(transaction_hash),
                    log_index,
                },
            }
        }
    }

    proptest! {
        #[test]
        fn big_endian_u64_keys_sort_in_numeric_order(a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(u64_key(a).cmp(&u64_key(b)), a.cmp(&b));
        }

        #[test]
        fn encoded_positions_sort_like_positions(
            a in (any::<u64>(), any::<u64>()),
            b in (any::<u64>(), any::<u64>()),
        ) {
            let (a, b) = (Position::new(a.0, a.1), Position::new(b.0, b.1));
            prop_assert_eq!(encode_position(a).cmp(&encode_position(b)), a.cmp(&b));
            prop_assert_eq!(decode_position(&encode_position(a)), Ok(a));
        }

        #[test]
        fn message_values_round_trip(l1 in arb_l1_message(), hash in any::<[u8; 32]>()) {
            let mut buf = Vec::new();
            encode_message(B256::from(hash), &l1, &mut buf);
            prop_assert_eq!(decode_message(&buf), Ok((B256::from(hash), l1)));
        }

        #[test]
        fn truncated_message_values_are_refused(l1 in arb_l1_message(), cut in 1usize..64) {
            let mut buf = Vec::new();
            encode_message(B256::ZERO, &l1, &mut buf);
            buf.truncate(buf.len().saturating_sub(cut));
            prop_assert!(decode_message(&buf).is_err());
        }
    }

    #[test]
    fn message_value_layout_is_pinned() {
        // Changing this layout means bumping SCHEMA_VERSION.
        let l1 = L1Message {
            message: Message {
                from: Address::repeat_byte(0x11),
                to: U256::from(2),
                selector: U256::from(3),
                payload: vec![U256::from(7)],
                nonce: U256::from(4),
                fee: U256::from(5),
            },
            origin: Origin {
                block_number: 6,
                block_hash: B256::repeat_byte(0x66),
                transaction_hash: B256::repeat_byte(0x77),
                log_index: 8,
            },
        };
        let mut buf = Vec::new();
        encode_message(B256::repeat_byte(0xaa), &l1, &mut buf);
        assert_eq!(buf.len(), MESSAGE_HEADER_LEN + 32);
        assert_eq!(&buf[..32], &[0xaa; 32]);
        assert_eq!(&buf[32..52], &[0x11; 20]);
        assert_eq!(buf[52 + 31], 2, "to");
        assert_eq!(buf[84 + 31], 3, "selector");
        assert_eq!(buf[116 + 31], 4, "nonce");
        assert_eq!(buf[148 + 31], 5, "fee");
        assert_eq!(&buf[180..188], &6u64.to_be_bytes());
        assert_eq!(&buf[188..220], &[0x66; 32]);
        assert_eq!(&buf[220..252], &[0x77; 32]);
        assert_eq!(&buf[252..260], &8u64.to_be_bytes());
        assert_eq!(&buf[260..264], &1u32.to_be_bytes());
        assert_eq!(buf[264 + 31], 7, "payload[0]");
    }
}
