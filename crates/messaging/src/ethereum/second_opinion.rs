//! Failover's second opinions: one endpoint answers at a time, so what it says of the chain is
//! checked with the others where being wrong would cost a message. The newest block of every
//! gathered range is asked of the other endpoints before the range is handed on (a primary on
//! another chain from the start is caught, not only once it contradicts the header window),
//! and a block the window holds is confirmed replaced by another endpoint before a reorg is
//! acted on. A majority against the endpoint answering moves reading to that majority; no
//! majority either way is a disagreement, counted and, in a row, a halt, as in quorum mode.

use super::{
    EthereumCollector, LOG_TARGET, attempt::Attempt, endpoints::L1Mode, header::RpcHeader,
};
use crate::CollectorError;
use alloy::{
    primitives::{B256, U64},
    providers::Provider,
};
use ferry_primitives::BlockHeader;
use tracing::warn;

/// What the endpoints other than the active one say block `number` is.
struct Opinions {
    /// The endpoint answering now.
    active: usize,
    /// The others that hold a block there: their index and its hash.
    held: Vec<(usize, B256)>,
}

impl Opinions {
    /// The others holding `hash` there.
    fn holding(&self, hash: B256) -> impl Iterator<Item = usize> + '_ {
        self.held.iter().filter(move |(_, held)| *held == hash).map(|(index, _)| *index)
    }
}

impl EthereumCollector {
    /// Whether second opinions are asked at all: failover over several endpoints.
    fn asks_second_opinions(&self) -> bool {
        self.endpoints.list.len() > 1 && self.endpoints.mode == L1Mode::Failover
    }

    /// Block `number` as every endpoint but the active one has it (those that do not answer,
    /// or have no block there yet, give no opinion).
    async fn opinions(&self, number: u64, why: &str) -> Opinions {
        let active = self.endpoints.active();
        let detail = format!("{number} ({why})");
        let answers = self
            .ask_each("eth_getBlockByNumber", &detail, Some(active), |provider| async move {
                provider
                    .raw_request::<_, Option<RpcHeader>>(
                        "eth_getBlockByNumber".into(),
                        (U64::from(number), false),
                    )
                    .await
            })
            .await;
        self.publish_endpoints();
        let held = answers
            .into_iter()
            .filter_map(|(index, answer)| Some((index, answer.ok()??.hash)))
            .collect();
        Opinions { active, held }
    }

    /// Checks the newest block of a gathered range with the other endpoints that hold a block
    /// there. A majority with the active endpoint hands the range on (those against it are
    /// outvoted: not chosen for a while); a majority holding another block moves reading to
    /// it (the range is asked again there); no majority either way is a disagreement, and
    /// the range is not handed on.
    pub(super) async fn cross_check(&self, newest: BlockHeader) -> Result<(), Attempt> {
        if !self.asks_second_opinions() {
            return Ok(());
        }
        let opinions = self.opinions(newest.number, "second opinion").await;
        let disagreeing: Vec<&(usize, B256)> =
            opinions.held.iter().filter(|(_, hash)| *hash != newest.hash).collect();
        if disagreeing.is_empty() {
            self.status.record_agreement();
            return Ok(());
        }
        let agreeing = 1 + opinions.holding(newest.hash).count();
        let name = |index: usize| self.endpoints.list[index].name.as_str();
        let (other, holders) = disagreeing
            .iter()
            .map(|(_, hash)| (*hash, opinions.holding(*hash).collect::<Vec<_>>()))
            .max_by_key(|(_, holders)| holders.len())
            .unwrap_or_default();
        if agreeing > holders.len() {
            // The active endpoint has the majority: those on another block are outvoted.
            for (index, hash) in disagreeing {
                let reason = format!(
                    "it says block {} is {hash}; {agreeing} of the endpoints say {}",
                    newest.number, newest.hash
                );
                self.status.record_contradiction();
                self.endpoints.list[*index].record_outvoted(reason);
            }
            self.publish_endpoints();
            return Ok(());
        }
        if holders.len() > agreeing {
            let reason = format!(
                "it says block {} is {}; {} of the other endpoints say {other}",
                newest.number,
                newest.hash,
                holders.len()
            );
            self.status.record_contradiction();
            self.endpoints.list[opinions.active].record_outvoted(reason.clone());
            self.endpoints.switch(opinions.active, holders[0], &reason);
            self.publish_endpoints();
            return Err(Attempt::Inconsistent(format!("{} {reason}", name(opinions.active))));
        }
        let answers: Vec<String> = std::iter::once((opinions.active, newest.hash))
            .chain(opinions.held.iter().copied())
            .map(|(index, hash)| format!("{hash} from {}", name(index)))
            .collect();
        let reason = format!(
            "block {}: no majority of the endpoints holds one block: {}",
            newest.number,
            answers.join("; ")
        );
        warn!(target: LOG_TARGET, block = newest.number, answers = %answers.join("; "),
            "L1 endpoints disagree on a gathered range's newest block; it is not handed on");
        self.status.record_disagreement(reason.clone());
        Err(Attempt::Failed(CollectorError::Disagreement(reason)))
    }

    /// Whether block `number` is no longer `kept`, as the active endpoint says: when another
    /// endpoint still holds `kept` there, the active one contradicts it and the header window,
    /// so reading moves to that one and the reorg is not acted on.
    pub(super) async fn confirm_replaced_with_others(
        &self,
        number: u64,
        kept: B256,
    ) -> Result<bool, CollectorError> {
        if !self.asks_second_opinions() {
            return Ok(true);
        }
        let opinions = self.opinions(number, "reorg second opinion").await;
        let Some(other) = opinions.holding(kept).next() else { return Ok(true) };
        let reason = format!(
            "it says block {number} is no longer {kept}, which {} and the header window still hold",
            self.endpoints.list[other].name
        );
        self.status.record_contradiction();
        self.endpoints.list[opinions.active].record_outvoted(reason.clone());
        self.endpoints.switch(opinions.active, other, &reason);
        self.publish_endpoints();
        Ok(false)
    }
}
