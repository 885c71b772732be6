//! A scripted [`Collector`] over an in-memory chain, for tests of the pipeline and of the
//! crates above it; and (`http.rs`) the HTTP pieces of the tests' fault-injecting L1 proxies.

mod http;

pub use http::{forward_json, read_http_request, write_json_response};

use crate::{Collector, CollectorError, Gathered, Heads, MalformedLog, ProvenTransaction};
use alloy::primitives::{Address, B256, U256, keccak256};
use ferry_primitives::{
    BlockHeader, L1Message, LifecycleEvent, LifecycleKind, Message, Origin, Position,
};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
};
use tokio::sync::{Notify, watch};

/// A collector request, to pause or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// [`Collector::heads`].
    Heads,
    /// [`Collector::gather`].
    Gather,
    /// [`Collector::header`].
    Header,
}

/// A log in a scripted block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptedLog {
    /// A message.
    Message(Message),
    /// A lifecycle event about a message (its fields; the fee is not logged).
    Lifecycle(LifecycleKind, Message),
    /// A log with the message topic that does not decode.
    Malformed,
}

/// The timestamp of scripted block 0; each block is 12 s after the one before.
pub const GENESIS_TIME: u64 = 1_700_000_000;

/// The timestamp of scripted block `number`.
pub const fn block_time(number: u64) -> u64 {
    GENESIS_TIME + 12 * number
}

/// The delay the scripted contract tells for cancellations, in seconds.
pub const CANCELLATION_DELAY: u64 = 600;

/// The message of nonce `nonce` as [`ScriptedCollector::mine`] sends it.
pub fn scripted_message(nonce: u64) -> Message {
    message(nonce)
}

#[derive(Debug, Clone)]
struct Block {
    hash: B256,
    parent_hash: B256,
    logs: Vec<(ScriptedLog, B256)>,
}

/// A gate paused calls wait at, until it is released.
#[derive(Debug)]
pub struct Gate {
    entered: Notify,
    released: watch::Sender<bool>,
}

impl Gate {
    /// Waits until a paused call has started.
    pub async fn entered(&self) {
        self.entered.notified().await;
    }

    /// Lets every paused call, and every later one, go on.
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    async fn pass(&self) {
        self.entered.notify_one();
        let _ = self.released.subscribe().wait_for(|released| *released).await;
    }
}

#[derive(Debug, Default)]
struct Script {
    blocks: Vec<Block>,
    next_nonce: u64,
    fork: u64,
    gates: HashMap<Call, Arc<Gate>>,
    failures: HashMap<Call, usize>,
    hidden: HashSet<Position>,
    gathers: Vec<(Position, u64)>,
    /// How far below the latest block the provider's finalized block is; `None`: it has none.
    finalized_depth: Option<u64>,
    /// The changes count when `heads` last answered.
    changes_at_heads: u64,
}

/// An in-memory L1 chain behind the [`Collector`] trait, that tests extend, reorg, pause and
/// break at will.
#[derive(Debug)]
pub struct ScriptedCollector {
    script: Mutex<Script>,
    confirmations: u64,
    max_range: u64,
    /// Bumped by every block mined and every reorg: what `wait_for_head` waits on.
    changes: watch::Sender<u64>,
}

/// The sender every scripted message comes from.
pub const SENDER: Address = Address::repeat_byte(0x5e);

