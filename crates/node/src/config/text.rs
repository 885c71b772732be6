//! Values written as text in the file, and parsed the way their flags are.

use serde::Deserialize;
use std::time::Duration;

/// A value written as text in the file and parsed like its flag.
#[derive(Debug)]
pub(super) struct FromText<T>(pub(super) T);

impl<'de, T: std::str::FromStr<Err = String>> Deserialize<'de> for FromText<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Number(number) => number.to_string(),
        };
        text.parse().map(Self).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug)]
pub(super) struct DurationText(pub(super) Duration);

impl std::str::FromStr for DurationText {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        super::parse_duration(text).map(Self)
    }
}
