//! Places for subscriptions on the public listener: a cap over all connections and one per
//! peer address (an IPv6 /64 counting as one peer), so that one client cannot hold them all.

use crate::Limits;
use ferry_rpc_api::codes;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;
use std::{collections::HashMap, net::IpAddr, sync::Mutex};

/// Subscriptions open on the public listener, in all (against
/// `Limits::max_subscriptions_total`) and by peer IP address (against
/// `Limits::max_subscriptions_per_peer`).
#[derive(Debug, Default)]
pub(crate) struct SubscriptionCount(Mutex<Counts>);

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// Why a subscription found no place.
pub(crate) enum NoPlace {
    Total(u32),
    Peer(IpAddr, u32),
}

/// Releases a subscription's place in the counts when it ends.
pub(crate) struct Place<'a> {
    count: &'a SubscriptionCount,
    peer: Option<IpAddr>,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut counts = self.count.lock();
        counts.total -= 1;
        if let Some(peer) = self.peer
            && let Some(open) = counts.by_peer.get_mut(&peer)
        {
            *open -= 1;
            if *open == 0 {
                counts.by_peer.remove(&peer);
            }
        }
        metrics::gauge!("ferry_rpc_subscriptions").decrement(1);
    }
}

impl SubscriptionCount {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts are plain integers, consistent after any panic.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn take(&self, limits: &Limits, peer: Option<IpAddr>) -> Result<Place<'_>, NoPlace> {
        let peer = peer.map(peer_group);
        let mut counts = self.lock();
        if counts.total >= limits.max_subscriptions_total as usize {
            return Err(NoPlace::Total(limits.max_subscriptions_total));
        }
        if let Some(peer) = peer {
            let open = counts.by_peer.entry(peer).or_default();
            if *open >= limits.max_subscriptions_per_peer as usize {
                return Err(NoPlace::Peer(peer, limits.max_subscriptions_per_peer));
            }
            *open += 1;
        }
        counts.total += 1;
        metrics::gauge!("ferry_rpc_subscriptions").increment(1);
        Ok(Place { count: self, peer })
    }
}

/// The address one peer is counted under: an IPv4 address, or an IPv6 address's /64 (one
/// host is given a /64 to choose addresses from).
fn peer_group(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

impl From<NoPlace> for ErrorObjectOwned {
    fn from(refusal: NoPlace) -> Self {
        metrics::counter!("ferry_rpc_refused_total", "listener" => "public", "reason" => "subscriptions")
            .increment(1);
        match refusal {
            NoPlace::Total(limit) => Self::owned(
                codes::SUBSCRIPTION_LIMIT,
                format!("the node serves at most {limit} subscriptions; try again later"),
                Some(json!({ "limit": limit })),
            ),
            NoPlace::Peer(peer, limit) => Self::owned(
                codes::SUBSCRIPTION_LIMIT,
                format!(
                    "{peer} already has {limit} subscriptions open, the most one address (or \
                     IPv6 /64) may hold; close one first"
                ),
                Some(json!({ "limit": limit, "peer": peer.to_string() })),
            ),
        }
    }
}
