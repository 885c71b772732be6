//! Where a member says how it stands: the node's status, reached through callbacks so that
//! this crate knows nothing of the pipeline.

use ferry_primitives::HaSnapshot;
use ferry_storage::Store;
use std::{fmt, sync::Arc};

/// Hands a change of the member's state to whoever keeps it.
type Update = dyn Fn(&mut dyn FnMut(&mut HaSnapshot)) + Send + Sync;

/// Tells the node what a standby replayed (consumers waiting on the log hear of it).
type Replicated = dyn Fn(&Store) + Send + Sync;

/// The member's view of the node.
#[derive(Clone)]
pub struct GroupReport {
    update: Arc<Update>,
    replicated: Arc<Replicated>,
}

impl fmt::Debug for GroupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupReport").finish_non_exhaustive()
    }
}

impl GroupReport {
    /// A report that hands each change of the member's state to `update`, and tells
    /// `replicated` after each write replayed into the store.
    pub fn new(
        update: impl Fn(&mut dyn FnMut(&mut HaSnapshot)) + Send + Sync + 'static,
        replicated: impl Fn(&Store) + Send + Sync + 'static,
    ) -> Self {
        Self { update: Arc::new(update), replicated: Arc::new(replicated) }
    }

    /// Changes what status says of the member.
    pub(crate) fn update(&self, change: impl FnOnce(&mut HaSnapshot)) {
        let mut change = Some(change);
        (self.update)(&mut |ha| {
            if let Some(change) = change.take() {
                change(ha);
            }
        });
    }

    /// The store took replayed writes.
    pub(crate) fn replicated(&self, store: &Store) {
        (self.replicated)(store);
    }
}
