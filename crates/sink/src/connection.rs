//! Reaching the NATS servers a sink (and a high-availability group) uses.

use crate::SinkConfig;
use async_nats::{Client, ConnectOptions};
use std::time::Duration;

/// Connects to `config`'s servers (comma-separated seeds) with its credentials; the error
/// names the servers or the credentials file. One reconnect attempt at most: callers start a
/// new session on failure, after a backoff of their own.
pub async fn connect(config: &SinkConfig) -> Result<Client, String> {
    let mut options =
        ConnectOptions::new().connection_timeout(Duration::from_secs(5)).max_reconnects(Some(1));
    if let Some(path) = &config.credentials {
        options = options
            .credentials_file(path)
            .await
            .map_err(|error| format!("cannot read the credentials {}: {error}", path.display()))?;
    }
    let servers: Vec<&str> = config.url.split(',').map(str::trim).collect();
    async_nats::connect_with_options(servers, options)
        .await
        .map_err(|error| format!("cannot connect to {}: {error}", config.url))
}
