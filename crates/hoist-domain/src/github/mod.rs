//! GitHub webhook deliveries: signature verification and the few fields hoist acts on.
//!
//! Verification comes first and works on the raw bytes; only a verified body is parsed.
//! Parsing keeps just what the ingestion rules need, so a payload that grows new fields
//! still parses.

mod event;
mod signature;

#[cfg(test)]
mod tests;

pub use crate::state::{ReleaseAction, ReleaseState};
pub use event::{EventError, PingEvent, PushEvent, ReleaseEvent, WebhookEvent};
pub use signature::{SignatureError, Signer, body_digest, find_signer, sign, verify_signature};
