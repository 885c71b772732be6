//! L1's heads: the latest block, the provider's safe and finalized blocks (asked again only
//! when the head moved on), and every endpoint's head now and then (several endpoints).

use super::{EthereumCollector, LOG_TARGET, endpoints::L1Mode, header::RpcHeader};
use crate::{CollectorError, Confirmations, Heads};
use alloy::providers::Provider;
use ferry_primitives::BlockRef;
use std::time::Duration;
use tokio::time::Instant;
use tracing::debug;

/// The provider's safe and finalized blocks move once an epoch (32 blocks on Ethereum): they
/// are asked again once the head has moved this many blocks, not with every head.
const TAG_REFRESH_BLOCKS: u64 = 4;

/// How often, at most, every endpoint's head is asked (several endpoints only).
const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// The provider's safe and finalized blocks, and the latest block they were asked at.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tags {
    asked_at: u64,
    safe: Option<BlockRef>,
    finalized: Option<BlockRef>,
}

impl EthereumCollector {
    /// The latest block and the provider's safe and finalized blocks, as [`Collector::heads`]
    /// answers them. With several endpoints their heads are asked now and then too: failover
    /// moves away from one whose head lags, and back to the first once it is fresh again.
    pub(super) async fn read_heads(&self) -> Result<Heads, CollectorError> {
        if self.endpoints.list.len() > 1 {
            self.probe_heads().await;
        }
        let latest = match self.endpoints.mode {
            L1Mode::Failover => self.tagged("latest").await?,
            L1Mode::Quorum(quorum) => self.quorum_latest(quorum).await?,
        };
        let latest = latest
            .ok_or_else(|| {
                CollectorError::Inconsistent("the provider has no latest block".to_owned())
            })?
            .header();
        let tags = self.tags(latest.number).await?;
        let safe = match self.config.confirmations {
            Confirmations::Blocks(confirmations) => latest.number.checked_sub(confirmations),
            Confirmations::Safe => tags.safe.map(|safe| safe.number),
            Confirmations::Finalized => tags.finalized.map(|finalized| finalized.number),
        };
        // A tag above the latest block is from a backend ahead of this answer: not yet usable.
        let below_latest = |tag: Option<BlockRef>| tag.filter(|tag| tag.number <= latest.number);
        Ok(Heads {
            latest: latest.number,
            latest_hash: latest.hash,
            safe: safe.map(|safe| safe.min(latest.number)),
            l1_safe: below_latest(tags.safe),
            finalized: below_latest(tags.finalized),
        })
    }

    /// Every endpoint's newest block number, at most every [`PROBE_INTERVAL`]: their health
    /// and heads for status, and the failover's choice.
    async fn probe_heads(&self) {
        {
            let mut probed = self.probed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if probed.is_some_and(|at| at.elapsed() < PROBE_INTERVAL) {
                return;
            }
            *probed = Some(Instant::now());
        }
        let answers = self
            .ask_each("eth_blockNumber", "probe", None, |provider| async move {
                provider.get_block_number().await
            })
            .await;
        for (index, answer) in answers {
            if let Ok(head) = answer {
                self.endpoints.list[index].record_head(head);
            }
        }
        if self.endpoints.mode == L1Mode::Failover {
            self.endpoints.rebalance();
        }
        self.publish_endpoints();
    }

    /// The newest block at least `quorum` endpoints have: the quorum-th highest of their
    /// latest blocks, then that block as a quorum gives it.
    async fn quorum_latest(&self, quorum: usize) -> Result<Option<RpcHeader>, CollectorError> {
        let answers = self
            .ask_each("eth_blockNumber", "latest", None, |provider| async move {
                provider.get_block_number().await
            })
            .await;
        let mut heads: Vec<u64> = answers.into_iter().filter_map(|(_, head)| head.ok()).collect();
        heads.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&head) = heads.get(quorum - 1) else {
            return Err(CollectorError::Upstream {
                request: "eth_blockNumber".to_owned(),
                reason: format!("fewer than {quorum} endpoints answered"),
            });
        };
        let mut header = self.header_batch(&[head]).await?;
        Ok(header.pop().flatten())
    }

    /// `eth_getBlockByNumber` of a tag (`latest`, `safe`, `finalized`).
    async fn tagged(&self, tag: &'static str) -> Result<Option<RpcHeader>, CollectorError> {
        if let L1Mode::Quorum(quorum) = self.endpoints.mode {
            return self.quorum_tag(tag, quorum).await;
        }
        self.request("eth_getBlockByNumber", tag, 1, |provider| async move {
            provider
                .raw_request::<_, Option<RpcHeader>>("eth_getBlockByNumber".into(), (tag, false))
                .await
        })
        .await
    }

    /// A tag in quorum mode: endpoints move their safe and finalized blocks at slightly
    /// different moments, so the lowest of `quorum` answers is taken (a tag only ever counts
    /// where the stored chain holds that very block).
    async fn quorum_tag(
        &self,
        tag: &'static str,
        quorum: usize,
    ) -> Result<Option<RpcHeader>, CollectorError> {
        let answers = self
            .ask_each("eth_getBlockByNumber", tag, None, |provider| async move {
                provider
                    .raw_request::<_, Option<RpcHeader>>(
                        "eth_getBlockByNumber".into(),
                        (tag, false),
                    )
                    .await
            })
            .await;
        let answered: Vec<Option<RpcHeader>> =
            answers.into_iter().filter_map(|(_, answer)| answer.ok()).collect();
        if answered.len() < quorum {
            return Err(CollectorError::Upstream {
                request: format!("eth_getBlockByNumber {tag}"),
                reason: format!("fewer than {quorum} endpoints answered"),
            });
        }
        Ok(answered.into_iter().flatten().min_by_key(|header| header.header().number))
    }

    /// The provider's safe and finalized blocks, asked again when the head moved on by
    /// [`TAG_REFRESH_BLOCKS`] (or back: a reorg to a shorter chain), and at every head when
    /// the confirmations follow them. A provider without the tags (a chain before the merge)
    /// answers `None`, unless the confirmations need them.
    async fn tags(&self, latest: u64) -> Result<Tags, CollectorError> {
        let reads_by_tag = !matches!(self.config.confirmations, Confirmations::Blocks(_));
        let refresh = if reads_by_tag { 1 } else { TAG_REFRESH_BLOCKS };
        if let Some(tags) = *self.lock_tags()
            && (tags.asked_at..tags.asked_at + refresh).contains(&latest)
        {
            return Ok(tags);
        }
        let (safe, finalized) = tokio::join!(self.tagged("safe"), self.tagged("finalized"));
        let needed = self.config.confirmations;
        let tag = |answer: Result<Option<RpcHeader>, CollectorError>, needed_here: bool| {
            match answer {
                Ok(header) => Ok(header.map(|header| header.header().block_ref())),
                Err(error) if needed_here => Err(error),
                Err(error) => {
                    debug!(target: LOG_TARGET, %error, "The provider gave no safe or finalized block");
                    Ok(None)
                }
            }
        };
        let tags = Tags {
            asked_at: latest,
            safe: tag(safe, needed == Confirmations::Safe)?,
            finalized: tag(finalized, needed == Confirmations::Finalized)?,
        };
        *self.lock_tags() = Some(tags);
        Ok(tags)
    }

    pub(super) fn lock_tags(&self) -> std::sync::MutexGuard<'_, Option<Tags>> {
        self.tags.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
