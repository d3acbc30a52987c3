//! hoist's own rule for floating tags: they only move forward.
//!
//! metadata-action moves `latest`, `1` and `1.2` on every release because it cannot know
//! what came before. hoist remembers every version it published, so it can do what users
//! mean: a floating tag names the highest stable version in its scope (by SemVer precedence,
//! build metadata ignored). Releasing 1.4.9 after 2.0.0 moves `1` and `1.4`, never `latest`;
//! prereleases never move a floating tag; deleting the release a tag names moves the tag back
//! to the highest version left in its scope.
//!
//! These functions only decide; the pipeline writes the tags and the ledger records why.

use std::cmp::Ordering;

use super::compute::{ComputedTags, TagRole};
use super::name::TagName;
use super::version::Version;

/// The versions a floating tag ranges over: the stable ones sharing every part that is
/// set. `latest` sets none; `{{major}}` sets the major; `{{major}}.{{minor}}` both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
}

impl Scope {
    pub fn new(major: Option<u64>, minor: Option<u64>, patch: Option<u64>) -> Self {
        Scope {
            major,
            minor,
            patch,
        }
    }

    /// `latest`'s scope.
    pub fn everything() -> Self {
        Scope::new(None, None, None)
    }

    pub fn major(&self) -> Option<u64> {
        self.major
    }

    pub fn minor(&self) -> Option<u64> {
        self.minor
    }

    pub fn patch(&self) -> Option<u64> {
        self.patch
    }

    /// Prereleases are in no scope: they never hold a floating tag.
    pub fn contains(&self, version: &Version) -> bool {
        !version.is_prerelease()
            && self.major.is_none_or(|major| major == version.major())
            && self.minor.is_none_or(|minor| minor == version.minor())
            && self.patch.is_none_or(|patch| patch == version.patch())
    }

    /// The highest version of `versions` in this scope. Among versions of equal precedence
    /// (`1.0.0+a`, `1.0.0+b`) the later one wins, as it was the last to move the tag; so
    /// `versions` should be in publication order.
    pub fn highest<'a>(&self, versions: &'a [Version]) -> Option<&'a Version> {
        versions
            .iter()
            .filter(|version| self.contains(version))
            .fold(None, |best: Option<&Version>, version| match best {
                Some(best) if version.cmp_precedence(best) == Ordering::Less => Some(best),
                _ => Some(version),
            })
    }
}

/// What publishing a release does to its floating tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleasePlan {
    pub moves: Vec<FloatingMove>,
    pub held_back: Vec<HeldBack>,
}

/// A floating tag that should now name `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloatingMove {
    pub tag: TagName,
    pub scope: Scope,
    pub to: Version,
}

/// A floating tag the release computes but must not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    pub tag: TagName,
    pub reason: HoldReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldReason {
    /// The release is a prerelease; floating tags wait for a stable version.
    Prerelease,
    /// A higher version in the tag's scope is published and keeps it.
    NewerInScope { highest: Version },
}

/// What deleting a release does to one floating tag it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    pub tag: TagName,
    pub scope: Scope,
    pub to: RollbackTarget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    /// The highest version left in scope: the tag goes back to it.
    Version(Version),
    /// No stable version is left in scope; the tag is left where it is and the reason
    /// recorded, since there is nothing right to point it at.
    NoneRemaining,
}

/// Which of a release's floating tags move, given the versions already published for the
/// image and not deleted (in publication order; the release itself may be among them).
/// Tags that are not floating (`sha`, the full version, ...) are not in the plan: they are
/// written as computed. Without a release version there is nothing to decide.
pub fn plan_release(tags: &ComputedTags, published: &[Version]) -> ReleasePlan {
    let mut plan = ReleasePlan::default();
    let Some(release) = tags.release_version() else {
        return plan;
    };
    for (tag, scope) in floating(tags) {
        if release.is_prerelease() {
            plan.held_back.push(HeldBack {
                tag: tag.clone(),
                reason: HoldReason::Prerelease,
            });
            continue;
        }
        match scope.highest(published) {
            Some(highest) if release.cmp_precedence(highest) == Ordering::Less => {
                plan.held_back.push(HeldBack {
                    tag: tag.clone(),
                    reason: HoldReason::NewerInScope {
                        highest: highest.clone(),
                    },
                });
            }
            _ => plan.moves.push(FloatingMove {
                tag: tag.clone(),
                scope,
                to: release.clone(),
            }),
        }
    }
    plan
}

/// Where the floating tags of a deleted release go. `deleted` are the tags the policy gives
/// that release (computed again for its event); `remaining` are the versions still
/// published, in publication order, without it. Only tags the release held are returned:
/// a tag a higher remaining version holds is not its to give back.
pub fn plan_deletion(deleted: &ComputedTags, remaining: &[Version]) -> Vec<Rollback> {
    let Some(version) = deleted.release_version() else {
        return Vec::new();
    };
    floating(deleted)
        .filter(|(_, scope)| scope.contains(version))
        .filter_map(|(tag, scope)| {
            let to = match scope.highest(remaining) {
                Some(highest) if highest.cmp_precedence(version) == Ordering::Greater => {
                    return None;
                }
                Some(highest) => RollbackTarget::Version(highest.clone()),
                None => RollbackTarget::NoneRemaining,
            };
            Some(Rollback {
                tag: tag.clone(),
                scope,
                to,
            })
        })
        .collect()
}

fn floating(tags: &ComputedTags) -> impl Iterator<Item = (&TagName, Scope)> {
    tags.tags().iter().filter_map(|tag| match tag.role {
        TagRole::Floating(scope) => Some((&tag.name, scope)),
        TagRole::Pinned | TagRole::Plain => None,
    })
}

#[cfg(test)]
mod tests;
