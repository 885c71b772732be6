//! An L1→L2 message, where it was logged, what the store keeps of it, and Starknet's message
//! hash (the deduplication key and the contract's own `l1ToL2Messages` key).

use crate::{Inclusion, Lifecycle, Position, Seq};
use alloy_primitives::{Address, B256, U256, keccak256};
use serde::{Deserialize, Serialize};

/// An L1→L2 message as the messaging contract logs it in `LogMessageToL2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// The L1 address that sent the message (`msg.sender` of `sendMessageToL2`).
    pub from: Address,
    /// The L2 contract the message is for (a felt).
    pub to: U256,
    /// The L2 entry point selector (a felt).
    pub selector: U256,
    /// The message payload (felts).
    pub payload: Vec<U256>,
    /// The contract's message counter when the message was sent.
    pub nonce: U256,
    /// The fee paid on L1 for the L2 execution, in wei.
    pub fee: U256,
}

impl Message {
    /// Starknet's L1→L2 message hash, the key under which the messaging contract records the
    /// message in `l1ToL2Messages`, and ferry's deduplication key:
    ///
    /// `keccak256(abi.encodePacked(uint256(from), to, nonce, selector, payload.length, payload))`
    ///
    /// The fee is not part of it, so two messages that differ only by fee hash the same; the
    /// contract's nonce makes that impossible for real messages.
    pub fn hash(&self) -> B256 {
        message_hash(self.from, self.to, self.nonce, self.selector, &self.payload)
    }
}

/// [`Message::hash`] of a message's fields; lifecycle events carry the same fields, without
/// the fee.
pub(crate) fn message_hash(
    from: Address,
    to: U256,
    nonce: U256,
    selector: U256,
    payload: &[U256],
) -> B256 {
    let mut packed = Vec::with_capacity(32 * (5 + payload.len()));
    packed.extend_from_slice(from.into_word().as_slice());
    packed.extend_from_slice(&to.to_be_bytes::<32>());
    packed.extend_from_slice(&nonce.to_be_bytes::<32>());
    packed.extend_from_slice(&selector.to_be_bytes::<32>());
    packed.extend_from_slice(&U256::from(payload.len()).to_be_bytes::<32>());
    for felt in payload {
        packed.extend_from_slice(&felt.to_be_bytes::<32>());
    }
    keccak256(packed)
}

/// Where on L1 a message was logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    /// Number of the block that holds the log.
    #[serde(rename = "block", deserialize_with = "crate::quantity::deserialize")]
    pub block_number: u64,
    /// Hash of that block; tells which fork the message was read from.
    pub block_hash: B256,
    /// Hash of the transaction that emitted the log.
    pub transaction_hash: B256,
    /// The log's index within its block (not within its transaction).
    #[serde(deserialize_with = "crate::quantity::deserialize")]
    pub log_index: u64,
}

impl Origin {
    /// The log's position in the L1 log stream.
    pub const fn position(&self) -> Position {
        Position::new(self.block_number, self.log_index)
    }
}

/// A message together with where it was logged: what the collector finds on L1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct L1Message {
    /// The message's content.
    #[serde(flatten)]
    pub message: Message,
    /// Where it was logged.
    #[serde(flatten)]
    pub origin: Origin,
}

impl L1Message {
    /// The message hash, see [`Message::hash`].
    pub fn hash(&self) -> B256 {
        self.message.hash()
    }
}

