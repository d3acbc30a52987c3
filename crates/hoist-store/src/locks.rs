//! The lock that serializes one image's tag decisions ([`Backend::lock_image`]).
//!
//! [`Backend::lock_image`]: crate::Backend::lock_image

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// Held while one image's tag decisions run: what the ledger says, the registry PUTs and
/// the ledger events that follow. Every process and every worker that decides about the
/// same image waits for it; dropping it lets the next one in.
pub struct ImageLock {
    /// Order matters: fields drop in order, so the database's lock (if any) is let go
    /// before this process's, and a worker of this process that takes the image next
    /// finds the database's lock released or about to be.
    _shared: Option<Box<dyn Any + Send + Sync>>,
    _local: OwnedMutexGuard<()>,
}

impl std::fmt::Debug for ImageLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageLock")
            .field("shared", &self._shared.is_some())
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
            _shared: None,
            _local: local,
        }
    }

    /// A lock held in this process and, through `shared` (released when dropped), in the
    /// database for every process.
    pub fn shared(local: OwnedMutexGuard<()>, shared: impl Any + Send + Sync) -> ImageLock {
        ImageLock {
            _shared: Some(Box::new(shared)),
            _local: local,
        }
    }
}
