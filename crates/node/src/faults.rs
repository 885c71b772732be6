//! Faults the end-to-end tests inject into a real `ferry` process, to prove what the node does
//! when a part of it fails. Compiled only with the `fault-injection` feature, which release
//! builds leave off; even then nothing happens unless its variable is set.
//!
//! - `FERRY_FAULT_PANIC_AT_BLOCK=N`: the ingestion task panics when it is to read a range
//!   reaching block `N`, as a bug would.

use ferry_messaging::{Collector, CollectorError, Gathered, Heads, ProvenTransaction};
use ferry_primitives::{B256, BlockHeader, Position};
use std::future::Future;
use tracing::warn;

const LOG_TARGET: &str = "ferry::node::faults";

/// The fault asked for in the environment, if any.
pub(crate) fn panic_at_block() -> Option<u64> {
    let block = std::env::var("FERRY_FAULT_PANIC_AT_BLOCK").ok()?.parse().ok()?;
    warn!(target: LOG_TARGET, block, "Fault injection: ingestion will panic at this block");
    Some(block)
}

/// `inner`, panicking in the first `gather` that reaches `block`.
#[derive(Debug)]
pub(crate) struct PanicAtBlock<C> {
    pub(crate) inner: C,
    pub(crate) block: u64,
}

impl<C: Collector> Collector for PanicAtBlock<C> {
    fn heads(&self) -> impl Future<Output = Result<Heads, CollectorError>> + Send {
        self.inner.heads()
    }

    fn wait_for_head(&self, known_latest: u64) -> impl Future<Output = ()> + Send {
        self.inner.wait_for_head(known_latest)
    }

    async fn gather(
        &self,
        from: Position,
        to_block: u64,
        headers_from: u64,
    ) -> Result<Gathered, CollectorError> {
        assert!(
            to_block < self.block,
            "fault injection: FERRY_FAULT_PANIC_AT_BLOCK={} reached (reading {from} to {to_block})",
            self.block
        );
        self.inner.gather(from, to_block, headers_from).await
    }

    fn range_hint(&self) -> Option<u64> {
        self.inner.range_hint()
    }

    fn confirm_replaced(
        &self,
        number: u64,
        kept: B256,
    ) -> impl Future<Output = Result<bool, CollectorError>> + Send {
        self.inner.confirm_replaced(number, kept)
    }

    fn proven_transaction(
        &self,
        hash: B256,
    ) -> impl Future<Output = Result<Option<ProvenTransaction>, CollectorError>> + Send {
        self.inner.proven_transaction(hash)
    }

    fn header(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<Option<BlockHeader>, CollectorError>> + Send {
        self.inner.header(number)
    }

    fn block_timestamp(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<Option<u64>, CollectorError>> + Send {
        self.inner.block_timestamp(number)
    }
}