impl ScriptedCollector {
    /// A chain holding only an empty genesis block; `gather` returns at most `max_range`
    /// blocks, and the safe head is `confirmations` behind the latest.
    pub fn new(confirmations: u64, max_range: u64) -> Arc<Self> {
        let collector = Self {
            script: Mutex::default(),
            confirmations,
            max_range: max_range.max(1),
            changes: watch::Sender::new(0),
        };
        collector.lock().blocks.push(Block {
            hash: block_hash(0, 0),
            parent_hash: B256::ZERO,
            logs: Vec::new(),
        });
        Arc::new(collector)
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Mines a block with `messages` new messages, all from one transaction; returns its number.
    pub fn mine(&self, messages: usize) -> u64 {
        let logs = {
            let mut script = self.lock();
            (0..messages)
                .map(|_| {
                    let nonce = script.next_nonce;
                    script.next_nonce += 1;
                    ScriptedLog::Message(message(nonce))
                })
                .collect()
        };
        self.mine_logs(logs)
    }

    /// Mines `count` empty blocks; returns the last one's number.
    pub fn mine_empty(&self, count: u64) -> u64 {
        let mut last = self.latest();
        for _ in 0..count {
            last = self.mine_logs(Vec::new());
        }
        last
    }

    /// Mines a block with these logs, all from one transaction.
    pub fn mine_logs(&self, logs: Vec<ScriptedLog>) -> u64 {
        let number = {
            let mut script = self.lock();
            let number = script.blocks.len() as u64;
            let fork = script.fork;
            let transaction = keccak256([number.to_be_bytes(), fork.to_be_bytes()].concat());
            let logs = logs.into_iter().map(|log| (log, transaction)).collect();
            let parent_hash = script.blocks[number as usize - 1].hash;
            script.blocks.push(Block { hash: block_hash(number, fork), parent_hash, logs });
            number
        };
        self.changes.send_modify(|changes| *changes += 1);
        number
    }

    /// Replaces the newest `depth` blocks with blocks of other hashes holding the same logs
    /// (the transactions were re-included), as `anvil_reorg` does.
    pub fn reorg(&self, depth: u64) {
        self.reorg_with(depth, true);
    }

    /// Replaces the newest `depth` blocks with empty ones: their messages are gone from L1.
    pub fn reorg_dropping_messages(&self, depth: u64) {
        self.reorg_with(depth, false);
    }

    /// Replaces the newest `depth` blocks with blocks holding `messages[i]` new messages each
    /// (from a new transaction), instead of what they held.
    pub fn reorg_with_new_messages(&self, depth: u64, messages: &[usize]) {
        let mut script = self.lock();
        let len = script.blocks.len() as u64;
        let first = len.saturating_sub(depth).max(1);
        for (offset, count) in messages.iter().enumerate() {
            let number = first + offset as u64;
            if number >= len {
                break;
            }
            let transaction = keccak256([number.to_be_bytes(), u64::MAX.to_be_bytes()].concat());
            let logs = (0..*count)
                .map(|_| {
                    let nonce = script.next_nonce;
                    script.next_nonce += 1;
                    (ScriptedLog::Message(message(nonce)), transaction)
                })
                .collect();
            script.blocks[number as usize].logs = logs;
        }
        drop(script);
        self.reorg_with(depth, true);
    }

    fn reorg_with(&self, depth: u64, keep_logs: bool) {
        let mut script = self.lock();
        script.fork += 1;
        let fork = script.fork;
        let len = script.blocks.len() as u64;
        for number in len.saturating_sub(depth).max(1)..len {
            let parent_hash = script.blocks[number as usize - 1].hash;
            let block = &mut script.blocks[number as usize];
            block.hash = block_hash(number, fork);
            block.parent_hash = parent_hash;
            if !keep_logs {
                block.logs.clear();
            }
        }
        drop(script);
        self.changes.send_modify(|changes| *changes += 1);
    }

    /// The provider's finalized block is `depth` below the latest (`None`: there is none).
    pub fn set_finalized_depth(&self, depth: Option<u64>) {
        self.lock().finalized_depth = depth;
    }

    /// The newest block.
    pub fn latest(&self) -> u64 {
        self.lock().blocks.len() as u64 - 1
    }

    /// The hash of block `number` now.
    pub fn hash_of(&self, number: u64) -> B256 {
        self.lock().blocks[number as usize].hash
    }

    /// The header of block `number` now.
    pub fn header_of(&self, number: u64) -> BlockHeader {
        let script = self.lock();
        let block = &script.blocks[number as usize];
        BlockHeader { number, hash: block.hash, parent_hash: block.parent_hash }
    }

    /// Calls of `call` wait at the returned gate until it is released.
    pub fn pause(&self, call: Call) -> Arc<Gate> {
        let gate = Arc::new(Gate { entered: Notify::new(), released: watch::Sender::new(false) });
        self.lock().gates.insert(call, Arc::clone(&gate));
        gate
    }

    /// The next `times` calls of `call` fail as a provider error would.
    pub fn fail_next(&self, call: Call, times: usize) {
        self.lock().failures.insert(call, times);
    }

    /// `gather` leaves out the log at `position`, as a provider that drops logs would.
    pub fn hide_log(&self, position: Position) {
        self.lock().hidden.insert(position);
    }

    /// `gather` returns every log again.
    pub fn unhide_logs(&self) {
        self.lock().hidden.clear();
    }

    /// Every `gather` call so far: `(from, to_block)`.
    pub fn gathers(&self) -> Vec<(Position, u64)> {
        self.lock().gathers.clone()
    }

    /// Every message on the chain now, in L1 order, with its origin.
    pub fn chain_messages(&self) -> Vec<L1Message> {
        let script = self.lock();
        let mut messages = Vec::new();
        for (number, block) in script.blocks.iter().enumerate() {
            for (index, (log, transaction)) in block.logs.iter().enumerate() {
                if let ScriptedLog::Message(message) = log {
                    messages.push(l1_message(
                        message,
                        number as u64,
                        block.hash,
                        *transaction,
                        index,
                    ));
                }
            }
        }
        messages
    }

    /// Waits at a gate and fails if asked to.
    async fn enter(&self, call: Call) -> Result<(), CollectorError> {
        let gate = self.lock().gates.get(&call).cloned();
        if let Some(gate) = gate {
            gate.pass().await;
        }
        let mut script = self.lock();
        match script.failures.get_mut(&call) {
            Some(times) if *times > 0 => {
                *times -= 1;
                Err(CollectorError::Upstream {
                    request: format!("{call:?}"),
                    reason: "scripted failure".to_owned(),
                })
            }
            _ => Ok(()),
        }
    }
}

fn block_hash(number: u64, fork: u64) -> B256 {
    keccak256([b"block".as_slice(), &number.to_be_bytes(), &fork.to_be_bytes()].concat())
}

fn message(nonce: u64) -> Message {
    Message {
        from: SENDER,
        to: U256::from(0x70),
        selector: U256::from(0x5e1),
        payload: vec![U256::from(nonce), U256::from(7)],
        nonce: U256::from(nonce),
        fee: U256::from(nonce * 10),
    }
}

fn l1_message(
    message: &Message,
    block: u64,
    hash: B256,
    transaction: B256,
    index: usize,
) -> L1Message {
    L1Message {
        message: message.clone(),
        origin: Origin {
            block_number: block,
            block_hash: hash,
            transaction_hash: transaction,
            log_index: index as u64,
        },
    }
}

impl Collector for ScriptedCollector {
    fn range_hint(&self) -> Option<u64> {
        Some(self.max_range)
    }

