//! A pipeline over a scripted chain for tests: store, status, controller and drain task, with
//! the waits and consumer views the tests assert with.

use crate::{DrainHandle, MessagingController, Status, test_utils::ScriptedCollector};
use ferry_primitives::{
    Address, B256, Inclusion, Origin, Position, Seq, StatusSnapshot, StoredMessage,
};
use ferry_storage::{Store, StoreConfig};
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};
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
    reorg_window: Option<u64>,
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
        Self { dir, store, status, controller, chain, handle: None, from_block, reorg_window: None }
    }

    /// Starts with a header window of `blocks` below the head.
    pub(super) fn with_reorg_window(mut self, blocks: u64) -> Self {
        self.reorg_window = Some(blocks);
        self.controller = self.controller.with_reorg_window(blocks);
        self
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
        let Self { dir, store, controller, chain, from_block, reorg_window, .. } = self;
        drop((store, controller));
        let store = Store::open(dir.path(), config(from_block)).unwrap();
        let status = Arc::new(Status::load(&store).unwrap());
        let mut controller = MessagingController::new(store.clone(), Arc::clone(&status));
        if let Some(blocks) = reorg_window {
            controller = controller.with_reorg_window(blocks);
        }
        let mut restarted =
            Self { dir, store, status, controller, chain, handle: None, from_block, reorg_window };
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

    /// Mines `blocks` blocks of `messages` messages each, starts the node and waits until it
    /// has read them.
    pub(super) async fn start_on_blocks(&mut self, blocks: usize, messages: usize) {
        for _ in 0..blocks {
            self.chain.mine(messages);
        }
        self.start();
        self.caught_up().await;
    }

    /// Waits until the node has handled `reorgs` reorgs since it started and read up to the
    /// chain's latest block.
    /// A harness over `blocks` blocks of one message each whose provider drops the log at
    /// `hidden` from every range, started and caught up.
    pub(super) async fn caught_up_without(blocks: usize, hidden: Position) -> Self {
        let mut h = Self::new(0, 100, 0);
        for _ in 0..blocks {
            h.chain.mine(1);
        }
        h.chain.hide_log(hidden);
        h.start();
        h.caught_up().await;
        h
    }

    pub(super) async fn reorg_handled(&self, reorgs: u64) {
        self.wait_until("the reorg is handled", |h| h.snapshot().reorgs_detected == reorgs).await;
        self.caught_up().await;
    }

    /// What a consumer that applied the whole log holds: each message's origin by hash (put
    /// on a message or re-inclusion, dropped on a removal). The log's seqs are 0..n.
    pub(super) fn consumer_view(&self) -> HashMap<B256, Origin> {
        let entries = self.store.entries_from(Seq::ZERO, usize::MAX).unwrap();
        let seqs: Vec<u64> = entries.iter().map(|e| e.entry.seq.0).collect();
        assert_eq!(seqs, (0..entries.len() as u64).collect::<Vec<_>>(), "the log is contiguous");
        let mut held = HashMap::new();
        for entry in entries.into_iter().map(|stored| stored.entry) {
            if entry.removed {
                held.remove(&entry.hash);
            } else {
                held.insert(entry.hash, entry.l1.origin);
            }
        }
        held
    }

    /// Every message on the chain now, by hash, with its origin.
    pub(super) fn canonical(&self) -> HashMap<B256, Origin> {
        self.chain.chain_messages().into_iter().map(|l1| (l1.hash(), l1.origin)).collect()
    }

    /// The consumer property (invariant: truthful log): applying the log gives exactly the
    /// canonical messages and origins; the store says the same message by message.
    pub(super) fn assert_consumers_hold_the_chain(&self) {
        let canonical = self.canonical();
        let held = self.consumer_view();
        let missing: Vec<_> =
            canonical.iter().filter(|(hash, _)| !held.contains_key(*hash)).take(3).collect();
        let extra: Vec<_> =
            held.iter().filter(|(hash, _)| !canonical.contains_key(*hash)).take(3).collect();
        let moved: Vec<_> = held
            .iter()
            .filter(|(hash, origin)| {
                canonical.get(*hash).is_some_and(|canonical| canonical != *origin)
            })
            .take(3)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty() && moved.is_empty(),
            "a consumer applying the log holds {} messages, the chain {}: missing {missing:?}, \
             extra {extra:?}, at another origin {moved:?}",
            held.len(),
            canonical.len()
        );
        for message in self.stored() {
            match canonical.get(&message.hash) {
                Some(origin) => {
                    assert_eq!(message.inclusion, Inclusion::Canonical, "{message:?}");
                    assert_eq!(&message.l1.origin, origin, "seq {}", message.seq);
                }
                None => assert_eq!(message.inclusion, Inclusion::Orphaned, "{message:?}"),
            }
        }
    }

    /// Hashes are unique, and the stored messages are exactly the chain's messages from blocks
    /// `blocks` (by hash), each once.
    pub(super) fn assert_exactly_once(&self, blocks: impl Fn(u64) -> bool) {
        let stored = self.stored();
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
