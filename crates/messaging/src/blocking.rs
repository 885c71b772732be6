//! Running store writes off the async runtime.

/// Runs `write` on the blocking pool: MDBX commits wait for the disk, and the runtime's
/// threads must not. A panic in it is a bug: it is raised again here, so the task that asked
/// stops as it would have had the write run in it (the node reports that and exits non-zero).
pub(crate) async fn blocking<T: Send + 'static>(write: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(write).await {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Only a runtime shutting down cancels a blocking task: the caller goes with it.
        Err(error) => panic!("a store write was cancelled: {error}"),
    }
}
