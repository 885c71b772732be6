//! Every JSON-RPC call to L1 goes through here: to the endpoint answering now (failover) or to
//! all of them (quorum), retried with exponential backoff and jitter while the error is
//! transient, counted (`ferry_l1_requests_total{method}`), and reported to status.

use super::{
    EthereumCollector, LOG_TARGET,
    classify::{ErrorClass, classify},
    endpoints::L1Mode,
};
use crate::CollectorError;
use alloy::{
    providers::DynProvider,
    transports::{TransportError, TransportErrorKind},
};
use backon::{ExponentialBuilder, Retryable};
use futures_util::future::join_all;
use std::{
    collections::hash_map::DefaultHasher,
    fmt::Debug,
    future::Future,
    hash::{Hash, Hasher},
};
use tracing::warn;

/// With several endpoints, the tries at one before the next takes over.
const TRIES_BEFORE_FAILOVER: usize = 2;

/// Why a request has no answer.
#[derive(Debug)]
pub(super) enum RequestError {
    /// The endpoint (every endpoint tried) failed; the error says how.
    Transport(TransportError),
    /// Quorum: fewer than the quorum of endpoints gave the same answer.
    Disagreement(String),
}

impl RequestError {
    /// What to do about it.
    pub(super) fn class(&self) -> ErrorClass {
        match self {
            Self::Transport(error) => classify(error),
            Self::Disagreement(_) => ErrorClass::Retryable,
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(error) => write!(f, "{error}"),
            Self::Disagreement(reason) => f.write_str(reason),
        }
    }
}

impl EthereumCollector {
    /// Runs `call` against the endpoint answering now, retrying transient failures with
    /// exponential backoff and jitter (reporting every wait to status) and, with several
    /// endpoints, handing over to the next healthy one after a few tries; or, in quorum
    /// mode, against every endpoint, for the answer a quorum of them gives. `calls` is how many
    /// JSON-RPC calls one attempt makes (a batch makes several), counted under `method`.
    /// Range refusals, bad requests and unknown blocks are returned at once: the caller knows
    /// what they mean.
    pub(super) async fn send<T, F, Fut>(
        &self,
        method: &'static str,
        detail: &str,
        calls: usize,
        call: F,
    ) -> Result<T, RequestError>
    where
        T: PartialEq + Debug,
        F: FnMut(DynProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        match self.endpoints.mode {
            L1Mode::Quorum(quorum) => self.quorum(method, detail, calls, call, quorum).await,
            L1Mode::Failover => self.failover(method, detail, calls, call).await,
        }
    }

