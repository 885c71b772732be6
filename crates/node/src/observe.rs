//! Logs, Prometheus metrics, and the /health and /ready endpoints for orchestrators.

use crate::LogFormat;
use ferry_messaging::Status;
use ferry_primitives::Phase;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::{body::Bytes, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::{convert::Infallible, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tracing::info;
use tracing_subscriber::EnvFilter;

const LOG_TARGET: &str = "ferry::node::observe";

/// Sets up `tracing`: the level from `RUST_LOG` (default `info`), text or JSON lines on stderr.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Installs the Prometheus recorder, so that every `metrics::` call from here on is kept.
pub(crate) fn install_recorder() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets(&[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|error| error.to_string())
}

/// What the endpoints report from.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    pub(crate) metrics: PrometheusHandle,
    pub(crate) status: Arc<Status>,
    pub(crate) ready_max_lag: u64,
    /// When set, /ready also needs the sink up and at most this many entries behind.
    pub(crate) sink_ready_max_lag: Option<u64>,
}

/// Sockets the metrics listener keeps open at once: scrapers and probes, a few at a time.
const METRICS_CONNECTIONS: usize = 64;

/// How long a scraper may take to send its request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `/metrics`, `/health` and `/ready` on `listener` until `shutdown` resolves, with the
/// public listeners' accept loop: a socket cap, and a pause after a failed accept.
pub(crate) async fn serve(
    listener: TcpListener,
    observed: Observed,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    info!(target: LOG_TARGET, addr = ?listener.local_addr().ok(), "Serving /metrics, /health and /ready");
    let serve = move |socket, _remote| {
        let observed = observed.clone();
        async move {
            let service = service_fn(move |request| {
                let response = respond(&request, &observed);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(socket), service)
                .await;
        }
    };
    ferry_rpc::accept_loop("metrics", listener, METRICS_CONNECTIONS, shutdown, serve).await;
}

fn respond<B>(request: &Request<B>, observed: &Observed) -> Response<Full<Bytes>> {
    let (status, body) = match request.uri().path() {
        "/metrics" => (StatusCode::OK, observed.metrics.render()),
        "/health" => (StatusCode::OK, "ok\n".to_owned()),
        "/ready" => readiness(observed),
        _ => (StatusCode::NOT_FOUND, "not found: try /metrics, /health or /ready\n".to_owned()),
    };
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("a static response is well-formed")
}

/// Ready while the cursor is within `ready_max_lag` blocks of the safe head, ingestion is not
/// halted by a deep reorg, and (when asked) the sink is up and close behind the store.
fn readiness(observed: &Observed) -> (StatusCode, String) {
    let snapshot = observed.status.snapshot();
    if let Some(ha) = snapshot.ha.as_ref().filter(|ha| ha.role != ferry_primitives::HaRole::Leader)
    {
        return standby_readiness(ha, observed.sink_ready_max_lag.unwrap_or(0));
    }
    if let Some(max) = observed.sink_ready_max_lag {
        let sink = snapshot.sink.clone().unwrap_or_default();
        if !sink.connected || sink.fenced || sink.lag_seq > max {
            let why = sink.last_error.unwrap_or_else(|| format!("{} entries behind", sink.lag_seq));
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: the sink is not within {max} entries of the store: {why}\n"),
            );
        }
    }
    if let Some(halt) = snapshot.halted {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: halted: {}\n", halt.reason));
    }
    if snapshot.phase == Phase::Connecting {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the L1 provider has not answered since the start\n".to_owned(),
        );
    }
    match snapshot.lag_blocks() {
        Some(lag) => {
            if lag <= observed.ready_max_lag {
                (StatusCode::OK, format!("ready: {lag} blocks behind the safe head\n"))
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "not ready: {lag} blocks behind the safe head (at most {})\n",
                        observed.ready_max_lag
                    ),
                )
            }
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "not ready: no L1 head seen yet\n".to_owned()),
    }
}

/// A standby is ready while it reaches the group and its store is within `max` journal
/// writes of the journal's end (`--sink.ready-max-lag`, 0 by default): what it serves is then
/// what the leader wrote.
fn standby_readiness(ha: &ferry_primitives::HaSnapshot, max: u64) -> (StatusCode, String) {
    let behind = ha.journal_last.map(|last| last.saturating_sub(ha.journal_applied));
    match (ha.connected, behind) {
        (true, Some(behind)) if behind <= max => (
            StatusCode::OK,
            format!("ready: standby of group {}, {behind} journal writes behind\n", ha.group),
        ),
        (true, Some(behind)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: standby of group {}, {behind} journal writes behind (at most {max})\n",
                ha.group
            ),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: standby of group {} that has not read the journal: {}\n",
                ha.group,
                ha.last_error.as_deref().unwrap_or("connecting")
            ),
        ),
    }
}

/// The sink's view of `status`: the seqs written, and the sink's own part of status.
pub(crate) fn sink_report(status: &Arc<Status>) -> ferry_sink::SinkReport {
    let reported = Arc::clone(status);
    ferry_sink::SinkReport::new(status.subscribe_last_seq(), move |change| {
        reported.update_sink(change)
    })
}