    async fn heads(&self) -> Result<Heads, CollectorError> {
        self.enter(Call::Heads).await?;
        let mut script = self.lock();
        script.changes_at_heads = *self.changes.borrow();
        let latest = script.blocks.len() as u64 - 1;
        let finalized = script.finalized_depth.map(|depth| {
            let number = latest.saturating_sub(depth);
            ferry_primitives::BlockRef { number, hash: script.blocks[number as usize].hash }
        });
        Ok(Heads {
            latest,
            latest_hash: script.blocks[latest as usize].hash,
            safe: latest.checked_sub(self.confirmations),
            l1_safe: finalized,
            finalized,
        })
    }

    async fn wait_for_head(&self, known_latest: u64) {
        // Any change wakes the stream: a new block, or a reorg at the same height (which the
        // Ethereum collector's polling notices too).
        let mut changes = self.changes.subscribe();
        if self.latest() > known_latest || *changes.borrow() != self.lock().changes_at_heads {
            return;
        }
        let _ = changes.changed().await;
    }

    async fn gather(
        &self,
        from: Position,
        to_block: u64,
        headers_from: u64,
    ) -> Result<Gathered, CollectorError> {
        self.lock().gathers.push((from, to_block));
        self.enter(Call::Gather).await?;
        let script = self.lock();
        let latest = script.blocks.len() as u64 - 1;
        if to_block > latest {
            return Err(CollectorError::Inconsistent(format!(
                "block {to_block} was reported safe but the chain ends at {latest}"
            )));
        }
        let last = to_block.min(from.block + self.max_range - 1);
        let mut messages = Vec::new();
        let mut events = Vec::new();
        let mut malformed = Vec::new();
        for number in from.block..=last {
            let block = &script.blocks[number as usize];
            for (index, (log, transaction)) in block.logs.iter().enumerate() {
                let position = Position::new(number, index as u64);
                if position < from || script.hidden.contains(&position) {
                    continue;
                }
                match log {
                    ScriptedLog::Message(message) => {
                        messages.push(l1_message(message, number, block.hash, *transaction, index));
                    }
                    ScriptedLog::Lifecycle(kind, message) => {
                        let l1 = l1_message(message, number, block.hash, *transaction, index);
                        events.push(LifecycleEvent {
                            kind: *kind,
                            from: message.from,
                            to: message.to,
                            selector: message.selector,
                            payload: message.payload.clone(),
                            nonce: message.nonce,
                            origin: l1.origin,
                            timestamp: block_time(number),
                            cancellation_delay: (*kind == LifecycleKind::CancellationStarted)
                                .then_some(CANCELLATION_DELAY),
                        });
                    }
                    ScriptedLog::Malformed => malformed.push(MalformedLog {
                        position,
                        transaction_hash: Some(*transaction),
                        reason: "scripted malformed log".to_owned(),
                    }),
                }
            }
        }
        let headers = (headers_from.min(last)..=last)
            .map(|number| {
                let block = &script.blocks[number as usize];
                BlockHeader { number, hash: block.hash, parent_hash: block.parent_hash }
            })
            .collect();
        Ok(Gathered { messages, events, malformed, headers })
    }