    /// [`Self::send`], recording the outcome in status.
    pub(super) async fn request<T, F, Fut>(
        &self,
        method: &'static str,
        detail: &str,
        calls: usize,
        call: F,
    ) -> Result<T, CollectorError>
    where
        T: PartialEq + Debug,
        F: FnMut(DynProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        match self.send(method, detail, calls, call).await {
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

    /// Failover: the endpoint answering now, then the next healthy one. With one endpoint it
    /// is retried for as long as the failure is transient.
    async fn failover<T, F, Fut>(
        &self,
        method: &'static str,
        detail: &str,
        calls: usize,
        mut call: F,
    ) -> Result<T, RequestError>
    where
        F: FnMut(DynProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let count = self.endpoints.list.len();
        let mut failed_in_a_row = 0;
        loop {
            let index = self.endpoints.active();
            // Past a round of failures everywhere, each endpoint gets the full backoff.
            let tries = (count > 1 && failed_in_a_row < count).then_some(TRIES_BEFORE_FAILOVER);
            match self.retrying(index, method, detail, calls, tries, &mut call).await {
                Ok(value) => {
                    self.endpoints.list[index].record_success();
                    return Ok(value);
                }
                Err(error) => {
                    let class = classify(&error);
                    let answered =
                        matches!(class, ErrorClass::RangeTooLarge | ErrorClass::UnknownBlock);
                    if count == 1
                        || answered
                        || (class == ErrorClass::Fatal && failed_in_a_row + 1 >= count)
                    {
                        return Err(RequestError::Transport(error));
                    }
                    failed_in_a_row += 1;
                    let reason = format!("{method} {detail}: {error}");
                    self.endpoints.fail_over(index, &reason);
                    self.publish_endpoints();
                }
            }
        }
    }

    /// Quorum: every endpoint at once; the answer at least `quorum` of them give. A range
    /// refusal from any of them is returned (the range shrinks for all); a disagreement is
    /// logged with each answer's digest and counted.
    async fn quorum<T, F, Fut>(
        &self,
        method: &'static str,
        detail: &str,
        calls: usize,
        mut call: F,
        quorum: usize,
    ) -> Result<T, RequestError>
    where
        T: PartialEq + Debug,
        F: FnMut(DynProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let asks: Vec<_> = self
            .endpoints
            .list
            .iter()
            .enumerate()
            .map(|(index, endpoint)| {
                let answer = endpoint.paced(calls, call(endpoint.provider.clone()));
                async move { (index, answer.await) }
            })
            .collect();
        let answers = join_all(asks).await;
        let mut groups: Vec<(T, Vec<usize>)> = Vec::new();
        let mut failures = Vec::new();
        for (index, answer) in answers {
            self.endpoints.list[index].record_calls(calls as u64);
            metrics::counter!("ferry_l1_requests_total", "method" => method)
                .increment(calls as u64);
            self.status.record_upstream_calls(calls as u64);
            match answer {
                Ok(value) => {
                    self.endpoints.list[index].record_success();
                    match groups.iter_mut().find(|(answer, _)| *answer == value) {
                        Some((_, who)) => who.push(index),
                        None => groups.push((value, vec![index])),
                    }
                }
                Err(error) => {
                    if classify(&error) == ErrorClass::RangeTooLarge {
                        return Err(RequestError::Transport(error));
                    }
                    self.endpoints.list[index].record_error(format!("{method} {detail}: {error}"));
                    failures.push((index, error));
                }
            }
        }
        self.publish_endpoints();
        groups.sort_by_key(|(_, who)| std::cmp::Reverse(who.len()));
        if groups.first().is_some_and(|(_, who)| who.len() >= quorum) {
            self.status.record_agreement();
            return Ok(groups.swap_remove(0).0);
        }
        if groups.len() < 2 {
            // Not enough answers at all: the failures say why.
            if let Some((_, error)) = failures.into_iter().next() {
                return Err(RequestError::Transport(error));
            }
        }
        Err(self.disagreement(method, detail, quorum, &groups))
    }

    /// No `quorum` endpoints gave one answer: logged with each answer's digest and who gave
    /// it, and counted.
    fn disagreement<T: Debug>(
        &self,
        method: &'static str,
        detail: &str,
        quorum: usize,
        groups: &[(T, Vec<usize>)],
    ) -> RequestError {
        let digests: Vec<String> = groups
            .iter()
            .map(|(answer, who)| {
                let names: Vec<&str> =
                    who.iter().map(|index| self.endpoints.list[*index].name.as_str()).collect();
                format!("{} from {}", digest(answer), names.join(", "))
            })
            .collect();
        let reason =
            format!("{method} {detail}: no {quorum} endpoints agree: {}", digests.join("; "));
        warn!(target: LOG_TARGET, method, detail, answers = %digests.join("; "),
            "L1 endpoints disagree; nothing is committed from a minority answer");
        self.status.record_disagreement(reason.clone());
        RequestError::Disagreement(reason)
    }

    /// `call` against every endpoint at once (but `skip`), once each, bounded by the request
    /// timeout: each endpoint's answer, by index. For what endpoints may tell differently
    /// without lying (their heads), for probing their health, and for second opinions.
    pub(super) async fn ask_each<T, F, Fut>(
        &self,
        method: &'static str,
        detail: &str,
        skip: Option<usize>,
        mut call: F,
    ) -> Vec<(usize, Result<T, TransportError>)>
    where
        F: FnMut(DynProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let timeout = self.config.request_timeout;
        let asks: Vec<_> = self
            .endpoints
            .list
            .iter()
            .enumerate()
            .filter(|(index, _)| Some(*index) != skip)
            .map(|(index, endpoint)| {
                let answer = tokio::time::timeout(timeout, call(endpoint.provider.clone()));
                let answer = endpoint.paced(1, answer);
                async move { (index, answer.await) }
            })
            .collect();
        let mut answers = Vec::with_capacity(asks.len());
        for (index, answer) in join_all(asks).await {
            let endpoint = &self.endpoints.list[index];
            endpoint.record_calls(1);
            metrics::counter!("ferry_l1_requests_total", "method" => method).increment(1);
            self.status.record_upstream_calls(1);
            // No answer in time is a transport failure, transient as any timeout.
            let answer = answer.unwrap_or_else(|_| {
                Err(TransportErrorKind::custom_str(&format!("no answer within {timeout:?}")))
            });
            match &answer {
                Ok(_) => endpoint.record_success(),
                Err(error) => endpoint.record_error(format!("{method} {detail}: {error}")),
            }
            answers.push((index, answer));
        }
        answers
    }

    /// `call` against endpoint `index`, retried while the failure is transient: `tries` times
    /// at most, or for as long as it lasts.
    async fn retrying<T, F, Fut>(
        &self,
        index: usize,
        method: &'static str,
        detail: &str,
        calls: usize,
        tries: Option<usize>,
        call: &mut F,
    ) -> Result<T, TransportError>
    where
        F: FnMut(DynProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let (min, max) = self.config.retry_delays;
        let backoff =
            ExponentialBuilder::new().with_min_delay(min).with_max_delay(max).with_jitter();
        let backoff = match tries {
            Some(tries) => backoff.with_max_times(tries.saturating_sub(1)),
            None => backoff.without_max_times(),
        };
        let endpoint = &self.endpoints.list[index];
        let counted = || {
            metrics::counter!("ferry_l1_requests_total", "method" => method)
                .increment(calls as u64);
            self.status.record_upstream_calls(calls as u64);
            endpoint.record_calls(calls as u64);
            endpoint.paced(calls, call(endpoint.provider.clone()))
        };
        counted
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|error| classify(error) == ErrorClass::Retryable)
            .notify(|error, delay| {
                warn!(target: LOG_TARGET, endpoint = %endpoint.name, method, detail, %error, ?delay,
                    "L1 request failed; retrying");
                self.status.record_upstream_backoff(format!("{method} {detail}: {error}"), delay);
            })
            .await
    }

    /// Shows the endpoints' state in status.
    pub(super) fn publish_endpoints(&self) {
        self.status.set_endpoints(self.endpoints.snapshot());
    }
}

/// A short digest of an answer, to tell answers apart in a log line.
fn digest(answer: &impl Debug) -> String {
    let mut hasher = DefaultHasher::new();
    format!("{answer:?}").hash(&mut hasher);
    format!("answer {:016x}", hasher.finish())
}

pub(super) fn upstream(method: &str, detail: &str, error: RequestError) -> CollectorError {
    let request = if detail.is_empty() { method.to_owned() } else { format!("{method} {detail}") };
    match error {
        RequestError::Transport(error) => {
            CollectorError::Upstream { request, reason: error.to_string() }
        }
        RequestError::Disagreement(reason) => CollectorError::Disagreement(reason),
    }
}
