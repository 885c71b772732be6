//! SIGINT and SIGTERM: the first asks for a graceful stop, the second exits at once (MDBX is
//! crash-safe, so that loses nothing committed).

use tracing::warn;

const LOG_TARGET: &str = "ferry::node::signals";

/// Resolves on the first SIGINT or SIGTERM; a second one exits the process at once.
pub async fn shutdown_signal() {
    first_signal().await;
    tokio::spawn(async {
        first_signal().await;
        warn!(target: LOG_TARGET, "Second signal: exiting now");
        std::process::exit(130);
    });
}

async fn first_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
