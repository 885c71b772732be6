use crate::{
    DrainHandle, MessagingController, Status, StatusSnapshot, test_utils::ScriptedCollector,
};
use ferry_primitives::{Address, Position, Seq, StoredMessage};
use ferry_storage::{Store, StoreConfig};
use std::{collections::HashSet, sync::Arc, time::Duration};
use tempfile::TempDir;

/// A store in a temporary directory, a scripted chain and a controller over them.
pub(super) struct Harness {
    pub(super) dir: TempDir,
    pub(super) store: Store,
    pub(super) status: Arc<Status>,
    pub(super) controller: MessagingController,
    pub(super) chain: Arc<ScriptedCollector>,
    pub(super) handle: Option<DrainHandle>,
    from_block: u64,
}

pub(super) fn config(from_block: u64) -> StoreConfig {
    StoreConfig { chain_id: 31337, contract: Address::repeat_byte(0xcc), from_block }
}

impl Harness {
    pub(super) fn new(confirmations: u64, max_range: u64, from_block: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), config(from_block)).unwrap();
        let status = Arc::new(Status::load(&store).unwrap());
        let controller = MessagingController::new(store.clone(), Arc::clone(&status));
        let chain = ScriptedCollector::new(confirmations, max_range);
        Self { dir, store, status, controller, chain, handle: None, from_block }
    }

    pub(super) fn start(&mut self) {
        self.handle = Some(self.controller.start(Arc::clone(&self.chain)).unwrap());
    }

    pub(super) async fn stop(&mut self) {
        if let Some(mut handle) = self.handle.take() {
            handle.stop();
            handle.stopped().await;
        }
    }

    /// Stops the task, closes the store, opens it again as a restarted process would, and
    /// starts again.
    pub(super) async fn restart(mut self) -> Self {
        self.stop().await;
        let Self { dir, store, controller, chain, from_block, .. } = self;
        drop((store, controller));
        let store = Store::open(dir.path(), config(from_block)).unwrap();
        let status = Arc::new(Status::load(&store).unwrap());
        let controller = MessagingController::new(store.clone(), Arc::clone(&status));
        let mut restarted =
            Self { dir, store, status, controller, chain, handle: None, from_block };
        restarted.start();
        restarted
    }

    pub(super) fn snapshot(&self) -> StatusSnapshot {
        self.status.snapshot()
    }

    pub(super) fn stored(&self) -> Vec<StoredMessage> {
        self.store.messages_from(Seq::ZERO, usize::MAX).unwrap()
    }

    pub(super) fn checkpoint(&self) -> Option<Position> {
        self.store.checkpoint().unwrap()
    }

    /// Polls `condition` every few milliseconds for up to 20 s; panics naming `what`.
    pub(super) async fn wait_until(&self, what: &str, condition: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !condition(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting until {what}; checkpoint {:?}, status {:?}",
                self.checkpoint(),
                self.snapshot()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits until the checkpoint and the cursor are right after block `block` (status is
    /// updated before the cursor moves, so it is up to date then too).
    pub(super) async fn wait_for_checkpoint(&self, block: u64) {
        let target = Some(Position::block_start(block + 1));
        self.wait_until(&format!("the checkpoint passes block {block}"), |h| {
            h.checkpoint() == target && h.snapshot().cursor == target
        })
        .await;
    }

    /// Waits until everything up to the chain's latest block is scanned.
    pub(super) async fn caught_up(&self) {
        self.wait_for_checkpoint(self.chain.latest()).await;
    }

    /// Seqs are 0..n, hashes are unique, and the stored messages are exactly the chain's
    /// messages from blocks `blocks` (by hash), each once.
    pub(super) fn assert_exactly_once(&self, blocks: impl Fn(u64) -> bool) {
        let stored = self.stored();
        let seqs: Vec<u64> = stored.iter().map(|m| m.seq.0).collect();
        assert_eq!(seqs, (0..stored.len() as u64).collect::<Vec<_>>(), "seqs are contiguous");
        let hashes: HashSet<_> = stored.iter().map(|m| m.hash).collect();
        assert_eq!(hashes.len(), stored.len(), "no message is stored twice");
        let expected: HashSet<_> = self
            .chain
            .chain_messages()
            .iter()
            .filter(|m| blocks(m.origin.block_number))
            .map(|m| m.hash())
            .collect();
        let extra: Vec<_> = hashes.difference(&expected).take(3).collect();
        let missing: Vec<_> = expected.difference(&hashes).take(3).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "the stored messages are not the chain's: {} stored that should not be (e.g. {extra:?}), \
             {} missing (e.g. {missing:?})",
            hashes.difference(&expected).count(),
            expected.difference(&hashes).count(),
        );
    }
}
