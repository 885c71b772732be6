//! Fuzz targets for what reads untrusted input on the listeners: the params parser, the
//! quantity deserializer, the JWT check, and the `Host`/`Origin` check. Each runs for
//! `FERRY_FUZZ_SECONDS` (see `ferry_primitives::test_utils::fuzz`; `scripts/fuzz.sh`).
//! Inputs mix arbitrary text with near-valid values (JSON of the right shape, tokens with one
//! character changed), which reach further into the code than noise does.

use crate::{
    JwtSecret,
    access::{AccessGuard, AccessRules, Allowed},
    params::{CallParams, Quantity},
};
use ferry_primitives::test_utils::fuzz;
use jsonrpsee::types::Params;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower_http::cors::CorsLayer;

const NAMES: &[&str] = &["fromSeq", "limit", "options"];

/// JSON values of any shape, quantities written in every way, and text that is almost JSON.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|float| json!(float)),
        any::<u64>().prop_map(|number| Value::from(format!("{number:#x}"))),
        "[0-9a-fA-Fx+-. ]{0,24}".prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (prop_oneof!["fromSeq|limit|options|finality", ".{0,6}"], inner),
                0..4
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    });
    prop_oneof![
        4 => value.prop_map(|value| value.to_string()),
        1 => ".{0,40}",
        1 => "[\\[\\]{}\",:0-9a-z ]{0,40}",
    ]
}

#[test]
fn fuzz_params_parser() {
    fuzz("params", json_text(), |text| {
        let params = Params::new(Some(&text));
        let Ok(call) = CallParams::parse(&params, NAMES) else { return Ok(()) };
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        for (index, name) in NAMES.iter().enumerate() {
            match call.optional::<Quantity>(index) {
                Ok(Some(Quantity(number))) => {
                    // Only what the caller wrote comes out: find it where it was given.
                    let given = parsed.get(index).or_else(|| parsed.get(name)).cloned();
                    let expected = [json!(number), json!(format!("{number:#x}"))];
                    prop_assert!(
                        given.as_ref().is_some_and(|given| {
                            expected.contains(given)
                                || given.as_str().is_some_and(|hex| {
                                    ferry_primitives::quantity::parse_hex(hex) == Ok(number)
                                })
                        }),
                        "{text} gave {number} at {index}"
                    );
                }
                Ok(None) => {}
                Err(error) => {
                    prop_assert!(error.to_string().contains(name), "{error}");
                }
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_quantity_deserializer() {
    let input = prop_oneof![
        any::<u64>().prop_map(|number| number.to_string()),
        any::<u64>().prop_map(|number| format!("\"{number:#x}\"")),
        "-?[0-9]{0,22}(\\.[0-9]{0,3})?(e[0-9])?",
        "\"(0[xX])?[0-9a-fA-F]{0,20}\"",
        "\".{0,20}\"",
        ".{0,20}",
    ];
    fuzz("quantity", input, |text| {
        match serde_json::from_str::<Quantity>(&text) {
            Ok(Quantity(number)) => {
                let value: Value = serde_json::from_str(&text).expect("accepted text is JSON");
                let agrees = match &value {
                    Value::Number(written) => written.as_u64() == Some(number),
                    Value::String(hex) => u64::from_str_radix(&hex[2..], 16) == Ok(number),
                    _ => false,
                };
                prop_assert!(agrees, "{text} read as {number}");
            }
            Err(error) => {
                // The reason is true of the value: nothing in range is called beyond u64.
                let error = error.to_string();
                let in_range =
                    text.trim().parse::<f64>().is_ok_and(|number| (0.0..1.8e19).contains(&number));
                prop_assert!(!(in_range && error.contains("beyond u64")), "{text}: {error}");
            }
        }
        // What an operator types on a command line: the same rules, as text.
        if let Ok(number) = ferry_primitives::quantity::parse(&text) {
            prop_assert_eq!(ferry_primitives::quantity::parse(&number.to_string()), Ok(number));
            prop_assert_eq!(ferry_primitives::quantity::parse(&format!("{number:#x}")), Ok(number));
        }
        Ok(())
    });
}

#[test]
fn fuzz_jwt_check() {
    let secret = JwtSecret::from_hex(&"ab".repeat(32)).unwrap();
    let valid = secret.token();
    let mutated = (0..valid.len(), any::<u8>()).prop_map(move |(at, byte)| {
        let mut token = valid.clone().into_bytes();
        token[at] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="
            [byte as usize % 66];
        String::from_utf8(token).unwrap()
    });
    let input = prop_oneof![
        3 => mutated,
        1 => ".{0,80}",
        1 => "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,44}",
    ];
    let original = secret.token();
    fuzz("jwt", input, |token| {
        let verdict = secret.verify(&token);
        // Within the same second a token is the same text: only it, unchanged, passes.
        if token != original && token != secret.token() {
            prop_assert!(verdict.is_err(), "{token} passed");
        }
        Ok(())
    });
    // A secret file is untrusted text too.
    fuzz("jwt-secret", ".{0,70}", |text| {
        if let Err(error) = JwtSecret::from_hex(&text) {
            prop_assert!(error.to_string().contains("64 hex characters"), "{error}");
        }
        Ok(())
    });
}

#[test]
fn fuzz_host_and_origin_check() {
    let guard = AccessGuard {
        listener: "admin",
        rules: AccessRules {
            hosts: Allowed::Only(vec!["localhost".to_owned()]),
            origins: Allowed::Only(vec!["https://dash.example".to_owned()]),
        },
        bound: "127.0.0.1:5051".parse().unwrap(),
        loopback_only: true,
        flags: ("--admin.vhosts", "--admin.origins"),
        cors: CorsLayer::new(),
    };
    let host = prop_oneof![
        "(localhost|127\\.0\\.0\\.1|\\[::1\\]|evil\\.example|10\\.0\\.0\\.1)(:[0-9]{1,5})?",
        "[ -~]{0,30}",
    ];
    let origin = prop_oneof![
        Just(None),
        "(https?://)?(dash|evil)\\.example/?".prop_map(Some),
        "[ -~]{0,30}".prop_map(Some),
    ];
    fuzz("access", (host, origin), |(host, origin)| {
        let mut request = http::Request::builder().uri("/");
        if let Ok(value) = http::HeaderValue::from_str(&host) {
            request = request.header(http::header::HOST, value);
        }
        if let Some(origin) =
            origin.as_deref().and_then(|origin| http::HeaderValue::from_str(origin).ok())
        {
            request = request.header(http::header::ORIGIN, origin);
        }
        let Ok(request) = request.body(()) else { return Ok(()) };
        match guard.refusal(&request) {
            None => {
                // Accepted: a loopback address or localhost (any port), or no Host at all.
                let name = host.trim().to_ascii_lowercase();
                let name = name.rsplit_once(':').filter(|(name, _)| !name.ends_with(':'));
                let name =
                    name.map_or(host.trim().to_ascii_lowercase(), |(name, _)| name.to_owned());
                prop_assert!(
                    request.headers().get(http::header::HOST).is_none()
                        || ["localhost", "127.0.0.1", "[::1]"].contains(&name.as_str())
                        || name
                            .trim_matches(['[', ']'])
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback()),
                    "Host {host:?} accepted"
                );
            }
            Some(refusal) => {
                prop_assert!(refusal.contains("Host") || refusal.contains("Origin"), "{refusal}");
            }
        }
        Ok(())
    });
}
