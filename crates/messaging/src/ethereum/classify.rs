//! What a failed L1 request means: retry it, shrink the range, ask again elsewhere, or give up.
//! Providers word the same failure many ways; this is the one place that reads them.

use alloy::transports::{RpcError, TransportError, TransportErrorKind};

/// What to do about a failed L1 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// The `eth_getLogs` range or its result is too large: ask for fewer blocks.
    RangeTooLarge,
    /// Transport trouble, rate limits, server errors, a truncated answer: try again later.
    Retryable,
    /// The provider does not know the block asked for (yet, or any more: another backend, a
    /// reorg). Asking by number again may help; asking for the same hash will not.
    UnknownBlock,
    /// The request itself is wrong; repeating it will not help.
    Fatal,
}

/// Messages providers use to refuse a log range (Infura, Alchemy, QuickNode, geth, erigon,
/// reth, anvil and others word it differently).
const RANGE_MESSAGES: &[&str] = &[
    "query returned more than",
    "block range",
    "range is too large",
    "range too large",
    "too many blocks",
    "exceed maximum block range",
    "limit exceeded",
    "response size",
    "too many results",
    "log response size exceeded",
    "logs matched by query exceeds",
    "result window",
];

/// Messages providers use for a block they do not have (geth, erigon, reth, anvil, nethermind).
const UNKNOWN_BLOCK_MESSAGES: &[&str] =
    &["unknown block", "block not found", "header not found", "not found block"];

const RATE_LIMIT_MESSAGES: &[&str] =
    &["rate limit", "rate exceeded", "too many requests", "request count", "capacity"];

pub(crate) fn classify(error: &TransportError) -> ErrorClass {
    match error {
        RpcError::ErrorResp(payload) => {
            let message = payload.message.to_lowercase();
            if RATE_LIMIT_MESSAGES.iter().any(|needle| message.contains(needle)) {
                ErrorClass::Retryable
            } else if UNKNOWN_BLOCK_MESSAGES.iter().any(|needle| message.contains(needle)) {
                ErrorClass::UnknownBlock
            } else if RANGE_MESSAGES.iter().any(|needle| message.contains(needle))
                || payload.code == -32005
            {
                ErrorClass::RangeTooLarge
            } else if matches!(payload.code, 429 | -32603 | -32000 | -32002 | -32003) {
                // Internal errors and "header not found"-style transients.
                ErrorClass::Retryable
            } else {
                ErrorClass::Fatal
            }
        }
        RpcError::Transport(kind) => match kind {
            TransportErrorKind::HttpError(http)
            | TransportErrorKind::HttpErrorWithRetryAfter { error: http, .. } => {
                match http.status {
                    413 => ErrorClass::RangeTooLarge,
                    408 | 425 | 429 | 500..=599 => ErrorClass::Retryable,
                    _ => ErrorClass::Fatal,
                }
            }
            // Connection refused or reset, timeouts, a WebSocket reconnecting, a lost batch.
            _ => ErrorClass::Retryable,
        },
        // A truncated or garbled body, or a node that has not got the data yet.
        RpcError::DeserError { .. } | RpcError::NullResp => ErrorClass::Retryable,
        RpcError::SerError(_) | RpcError::UnsupportedFeature(_) | RpcError::LocalUsageError(_) => {
            ErrorClass::Fatal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::rpc::json_rpc::ErrorPayload; // feature json-rpc (dev)
    use alloy::transports::HttpError;

    fn rpc_error(code: i64, message: &'static str) -> TransportError {
        RpcError::ErrorResp(ErrorPayload { code, message: message.into(), data: None })
    }

    fn http_error(status: u16) -> TransportError {
        RpcError::Transport(TransportErrorKind::HttpError(HttpError {
            status,
            body: String::new(),
        }))
    }

    #[test]
    fn provider_range_refusals_shrink_the_range() {
        for error in [
            rpc_error(-32005, "query returned more than 10000 results"),
            rpc_error(-32600, "block range is too large"),
            rpc_error(-32602, "eth_getLogs block range too large, range: 5000, max: 1000"),
            rpc_error(-32005, "limit exceeded"),
            rpc_error(
                -32000,
                "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range",
            ),
            http_error(413),
        ] {
            assert_eq!(classify(&error), ErrorClass::RangeTooLarge, "{error}");
        }
    }

    #[test]
    fn transients_are_retried_and_bad_requests_are_not() {
        for error in [
            http_error(429),
            http_error(500),
            http_error(502),
            http_error(503),
            rpc_error(-32005, "daily request count exceeded, request rate limited"),
            rpc_error(429, "Too Many Requests"),
            RpcError::Transport(TransportErrorKind::BackendGone),
            RpcError::NullResp,
        ] {
            assert_eq!(classify(&error), ErrorClass::Retryable, "{error}");
        }
        for error in [rpc_error(-32602, "invalid argument 0: hex string"), http_error(401)] {
            assert_eq!(classify(&error), ErrorClass::Fatal, "{error}");
        }
        for error in [rpc_error(-32000, "unknown block"), rpc_error(-32000, "header not found")] {
            assert_eq!(classify(&error), ErrorClass::UnknownBlock, "{error}");
        }
    }
}
