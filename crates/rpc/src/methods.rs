//! The method handlers: thin adapters over the controller and the store.

use crate::{
    ChangeOptions, CheckpointChangeResult, CheckpointTarget, HeaderWindow, HistoryEntry, Limits,
    NodeStatus, OPENRPC_DOCUMENT, ReorgEntry, ResolvedTime, RpcError,
    consumers::{self, SubscriptionCount},
    params::{CallParams, Quantity},
    server::RemoteAddr,
};
use ferry_messaging::MessagingController;
use ferry_primitives::Position;
use jsonrpsee::{Extensions, RpcModule, types::ErrorObjectOwned};
use serde::Serialize;
use std::sync::Arc;

/// `messaging_getCheckpointHistory`'s default and largest `limit`.
const HISTORY_LIMIT: (u64, u64) = (20, 1_000);

/// What the handlers work with.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) controller: MessagingController,
    pub(crate) version: String,
    pub(crate) limits: Limits,
    pub(crate) subscriptions: Arc<SubscriptionCount>,
}

type Answer<T> = Result<T, ErrorObjectOwned>;

/// Counts the call by method and outcome, and turns the error into its JSON-RPC form.
pub(crate) fn answer<T: Serialize>(method: &'static str, result: Result<T, RpcError>) -> Answer<T> {
    let outcome = match &result {
        Ok(_) => "ok".to_owned(),
        Err(error) => ErrorObjectOwned::from(error.clone()).code().to_string(),
    };
    metrics::counter!("ferry_rpc_requests_total", "method" => method, "outcome" => outcome)
        .increment(1);
    result.map_err(ErrorObjectOwned::from)
}

fn caller(extensions: &Extensions) -> String {
    extensions
        .get::<RemoteAddr>()
        .map_or_else(|| "unknown".to_owned(), |RemoteAddr(address)| address.to_string())
}

pub(crate) fn admin_module(context: Context) -> RpcModule<Context> {
    let mut module = RpcModule::new(context);
    let registered = [
        module
            .register_async_method("messaging_getCheckpoint", |params, context, _| async move {
                answer(
                    "messaging_getCheckpoint",
                    async {
                        CallParams::parse(&params, &[])?;
                        Ok(context.controller.get_checkpoint()?)
                    }
                    .await,
                )
            })
            .map(drop),
        module
            .register_async_method(
                "messaging_setCheckpoint",
                |params, context, extensions| async move {
                    answer(
                        "messaging_setCheckpoint",
                        set_checkpoint(&params, &context, &extensions).await,
                    )
                },
            )
            .map(drop),
        module
            .register_async_method(
                "messaging_resetCheckpoint",
                |params, context, extensions| async move {
                    answer(
                        "messaging_resetCheckpoint",
                        reset_checkpoint(&params, &context, &extensions).await,
                    )
                },
            )
            .map(drop),
        module
            .register_async_method(
                "messaging_getCheckpointHistory",
                |params, context, _| async move {
                    answer("messaging_getCheckpointHistory", history(&params, &context))
                },
            )
            .map(drop),
    ];
    for result in registered {
        result.expect("admin method names are unique");
    }
    module
}

pub(crate) fn public_module(context: Context) -> RpcModule<Context> {
    let mut module = RpcModule::new(context);
    module
        .register_async_method("messaging_status", |params, context, _| async move {
            answer(
                "messaging_status",
                async {
                    CallParams::parse(&params, &[])?;
                    status(&context)
                }
                .await,
            )
        })
        .expect("public method names are unique");
    module
        .register_method("rpc.discover", |params, _, _| {
            answer("rpc.discover", {
                CallParams::parse(&params, &[]).and_then(|_| {
                    serde_json::from_str::<serde_json::Value>(OPENRPC_DOCUMENT)
                        .map_err(|error| RpcError::Internal(error.to_string()))
                })
            })
        })
        .expect("public method names are unique");
    consumers::register(&mut module);
    module
}

async fn set_checkpoint(
    params: &jsonrpsee::types::Params<'_>,
    context: &Context,
    extensions: &Extensions,
) -> Result<CheckpointChangeResult, RpcError> {
    let call = CallParams::parse(params, &["block", "index", "options"])?;
    let target: CheckpointTarget = call.required(0)?;
    let index = call.optional::<Quantity>(1)?;
    let options: ChangeOptions = call.optional(2)?.unwrap_or_default();
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
            (Position::block_start(resolution.block), Some(ResolvedTime::from(resolution)))
        }
    };
    let mut result: CheckpointChangeResult = if options.dry_run {
        context.controller.preview_set(position).await?.into()
    } else {
        context.controller.set_checkpoint(position, &caller(extensions)).await?.into()
    };
    result.resolved = resolved;
    Ok(result)
}

async fn reset_checkpoint(
    params: &jsonrpsee::types::Params<'_>,
    context: &Context,
    extensions: &Extensions,
) -> Result<CheckpointChangeResult, RpcError> {
    let call = CallParams::parse(params, &["options"])?;
    let options: ChangeOptions = call.optional(0)?.unwrap_or_default();
    if options.dry_run {
        return Ok(context.controller.preview_reset().await?.into());
    }
    Ok(context.controller.reset_checkpoint(&caller(extensions)).await?.into())
}

fn history(
    params: &jsonrpsee::types::Params<'_>,
    context: &Context,
) -> Result<Vec<HistoryEntry>, RpcError> {
    let call = CallParams::parse(params, &["limit"])?;
    let limit = call.optional::<Quantity>(0)?.map_or(HISTORY_LIMIT.0, |Quantity(limit)| limit);
    if limit == 0 || limit > HISTORY_LIMIT.1 {
        return Err(RpcError::InvalidParam {
            param: "limit",
            reason: format!("{limit} is out of range 1..={}", HISTORY_LIMIT.1),
        });
    }
    let entries = context.controller.history(limit as usize)?;
    Ok(entries.into_iter().map(HistoryEntry::from).collect())
}

/// How many orphaned seqs status lists (the count covers them all).
const ORPHANED_SEQS_LISTED: usize = 100;

fn status(context: &Context) -> Result<NodeStatus, RpcError> {
    let store = context.controller.store();
    let config = store.config();
    // Checkpoint and last seq from one read of the store, so they agree with each other even
    // while a batch is being committed (the in-memory status catches up a moment later).
    let (checkpoint, last_seq) = store.progress()?;
    let mut pipeline = context.controller.status().snapshot();
    pipeline.last_seq = last_seq;
    let lag_blocks = pipeline
        .cursor
        .zip(pipeline.safe_head)
        .map(|(cursor, safe)| (safe + 1).saturating_sub(cursor.block));
    // What reorgs did is read from the store: it survives restarts.
    let (messages_stored, orphaned_messages) = store.message_counts()?;
    let (last_reorg, reorgs) = store.reorgs(1)?;
    let window = store.window()?;
    Ok(NodeStatus {
        version: context.version.clone(),
        chain_id: config.chain_id,
        contract: config.contract,
        from_block: config.from_block,
        checkpoint,
        lag_blocks,
        messages_stored,
        orphaned_messages,
        message_states: store.state_counts()?,
        orphaned_seqs: store.orphaned_seqs(ORPHANED_SEQS_LISTED)?,
        reorgs,
        last_reorg: last_reorg.into_iter().next().map(|(id, record)| ReorgEntry::new(id, record)),
        header_window: window
            .map(|window| HeaderWindow { from: window.bottom.number, to: window.tip.number }),
        pipeline,
    })
}
