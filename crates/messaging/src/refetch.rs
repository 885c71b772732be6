//! Replaying one L1 transaction: an operator who hears that a message never arrived has the
//! node read that transaction's receipt, prove it against its block, and store what it missed,
//! through the same dedup path as a batch, without rewinding a range.

use crate::{Collector, CollectorError, ControllerError, DrainRequests, ProvenTransaction, Status};
use ferry_primitives::{B256, BlockRef, Refetched, RefetchedMessage};
use ferry_storage::{ChangeMethod, ChangeOrigin, CommitSummary, FoundWrite, Store};
use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

/// How long a refetch may take to read and prove the transaction.
const PROVE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the drain task may take to store it.
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// Transactions proven against their block, from the running task's collector.
pub(crate) trait TransactionSource: Send + Sync + std::fmt::Debug {
    /// See [`Collector::proven_transaction`].
    fn proven(
        &self,
        hash: B256,
    ) -> Pin<Box<dyn Future<Output = Result<Option<ProvenTransaction>, CollectorError>> + Send + '_>>;
}

impl<C: Collector + std::fmt::Debug> TransactionSource for C {
    fn proven(
        &self,
        hash: B256,
    ) -> Pin<Box<dyn Future<Output = Result<Option<ProvenTransaction>, CollectorError>> + Send + '_>>
    {
        Box::pin(self.proven_transaction(hash))
    }
}

/// Why a proven transaction was not stored.
enum Stored {
    /// The drain task refused it or did not answer: the reason.
    Refused(String),
    /// The store failed.
    Failed(ferry_storage::Error),
}

/// What a refetch works with.
#[derive(Debug)]
pub(crate) struct Refetch<'a> {
    pub(crate) store: &'a Store,
    pub(crate) status: &'a Status,
    pub(crate) source: Option<Arc<dyn TransactionSource>>,
    pub(crate) drain: Option<DrainRequests>,
}

impl Refetch<'_> {
    /// Reads transaction `hash`, proves it, checks that its block can be trusted (in the
    /// header window with that hash, or at or below the finalized block) and read already
    /// (before the checkpoint), and, unless `dry_run`, stores what it logged that the node
    /// missed (through the drain task when it runs), audited under `caller`.
    pub(crate) async fn run(
        self,
        hash: B256,
        caller: &str,
        dry_run: bool,
    ) -> Result<Refetched, ControllerError> {
        let refused =
            |reason: String| ControllerError::RefetchRefused { transaction: hash, reason };
        let proven = self.prove(hash).await.map_err(refused)?;
        self.check_trusted(&proven).map_err(refused)?;
        let mut messages = Vec::with_capacity(proven.messages.len());
        for l1 in &proven.messages {
            let stored = self.store.message_by_hash(l1.hash())?;
            messages.push(RefetchedMessage {
                hash: l1.hash(),
                nonce: l1.message.nonce,
                log_index: l1.origin.log_index,
                stored_seq: stored.map(|stored| stored.seq),
            });
        }
        let mut answer = Refetched {
            dry_run,
            transaction: hash,
            block: proven.block.block_ref(),
            messages,
            stored: 0,
            reincluded: 0,
            state_changes: 0,
        };
        if dry_run {
            return Ok(answer);
        }
        let summary = self.store(proven, caller).await.map_err(|error| match error {
            Stored::Refused(reason) => refused(reason),
            Stored::Failed(error) => ControllerError::from(error),
        })?;
        answer.stored = summary.stored;
        answer.reincluded = summary.reincluded;
        answer.state_changes = summary.state_changes;
        Ok(answer)
    }

    /// Transaction `hash` read and proven by the running collector: why not.
    async fn prove(&self, hash: B256) -> Result<ProvenTransaction, String> {
        let Some(source) = &self.source else {
            return Err("the node is not connected to L1 yet".to_owned());
        };
        match tokio::time::timeout(PROVE_TIMEOUT, source.proven(hash)).await {
            Ok(Ok(Some(proven))) => Ok(proven),
            Ok(Ok(None)) => Err("L1 holds no such transaction on its canonical chain (never \
                                 mined, or its block was replaced by a reorg)"
                .to_owned()),
            Ok(Err(error)) => Err(format!("L1 could not prove it: {error}")),
            Err(_) => Err(format!("L1 did not answer within {PROVE_TIMEOUT:?}")),
        }
    }

    /// Stores what `proven` logged, through the drain task when it runs (the store has one
    /// writer), audited under `caller`.
    async fn store(
        &self,
        proven: ProvenTransaction,
        caller: &str,
    ) -> Result<CommitSummary, Stored> {
        let origin =
            ChangeOrigin { method: ChangeMethod::RefetchTransaction, caller: caller.to_owned() };
        match &self.drain {
            Some(drain) => {
                drain.store_found(proven, origin, STORE_TIMEOUT).await.map_err(Stored::Refused)
            }
            None => {
                let store = self.store.clone();
                crate::blocking::blocking(move || {
                    let write = FoundWrite {
                        transaction: proven.transaction,
                        messages: &proven.messages,
                        events: &proven.events,
                        origin: &origin,
                    };
                    store.store_found(write)
                })
                .await
                .map_err(Stored::Failed)
            }
        }
    }

    /// Whether the transaction's block can be trusted and was read already: why not.
    fn check_trusted(&self, proven: &ProvenTransaction) -> Result<(), String> {
        let block = proven.block;
        let kept = self.store.header(block.number).map_err(|error| error.to_string())?;
        let finalized = self.status.heads().and_then(|heads| heads.finalized);
        match kept {
            Some(kept) if kept.hash == block.hash => {}
            Some(kept) => {
                return Err(format!(
                    "its block {} is {}, but the header window holds {} there: the node and L1 \
                     disagree on that block; let the node find the reorg first",
                    block.number, block.hash, kept.hash
                ));
            }
            None if finalized.is_some_and(|BlockRef { number, .. }| block.number <= number) => {}
            None => {
                return Err(format!(
                    "its block {} is neither in the header window nor final (finalized block \
                     {:?}): it could still be replaced; try again once it is final",
                    block.number,
                    finalized.map(|finalized| finalized.number)
                ));
            }
        }
        let checkpoint = self.store.checkpoint().map_err(|error| error.to_string())?;
        let resume = self.store.resume_position(checkpoint);
        if ferry_primitives::Position::block_start(block.number) >= resume {
            return Err(format!(
                "its block {} is at or after the checkpoint {resume}: the node reads it there",
                block.number
            ));
        }
        Ok(())
    }
}
