//! Engine-API-style authentication of the admin listener: an HS256 JWT signed with a shared
//! 32-byte secret, whose `iat` is within 60 s of the node's clock.

use http::{Request, Response, StatusCode, header};
use jsonrpsee::server::HttpBody;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};
use tower_http::validate_request::ValidateRequest;
use tracing::debug;

const LOG_TARGET: &str = "ferry::rpc::auth";

/// How far a token's `iat` may be from the node's clock, as in the Engine API.
const IAT_WINDOW_SECS: u64 = 60;

/// Why a secret or a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// The secret file could not be read.
    #[error("cannot read the JWT secret file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The secret is not 32 bytes of hex.
    #[error("the JWT secret{} must be 64 hex characters (32 bytes, optional 0x): {reason}", in_file(.path))]
    Malformed {
        /// The file it came from, if any.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },
    /// The token is missing, malformed or wrongly signed.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token's `iat` is too far from now.
    #[error("token issued at {iat} is more than {IAT_WINDOW_SECS} s away from now ({now})")]
    Stale {
        /// The token's `iat`, Unix seconds.
        iat: u64,
        /// The node's clock, Unix seconds.
        now: u64,
    },
}

fn in_file(path: &Option<PathBuf>) -> String {
    path.as_ref().map(|path| format!(" in {}", path.display())).unwrap_or_default()
}

/// The admin listener's shared secret.
#[derive(Clone)]
pub struct JwtSecret([u8; 32]);

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(..)")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iat: u64,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

impl JwtSecret {
    /// Parses 64 hex characters (an optional `0x`, surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, JwtError> {
        Self::parse(text, None)
    }

    /// Reads the secret from a file holding it in hex, as `geth` and `reth` write `jwt.hex`.
    pub fn from_file(path: &Path) -> Result<Self, JwtError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| JwtError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, Some(path))
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<Self, JwtError> {
        let malformed =
            |reason: String| JwtError::Malformed { path: path.map(Path::to_owned), reason };
        let hex = text.trim();
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        if hex.len() != 64 {
            return Err(malformed(format!("found {} characters", hex.len())));
        }
        let mut secret = [0; 32];
        for (byte, pair) in secret.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).unwrap_or("");
            *byte = u8::from_str_radix(pair, 16)
                .map_err(|_| malformed(format!("{pair:?} is not hex")))?;
        }
        Ok(Self(secret))
    }

    /// A token issued at `iat` (Unix seconds).
    pub fn token_issued_at(&self, iat: u64) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims { iat },
            &EncodingKey::from_secret(&self.0),
        )
        .expect("HS256 signing of a fixed claim set cannot fail")
    }

    /// A token issued now: valid for about a minute.
    pub fn token(&self) -> String {
        self.token_issued_at(now_secs())
    }

    /// Checks a token's signature and `iat`.
    pub fn verify(&self, token: &str) -> Result<(), JwtError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&self.0), &validation)
                .map_err(|error| JwtError::Invalid(error.to_string()))?;
        let (iat, now) = (data.claims.iat, now_secs());
        if iat.abs_diff(now) > IAT_WINDOW_SECS {
            return Err(JwtError::Stale { iat, now });
        }
        Ok(())
    }
}

/// The admin listener's HTTP check (WebSocket handshakes included): with a secret, a request
/// without a valid bearer token gets HTTP 401 and never reaches a method.
#[derive(Debug, Clone)]
pub(crate) struct JwtValidator {
    pub(crate) secret: Option<Arc<JwtSecret>>,
}

impl<B> ValidateRequest<B> for JwtValidator {
    type ResponseBody = HttpBody;

    fn validate(&mut self, request: &mut Request<B>) -> Result<(), Response<HttpBody>> {
        let Some(secret) = &self.secret else { return Ok(()) };
        let token = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let verdict = match token {
            Some(token) => secret.verify(token),
            None => Err(JwtError::Invalid("no Authorization: Bearer header".to_owned())),
        };
        verdict.map_err(|error| {
            debug!(target: LOG_TARGET, %error, "Refused an admin request");
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(header::WWW_AUTHENTICATE, "Bearer")
                .body(HttpBody::from(error.to_string()))
                .expect("a static response is well-formed")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0x0102030405060708091011121314151617181920212223242526272829303132";

    #[test]
    fn secrets_parse_from_hex_with_or_without_0x_and_name_the_problem() {
        assert!(JwtSecret::from_hex(HEX).is_ok());
        assert!(JwtSecret::from_hex(&format!("  {}\n", &HEX[2..])).is_ok());
        let error = JwtSecret::from_hex("0x1234").unwrap_err().to_string();
        assert!(error.contains("64 hex characters") && error.contains("found 4"), "{error}");
        let error = JwtSecret::from_hex(&HEX.replace("01", "zz")).unwrap_err().to_string();
        assert!(error.contains("\"zz\" is not hex"), "{error}");
    }

    #[test]
    fn tokens_verify_within_the_window_only() {
        let secret = JwtSecret::from_hex(HEX).unwrap();
        assert!(secret.verify(&secret.token()).is_ok());
        assert!(secret.verify(&secret.token_issued_at(now_secs() - 30)).is_ok());
        let stale = secret.verify(&secret.token_issued_at(now_secs() - 120)).unwrap_err();
        assert!(matches!(stale, JwtError::Stale { .. }), "{stale}");
        let future = secret.verify(&secret.token_issued_at(now_secs() + 120)).unwrap_err();
        assert!(matches!(future, JwtError::Stale { .. }), "{future}");
        let other = JwtSecret::from_hex(&HEX.replace("32", "33")).unwrap();
        assert!(matches!(secret.verify(&other.token()), Err(JwtError::Invalid(_))));
        assert!(matches!(secret.verify("not.a.token"), Err(JwtError::Invalid(_))));
    }
}
