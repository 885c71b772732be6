//! `--sink.*`: the NATS JetStream sink.

use super::ConfigError;
use clap::Args;
use serde::Deserialize;
use std::path::PathBuf;

/// The NATS JetStream sink.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Sink")]
pub struct SinkArgs {
    /// Publish the log to NATS JetStream at this URL (`nats://host:4222`; several servers
    /// comma-separated). [default: off]
    #[arg(
        id = "sink_nats_url",
        long = "sink.nats-url",
        env = "FERRY_SINK_NATS_URL",
        value_name = "URL"
    )]
    pub nats_url: Option<String>,

    /// The JetStream stream, created if missing. [default: FERRY]
    #[arg(
        id = "sink_stream",
        long = "sink.stream",
        env = "FERRY_SINK_STREAM",
        value_name = "NAME"
    )]
    pub stream: Option<String>,

    /// Subjects are `<prefix>.message`, `.removed`, `.reincluded`, `.stateChanged`.
    /// [default: ferry.log]
    #[arg(
        id = "sink_subject_prefix",
        long = "sink.subject-prefix",
        env = "FERRY_SINK_SUBJECT_PREFIX",
        value_name = "PREFIX"
    )]
    pub subject_prefix: Option<String>,

    /// A NATS credentials file (`.creds`). [default: none]
    #[arg(
        id = "sink_credentials",
        long = "sink.credentials",
        env = "FERRY_SINK_CREDENTIALS",
        value_name = "FILE"
    )]
    pub credentials: Option<PathBuf>,

    /// Replicas of the stream when the sink creates it (1 to 5, at most the cluster's
    /// servers). [default: 1]
    #[arg(
        id = "sink_replicas",
        long = "sink.replicas",
        env = "FERRY_SINK_REPLICAS",
        value_name = "N"
    )]
    pub replicas: Option<usize>,

    /// /ready answers 503 while the stream is more than this many entries behind the store
    /// (or the sink is down). [default: the sink does not count for /ready]
    #[arg(
        id = "sink_ready_max_lag",
        long = "sink.ready-max-lag",
        env = "FERRY_SINK_READY_MAX_LAG",
        value_name = "ENTRIES"
    )]
    pub ready_max_lag: Option<u64>,
}

impl SinkArgs {
    /// The sink, when a NATS URL is given.
    pub(super) fn resolve(
        &self,
        file: &FileSink,
    ) -> Result<Option<ferry_sink::SinkConfig>, ConfigError> {
        let Some(url) = self.nats_url.clone().or(file.nats_url.clone()) else {
            return Ok(None);
        };
        let mut sink = ferry_sink::SinkConfig::new(url);
        if let Some(stream) = self.stream.clone().or(file.stream.clone()) {
            sink.stream = stream;
        }
        if let Some(prefix) = self.subject_prefix.clone().or(file.subject_prefix.clone()) {
            sink.subject_prefix = prefix;
        }
        sink.credentials = self.credentials.clone().or(file.credentials.clone());
        let replicas = self.replicas.or(file.replicas).unwrap_or(1);
        if !(1..=5).contains(&replicas) {
            return Err(ConfigError::InvalidValue {
                key: "sink.replicas",
                value: replicas.to_string(),
                reason: "must be 1 to 5".to_owned(),
            });
        }
        sink.replicas = replicas;
        Ok(Some(sink))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileSink {
    pub(super) nats_url: Option<String>,
    pub(super) stream: Option<String>,
    pub(super) subject_prefix: Option<String>,
    pub(super) credentials: Option<PathBuf>,
    pub(super) replicas: Option<usize>,
    pub(super) ready_max_lag: Option<u64>,
}
