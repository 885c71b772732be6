//! Which `Host` and `Origin` a listener answers, with geth's conventions: a web page open on
//! the operator's machine can reach `127.0.0.1`, so a browser's requests are refused unless
//! their origin is allowed, and a host name that is not the node's (DNS rebinding: a page's
//! own name resolving to 127.0.0.1) is refused too. A refused request gets HTTP 403 with a
//! body naming the header and the value, and never reaches a method.

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use jsonrpsee::server::HttpBody;
use std::net::{IpAddr, SocketAddr};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    validate_request::ValidateRequest,
};
use tracing::debug;

const LOG_TARGET: &str = "ferry::rpc::access";

/// Allowed values of a header: a list, or anything (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Allowed {
    /// Nothing.
    #[default]
    None,
    /// Only these (lowercase).
    Only(Vec<String>),
    /// Any value.
    Any,
}

impl Allowed {
    /// From a list as operators write it: `*` allows any, anything else is a list.
    pub fn from_list(values: &[String]) -> Self {
        if values.iter().any(|value| value.trim() == "*") {
            return Self::Any;
        }
        let values: Vec<String> = values
            .iter()
            .map(|value| value.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|value| !value.is_empty())
            .collect();
        if values.is_empty() { Self::None } else { Self::Only(values) }
    }

    pub(crate) fn allows(&self, value: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(values) => values.iter().any(|allowed| allowed == value),
            Self::None => false,
        }
    }

    /// For error messages.
    fn describe(&self) -> String {
        match self {
            Self::Any => "any".to_owned(),
            Self::Only(values) => values.join(", "),
            Self::None => "none".to_owned(),
        }
    }
}

/// A listener's `Host` and `Origin` rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRules {
    /// Host names (without port) accepted besides IP addresses (the public listener accepts
    /// any IP address, as geth does: a rebinding attack needs a name; the admin listener only
    /// loopback addresses and the one it is bound to). Default `localhost`.
    pub hosts: Allowed,
    /// Browser origins (`scheme://host[:port]`) allowed to call; a request without `Origin`
    /// (every non-browser client) is not concerned. Default none.
    pub origins: Allowed,
}

impl Default for AccessRules {
    fn default() -> Self {
        Self { hosts: Allowed::Only(vec!["localhost".to_owned()]), origins: Allowed::None }
    }
}

/// The check in front of one listener.
#[derive(Debug, Clone)]
pub(crate) struct AccessGuard {
    pub(crate) listener: &'static str,
    pub(crate) rules: AccessRules,
    /// The address the listener is bound to (its IP is always an accepted host).
    pub(crate) bound: SocketAddr,
    /// Only loopback IP addresses (and the bound one) are accepted as hosts.
    pub(crate) loopback_only: bool,
    /// The flags that widen the rules, named in refusals.
    pub(crate) flags: (&'static str, &'static str),
    /// The CORS answers for the allowed origins, so that a page on one of them can read
    /// what it asked over HTTP (WebSocket needs none).
    pub(crate) cors: CorsLayer,
}

/// CORS for `origins`: the same rule the guard applies, so a preflight is answered for
/// exactly the origins whose requests pass.
pub(crate) fn cors(origins: &Allowed) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]);
    match origins {
        Allowed::None => layer,
        Allowed::Any => layer.allow_origin(AllowOrigin::any()),
        Allowed::Only(_) => {
            let origins = origins.clone();
            layer.allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                origin.to_str().is_ok_and(|origin| {
                    origins.allows(origin.to_ascii_lowercase().trim_end_matches('/'))
                })
            }))
        }
    }
}

impl AccessGuard {
    /// Why `request` is refused, if it is.
    pub(crate) fn refusal<B>(&self, request: &Request<B>) -> Option<String> {
        if let Some(host) = host_of(request)
            && !self.host_allowed(&host)
        {
            return Some(format!(
                "refused by the {} listener: Host {host:?} is not one it answers to (allowed: \
                 IP addresses{}, {}; add a name with {})",
                self.listener,
                if self.loopback_only { " of loopback and its own" } else { "" },
                self.rules.hosts.describe(),
                self.flags.0
            ));
        }
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("<not text>").to_ascii_lowercase();
            if !self.rules.origins.allows(origin.trim_end_matches('/')) {
                return Some(format!(
                    "refused by the {} listener: Origin {origin:?} is not allowed (allowed: {}; \
                     a browser page may not call it unless listed with {})",
                    self.listener,
                    self.rules.origins.describe(),
                    self.flags.1
                ));
            }
        }
        None
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        match name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            // Bound to every address (possible with a JWT secret only), any of the host's own.
            Ok(ip) => {
                !self.loopback_only
                    || ip.is_loopback()
                    || ip == self.bound.ip()
                    || self.bound.ip().is_unspecified()
            }
            Err(_) => self.rules.hosts.allows(&name),
        }
    }
}

