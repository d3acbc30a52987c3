//! The lock that serializes one image's tag decisions ([`Backend::lock_image`]).
//!
//! [`Backend::lock_image`]: crate::Backend::lock_image

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use crate::StoreError;

/// The database's part of an [`ImageLock`], released when dropped.
#[doc(hidden)]
#[async_trait::async_trait]
pub trait SharedLock: Send + Sync {
    /// Proves the lock is still held: an error when the session holding it is gone (a
    /// server restart, a cut connection), after which another replica may hold it.
    async fn confirm(&mut self) -> Result<(), StoreError>;
}

/// Held while one image's tag decisions run: what the ledger says, the registry PUTs and
/// the ledger events that follow. Every process and every worker that decides about the
/// same image waits for it; dropping it lets the next one in.
pub struct ImageLock {
    /// Order matters: fields drop in order, so the database's lock (if any) is let go
    /// before this process's, and a worker of this process that takes the image next
    /// finds the database's lock released or about to be.
    shared: Option<Box<dyn SharedLock>>,
    _local: OwnedMutexGuard<()>,
}

impl std::fmt::Debug for ImageLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageLock")
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

/// This process's image locks, one per image name (compared without regard to ASCII case,
/// as image names are). SQLite's single writer needs no more; PostgreSQL's store holds a
/// database lock as well, taken after this one so a process asks the database once per
/// image at a time.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct ImageLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl ImageLocks {
    /// Waits for `image`'s lock in this process.
    pub async fn local(&self, image: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            locks.entry(image.to_ascii_lowercase()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

impl ImageLock {
    /// A lock held in this process only.
    pub fn local(local: OwnedMutexGuard<()>) -> ImageLock {
        ImageLock {
            shared: None,
            _local: local,
        }
    }

    /// A lock held in this process and, through `shared` (released when dropped), in the
    /// database for every process.
    pub fn shared(local: OwnedMutexGuard<()>, shared: impl SharedLock + 'static) -> ImageLock {
        ImageLock {
            shared: Some(Box::new(shared)),
            _local: local,
        }
    }

    /// Proves the lock is still this caller's, before a write that needs it (a registry
    /// PUT, a ledger event): an error when the database's part was lost with its session,
    /// so a holder cut off never goes on writing beside the next one. The write right after
    /// a confirmation can still race a loss in between; the ledger write that follows it
    /// is confirmed again.
    pub async fn confirm(&mut self) -> Result<(), StoreError> {
        match &mut self.shared {
            Some(shared) => shared.confirm().await,
            None => Ok(()),
        }
    }
}
