//! Moments on the wire: `messaging_setCheckpoint`'s `{"timestamp": ...}` and the CLI's
//! `--time` take Unix seconds or an RFC 3339 date-time.
//!
//! humantime parses RFC 3339 in UTC only; the numeric offsets RFC 3339 allows (`+02:00`) are
//! split off and applied here, a few lines rather than a calendar crate.

use serde::{Deserialize, Deserializer, Serialize, de};
use std::{fmt, str::FromStr, time::UNIX_EPOCH};

/// A moment in Unix seconds. Written as a JSON integer; read from an integer or a string of
/// Unix seconds or RFC 3339 (`2026-11-30T12:00:00Z`, `2026-11-30T14:00:00+02:00`). A
/// fraction of a second rounds up: the first block at or after `12:00:00.5` is one of
/// `12:00:01` or later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Timestamp {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
            return text
                .parse()
                .map(Self)
                .map_err(|_| format!("{text:?} is too large for Unix seconds"));
        }
        let (local, offset) = split_offset(text);
        let parsed = humantime::parse_rfc3339_weak(local).map_err(|error| {
            format!("{text:?} is neither Unix seconds nor an RFC 3339 date-time ({error})")
        })?;
        let since = parsed
            .duration_since(UNIX_EPOCH)
            .map_err(|_| format!("{text:?} is before 1970-01-01T00:00:00Z"))?;
        let seconds = since.as_secs() + u64::from(since.subsec_nanos() > 0);
        let utc = i128::from(seconds) - i128::from(offset);
        u64::try_from(utc).map(Self).map_err(|_| format!("{text:?} is before 1970-01-01T00:00:00Z"))
    }
}

/// `text` without a trailing `+HH:MM` / `-HH:MM`, and that offset in seconds east of UTC.
fn split_offset(text: &str) -> (&str, i64) {
    let bytes = text.as_bytes();
    let Some(start) = bytes.len().checked_sub(6) else { return (text, 0) };
    let tail = &bytes[start..];
    let digits = |pair: &[u8]| {
        pair.iter()
            .all(u8::is_ascii_digit)
            .then(|| i64::from(pair[0] - b'0') * 10 + i64::from(pair[1] - b'0'))
    };
    let sign = match tail[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return (text, 0),
    };
    // A date alone ends in `-DD`: only a time part followed by `±HH:MM` is an offset.
    if start < 19 || tail[3] != b':' {
        return (text, 0);
    }
    match (digits(&tail[1..3]), digits(&tail[4..6])) {
        (Some(hours), Some(minutes)) => (&text[..start], sign * (hours * 3_600 + minutes * 60)),
        _ => (text, 0),
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Unix seconds, or an RFC 3339 date-time string")
            }

            fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Timestamp, E> {
                Ok(Timestamp(seconds))
            }

            fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Timestamp, E> {
                u64::try_from(seconds)
                    .map(Timestamp)
                    .map_err(|_| E::custom(format!("{seconds} is before 1970")))
            }

            fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<Timestamp, E> {
                Err(E::custom(format!("{seconds} is not a whole number of seconds")))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
                text.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<u64, String> {
        text.parse::<Timestamp>().map(|timestamp| timestamp.0)
    }

    #[test]
    fn unix_seconds_and_rfc_3339_with_any_offset_name_the_same_moment() {
        let noon = 1_764_504_000; // 2025-11-30T12:00:00Z
        assert_eq!(parse("1764504000"), Ok(noon));
        assert_eq!(parse("2025-11-30T12:00:00Z"), Ok(noon));
        assert_eq!(parse("2025-11-30T14:00:00+02:00"), Ok(noon));
        assert_eq!(parse("2025-11-30T07:30:00-04:30"), Ok(noon));
        assert_eq!(parse("2025-11-30 12:00:00"), Ok(noon), "UTC without a zone");
        assert_eq!(parse("2025-11-30T11:59:59.25Z"), Ok(noon), "a fraction rounds up");
        assert_eq!(serde_json::from_str::<Timestamp>("1764504000").unwrap(), Timestamp(noon));
        assert_eq!(
            serde_json::from_str::<Timestamp>("\"2025-11-30T12:00:00Z\"").unwrap(),
            Timestamp(noon)
        );
    }

    #[test]
    fn bad_moments_are_named_with_the_reason() {
        for (text, reason) in [
            ("yesterday", "neither Unix seconds nor an RFC 3339"),
            ("2025-11-30", "neither Unix seconds nor an RFC 3339"),
            ("2025-13-30T12:00:00Z", "neither"),
            ("1970-01-01T00:30:00+01:00", "before 1970"),
            ("99999999999999999999999", "too large"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(reason) && error.contains(text), "{text}: {error}");
        }
        let error = serde_json::from_str::<Timestamp>("-5").unwrap_err().to_string();
        assert!(error.contains("before 1970"), "{error}");
        let error = serde_json::from_str::<Timestamp>("1.5").unwrap_err().to_string();
        assert!(error.contains("not a whole number"), "{error}");
    }
}
