//! What a request handed out (files and bytes behind signed URLs), counted while its body is
//! produced. The audit middleware sets one counter per request as a task-local; the emitter
//! captures it when a response starts and adds to it as it signs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Files and bytes vended by one request.
#[derive(Debug, Default)]
pub struct Vended {
    files: AtomicU64,
    bytes: AtomicU64,
}

impl Vended {
    /// Adds a batch.
    pub fn add(&self, files: u64, bytes: u64) {
        self.files.fetch_add(files, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// (files, bytes) so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.files.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

tokio::task_local! {
    /// The counter of the request being handled.
    pub static VENDED: Arc<Vended>;
}

/// The current request's counter, if the request is audited.
pub fn current() -> Option<Arc<Vended>> {
    VENDED.try_with(Arc::clone).ok()
}
