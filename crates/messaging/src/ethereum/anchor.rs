//! Anchored gathers: the logs of a range and the headers kept for it provably come from one
//! chain (invariant: anchored gathers), and, unless `--l1.verify-logs off`, from those very
//! blocks (invariant: proven logs).
//!
//! Headers are fetched first, then logs; a run of headers must link by parent hash, and every
//! log of a block whose header was fetched must carry that header's hash. Inside the header
//! window, and for every block of a range when logs are proven, the headers decide what to
//! ask:
//!
//! - **bloom** (the default): a block whose `logsBloom` cannot hold a log of the contract's
//!   events is not asked at all (at the head), and a log the answer claims from such a block
//!   is a lie, refused. A range of more than two blocks (a catch-up) is asked for its logs
//!   alongside its headers, so proving costs no round trip. A block whose bloom may hold one
//!   is asked by hash (`eth_getLogs({blockHash})`, EIP-234) when the ranged answer said
//!   nothing of it; if that is empty too, its receipts are read and proven (`receipts.rs`),
//!   so that a provider (or a load balancer answering from another chain) that drops every
//!   log of a block is caught. At the head, one or two candidate blocks are asked by hash,
//!   more with one ranged query over them.
//! - **receipts**: every candidate block's receipts are read and proven against the header's
//!   `receiptsRoot`, and the logs are taken from them: nothing short of a forged header chain
//!   gets past.
//! - **off**: one ranged query; below the window a range is anchored by its last header only.

use super::{
    EthereumCollector,
    attempt::Attempt,
    endpoints::VerifyLogs,
    header::RpcHeader,
    logs::{PlacedLog, decode},
};
use crate::Gathered;
use ferry_primitives::{LifecycleEvent, LifecycleKind, Position, first_unlinked};
use futures_util::future::join_all;
use std::collections::{HashMap, HashSet};
use tracing::warn;

/// Candidate blocks asked by hash rather than with one ranged query, where the headers cover
/// the whole range: at the head a range is a block or two.
const PER_BLOCK_MAX: usize = 2;

/// Blocks whose receipts are asked for at once.
const RECEIPTS_IN_FLIGHT: usize = 16;

/// The blocks a ranged answer holds logs of, once every log of a block whose header was
/// fetched is found to carry that header's hash.
fn blocks_answered(ranged: &[PlacedLog], headers: &[RpcHeader]) -> Result<HashSet<u64>, Attempt> {
    let by_number: HashMap<u64, &RpcHeader> =
        headers.iter().map(|header| (header.number.to(), header)).collect();
    for log in ranged {
        if let Some(header) = by_number.get(&log.position.block)
            && header.hash != log.block_hash
        {
            return Err(Attempt::Inconsistent(format!(
                "the log at {} carries block hash {}, the header of block {} is {}",
                log.position, log.block_hash, log.position.block, header.hash
            )));
        }
    }
    Ok(ranged.iter().map(|log| log.position.block).collect())
}

impl EthereumCollector {
    /// One attempt at the logs of `from..=last`, anchored to the headers of the blocks from
    /// `headers_from` (or of `last` alone), and proven as `--l1.verify-logs` says. Headers
    /// below `from`'s block link the window to the range; only the range's own blocks are
    /// asked for logs. The headers returned are those from `headers_from` on.
    pub(super) async fn gather_anchored(
        &self,
        from: Position,
        last: u64,
        headers_from: u64,
    ) -> Result<Gathered, Attempt> {
        let mode = self.config.verify_logs;
        let kept_from = headers_from.min(last);
        let first_header =
            if mode == VerifyLogs::Off { kept_from } else { kept_from.min(from.block) };
        // Where logs are proven on a few blocks (at the head), the headers decide which logs to
        // ask (their blooms): first. Otherwise (a catch-up, or anchoring only) the range's logs
        // are asked alongside: every check below holds whichever answer came first.
        let speculative = mode == VerifyLogs::Bloom && last - from.block >= PER_BLOCK_MAX as u64;
        let (headers, ranged) = if mode == VerifyLogs::Off || speculative {
            let (headers, logs) =
                tokio::join!(self.headers(first_header, last), self.ranged_logs(from.block, last));
            (headers?, Some(logs?))
        } else {
            (self.headers(first_header, last).await?, None)
        };
        if let Some(number) =
            first_unlinked(&headers.iter().map(RpcHeader::header).collect::<Vec<_>>())
        {
            return Err(Attempt::Inconsistent(format!(
                "the header of block {number} does not link to the one before"
            )));
        }
        let mut logs = match mode {
            VerifyLogs::Receipts => self.receipt_logs(from.block, &headers).await?,
            VerifyLogs::Bloom => self.bloom_logs(from.block, &headers, ranged).await?,
            VerifyLogs::Off => {
                let ranged = ranged.unwrap_or_default();
                blocks_answered(&ranged, &headers)?;
                ranged
            }
        };
        logs.sort_unstable_by_key(|log| log.position);
        let mut timestamps: HashMap<u64, u64> =
            headers.iter().map(|header| (header.number.to(), header.timestamp())).collect();
        for log in &logs {
            if let Some(timestamp) = log.block_timestamp {
                timestamps.entry(log.position.block).or_insert(timestamp);
            }
        }
        let mut decoded = decode(logs, from);
        self.time_events(&mut decoded.events, timestamps).await?;
        Ok(Gathered {
            messages: decoded.messages,
            events: decoded.events,
            malformed: decoded.malformed,
            headers: headers
                .iter()
                .filter(|header| header.number.to::<u64>() >= kept_from)
                .map(RpcHeader::header)
                .collect(),
        })
    }

