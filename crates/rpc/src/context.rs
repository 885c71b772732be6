//! What every method handler works with, and the one way a method is registered: under its
//! name, counted by that name and outcome, its error turned into its JSON-RPC form.

use crate::{Limits, RpcError, places::SubscriptionCount};
use ferry_messaging::{MessagingController, Status};
use ferry_storage::Store;
use jsonrpsee::{Extensions, RpcModule, types::ErrorObjectOwned, types::Params};
use serde::Serialize;
use std::{future::Future, net::SocketAddr, sync::Arc};

/// The caller's socket address, put into every request's extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RemoteAddr(pub(crate) SocketAddr);

/// What the handlers work with.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// Operators' changes go through it (admin listener only).
    pub(crate) controller: MessagingController,
    /// What consumers read: the store is the truth.
    pub(crate) store: Store,
    /// The pipeline's live state, for status and subscriptions.
    pub(crate) status: Arc<Status>,
    pub(crate) version: String,
    pub(crate) limits: Limits,
    pub(crate) subscriptions: Arc<SubscriptionCount>,
}

/// A method's answer in its JSON-RPC form.
pub(crate) type Answer<T> = Result<T, ErrorObjectOwned>;

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

/// Registers `handler` as method `name`: the one place a method's name is written on the
/// server side (the client traits of `ferry-rpc-api` name it for callers, and a test checks both
/// against `rpc-spec/openrpc.json`).
pub(crate) fn register<T, F, Fut>(module: &mut RpcModule<Context>, name: &'static str, handler: F)
where
    T: Serialize + Clone + Send + 'static,
    F: Fn(Params<'static>, Arc<Context>, Extensions) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, RpcError>> + Send + 'static,
{
    module
        .register_async_method(name, move |params, context, extensions| {
            let handler = handler.clone();
            async move { answer(name, handler(params, context, extensions).await) }
        })
        .unwrap_or_else(|error| panic!("method {name} is registered twice: {error}"));
}

/// Who called, for the audit trail: the peer's address.
pub(crate) fn caller(extensions: &Extensions) -> String {
    extensions
        .get::<RemoteAddr>()
        .map_or_else(|| "unknown".to_owned(), |RemoteAddr(address)| address.to_string())
}
