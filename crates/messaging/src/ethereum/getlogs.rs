//! `eth_getLogs` as ferry asks it: over a range, or for one block by hash (EIP-234), for the
//! contract's message and lifecycle events in one topic OR-list; each answer placed and
//! checked before it is used.

use super::{
    EVENT_TOPICS, EthereumCollector,
    attempt::Attempt,
    classify::ErrorClass,
    header::RpcHeader,
    logs::{MessageLog, PlacedLog, place},
    requests::{RequestError, upstream},
};
use alloy::{providers::Provider, rpc::types::Filter};

impl EthereumCollector {
    /// `eth_getLogs` with `filter`, retried while the failure is transient; each caller says
    /// what the other failures mean for its request.
    async fn get_logs(
        &self,
        filter: &Filter,
        detail: &str,
    ) -> Result<Vec<MessageLog>, RequestError> {
        self.send("eth_getLogs", detail, 1, |provider| async move {
            provider.raw_request::<_, Vec<MessageLog>>("eth_getLogs".into(), (filter,)).await
        })
        .await
    }

    /// `eth_getLogs` over `first..=last`, placed.
    pub(super) async fn ranged_logs(
        &self,
        first: u64,
        last: u64,
    ) -> Result<Vec<PlacedLog>, Attempt> {
        let filter = self.filter().from_block(first).to_block(last);
        let detail = format!("{first}..={last}");
        let logs = match self.get_logs(&filter, &detail).await {
            Ok(logs) => logs,
            Err(error) => {
                let class = error.class();
                let failed = upstream("eth_getLogs", &detail, error);
                return Err(match class {
                    ErrorClass::RangeTooLarge => Attempt::Refused(failed),
                    ErrorClass::UnknownBlock => Attempt::Inconsistent(failed.to_string()),
                    _ => {
                        self.status.record_upstream_failure(failed.to_string());
                        Attempt::Failed(failed)
                    }
                });
            }
        };
        self.status.record_upstream_success();
        place(logs, first, last).map_err(Attempt::Inconsistent)
    }

    /// `eth_getLogs({blockHash})` for one block: exactly that block's logs, or a failure when
    /// the provider does not know the block (then its chain is not the headers' one).
    pub(super) async fn block_logs(&self, header: &RpcHeader) -> Result<Vec<PlacedLog>, Attempt> {
        let number = header.number.to::<u64>();
        let filter = self.filter().at_block_hash(header.hash);
        let detail = format!("block {number} by hash {}", header.hash);
        let logs = match self.get_logs(&filter, &detail).await {
            Ok(logs) => logs,
            Err(error)
                if matches!(error.class(), ErrorClass::Fatal)
                    || matches!(error, RequestError::Disagreement(_)) =>
            {
                let failed = upstream("eth_getLogs", &detail, error);
                self.status.record_upstream_failure(failed.to_string());
                return Err(Attempt::Failed(failed));
            }
            Err(error) => {
                return Err(Attempt::Inconsistent(
                    upstream("eth_getLogs", &detail, error).to_string(),
                ));
            }
        };
        self.status.record_upstream_success();
        let placed = place(logs, number, number).map_err(Attempt::Inconsistent)?;
        if let Some(log) = placed.iter().find(|log| log.block_hash != header.hash) {
            return Err(Attempt::Inconsistent(format!(
                "asked for the logs of block {number} by hash {}, got one of block hash {}",
                header.hash, log.block_hash
            )));
        }
        Ok(placed)
    }

    fn filter(&self) -> Filter {
        Filter::new().address(self.config.contract).event_signature(EVENT_TOPICS.to_vec())
    }
}
