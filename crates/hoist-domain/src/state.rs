//! The states of a publication, its steps, a release and a queued job, each with the one
//! pure function that says which moves are allowed. Store rows, the API, metrics and the
//! OpenAPI document all spell states through these enums; no state is a bare string
//! anywhere else.
//!
//! A publication (one target image x one commit x one release, or a branch) lives as
//!
//! ```text
//!            BuildsMissing            Start                Succeed
//!   waiting <-------------- running <------- waiting ----------------> succeeded
//!      |  \                   |                                          |
//!      |   Stall -> stalled   Fail -> failed             Redecide -> waiting
//!      |                 any but withdrawn --Withdraw--> withdrawn --Revive--> waiting
//! ```
//!
//! `succeeded`, `failed`, `stalled` and `withdrawn` are at rest: nothing runs for them
//! until an event (a build, an edit, an operator's retry) moves them. `waiting` and
//! `running` always have work to do, so the reconciler re-queues any of them that has no
//! live job.

use std::fmt;

/// Declares a state enum with `ALL`, `as_str`, `parse` and `Display`.
macro_rules! states {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling stored in the database and shown by the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

states! {
    /// Where a publication stands.
    PublicationState {
        Waiting => "waiting",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Stalled => "stalled",
        Withdrawn => "withdrawn",
    }
}

states! {
    /// The steps of a publication, in the order they run.
    Step {
        Wait => "wait",
        Copy => "copy",
        Verify => "verify",
        Index => "index",
        Tags => "tags",
    }
}

states! {
    /// Where a release stands, as far as hoist has heard.
    ReleaseState {
        Draft => "draft",
        Published => "published",
        Unpublished => "unpublished",
        Deleted => "deleted",
    }
}

states! {
    /// A row of the job queue.
    JobState {
        Queued => "queued",
        Running => "running",
        Done => "done",
        Failed => "failed",
    }
}

/// What can happen to a publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicationEvent {
    /// Every platform has a build: copying starts (or goes on).
    Start,
    /// Some platform has no build yet.
    BuildsMissing,
    /// A build arrived: a stalled publication waits again.
    BuildArrived,
    /// The tags are written.
    Succeed,
    /// A permanent error, or a job out of attempts.
    Fail,
    /// Waited longer than `[publish] wait_timeout`.
    Stall,
    /// Its release was deleted, unpublished, renamed or re-targeted away from this commit.
    Withdraw,
    /// Its release is published on this commit again.
    Revive,
    /// Its release changed in a way that changes its tags (a rename on the same commit, the
    /// prerelease flag): the tag step runs again.
    Redecide,
    /// An operator asked for it to run again.
    Retry,
}

impl PublicationState {
    /// Nothing runs for a publication at rest until an event moves it.
    pub fn is_at_rest(self) -> bool {
        !matches!(self, PublicationState::Waiting | PublicationState::Running)
    }

    /// The state after `event`, or `None` when the event does not apply in this state
    /// (the caller leaves the publication as it is).
    pub fn next(self, event: PublicationEvent) -> Option<PublicationState> {
        use PublicationEvent as E;
        use PublicationState as S;
        Some(match (self, event) {
            (S::Waiting | S::Running | S::Stalled, E::Start) => S::Running,
            (S::Waiting | S::Running | S::Stalled, E::BuildsMissing) => S::Waiting,
            (S::Stalled | S::Waiting, E::BuildArrived) => S::Waiting,
            (S::Running, E::Succeed) => S::Succeeded,
            (S::Waiting | S::Running | S::Stalled, E::Fail) => S::Failed,
            (S::Waiting, E::Stall) => S::Stalled,
            (S::Withdrawn, E::Withdraw) => return None,
            (_, E::Withdraw) => S::Withdrawn,
            (S::Withdrawn, E::Revive) => S::Waiting,
            (S::Succeeded, E::Redecide) => S::Waiting,
            (S::Waiting | S::Running | S::Stalled, E::Redecide) => S::Waiting,
            (S::Failed | S::Stalled, E::Retry) => S::Waiting,
            // A running publication whose worker is gone: it goes on from where it was.
            (S::Running, E::Retry) => S::Running,
            _ => return None,
        })
    }
}

/// What a release delivery does to the release's state.
impl ReleaseState {
    /// The state after `action`, given the state before it (`None`: first heard of).
    /// Deliveries may arrive in any order, so only lifecycle actions change a known state,
    /// and a deletion is final (GitHub never reuses a release id).
    pub fn next(before: Option<ReleaseState>, action: &ReleaseAction, draft: bool) -> ReleaseState {
        use ReleaseAction as A;
        if before == Some(ReleaseState::Deleted) {
            return ReleaseState::Deleted;
        }
        match action {
            A::Deleted => ReleaseState::Deleted,
            A::Unpublished => ReleaseState::Unpublished,
            A::Published | A::Released | A::Prereleased if !draft => ReleaseState::Published,
            _ => before.unwrap_or(if draft {
                ReleaseState::Draft
            } else {
                ReleaseState::Published
            }),
        }
    }
}

/// The `action` of a `release` delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseAction {
    Created,
    Edited,
    Deleted,
    Published,
    Unpublished,
    Prereleased,
    Released,
    /// An action GitHub may add later; stored, never acted on.
    Other(String),
}

impl ReleaseAction {
    pub fn parse(action: &str) -> Self {
        match action {
            "created" => ReleaseAction::Created,
            "edited" => ReleaseAction::Edited,
            "deleted" => ReleaseAction::Deleted,
            "published" => ReleaseAction::Published,
            "unpublished" => ReleaseAction::Unpublished,
            "prereleased" => ReleaseAction::Prereleased,
            "released" => ReleaseAction::Released,
            other => ReleaseAction::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ReleaseAction::Created => "created",
            ReleaseAction::Edited => "edited",
            ReleaseAction::Deleted => "deleted",
            ReleaseAction::Published => "published",
            ReleaseAction::Unpublished => "unpublished",
            ReleaseAction::Prereleased => "prereleased",
            ReleaseAction::Released => "released",
            ReleaseAction::Other(other) => other,
        }
    }
}

#[cfg(test)]
mod tests;
