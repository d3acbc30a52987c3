//! Why a job did not finish, and whether trying again may help.

use hoist_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Registry {
        context: String,
        #[source]
        source: Box<hoist_registry::Error>,
    },
    /// Wrong for good: a mislabeled platform, an immutable tag pointing elsewhere, a tag
    /// policy that cannot be applied.
    #[error("{0}")]
    Refused(String),
    #[error("{message}")]
    GitHub { message: String, retryable: bool },
}

impl PipelineError {
    pub fn is_retryable(&self) -> bool {
        match self {
            PipelineError::Store(e) => e.is_retryable(),
            PipelineError::Registry { source, .. } => source.is_retryable(),
            PipelineError::Refused(_) => false,
            PipelineError::GitHub { retryable, .. } => *retryable,
        }
    }

    /// How long the registry asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            PipelineError::Registry { source, .. } => source.retry_after(),
            _ => None,
        }
    }
}

/// Adds what was being done to a registry error.
pub(crate) trait RegistryContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, PipelineError>;
}

impl<T> RegistryContext<T> for Result<T, hoist_registry::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, PipelineError> {
        self.map_err(|source| PipelineError::Registry {
            context: what(),
            source: Box::new(source),
        })
    }
}
