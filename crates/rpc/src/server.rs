use crate::{
    AccessRules, JwtSecret,
    access::{AccessGuard, cors},
    auth::JwtValidator,
    connection::{self, Timeouts},
    methods::{Context, admin_module, public_module},
};
use ferry_messaging::MessagingController;
use jsonrpsee::{
    Methods,
    server::{
        BatchRequestConfig, HttpBody, PingConfig, Server, ServerConfig, ServerHandle, stop_channel,
    },
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tower::Service;
use tower_http::validate_request::ValidateRequestHeaderLayer;
use tracing::info;

const LOG_TARGET: &str = "ferry::rpc::server";

/// The caller's socket address, put into every request's extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RemoteAddr(pub(crate) SocketAddr);

/// Bounds on what one client can make a listener do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body (and WebSocket message), in bytes; larger ones get HTTP 413.
    pub max_request_body_bytes: u32,
    /// Largest response, in bytes.
    pub max_response_body_bytes: u32,
    /// Most requests in one batch.
    pub max_batch_requests: u32,
    /// Most TCP connections open at once on each listener (a socket beyond is closed at
    /// once), and most HTTP requests in flight and WebSocket sessions.
    pub max_connections: u32,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long an HTTP connection may stay open without a request in flight (WebSocket
    /// connections are kept by their pings instead). An HTTP/1 connection waiting for its
    /// next request is closed after `header_read_timeout` already (hyper's rule); this bounds
    /// HTTP/2 connections.
    pub idle_timeout: Duration,
    /// How long one HTTP request may take, from its headers to its answer, body upload
    /// included; beyond, it gets HTTP 408.
    pub request_timeout: Duration,
    /// Most subscriptions on one WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// How often WebSocket connections are pinged; one that stays silent for twice as long
    /// is closed.
    pub ws_ping_interval: Duration,
    /// Most subscriptions open on the public listener at once.
    pub max_subscriptions_total: u32,
    /// Most subscriptions open at once from one IP address, so that one client cannot hold
    /// every place.
    pub max_subscriptions_per_peer: u32,
    /// Frames a WebSocket connection may have queued for a slow reader; with
    /// `subscription_batch` this bounds the memory a subscriber can hold.
    pub ws_message_buffer: u32,
    /// Most messages in one subscription notification.
    pub subscription_batch: u32,
    /// Most bytes of log entries in one page (a `messaging_getMessages` answer or a
    /// notification); a single entry larger than this still goes out, alone. Anyone can send
    /// the contract a message with a payload of megabytes, so counting entries is not enough
    /// to keep a page under a client's frame limit.
    pub max_page_bytes: u32,
    /// How long a notification may wait for room in a subscriber's queue before the
    /// subscription is closed as too slow (with the seq to resume from).
    pub slow_subscriber_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_body_bytes: 1 << 20,
            max_response_body_bytes: 32 << 20,
            max_batch_requests: 50,
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            max_subscriptions_per_connection: 16,
            ws_ping_interval: Duration::from_secs(30),
            max_subscriptions_total: 1_024,
            max_subscriptions_per_peer: 64,
            ws_message_buffer: 16,
            subscription_batch: 100,
            max_page_bytes: 4 << 20,
            slow_subscriber_timeout: Duration::from_secs(5),
        }
    }
}

/// Where the listeners bind and how the admin one is protected.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// The public listener.
    pub public_addr: SocketAddr,
    /// The admin listener.
    pub admin_addr: SocketAddr,
    /// The admin listener's JWT secret; without one it binds loopback addresses only.
    pub jwt_secret: Option<JwtSecret>,
    /// Bounds on both listeners.
    pub limits: Limits,
    /// The `Host` and `Origin` values the public listener answers.
    pub public_access: AccessRules,
    /// The `Host` and `Origin` values the admin listener answers.
    pub admin_access: AccessRules,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            public_addr: SocketAddr::from(([127, 0, 0, 1], 5050)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 5051)),
            jwt_secret: None,
            limits: Limits::default(),
            public_access: AccessRules::default(),
            admin_access: AccessRules::default(),
        }
    }
}