/// The `Host` header, or the URI's authority (HTTP/2); `None` when a request has neither.
fn host_of<B>(request: &Request<B>) -> Option<String> {
    request
        .headers()
        .get(header::HOST)
        .map(|value| value.to_str().unwrap_or("<not text>").to_owned())
        .or_else(|| request.uri().authority().map(|authority| authority.as_str().to_owned()))
}

/// `host` without its port, lowercase: `[::1]:5051` is `[::1]`, `Example:80` is `example`.
fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if host.starts_with('[') {
        // `[ip]` or `[ip]:port`; anything else after `]` keeps the whole, which is no address.
        return match host.split_once(']') {
            Some((ip, rest))
                if rest.is_empty()
                    || rest.strip_prefix(':').is_some_and(|port| {
                        !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit())
                    }) =>
            {
                format!("{ip}]")
            }
            _ => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => name.to_owned(),
        _ => host,
    }
}

impl<B> ValidateRequest<B> for AccessGuard {
    type ResponseBody = HttpBody;

    fn validate(&mut self, request: &mut Request<B>) -> Result<(), Response<HttpBody>> {
        let Some(reason) = self.refusal(request) else { return Ok(()) };
        debug!(target: LOG_TARGET, listener = self.listener, %reason, "Refused a request");
        metrics::counter!("ferry_rpc_refused_total", "listener" => self.listener, "reason" => "host_or_origin")
            .increment(1);
        Err(Response::builder()
            .status(StatusCode::FORBIDDEN)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(HttpBody::from(format!("{reason}\n")))
            .expect("a static response is well-formed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(loopback_only: bool, origins: &[&str]) -> AccessGuard {
        AccessGuard {
            listener: "admin",
            rules: AccessRules {
                hosts: Allowed::from_list(&["localhost".to_owned(), "node.internal".to_owned()]),
                origins: Allowed::from_list(
                    &origins.iter().map(|origin| (*origin).to_owned()).collect::<Vec<_>>(),
                ),
            },
            bound: "127.0.0.1:5051".parse().unwrap(),
            loopback_only,
            flags: ("--admin.vhosts", "--admin.origins"),
            cors: CorsLayer::new(),
        }
    }

    fn request(host: &str, origin: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().uri("/").header(header::HOST, host);
        if let Some(origin) = origin {
            builder = builder.header(header::ORIGIN, origin);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn hosts_are_the_nodes_names_and_addresses_only() {
        let admin = guard(true, &[]);
        for host in ["127.0.0.1:5051", "localhost:5051", "LOCALHOST", "[::1]:5051", "node.internal"]
        {
            assert_eq!(admin.refusal(&request(host, None)), None, "{host}");
        }
        for host in ["evil.example:5051", "10.0.0.7:5051", "localhost.evil.example"] {
            let reason = admin.refusal(&request(host, None)).unwrap();
            assert!(reason.contains(&format!("Host {host:?}")), "{reason}");
            assert!(reason.contains("--admin.vhosts"), "{reason}");
        }
        // The public listener accepts any IP address, as geth does.
        assert_eq!(guard(false, &[]).refusal(&request("10.0.0.7:5050", None)), None);
    }

    #[test]
    fn a_browser_origin_is_refused_unless_listed() {
        let admin = guard(true, &[]);
        let reason =
            admin.refusal(&request("127.0.0.1:5051", Some("https://evil.example"))).unwrap();
        assert!(reason.contains("Origin \"https://evil.example\""), "{reason}");
        let allowing = guard(true, &["https://dash.example/"]);
        assert_eq!(allowing.refusal(&request("localhost", Some("https://dash.example"))), None);
        assert!(allowing.refusal(&request("localhost", Some("https://other.example"))).is_some());
        assert_eq!(guard(true, &["*"]).refusal(&request("localhost", Some("null"))), None);
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("Example.COM:80"), "example.com");
        assert_eq!(host_name("[::1]:5051"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
        assert_eq!(host_name("[::1]evil"), "[::1]evil", "not an address: refused");
        assert_eq!(host_name("localhost"), "localhost");
    }
}
