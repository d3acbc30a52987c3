//! hoist's workers: claim a job, run the publication it asks for, record the outcome.
//!
//! Rules of this layer:
//! - Jobs name a publication (or a release, for a rollback); the worker acts on the state
//!   the store holds now, moving it only through `PublicationState::next`.
//! - Every step is idempotent: a job that ran halfway (a crash, a restart, a retry) runs
//!   again and converges; nothing is recorded before it is true.
//! - A tag is written only after everything it points at is in the registry, and its ledger
//!   event right after its PUT, so the ledger never claims a tag the registry lacks.
//! - Tag decisions for one image are serialized (one lock per image) and taken from the
//!   live releases as they are under that lock (`PublicationPlan`).
//! - Retryable failures go back to the queue with backoff; permanent ones fail the
//!   publication with the step and the error, for an operator to read and retry.

mod dispatch;
mod error;
mod github;
mod publish;
mod referrers;
mod sign;
pub mod signature;
mod sources;
mod tags;
mod worker;

pub use error::PipelineError;
pub use worker::{Pipeline, PipelineOptions};
