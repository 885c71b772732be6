//! What every key and value type implements, and why a value may not decode.

/// Bytes that do not have the layout their table promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DecodeError(String);

impl DecodeError {
    pub(crate) fn length(expected: usize, found: usize) -> Self {
        Self(format!("expected {expected} bytes, found {found}"))
    }

    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Self(what.into())
    }
}

pub(crate) type DecodeResult<T> = Result<T, DecodeError>;

/// A table key: fixed-width where it is a number, so byte order is numeric order.
pub(crate) trait Key: Sized {
    /// The encoded key.
    fn encode(&self) -> impl AsRef<[u8]>;
    /// The key back from its bytes.
    fn decode(bytes: &[u8]) -> DecodeResult<Self>;
}

/// A table value.
pub(crate) trait Value: Sized {
    /// Appends the encoding to `buf`.
    fn encode_into(&self, buf: &mut Vec<u8>);
    /// The value back from its bytes.
    fn decode(bytes: &[u8]) -> DecodeResult<Self>;
}

/// Something that encodes as a `V` without being one: a borrowed form, so that the hot path
/// writes messages without copying them first.
pub(crate) trait EncodeAs<V> {
    /// Appends the encoding of the `V` it stands for to `buf`.
    fn encode_as(&self, buf: &mut Vec<u8>);
}

impl<V: Value> EncodeAs<V> for V {
    fn encode_as(&self, buf: &mut Vec<u8>) {
        self.encode_into(buf);
    }
}
