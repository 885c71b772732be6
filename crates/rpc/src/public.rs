//! The public listener's own methods: the node's status, and `rpc.discover` (the OpenRPC
//! document). The consumer methods it also serves live in `consumers/`.

use crate::{
    RpcError, consumers,
    context::{Context, register},
    params::CallParams,
    wire,
};
use ferry_rpc_api::{HeaderWindow, NodeStatus, OPENRPC_DOCUMENT};
use jsonrpsee::{Extensions, RpcModule, types::Params};
use std::sync::Arc;

/// How many orphaned seqs status lists (the count covers them all).
const ORPHANED_SEQS_LISTED: usize = 100;

pub(crate) fn public_module(context: Context) -> RpcModule<Context> {
    let mut module = RpcModule::new(context);
    register(&mut module, "messaging_status", status);
    register(&mut module, "rpc.discover", discover);
    consumers::register_all(&mut module);
    module
}

async fn discover(
    params: Params<'static>,
    _: Arc<Context>,
    _: Extensions,
) -> Result<serde_json::Value, RpcError> {
    CallParams::parse(&params, &[])?;
    serde_json::from_str(OPENRPC_DOCUMENT).map_err(|error| RpcError::Internal(error.to_string()))
}

async fn status(
    params: Params<'static>,
    context: Arc<Context>,
    _: Extensions,
) -> Result<NodeStatus, RpcError> {
    CallParams::parse(&params, &[])?;
    let store = &context.store;
    let config = store.config();
    // Checkpoint and last seq from one read of the store, so they agree with each other even
    // while a batch is being committed (the in-memory status catches up a moment later).
    let (checkpoint, last_seq) = store.progress()?;
    let mut pipeline = context.status.snapshot();
    pipeline.last_seq = last_seq;
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
        lag_blocks: pipeline.lag_blocks(),
        messages_stored,
        orphaned_messages,
        message_states: store.state_counts()?,
        orphaned_seqs: store.orphaned_seqs(ORPHANED_SEQS_LISTED)?,
        reorgs,
        last_reorg: last_reorg.into_iter().next().map(|(id, record)| wire::reorg_entry(id, record)),
        header_window: window
            .map(|window| HeaderWindow { from: window.bottom.number, to: window.tip.number }),
        pipeline,
    })
}
