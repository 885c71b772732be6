//! How the listeners are configured: where they bind, who they answer, and the bounds on what
//! one client can make them do.

use crate::{AccessRules, JwtSecret};
use std::{net::SocketAddr, time::Duration};

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