    async fn proven_transaction(
        &self,
        hash: B256,
    ) -> Result<Option<ProvenTransaction>, CollectorError> {
        self.enter(Call::Header).await?;
        let script = self.lock();
        let found = script
            .blocks
            .iter()
            .enumerate()
            .find(|(_, block)| block.logs.iter().any(|(_, transaction)| *transaction == hash));
        let Some((number, block)) = found else { return Ok(None) };
        let number = number as u64;
        let mut messages = Vec::new();
        for (index, (log, transaction)) in block.logs.iter().enumerate() {
            if let (ScriptedLog::Message(message), true) = (log, *transaction == hash) {
                messages.push(l1_message(message, number, block.hash, *transaction, index));
            }
        }
        Ok(Some(ProvenTransaction {
            transaction: hash,
            block: BlockHeader { number, hash: block.hash, parent_hash: block.parent_hash },
            messages,
            events: Vec::new(),
            malformed: Vec::new(),
        }))
    }

    async fn header(&self, number: u64) -> Result<Option<BlockHeader>, CollectorError> {
        self.enter(Call::Header).await?;
        let script = self.lock();
        Ok(script.blocks.get(number as usize).map(|block| BlockHeader {
            number,
            hash: block.hash,
            parent_hash: block.parent_hash,
        }))
    }

    async fn block_timestamp(&self, number: u64) -> Result<Option<u64>, CollectorError> {
        self.enter(Call::Header).await?;
        let script = self.lock();
        Ok(script.blocks.get(number as usize).map(|_| block_time(number)))
    }
}