/// A message as the store holds it: its seq, its hash, what was found on L1 and whether it is
/// still on the canonical chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    /// The seq of the log entry that first delivered it.
    pub seq: Seq,
    /// The message hash, see [`Message::hash`].
    pub hash: B256,
    /// The message and its origin: where it is on the canonical chain (after a re-inclusion,
    /// where it was included again), or where it was when a reorg removed it.
    #[serde(flatten)]
    pub l1: L1Message,
    /// Whether it is on the canonical chain.
    #[serde(default)]
    pub inclusion: Inclusion,
    /// The reorg that orphaned it, while it is orphaned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorg: Option<u64>,
    /// Where it stands on L1: pending, cancellation started, cancelled or consumed.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256, uint};

    fn message(payload: Vec<U256>, nonce: U256, fee: U256) -> Message {
        Message {
            from: address!("0xbe3C44c09bc1a3566F3e1CA12e5AbA0fA4Ca72Be"),
            to: uint!(0x73314940630fd6dcda0d772d4c972c4e0a9946bef9dabf4ef84eda8ef542b82_U256),
            selector: uint!(0x2d757788a8d8d6f21d1cd40bce38a8222d70654214e96ff95d8086e684fbee5_U256),
            payload,
            nonce,
            fee,
        }
    }

    // Expected hashes were computed outside this code base, with Foundry's `cast` 1.7.1, by
    // `scripts/message-hash-vectors.sh`: `cast keccak` over the concatenation of
    // `cast to-uint256` of from, to, nonce, selector, payload.length and each payload element
    // (abi.encodePacked pads every one of them to 32 bytes). The second vector was also checked
    // with `cast keccak $(cast abi-encode --packed "f(uint256,uint256,uint256,uint256,uint256,
    // uint256[])" ...)`.
    #[test]
    fn hash_matches_independently_computed_vectors() {
        let cases = [
            (
                message(vec![], U256::ZERO, U256::ZERO),
                b256!("0xac9dd9f08466cb1d9b54f433b9bfc3c6abf4a62c83a50d82d1b4204e622508e3"),
            ),
            (
                message(vec![U256::from(1), U256::from(255)], U256::from(3), U256::ZERO),
                b256!("0x501d95717875153026398576e2e7833abb7bc25d494f43d2e33f1491045881a7"),
            ),
            (
                message(
                    vec![U256::ZERO, U256::MAX >> 1, U256::from(0xdeadbeef_u64)],
                    U256::from(12345),
                    U256::from(10).pow(U256::from(15)),
                ),
                b256!("0x46754514bf1be9d00a4d9ca23bd57b87dcaf64c0db54fc981f9226080d755305"),
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(message.hash(), expected, "{message:?}");
        }
    }

    #[test]
    fn fee_is_not_part_of_the_hash_but_every_other_field_is() {
        let base = message(vec![U256::from(1)], U256::from(3), U256::ZERO);
        let hash_with = |change: fn(&mut Message)| {
            let mut changed = base.clone();
            change(&mut changed);
            changed.hash()
        };
        let hash = base.hash();
        assert_eq!(hash_with(|m| m.fee = U256::from(99)), hash);
        assert_ne!(hash_with(|m| m.from = Address::ZERO), hash);
        assert_ne!(hash_with(|m| m.to = U256::ZERO), hash);
        assert_ne!(hash_with(|m| m.selector = U256::ZERO), hash);
        assert_ne!(hash_with(|m| m.nonce = U256::ZERO), hash);
        assert_ne!(hash_with(|m| m.payload.clear()), hash);
        assert_ne!(hash_with(|m| m.payload.push(U256::ZERO)), hash);
    }

    #[test]
    fn stored_message_json_is_flat_with_numbers_and_hex() {
        let stored = StoredMessage {
            seq: Seq(7),
            hash: B256::repeat_byte(0xab),
            l1: L1Message {
                message: message(vec![U256::from(1), U256::from(255)], U256::from(3), U256::ZERO),
                origin: Origin {
                    block_number: 1000,
                    block_hash: B256::repeat_byte(1),
                    transaction_hash: B256::repeat_byte(2),
                    log_index: 4,
                },
            },
            inclusion: Inclusion::Canonical,
            reorg: None,
            lifecycle: Lifecycle::default(),
        };
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(json["seq"], 7);
        assert_eq!(json["block"], 1000);
        assert_eq!(json["logIndex"], 4);
        assert_eq!(json["from"], "0xbe3c44c09bc1a3566f3e1ca12e5aba0fa4ca72be");
        assert_eq!(json["payload"], serde_json::json!(["0x1", "0xff"]));
        assert_eq!(json["nonce"], "0x3");
        assert_eq!(json["blockHash"], format!("0x{}", "01".repeat(32)));
        assert_eq!(json["inclusion"], "canonical");
        assert_eq!(json["state"], "pending");
        let back: StoredMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, stored);
    }
}
