//! What ferry asks L1 besides logs and headers: the messaging contract's cancellation delay,
//! and the timestamp of a block (for rewinds by time).

use super::{EthereumCollector, LOG_TARGET};
use crate::CollectorError;
use alloy::{
    primitives::{Address, Bytes, U256},
    providers::Provider,
};
use serde::Serialize;
use tracing::warn;

/// The selector of `messageCancellationDelay()`.
const CANCELLATION_DELAY: [u8; 4] = [0x83, 0x03, 0xbd, 0x8a];

/// An `eth_call` transaction: the contract and the call data.
#[derive(Debug, Clone, Serialize)]
struct Call {
    to: Address,
    input: Bytes,
}

impl EthereumCollector {
    /// The contract's `messageCancellationDelay()` in seconds, asked once per gather that
    /// holds a started cancellation. A contract without it (or a provider that cannot answer
    /// now) leaves the last value read, or none: the delay only tells when a cancellation may
    /// complete, and an `eth_call` that reverts must not be retried as a gather is.
    pub(super) async fn cancellation_delay(&self) -> Option<u64> {
        let call = Call { to: self.config.contract, input: Bytes::from(CANCELLATION_DELAY) };
        let answer = self
            .send("eth_call", "messageCancellationDelay()", 1, |provider| {
                let call = call.clone();
                async move {
                    provider.raw_request::<_, Bytes>("eth_call".into(), (call, "latest")).await
                }
            })
            .await
            .map_err(|error| error.to_string())
            .and_then(|bytes| match bytes.len() {
                32 => Ok(U256::from_be_slice(&bytes)),
                other => Err(format!("an answer of {other} bytes, not 32")),
            });
        let mut cached = self.delay.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match answer {
            Ok(delay) => *cached = Some(delay.saturating_to()),
            Err(error) => {
                warn!(target: LOG_TARGET, %error, last = ?*cached,
                    "Cannot read messageCancellationDelay(); using the last value read")
            }
        }
        *cached
    }

    /// The timestamp of block `number`; `None` if the chain has no such block.
    pub(super) async fn timestamp_of(&self, number: u64) -> Result<Option<u64>, CollectorError> {
        let answer = self.header_batch(&[number]).await?;
        Ok(answer.into_iter().next().flatten().map(|header| header.timestamp()))
    }
}
