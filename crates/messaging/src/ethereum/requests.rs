//! Every JSON-RPC call to L1 goes through here: retried with exponential backoff and jitter
//! while the error is transient, counted (`ferry_l1_requests_total{method}`), and reported to
//! status.

use super::{
    EthereumCollector, LOG_TARGET,
    classify::{ErrorClass, classify},
};
use crate::CollectorError;
use alloy::transports::TransportError;
use backon::{ExponentialBuilder, Retryable};
use std::future::Future;
use tracing::warn;

impl EthereumCollector {
    /// Runs `call`, retrying transient failures with exponential backoff and jitter, and
    /// reporting every wait to status; `calls` is how many JSON-RPC calls one attempt makes
    /// (a batch makes several), counted under `method`. Range refusals, bad requests and
    /// unknown blocks are returned at once: the caller knows what they mean.
    pub(super) async fn retrying<T, F, Fut>(
        &self,
        method: &'static str,
        detail: &str,
        calls: usize,
        mut call: F,
    ) -> Result<T, TransportError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let (min, max) = self.config.retry_delays;
        let backoff = ExponentialBuilder::new()
            .with_min_delay(min)
            .with_max_delay(max)
            .with_jitter()
            .without_max_times();
        let counted = || {
            metrics::counter!("ferry_l1_requests_total", "method" => method)
                .increment(calls as u64);
            self.status.record_upstream_calls(calls as u64);
            call()
        };
        counted
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|error| classify(error) == ErrorClass::Retryable)
            .notify(|error, delay| {
                warn!(target: LOG_TARGET, method, detail, %error, ?delay, "L1 request failed; retrying");
                self.status.record_upstream_backoff(format!("{method} {detail}: {error}"), delay);
            })
            .await
    }

    /// [`Self::retrying`], recording the outcome in status.
    pub(super) async fn request<T, F, Fut>(
        &self,
        method: &'static str,
        detail: &str,
        calls: usize,
        call: F,
    ) -> Result<T, CollectorError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        match self.retrying(method, detail, calls, call).await {
            Ok(value) => {
                self.status.record_upstream_success();
                Ok(value)
            }
            Err(error) => {
                self.status.record_upstream_failure(format!("{method} {detail}: {error}"));
                Err(upstream(method, detail, error))
            }
        }
    }
}

pub(super) fn upstream(method: &str, detail: &str, error: TransportError) -> CollectorError {
    let request = if detail.is_empty() { method.to_owned() } else { format!("{method} {detail}") };
    CollectorError::Upstream { request, reason: error.to_string() }
}
