//! hoist's workers: claim a job, run the publication it asks for, record the outcome.
//!
//! Rules of this layer:
//! - Every step is idempotent: a job that ran halfway (a crash, a restart, a retry) runs
//!   again from the top and converges; nothing is recorded before it is true.
//! - A tag is written only after everything it points at is in the registry, and its ledger
//!   event right after its PUT, so the ledger never claims a tag the registry lacks.
//! - Tag decisions for one image are serialized (one lock per image).
//! - Retryable failures go back to the queue with backoff; permanent ones fail the
//!   publication with the step and the error, for an operator to read and retry.

mod error;
mod github;
mod publish;
mod worker;

pub use error::PipelineError;
pub use worker::{Pipeline, PipelineOptions};
