//! The admin listener's methods: reading, moving and resetting the checkpoint, and its audit
//! trail. Thin adapters over the controller.

use crate::{
    RpcError,
    context::{Context, caller, register},
    params::{CallParams, Quantity},
    wire,
};
use ferry_primitives::{B256, Checkpoint, Position};
use ferry_rpc_api::{
    ChangeOptions, CheckpointChangeResult, CheckpointTarget, HistoryEntry, RefetchOptions,
    Refetched,
};
use jsonrpsee::{Extensions, RpcModule, types::Params};
use std::sync::Arc;

/// `messaging_getCheckpointHistory`'s default and largest `limit`.
const HISTORY_LIMIT: (u64, u64) = (20, 1_000);

pub(crate) fn admin_module(context: Context) -> RpcModule<Context> {
    let mut module = RpcModule::new(context);
    register(&mut module, "messaging_getCheckpoint", get_checkpoint);
    register(&mut module, "messaging_setCheckpoint", set_checkpoint);
    register(&mut module, "messaging_resetCheckpoint", reset_checkpoint);
    register(&mut module, "messaging_getCheckpointHistory", history);
    register(&mut module, "messaging_refetchTransaction", refetch_transaction);
    module
}

async fn get_checkpoint(
    params: Params<'static>,
    context: Arc<Context>,
    _: Extensions,
) -> Result<Checkpoint, RpcError> {
    CallParams::parse(&params, &[])?;
    Ok(context.controller.get_checkpoint()?)
}

async fn set_checkpoint(
    params: Params<'static>,
    context: Arc<Context>,
    extensions: Extensions,
) -> Result<CheckpointChangeResult, RpcError> {
    let call = CallParams::parse(&params, &["block", "index", "options"])?;
    let target: CheckpointTarget = call.required(0)?;
    let index = call.optional::<Quantity>(1)?;
    let options: ChangeOptions = call.optional(2)?.unwrap_or_default();
    if !options.dry_run {
        context.controller.check_writable()?;
    }
    let (position, resolved) = match target {
        CheckpointTarget::Block(block) => {
            (Position::new(block, index.map_or(0, |Quantity(index)| index)), None)
        }
        CheckpointTarget::Time { timestamp } => {
            if let Some(Quantity(index)) = index {
                return Err(RpcError::InvalidParam {
                    param: "index",
                    reason: format!(
                        "{index} given with a timestamp: a set by time starts at the first log \
                         of the block it resolves to; leave index out"
                    ),
                });
            }
            let resolution = context.controller.resolve_time(timestamp.0).await?;
            (Position::block_start(resolution.block), Some(resolution))
        }
    };
    let controller = &context.controller;
    let mut result: CheckpointChangeResult = if options.dry_run {
        wire::previewed(controller.preview_set(position, options.expected).await?)
    } else {
        wire::applied(
            controller.set_checkpoint(position, &caller(&extensions), options.expected).await?,
        )
    };
    result.resolved = resolved;
    Ok(result)
}

async fn reset_checkpoint(
    params: Params<'static>,
    context: Arc<Context>,
    extensions: Extensions,
) -> Result<CheckpointChangeResult, RpcError> {
    let call = CallParams::parse(&params, &["options"])?;
    let options: ChangeOptions = call.optional(0)?.unwrap_or_default();
    if !options.dry_run {
        context.controller.check_writable()?;
    }
    if options.dry_run {
        return Ok(wire::previewed(context.controller.preview_reset(options.expected).await?));
    }
    let change =
        context.controller.reset_checkpoint(&caller(&extensions), options.expected).await?;
    Ok(wire::applied(change))
}

async fn history(
    params: Params<'static>,
    context: Arc<Context>,
    _: Extensions,
) -> Result<Vec<HistoryEntry>, RpcError> {
    let call = CallParams::parse(&params, &["limit"])?;
    let limit = call.optional::<Quantity>(0)?.map_or(HISTORY_LIMIT.0, |Quantity(limit)| limit);
    if limit == 0 || limit > HISTORY_LIMIT.1 {
        return Err(RpcError::InvalidParam {
            param: "limit",
            reason: format!("{limit} is out of range 1..={}", HISTORY_LIMIT.1),
        });
    }
    let entries = context.controller.history(limit as usize)?;
    Ok(entries.into_iter().map(wire::history_entry).collect())
}

async fn refetch_transaction(
    params: Params<'static>,
    context: Arc<Context>,
    extensions: Extensions,
) -> Result<Refetched, RpcError> {
    let call = CallParams::parse(&params, &["transaction", "options"])?;
    let transaction: B256 = call.required(0)?;
    let options: RefetchOptions = call.optional(1)?.unwrap_or_default();
    let caller = caller(&extensions);
    if !options.dry_run {
        context.controller.check_writable()?;
    }
    Ok(context.controller.refetch_transaction(transaction, &caller, options.dry_run).await?)
}
