//! One listener's sockets: a cap on how many are open, an accept loop that backs off when the
//! system refuses sockets (out of file descriptors), and per connection deadlines (the first
//! request, each request's headers and whole exchange, idleness, the goodbye), so that
//! neither idle nor stalled sockets can hold the listener, or its shutdown.

use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use jsonrpsee::server::HttpBody;
use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tracing::{debug, warn};

const LOG_TARGET: &str = "ferry::rpc::connection";

/// The first and the longest pause after a failed accept; it doubles in between. At most one
/// warning per pause: a listener out of file descriptors neither spins nor floods the log.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// How long a closing connection may take to finish its requests in flight (and an HTTP/2
/// peer to acknowledge the goodbye) before it is dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often an HTTP/2 peer is pinged, and how long its answer may take: a vanished peer is
/// closed even while a stream looks busy.
const H2_KEEP_ALIVE: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(10));

/// A connection's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// For the first request to start (whatever the protocol), and for each HTTP/1 request's
    /// headers (hyper's own timer, which also runs while a keep-alive connection waits).
    pub(crate) header_read: Duration,
    /// For a connection with no request in flight, between requests.
    pub(crate) idle: Duration,
    /// For one request, from its headers to its answer, body upload included; beyond, it
    /// gets 408 (a WebSocket upgrade answers at once, and its session is not concerned).
    pub(crate) request: Duration,
}

/// Accepts sockets on `listener` while fewer than `permits` are open (beyond, a new socket is
/// closed at once) and hands each to `serve` with its peer's address, until `stop` resolves.
/// A failed accept (out of file descriptors, mostly) is counted in
/// `ferry_rpc_accept_errors_total` and paused on, 10 ms doubling to 1 s.
pub async fn accept_loop<F, Fut>(
    name: &'static str,
    listener: TcpListener,
    permits: usize,
    stop: impl Future<Output = ()>,
    mut serve: F,
) where
    F: FnMut(Counted<TcpStream>, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let open = Arc::new(Semaphore::new(permits));
    let mut backoff = ACCEPT_BACKOFF.0;
    tokio::pin!(stop);
    loop {
        let (socket, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = ACCEPT_BACKOFF.0;
                    accepted
                }
                Err(error) => {
                    metrics::counter!("ferry_rpc_accept_errors_total", "listener" => name)
                        .increment(1);
                    warn!(target: LOG_TARGET, listener = name, %error, pause = ?backoff,
                        "Accept failed; pausing");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut stop => break,
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Notifications are small and latency matters more than packing them.
        let _ = socket.set_nodelay(true);
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            metrics::counter!("ferry_rpc_refused_total", "listener" => name, "reason" => "connections")
                .increment(1);
            debug!(target: LOG_TARGET, listener = name, %remote, permits,
                "Too many connections; closed a new one");
            drop(socket);
            continue;
        };
        tokio::spawn(serve(Counted { io: socket, _permit: permit }, remote));
    }
}

/// A socket that holds one of its listener's places for as long as it lives, WebSocket
/// upgrades included (hyper hands the socket itself over to them).
#[derive(Debug)]
pub struct Counted<IO> {
    io: IO,
    _permit: OwnedSemaphorePermit,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Counted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Requests in flight on a connection, and when the last one started or ended. Plain
/// atomics: the serve loop reads them when its deadline comes, so requests wake nobody.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// When the last request started or ended, in microseconds after `opened`; `NEVER` until
    /// the first one starts.
    last_micros: AtomicU64,
}

impl Activity {
    const NEVER: u64 = u64::MAX;

    fn touch(&self) {
        let micros = self.opened.elapsed().as_micros().min(u128::from(Self::NEVER - 1)) as u64;
        self.last_micros.store(micros, Ordering::SeqCst);
    }

    /// When the connection is to close unless a request comes: the first one within the
    /// header-read timeout, the next ones within the idle timeout of the last.
    fn deadline(&self, timeouts: Timeouts) -> Instant {
        match self.last_micros.load(Ordering::SeqCst) {
            Self::NEVER => self.opened + timeouts.header_read,
            micros => self.opened + Duration::from_micros(micros) + timeouts.idle,
        }
    }
}

/// Serves one connection (HTTP/1, HTTP/2, WebSocket upgrades) with `service` until it closes,
/// `stop` resolves (in-flight requests finish, for `SHUTDOWN_GRACE` at most), no request
/// starts within the header-read timeout, or it stays without one for the idle timeout. An
/// upgraded WebSocket leaves this loop at once: its liveness is the pings'.
pub(crate) async fn serve<IO, S>(
    io: IO,
    service: S,
    timeouts: Timeouts,
    stop: impl Future<Output = ()>,
) where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    S: tower::Service<http::Request<Incoming>, Response = http::Response<HttpBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity {
        opened: Instant::now(),
        in_flight: AtomicUsize::new(0),
        last_micros: AtomicU64::new(Activity::NEVER),
    });
    let tracked =
        Tracked { inner: service, activity: Arc::clone(&activity), timeout: timeouts.request };
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(timeouts.header_read);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE.0)
        .keep_alive_timeout(H2_KEEP_ALIVE.1);
    let connection =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(tracked));
    let sleep = tokio::time::sleep_until(activity.deadline(timeouts));
    tokio::pin!(connection, stop, sleep);
    loop {
        tokio::select! {
            _ = &mut connection => return,
            () = &mut stop => break,
            () = &mut sleep => {
                let deadline = activity.deadline(timeouts);
                if activity.in_flight.load(Ordering::SeqCst) > 0 {
                    // Busy: a request's own timeout bounds it; look again later.
                    sleep.as_mut().reset(Instant::now() + timeouts.idle);
                } else if deadline > Instant::now() {
                    sleep.as_mut().reset(deadline);
                } else {
                    debug!(target: LOG_TARGET, "Closing an idle connection");
                    metrics::counter!("ferry_rpc_idle_closed_total").increment(1);
                    break;
                }
            }
        }
    }
    connection.as_mut().graceful_shutdown();
    if tokio::time::timeout(SHUTDOWN_GRACE, connection).await.is_err() {
        debug!(target: LOG_TARGET, grace = ?SHUTDOWN_GRACE, "Dropped a connection that would not close");
    }
}

/// `inner`, recording each request's start and end in `activity`, and answering 408 to one
/// that takes longer than `timeout`.
#[derive(Debug, Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    timeout: Duration,
}

/// One request in flight: counted until dropped, whether it finished or was abandoned (an
/// HTTP/2 stream reset drops it unfinished).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.touch();
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S, R> tower::Service<R> for Tracked<S>
where
    S: tower::Service<R, Response = http::Response<HttpBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let in_flight = InFlight::start(&self.activity);
        let response = self.inner.call(request);
        let timeout = self.timeout;
        Box::pin(async move {
            let answer = tokio::time::timeout(timeout, response).await;
            drop(in_flight);
            answer.unwrap_or_else(|_| {
                metrics::counter!("ferry_rpc_request_timeouts_total").increment(1);
                Ok(timed_out(timeout))
            })
        })
    }
}

fn timed_out(timeout: Duration) -> http::Response<HttpBody> {
    http::Response::builder()
        .status(http::StatusCode::REQUEST_TIMEOUT)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(http::header::CONNECTION, "close")
        .body(HttpBody::from(format!(
            "the request took longer than {timeout:?}, body upload included; closed\n"
        )))
        .expect("a static response is well-formed")
}
