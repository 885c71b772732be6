//! Where the publisher says how it stands, and hears that the log grew: the node's status,
//! reached through two callbacks so that the sink knows nothing of the pipeline.

use ferry_primitives::{Seq, SinkSnapshot};
use std::{fmt, sync::Arc};
use tokio::sync::watch;

/// Hands a change of the sink's state to whoever keeps it.
type Update = dyn Fn(&mut dyn FnMut(&mut SinkSnapshot)) + Send + Sync;

/// The publisher's view of the node: a watch of the newest seq written, and a way to change
/// what status says of the sink.
#[derive(Clone)]
pub struct SinkReport {
    written: watch::Receiver<Option<Seq>>,
    update: Arc<Update>,
}

impl fmt::Debug for SinkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkReport").field("written", &*self.written.borrow()).finish()
    }
}

impl SinkReport {
    /// A report that hears of writes from `written` and hands each change of the sink's state
    /// to `update`.
    pub fn new(
        written: watch::Receiver<Option<Seq>>,
        update: impl Fn(&mut dyn FnMut(&mut SinkSnapshot)) + Send + Sync + 'static,
    ) -> Self {
        Self { written, update: Arc::new(update) }
    }

    /// Changes what status says of the sink.
    pub(crate) fn update(&self, change: impl FnOnce(&mut SinkSnapshot)) {
        let mut change = Some(change);
        (self.update)(&mut |sink| {
            if let Some(change) = change.take() {
                change(sink);
            }
        });
    }

    /// The newest seq written, as it changes.
    pub(crate) fn written(&self) -> watch::Receiver<Option<Seq>> {
        self.written.clone()
    }
}
