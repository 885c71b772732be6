//! Fixtures for tests: messages with chosen positions and nonces.

use crate::{Address, B256, L1Message, Message, Origin, U256};

/// A message with nonce `nonce`, logged at `(block, log_index)`.
///
/// The nonce makes the hash unique; the block hash and transaction hash are derived from the
/// block and nonce so that fixtures are deterministic.
pub fn l1_message(nonce: u64, block: u64, log_index: u64) -> L1Message {
    l1_message_with_payload(nonce, block, log_index, vec![U256::from(nonce), U256::from(block)])
}

/// Like [`l1_message`], with an explicit payload.
pub fn l1_message_with_payload(
    nonce: u64,
    block: u64,
    log_index: u64,
    payload: Vec<U256>,
) -> L1Message {
    L1Message {
        message: Message {
            from: Address::repeat_byte(0x42),
            to: U256::from(0x1234_u64),
            selector: U256::from(0x5678_u64),
            payload,
            nonce: U256::from(nonce),
            fee: U256::from(nonce) + U256::from(1_000),
        },
        origin: Origin {
            block_number: block,
            block_hash: B256::left_padding_from(&block.to_be_bytes()),
            transaction_hash: B256::left_padding_from(&nonce.to_be_bytes()),
            log_index,
        },
    }
}
