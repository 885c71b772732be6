//! The two listeners: binding, the middleware every request passes (Host and Origin rules,
//! CORS, the admin JWT) and the accept loop that serves each connection.

use crate::{
    AccessRules, JwtSecret, Limits, RpcConfig,
    access::{AccessGuard, cors},
    admin::admin_module,
    auth::JwtValidator,
    connection::{self, Timeouts},
    context::{Context, RemoteAddr},
    public::public_module,
};
use ferry_messaging::MessagingController;
use jsonrpsee::{
    Methods,
    server::{
        BatchRequestConfig, HttpBody, PingConfig, Server, ServerConfig, ServerHandle, stop_channel,
    },
};
use std::{net::SocketAddr, sync::Arc};
use tokio::net::TcpListener;
use tower::Service;
use tower_http::validate_request::ValidateRequestHeaderLayer;
use tracing::info;

const LOG_TARGET: &str = "ferry::rpc::server";

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
            store: controller.store().clone(),
            status: Arc::clone(controller.status()),
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
