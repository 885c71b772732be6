//! Params of one call, positional or named, checked against the method's parameter list.
//!
//! jsonrpsee's generated parsing reports every problem as a bare "Invalid params" and ignores
//! extra params; operators need to be told which param is wrong and why, and a stray param is
//! a mistake worth refusing. So methods parse their params here.

use crate::RpcError;
use jsonrpsee::types::Params;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The values of a method's declared params, by position; `None` where absent or `null`.
#[derive(Debug)]
pub(crate) struct CallParams {
    names: &'static [&'static str],
    values: Vec<Option<Value>>,
}

impl CallParams {
    /// Reads `params` as an array (by position) or an object (by name) of at most `names`.
    pub(crate) fn parse(
        params: &Params<'_>,
        names: &'static [&'static str],
    ) -> Result<Self, RpcError> {
        let mut values = vec![None; names.len()];
        let Some(text) = params.as_str() else { return Ok(Self { names, values }) };
        let parsed: Value = serde_json::from_str(text)
            .map_err(|error| RpcError::InvalidParams(format!("params are not JSON: {error}")))?;
        match parsed {
            Value::Array(items) => {
                if items.len() > names.len() {
                    return Err(RpcError::InvalidParams(format!(
                        "expected at most {} params ({}), got {}",
                        names.len(),
                        if names.is_empty() { "none".to_owned() } else { names.join(", ") },
                        items.len()
                    )));
                }
                for (slot, item) in values.iter_mut().zip(items) {
                    *slot = Some(item).filter(|item| !item.is_null());
                }
            }
            Value::Object(fields) => {
                for (name, value) in fields {
                    let index = names.iter().position(|known| *known == name).ok_or_else(|| {
                        RpcError::InvalidParams(format!(
                            "unknown param `{name}`; expected {}",
                            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                        ))
                    })?;
                    values[index] = Some(value).filter(|value| !value.is_null());
                }
            }
            other => {
                return Err(RpcError::InvalidParams(format!(
                    "params must be an array or an object, got {other}"
                )));
            }
        }
        Ok(Self { names, values })
    }

    /// The param at `index`, which must be present.
    pub(crate) fn required<T: DeserializeOwned>(&self, index: usize) -> Result<T, RpcError> {
        self.optional(index)?.ok_or_else(|| RpcError::InvalidParam {
            param: self.names[index],
            reason: "missing".to_owned(),
        })
    }

    /// The param at `index`, `None` when absent or `null`.
    pub(crate) fn optional<T: DeserializeOwned>(
        &self,
        index: usize,
    ) -> Result<Option<T>, RpcError> {
        self.values[index]
            .clone()
            .map(|value| {
                serde_json::from_value(value).map_err(|error| RpcError::InvalidParam {
                    param: self.names[index],
                    reason: error.to_string(),
                })
            })
            .transpose()
    }
}

/// A `u64` param: a JSON number or a `0x` hex string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct Quantity(
    #[serde(deserialize_with = "ferry_primitives::quantity::deserialize")] pub(crate) u64,
);

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["block", "index", "options"];

    fn parse(json: &'static str) -> Result<CallParams, RpcError> {
        CallParams::parse(&Params::new(Some(json)), NAMES)
    }

    #[test]
    fn positional_and_named_params_are_read_by_name() {
        let call = parse(r#"[1000, "0x2"]"#).unwrap();
        assert_eq!(call.required::<Quantity>(0).unwrap(), Quantity(1000));
        assert_eq!(call.optional::<Quantity>(1).unwrap(), Some(Quantity(2)));
        assert_eq!(call.optional::<Quantity>(2).unwrap(), None);
        let call = parse(r#"{"index": 3, "block": "0x10"}"#).unwrap();
        assert_eq!(call.required::<Quantity>(0).unwrap(), Quantity(16));
        assert_eq!(call.optional::<Quantity>(1).unwrap(), Some(Quantity(3)));
    }

    #[test]
    fn problems_name_the_param_and_the_reason() {
        let error = parse("[-5]").unwrap().required::<Quantity>(0).unwrap_err();
        assert_eq!(error.to_string(), "invalid param `block`: -5 is negative");
        let error = parse("[null, 1]").unwrap().required::<Quantity>(0).unwrap_err();
        assert_eq!(error.to_string(), "invalid param `block`: missing");
        let error = parse("[1, 2, {}, 4]").unwrap_err();
        assert!(
            error.to_string().contains("expected at most 3 params (block, index, options), got 4")
        );
        let error = parse(r#"{"blok": 1}"#).unwrap_err();
        assert!(error.to_string().contains("unknown param `blok`"), "{error}");
        let error = parse(r#""1000""#).unwrap_err();
        assert!(error.to_string().contains("must be an array or an object"), "{error}");
    }
}
