//! Integers on the wire: a JSON number or a `0x` hex string, in, and a JSON number, out.
//!
//! Ethereum tooling writes quantities as `0x` hex strings and people write them as plain
//! numbers; ferry accepts both for block numbers, log indexes and seqs, and rejects anything
//! else with a reason that names the value (negative, not an integer, beyond u64, malformed
//! hex). Results are written as plain JSON numbers, which serde does for `u64` by itself.

use serde::{Deserializer, de};
use std::fmt;

/// Why a value is not a valid `u64` quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// A negative number.
    #[error("{0} is negative")]
    Negative(String),
    /// A number with a fraction or exponent.
    #[error("{0} is not an integer")]
    NotAnInteger(String),
    /// A number or hex string above `u64::MAX`.
    #[error("{0} is beyond u64 (max 18446744073709551615)")]
    BeyondU64(String),
    /// A string that is not `0x` followed by 1 to 16 hex digits.
    #[error("{0:?} is malformed hex: expected 0x followed by hex digits")]
    MalformedHex(String),
}

/// Parses a `0x` hex quantity (`0x0`, `0x3e8`; leading zeros allowed) into a `u64`.
pub fn parse_hex(text: &str) -> Result<u64, QuantityError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| QuantityError::MalformedHex(text.to_owned()))?;
    u64::from_str_radix(digits, 16).map_err(|_| QuantityError::BeyondU64(format!("{text:?}")))
}

/// Parses a decimal or `0x` hex quantity, as typed by an operator on a command line.
pub fn parse(text: &str) -> Result<u64, QuantityError> {
    let trimmed = text.trim();
    if trimmed.starts_with("0x") || trimmed.starts_with("0X") {
        return parse_hex(trimmed);
    }
    if let Some(rest) = trimmed.strip_prefix('-')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(QuantityError::Negative(trimmed.to_owned()));
    }
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed.parse().map_err(|_| QuantityError::BeyondU64(trimmed.to_owned()));
    }
    if trimmed.parse::<f64>().is_ok() {
        return Err(QuantityError::NotAnInteger(trimmed.to_owned()));
    }
    Err(QuantityError::MalformedHex(trimmed.to_owned()))
}

/// Deserializes a `u64` from a JSON number or a `0x` hex string.
///
/// Use with `#[serde(deserialize_with = "ferry_primitives::quantity::deserialize")]`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    deserializer.deserialize_any(QuantityVisitor)
}

/// Deserializes an optional `u64` (`null` or absent is `None`).
pub fn deserialize_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    deserializer.deserialize_option(OptionVisitor)
}

struct QuantityVisitor;

impl<'de> de::Visitor<'de> for QuantityVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer or a 0x hex string")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
        Ok(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
        u64::try_from(value).map_err(|_| E::custom(QuantityError::Negative(value.to_string())))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<u64, E> {
        u64::try_from(value).map_err(|_| E::custom(QuantityError::BeyondU64(value.to_string())))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<u64, E> {
        if value < 0 {
            return Err(E::custom(QuantityError::Negative(value.to_string())));
        }
        u64::try_from(value).map_err(|_| E::custom(QuantityError::BeyondU64(value.to_string())))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<u64, E> {
        // serde_json hands integers too large for u64 over as floats.
        // `1e3` and `1.0` arrive here too: integers in value, but not written as one.
        let error = if value.fract() != 0.0 || !value.is_finite() {
            QuantityError::NotAnInteger(value.to_string())
        } else if value < 0.0 {
            QuantityError::Negative(value.to_string())
        } else if value >= u64::MAX as f64 {
            QuantityError::BeyondU64(format!("{value:.0}"))
        } else {
            QuantityError::NotAnInteger(value.to_string())
        };
        Err(E::custom(error))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<u64, E> {
        parse_hex(value).map_err(E::custom)
    }
}

struct OptionVisitor;

impl<'de> de::Visitor<'de> for OptionVisitor {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, a non-negative integer or a 0x hex string")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Wrapper(#[serde(deserialize_with = "deserialize")] u64);

    fn from_json(json: &str) -> Result<u64, String> {
        serde_json::from_str::<Wrapper>(json).map(|w| w.0).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_and_hex_strings_are_both_accepted() {
        assert_eq!(from_json("0").unwrap(), 0);
        assert_eq!(from_json("1000").unwrap(), 1000);
        assert_eq!(from_json("\"0x3e8\"").unwrap(), 1000);
        assert_eq!(from_json("\"0x0\"").unwrap(), 0);
        assert_eq!(from_json("\"0xffffffffffffffff\"").unwrap(), u64::MAX);
        assert_eq!(from_json("18446744073709551615").unwrap(), u64::MAX);
    }

    #[test]
    fn bad_values_are_refused_with_the_value_and_the_reason() {
        let cases = [
            ("-1", "-1 is negative"),
            ("1.5", "1.5 is not an integer"),
            ("18446744073709551616", "18446744073709551616 is beyond u64"),
            ("\"0x10000000000000000\"", "\"0x10000000000000000\" is beyond u64"),
            ("\"0xzz\"", "\"0xzz\" is malformed hex"),
            ("\"0x\"", "\"0x\" is malformed hex"),
            ("\"1000\"", "\"1000\" is malformed hex"),
            ("true", "expected a non-negative integer or a 0x hex string"),
            ("[1]", "expected a non-negative integer or a 0x hex string"),
        ];
        for (json, expected) in cases {
            let error = from_json(json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error:?} does not contain {expected:?}");
        }
    }

    #[test]
    fn command_line_parse_takes_decimal_and_hex() {
        assert_eq!(parse("1000"), Ok(1000));
        assert_eq!(parse("0x3E8"), Ok(1000));
        assert_eq!(parse("-3"), Err(QuantityError::Negative("-3".into())));
        assert_eq!(parse("2.5"), Err(QuantityError::NotAnInteger("2.5".into())));
        assert_eq!(
            parse("99999999999999999999"),
            Err(QuantityError::BeyondU64("99999999999999999999".into()))
        );
        assert_eq!(parse("abc"), Err(QuantityError::MalformedHex("abc".into())));
    }
}
