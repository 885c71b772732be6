//! L1 as verify reads it: paced requests, the blocks to scan, and every `LogMessageToL2`
//! logged there.

use super::{Holdings, Stored, VerifyArgs, report::progress_bar};
use crate::CommandError;
use alloy::{
    primitives::{Address, B256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use ferry_messaging::LogMessageToL2;
use ferry_primitives::{Message, Origin, Position};
use std::{collections::HashMap, time::Duration};

/// L1, paced.
pub(super) struct L1 {
    pub(super) provider: DynProvider,
    pub(super) pace: tokio::time::Interval,
    pub(super) progress: indicatif::ProgressBar,
}

impl L1 {
    pub(super) fn connect(args: &VerifyArgs) -> Result<Self, CommandError> {
        let url = args.l1_rpc_url.parse().map_err(|error| {
            CommandError::Verify(format!("{} is not a URL: {error}", args.l1_rpc_url))
        })?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let mut pace = tokio::time::interval(Duration::from_secs(1) / args.max_rps);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self { provider, pace, progress: indicatif::ProgressBar::hidden() })
    }

    pub(super) async fn paced(&mut self) {
        self.pace.tick().await;
    }

    pub(super) async fn chain_id(&mut self) -> Result<u64, CommandError> {
        self.paced().await;
        self.provider.get_chain_id().await.map_err(l1_failed("eth_chainId"))
    }
}

pub(super) fn l1_failed(
    what: &'static str,
) -> impl Fn(alloy::transports::TransportError) -> CommandError {
    move |error| CommandError::Verify(format!("L1 {what} failed: {error}"))
}

/// Like [`l1_failed`], naming the block asked for.
pub(super) fn l1_failed_at(
    what: &'static str,
    block: u64,
) -> impl Fn(alloy::transports::TransportError) -> CommandError {
    move |error| CommandError::Verify(format!("L1 {what} of block {block} failed: {error}"))
}

/// A message logged on L1.
#[derive(Debug, Clone)]
pub(super) struct Logged {
    pub(super) message: Message,
    pub(super) origin: Origin,
}

/// The blocks to scan on L1: from the start block (or the oldest block among the messages
/// checked, with `--from-seq`) to the one before the checkpoint (its own block too when the
/// checkpoint is inside it).
pub(super) fn scan_range(
    holdings: &Holdings,
    checked: &[&Stored],
    from_seq: u64,
) -> Option<(u64, u64)> {
    let last = if holdings.next.index > 0 {
        holdings.next.block
    } else {
        holdings.next.block.checked_sub(1)?
    };
    let oldest = checked.iter().map(|stored| stored.origin.block_number).min();
    let first = if from_seq > 0 {
        oldest?
    } else {
        oldest.map_or(holdings.from_block, |oldest| oldest.min(holdings.from_block))
    };
    (first <= last).then_some((first, last))
}

/// Every `LogMessageToL2` of `contract` in `first..=last` before `next`, by message hash;
/// ranges of `block_range` blocks, halved when the provider refuses one.
pub(super) async fn scan(
    l1: &mut L1,
    contract: Address,
    first: u64,
    last: u64,
    next: Position,
    block_range: u64,
) -> Result<HashMap<B256, Logged>, CommandError> {
    l1.progress = progress_bar(last - first + 1);
    let mut logged = HashMap::new();
    let (mut from, mut range) = (first, block_range);
    while from <= last {
        let to = last.min(from.saturating_add(range - 1));
        let filter = Filter::new()
            .address(contract)
            .event_signature(LogMessageToL2::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        l1.paced().await;
        let logs = match l1.provider.get_logs(&filter).await {
            Ok(logs) => logs,
            Err(_) if range > 1 => {
                range /= 2;
                continue;
            }
            Err(error) => return Err(l1_failed("eth_getLogs")(error)),
        };
        for log in logs {
            let (Some(block), Some(index), Some(block_hash), Some(transaction_hash)) =
                (log.block_number, log.log_index, log.block_hash, log.transaction_hash)
            else {
                return Err(CommandError::Verify(format!(
                    "L1 gave a log without its place in {from}..={to}"
                )));
            };
            if Position::new(block, index) >= next {
                continue;
            }
            let event = log.log_decode::<LogMessageToL2>().map_err(|error| {
                CommandError::Verify(format!("a log of block {block} does not decode: {error}"))
            })?;
            let message = Message::from(event.inner.data);
            let origin =
                Origin { block_number: block, block_hash, transaction_hash, log_index: index };
            logged.insert(message.hash(), Logged { message, origin });
        }
        l1.progress.inc(to - from + 1);
        from = to + 1;
    }
    l1.progress.finish_and_clear();
    Ok(logged)
}
