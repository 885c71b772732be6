//! Where the sink publishes, and the stream it keeps there.

use std::{path::PathBuf, time::Duration};

/// Where the sink publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    /// The NATS server (or cluster seeds, comma-separated): `nats://127.0.0.1:4222`.
    pub url: String,
    /// The JetStream stream, created if missing.
    pub stream: String,
    /// Subjects are `<prefix>.<kind>`: `ferry.log.message`, `ferry.log.removed`, ...
    pub subject_prefix: String,
    /// A NATS credentials file (`.creds`), if the server requires one.
    pub credentials: Option<PathBuf>,
    /// Replicas of a stream the sink creates (a cluster keeps one per server, up to 5).
    pub replicas: usize,
    /// The high-availability group whose leader publishes, when the node is in one: the
    /// stream is the group's (any member leading may write it), not one node's.
    pub group: Option<String>,
}

/// How long JetStream remembers a `Nats-Msg-Id`: a retry after a lost ack within it is
/// recognised as the same message. The expected-last-sequence check covers every case the
/// window does not.
pub(crate) const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

impl SinkConfig {
    /// Defaults for `url`: stream `FERRY`, subjects `ferry.log.*`, one replica.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream: "FERRY".to_owned(),
            subject_prefix: "ferry.log".to_owned(),
            credentials: None,
            replicas: 1,
            group: None,
        }
    }
}