/// Why the listeners could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The admin listener would be reachable from other hosts without authentication.
    #[error(
        "refusing to bind the admin listener to {addr} without a JWT secret: anyone who can \
         reach it could move the checkpoint; bind it to a loopback address (127.0.0.1 or ::1) \
         or set --admin.jwt-secret"
    )]
    AdminNotLoopback {
        /// The requested address.
        addr: SocketAddr,
    },
    /// A listener could not bind.
    #[error("cannot bind the {listener} listener to {addr}: {source}")]
    Bind {
        /// `public` or `admin`.
        listener: &'static str,
        /// The requested address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The running listeners.
#[derive(Debug)]
pub struct RpcServer {
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
    public_methods: Vec<&'static str>,
    admin_methods: Vec<&'static str>,
    handles: [ServerHandle; 2],
}

impl RpcServer {
    /// Binds and starts both listeners.
    pub async fn start(
        config: RpcConfig,
        controller: MessagingController,
        version: impl Into<String>,
    ) -> Result<Self, ServerError> {
        if config.jwt_secret.is_none() && !config.admin_addr.ip().is_loopback() {
            return Err(ServerError::AdminNotLoopback { addr: config.admin_addr });
        }
        let context = Context {
            controller,
            version: version.into(),
            limits: config.limits,
            subscriptions: Arc::default(),
        };
        let public_module = public_module(context.clone());
        let admin_module = admin_module(context);
        let public_methods = public_module.method_names().collect();
        let admin_methods = admin_module.method_names().collect();
        let public = Listener {
            name: "public",
            addr: config.public_addr,
            limits: config.limits,
            access: config.public_access,
            flags: ("--rpc.vhosts", "--rpc.cors"),
            secret: None,
        };
        let (public_addr, public) = public.listen(public_module.into()).await?;
        let admin = Listener {
            name: "admin",
            addr: config.admin_addr,
            limits: config.limits,
            access: config.admin_access,
            flags: ("--admin.vhosts", "--admin.origins"),
            secret: config.jwt_secret.map(Arc::new),
        };
        let (admin_addr, admin) = admin.listen(admin_module.into()).await?;
        Ok(Self {
            public_addr,
            admin_addr,
            public_methods,
            admin_methods,
            handles: [public, admin],
        })
    }

    /// The public listener's address (with the real port when asked for port 0).
    pub const fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    /// The admin listener's address.
    pub const fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The methods the public listener serves.
    pub fn public_methods(&self) -> &[&'static str] {
        &self.public_methods
    }

    /// The methods the admin listener serves.
    pub fn admin_methods(&self) -> &[&'static str] {
        &self.admin_methods
    }

    /// Stops accepting connections and closes the open ones.
    pub fn stop(&self) {
        for handle in &self.handles {
            let _ = handle.stop();
        }
    }

    /// Waits until both listeners have stopped.
    pub async fn stopped(self) {
        for handle in self.handles {
            handle.stopped().await;
        }
    }
}

fn server_config(limits: Limits) -> ServerConfig {
    ServerConfig::builder()
        .max_request_body_size(limits.max_request_body_bytes)
        .max_response_body_size(limits.max_response_body_bytes)
        .max_connections(limits.max_connections)
        .max_subscriptions_per_connection(limits.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(limits.max_batch_requests))
        .set_message_buffer_capacity(limits.ws_message_buffer)
        .enable_ws_ping(
            PingConfig::new()
                .ping_interval(limits.ws_ping_interval)
                .inactive_limit(limits.ws_ping_interval * 2),
        )
        .build()
}

/// One listener, before it binds.
struct Listener {
    name: &'static str,
    addr: SocketAddr,
    limits: Limits,
    access: AccessRules,
    /// The flags that widen `access`, named in refusals.
    flags: (&'static str, &'static str),
    /// The admin listener's JWT secret, when it has one.
    secret: Option<Arc<JwtSecret>>,
}

impl Listener {
    /// Binds and serves `methods`, with an accept loop of its own: it caps the open sockets,
    /// times out idle ones, and puts the caller's address into every request (for the audit
    /// trail and the per-peer subscription cap). Each request passes the `Host`/`Origin`
    /// check first, then CORS, then (admin) the JWT check, and only then reaches a method.
    async fn listen(self, methods: Methods) -> Result<(SocketAddr, ServerHandle), ServerError> {
        let Self { name, addr, limits, access, flags, secret } = self;
        let bind_error = |source| ServerError::Bind { listener: name, addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let authenticated = secret.is_some();
        let guard = AccessGuard {
            listener: name,
            cors: cors(&access.origins),
            rules: access,
            bound: local,
            // The admin listener answers loopback and its own address only, as a name a web
            // page chose cannot be either.
            loopback_only: name == "admin",
            flags,
        };
        let middleware = tower::ServiceBuilder::new()
            .layer(ValidateRequestHeaderLayer::custom(guard.clone()))
            .layer(guard.cors.clone())
            .layer(ValidateRequestHeaderLayer::custom(JwtValidator { secret }));
        let services = Server::builder()
            .set_config(server_config(limits))
            .set_http_middleware(middleware)
            .to_service_builder();
        let timeouts = Timeouts {
            header_read: limits.header_read_timeout,
            idle: limits.idle_timeout,
            request: limits.request_timeout,
        };
        let (stop, handle) = stop_channel();
        let accept_stop = stop.clone();
        tokio::spawn(connection::accept_loop(
            name,
            listener,
            limits.max_connections as usize,
            accept_stop.shutdown(),
            move |socket, remote| {
                let service = services.clone().build(methods.clone(), stop.clone());
                let service =
                    tower::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(RemoteAddr(remote));
                        let mut service = service.clone();
                        async move { service.call(request.map(HttpBody::new)).await }
                    });
                connection::serve(socket, service, timeouts, stop.clone().shutdown())
            },
        ));
        info!(target: LOG_TARGET, listener = name, addr = %local, authenticated,
            hosts = ?guard.rules.hosts, origins = ?guard.rules.origins, "Listening");
        Ok((local, handle))
    }
}
