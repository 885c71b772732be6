//! One listener's sockets: a cap on how many are open, an accept loop that backs off when the
//! system refuses sockets (out of file descriptors), and per connection a deadline for the
//! request headers and an idle timeout, so that idle sockets cannot hold the listener.

use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    time::Instant,
};
use tracing::{debug, warn};

const LOG_TARGET: &str = "ferry::rpc::connection";

/// The first and the longest pause after a failed accept; it doubles in between. At most one
/// warning per pause: a listener out of file descriptors neither spins nor floods the log.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// How long a socket may stay open without a request, and how long a request's headers may
/// take to arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub(crate) header_read: Duration,
    pub(crate) idle: Duration,
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

/// Requests in flight on a connection, and when the last one started or ended.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    last: watch::Sender<Instant>,
}

/// Serves one connection (HTTP/1, HTTP/2, WebSocket upgrades) with `service` until it closes,
/// `stop` resolves (in-flight requests finish), its headers take longer than the timeout, or
/// it stays without a request for the idle timeout. An upgraded WebSocket leaves this loop at
/// once: its liveness is the pings'.
pub(crate) async fn serve<IO, S, B>(
    io: IO,
    service: S,
    timeouts: Timeouts,
    stop: impl Future<Output = ()>,
) where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body<Data = hyper::body::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        last: watch::Sender::new(Instant::now()),
    });
    let tracked = Tracked { inner: service, activity: Arc::clone(&activity) };
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(timeouts.header_read);
    builder.http2().timer(TokioTimer::new());
    let connection =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(tracked));
    tokio::pin!(connection, stop);
    let mut last = activity.last.subscribe();
    loop {
        let deadline = *last.borrow_and_update() + timeouts.idle;
        tokio::select! {
            _ = &mut connection => return,
            () = &mut stop => break,
            _ = last.changed() => {}
            () = tokio::time::sleep_until(deadline) => {
                if activity.in_flight.load(Ordering::SeqCst) == 0 {
                    debug!(target: LOG_TARGET, idle = ?timeouts.idle, "Closing an idle connection");
                    metrics::counter!("ferry_rpc_idle_closed_total").increment(1);
                    break;
                }
                activity.last.send_replace(Instant::now());
            }
        }
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// `inner`, recording each request's start and end in `activity`.
#[derive(Debug, Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, R> tower::Service<R> for Tracked<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
    S::Response: 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let activity = Arc::clone(&self.activity);
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.last.send_replace(Instant::now());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            activity.in_flight.fetch_sub(1, Ordering::SeqCst);
            activity.last.send_replace(Instant::now());
            response
        })
    }
}
