//! Logs proven against their block: a block's receipts, their trie root rebuilt with alloy's
//! receipt and trie code and compared with the header's `receiptsRoot`, and the contract's
//! logs read from them. A provider cannot add, drop or change a log of a block whose header
//! the node holds without the root giving it away.

use super::{
    EVENT_TOPICS, EthereumCollector,
    attempt::Attempt,
    header::RpcHeader,
    logs::{MessageLog, PlacedLog, decode, place},
};
use crate::{CollectorError, ProvenTransaction};
use alloy::{
    consensus::proofs::calculate_receipt_root,
    eips::BlockId,
    primitives::{B256, U64},
    providers::Provider,
    rpc::types::TransactionReceipt,
};
use ferry_primitives::Position;

impl EthereumCollector {
    /// The logs of the contract's events in block `header`, read from its receipts once their
    /// trie root is the header's `receiptsRoot`. A provider that does not know the block, or
    /// whose receipts do not prove out, is refused (asked again, never committed).
    pub(super) async fn proven_logs(&self, header: &RpcHeader) -> Result<Vec<PlacedLog>, Attempt> {
        let number = header.number.to::<u64>();
        let receipts = self.block_receipts(header.hash, number).await?;
        let (root, logs) = prove(&receipts, header.hash, self.config.contract)
            .map_err(|reason| self.refused(format!("block {number}: {reason}")))?;
        if root != header.receipts_root {
            return Err(self.refused(format!(
                "the receipts of block {number} rebuild root {root}, its header says {}",
                header.receipts_root
            )));
        }
        place(logs, number, number).map_err(Attempt::Inconsistent)
    }

    /// What transaction `hash` logged, proven: its receipt names a block that is the chain's
    /// at its number, whose receipts prove out against the header's root.
    pub(super) async fn prove_transaction(
        &self,
        hash: B256,
    ) -> Result<Option<ProvenTransaction>, CollectorError> {
        let detail = format!("{hash}");
        let receipt = self
            .request("eth_getTransactionReceipt", &detail, 1, |provider| async move {
                provider.get_transaction_receipt(hash).await
            })
            .await?;
        let Some(receipt) = receipt else { return Ok(None) };
        let (Some(number), Some(block_hash)) = (receipt.block_number, receipt.block_hash) else {
            return Ok(None);
        };
        let header = self.header_batch(&[number]).await?.pop().flatten();
        let Some(header) = header.filter(|header| header.hash == block_hash) else {
            // Mined in a block the chain no longer holds at that number: not canonical.
            return Ok(None);
        };
        let logs = self.proven_logs(&header).await.map_err(|attempt| match attempt {
            Attempt::Refused(error) | Attempt::Failed(error) => error,
            Attempt::Inconsistent(reason) => CollectorError::Inconsistent(reason),
        })?;
        let logs: Vec<PlacedLog> =
            logs.into_iter().filter(|log| log.transaction_hash == hash).collect();
        let mut decoded = decode(logs, Position::block_start(number));
        for event in &mut decoded.events {
            event.timestamp = header.timestamp();
        }
        Ok(Some(ProvenTransaction {
            transaction: hash,
            block: header.header(),
            messages: decoded.messages,
            events: decoded.events,
            malformed: decoded.malformed,
        }))
    }

    /// `eth_getBlockReceipts` of the block with hash `hash`.
    async fn block_receipts(
        &self,
        hash: B256,
        number: u64,
    ) -> Result<Vec<TransactionReceipt>, Attempt> {
        let detail = format!("block {number} by hash {hash}");
        let receipts = self
            .request("eth_getBlockReceipts", &detail, 1, |provider| async move {
                provider.get_block_receipts(BlockId::from(hash)).await
            })
            .await
            .map_err(Attempt::Failed)?;
        receipts.ok_or_else(|| {
            Attempt::Inconsistent(format!(
                "the provider has no receipts for block {number} ({hash})"
            ))
        })
    }

    /// Counts and reports an answer that contradicts the block it claims.
    pub(super) fn refused(&self, reason: String) -> Attempt {
        metrics::counter!("ferry_l1_answers_refused_total").increment(1);
        self.status.record_answer_refused();
        tracing::warn!(target: super::LOG_TARGET, %reason, "Refused an L1 answer that its block disproves");
        Attempt::Inconsistent(format!("refused: {reason}"))
    }
}

/// The messages `contract` logged in the block with `block_hash` at `number`, read from its
/// receipts (all of them, in order) once their trie root is `receipts_root` (the header's):
/// for `ferry verify --proofs`, which checks a store the same way the node reads.
pub fn proven_messages(
    receipts: &[TransactionReceipt],
    (number, block_hash): (u64, B256),
    receipts_root: B256,
    contract: alloy::primitives::Address,
) -> Result<Vec<ferry_primitives::L1Message>, String> {
    let (root, logs) = prove(receipts, block_hash, contract)?;
    if root != receipts_root {
        return Err(format!(
            "the receipts of block {number} rebuild root {root}, its header says {receipts_root}"
        ));
    }
    let placed = place(logs, number, number)?;
    Ok(decode(placed, Position::block_start(number)).messages)
}

/// The trie root of `receipts` (all of block `block_hash`, in order), and the logs of
/// `contract`'s events among them as `eth_getLogs` would give them.
pub(super) fn prove(
    receipts: &[TransactionReceipt],
    block_hash: B256,
    contract: alloy::primitives::Address,
) -> Result<(B256, Vec<MessageLog>), String> {
    let mut envelopes = Vec::with_capacity(receipts.len());
    let mut logs = Vec::new();
    for receipt in receipts {
        if receipt.block_hash != Some(block_hash) {
            return Err(format!(
                "a receipt of transaction {} names block {:?}",
                receipt.transaction_hash, receipt.block_hash
            ));
        }
        for log in receipt.inner.logs() {
            let ours = log.address() == contract
                && log.topics().first().is_some_and(|topic| EVENT_TOPICS.contains(topic));
            if ours {
                logs.push(MessageLog {
                    topics: log.topics().to_vec(),
                    data: log.data().data.clone(),
                    block_number: log.block_number.map(U64::from),
                    block_hash: log.block_hash,
                    transaction_hash: log.transaction_hash,
                    log_index: log.log_index.map(U64::from),
                    block_timestamp: log.block_timestamp.map(U64::from),
                    removed: log.removed,
                });
            }
        }
        envelopes.push(receipt.inner.clone().into_primitives_receipt());
    }
    Ok((calculate_receipt_root(&envelopes), logs))
}