    /// The headers from `first` on whose bloom may hold a log of the contract's events.
    fn candidates<'h>(&self, first: u64, headers: &'h [RpcHeader]) -> Vec<&'h RpcHeader> {
        headers
            .iter()
            .filter(|header| header.number.to::<u64>() >= first && header.may_hold(&self.bloom))
            .collect()
    }

    /// The logs of the blocks from `first` among `headers`, proven by their blooms: those of
    /// `ranged` (the range asked alongside the headers), or the candidate blocks' by hash one
    /// or two at a time, or in one ranged query over them; every candidate the ranged answer
    /// said nothing of by hash, and if still empty by its proven receipts; a log from a block
    /// whose bloom cannot hold it refused.
    async fn bloom_logs(
        &self,
        first: u64,
        headers: &[RpcHeader],
        ranged: Option<Vec<PlacedLog>>,
    ) -> Result<Vec<PlacedLog>, Attempt> {
        let mut unanswered = self.candidates(first, headers);
        let mut logs = Vec::new();
        let ranged = match ranged {
            Some(ranged) => Some(ranged),
            None if unanswered.len() > PER_BLOCK_MAX => {
                let start = unanswered[0].number.to();
                let end = unanswered[unanswered.len() - 1].number.to();
                Some(self.ranged_logs(start, end).await?)
            }
            None => None,
        };
        if let Some(ranged) = ranged {
            let answered = blocks_answered(&ranged, headers)?;
            self.refuse_unbloomed(&ranged, headers)?;
            unanswered.retain(|header| !answered.contains(&header.number.to()));
            logs = ranged;
        }
        for header in unanswered {
            let by_hash = self.block_logs(header).await?;
            if !by_hash.is_empty() {
                logs.extend(by_hash);
                continue;
            }
            // Empty by hash too: a false positive of the bloom, or a provider that drops the
            // block's logs. The receipts tell which.
            let proven = self.proven_logs(header).await?;
            if !proven.is_empty() {
                metrics::counter!("ferry_l1_omissions_total").increment(1);
                warn!(target: super::LOG_TARGET, block = header.number.to::<u64>(), logs = proven.len(),
                    "The provider left out logs of a block that its receipts prove; taking them from the receipts");
            }
            logs.extend(proven);
        }
        Ok(logs)
    }

    /// Refuses a ranged answer holding a log of a block whose bloom cannot hold it: the
    /// provider invented it (or took it from another chain).
    fn refuse_unbloomed(&self, ranged: &[PlacedLog], headers: &[RpcHeader]) -> Result<(), Attempt> {
        let by_number: HashMap<u64, &RpcHeader> =
            headers.iter().map(|header| (header.number.to(), header)).collect();
        match ranged.iter().find(|log| {
            by_number.get(&log.position.block).is_some_and(|header| !header.may_hold(&self.bloom))
        }) {
            Some(log) => Err(self.refused(format!(
                "a log at {} from block {}, whose bloom cannot hold a log of the contract",
                log.position, log.position.block
            ))),
            None => Ok(()),
        }
    }

    /// The logs of the blocks from `first` among `headers`, read from their proven receipts:
    /// every candidate block's, [`RECEIPTS_IN_FLIGHT`] at a time.
    async fn receipt_logs(
        &self,
        first: u64,
        headers: &[RpcHeader],
    ) -> Result<Vec<PlacedLog>, Attempt> {
        let mut logs = Vec::new();
        for chunk in self.candidates(first, headers).chunks(RECEIPTS_IN_FLIGHT) {
            for proven in join_all(chunk.iter().map(|header| self.proven_logs(header))).await {
                logs.extend(proven?);
            }
        }
        Ok(logs)
    }

    /// Sets each lifecycle event's timestamp: from the headers fetched or the logs, else from
    /// the header of its block, which must have the hash the event's log carries; and the
    /// contract's cancellation delay for started cancellations.
    async fn time_events(
        &self,
        events: &mut [LifecycleEvent],
        mut timestamps: HashMap<u64, u64>,
    ) -> Result<(), Attempt> {
        let mut missing: Vec<u64> = events
            .iter()
            .map(|event| event.origin.block_number)
            .filter(|block| !timestamps.contains_key(block))
            .collect();
        missing.dedup();
        for chunk in missing.chunks(self.header_batch_size()) {
            let answers = self.header_batch(chunk).await.map_err(Attempt::Failed)?;
            for (number, answer) in chunk.iter().zip(answers) {
                let header = answer.ok_or_else(|| {
                    Attempt::Inconsistent(format!("block {number} of a log does not exist"))
                })?;
                let logged = events.iter().find(|event| event.origin.block_number == *number);
                if let Some(event) = logged
                    && event.origin.block_hash != header.hash
                {
                    return Err(Attempt::Inconsistent(format!(
                        "the log at {} carries block hash {}, the header of block {number} is {}",
                        event.origin.position(),
                        event.origin.block_hash,
                        header.hash
                    )));
                }
                timestamps.insert(*number, header.timestamp());
            }
        }
        let delay = if events.iter().any(|event| event.kind == LifecycleKind::CancellationStarted) {
            self.cancellation_delay().await
        } else {
            None
        };
        for event in events {
            event.timestamp = timestamps.get(&event.origin.block_number).copied().unwrap_or(0);
            if event.kind == LifecycleKind::CancellationStarted {
                event.cancellation_delay = delay;
            }
        }
        Ok(())
    }
}
