//! The whole tag decision of one publication, as plain data: which tags it writes, in
//! which order, which are immutable once written, and which floating tags it holds back.
//! The pipeline computes it under the image's lock from the live releases and then only
//! acts on it; `hoist plan` prints it.

use super::compute::{ComputedTags, TagRole};
use super::floating::{HeldBack, HoldReason, plan_release};
use super::name::TagName;
use super::version::Version;

/// A tag the publication writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTag {
    pub tag: TagName,
    /// A pinned tag (a full version): once written it is never re-pointed, whatever line
    /// computes it later, unless an operator forces it.
    pub immutable: bool,
}

/// Pinned tags first (they fail the publication before anything moves when one points
/// elsewhere), then plain ones (`sha-…`, `edge`), then the floating ones that move
/// forward.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublicationPlan {
    pub writes: Vec<PlannedTag>,
    pub held_back: Vec<HeldBack>,
}

impl PublicationPlan {
    /// `live` are the versions of the image's live releases other than this one (published,
    /// not flagged prerelease on GitHub, with a succeeded publication), in publication
    /// order. `flagged_prerelease`: GitHub marks this release a prerelease, so it competes
    /// for no floating tag whatever its version says.
    pub fn new(computed: &ComputedTags, live: &[Version], flagged_prerelease: bool) -> Self {
        let mut plan = PublicationPlan::default();
        let pinned = computed.tags().iter().filter(|t| t.role == TagRole::Pinned);
        let plain = computed.tags().iter().filter(|t| t.role == TagRole::Plain);
        for tag in pinned {
            plan.writes.push(PlannedTag {
                tag: tag.name.clone(),
                immutable: true,
            });
        }
        for tag in plain {
            plan.writes.push(PlannedTag {
                tag: tag.name.clone(),
                immutable: false,
            });
        }
        let floating = if flagged_prerelease {
            let held = computed.tags().iter().filter_map(|t| match t.role {
                TagRole::Floating(_) => Some(HeldBack {
                    tag: t.name.clone(),
                    reason: HoldReason::Prerelease,
                }),
                TagRole::Pinned | TagRole::Plain => None,
            });
            plan.held_back.extend(held);
            return plan;
        } else {
            let mut versions = live.to_vec();
            versions.extend(computed.release_version().cloned());
            plan_release(computed, &versions)
        };
        plan.writes
            .extend(floating.moves.into_iter().map(|m| PlannedTag {
                tag: m.tag,
                immutable: false,
            }));
        plan.held_back.extend(floating.held_back);
        plan
    }

    /// The tag names in write order.
    pub fn tag_names(&self) -> impl Iterator<Item = &str> {
        self.writes.iter().map(|w| w.tag.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::tags::{EventContext, GitRef, TagPolicy};

    fn computed(lines: &[&str], tag: &str) -> ComputedTags {
        let lines: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        let policy = TagPolicy::parse(&lines, &["latest=auto".to_owned()]).unwrap();
        policy
            .compute(&EventContext {
                git_ref: GitRef::Tag(tag.to_owned()),
                commit: "0123456789abcdef0123456789abcdef01234567".parse().unwrap(),
                default_branch: "main".to_owned(),
                time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            })
            .unwrap()
    }

    fn versions(raw: &[&str]) -> Vec<Version> {
        raw.iter().map(|v| v.parse().unwrap()).collect()
    }

    const SEMVER: [&str; 4] = [
        "type=semver,pattern={{version}}",
        "type=semver,pattern={{major}}.{{minor}}",
        "type=semver,pattern={{major}}",
        "type=sha",
    ];

    #[test]
    fn writes_go_pinned_then_plain_then_floating() {
        let plan = PublicationPlan::new(&computed(&SEMVER, "v1.2.3"), &[], false);
        assert_eq!(
            plan.tag_names().collect::<Vec<_>>(),
            ["1.2.3", "sha-0123456", "1.2", "1", "latest"]
        );
        assert!(plan.writes[0].immutable);
        assert!(plan.writes[1..].iter().all(|w| !w.immutable));
    }

    #[test]
    fn a_lower_version_moves_only_its_own_scopes() {
        let plan = PublicationPlan::new(
            &computed(&SEMVER, "v1.4.9"),
            &versions(&["1.2.3", "2.0.0"]),
            false,
        );
        assert_eq!(
            plan.tag_names().collect::<Vec<_>>(),
            ["1.4.9", "sha-0123456", "1.4", "1"]
        );
        assert_eq!(plan.held_back.len(), 1, "{plan:?}");
        assert_eq!(plan.held_back[0].tag.as_str(), "latest");
    }

    #[test]
    fn a_release_flagged_prerelease_keeps_only_its_pinned_and_plain_tags() {
        let plan = PublicationPlan::new(&computed(&SEMVER, "v5.0.0"), &[], true);
        assert_eq!(
            plan.tag_names().collect::<Vec<_>>(),
            ["5.0.0", "sha-0123456"]
        );
        let held: Vec<_> = plan.held_back.iter().map(|h| h.tag.as_str()).collect();
        assert_eq!(held, ["5.0", "5", "latest"]);
        assert!(
            plan.held_back
                .iter()
                .all(|h| h.reason == HoldReason::Prerelease)
        );
    }

    #[test]
    fn a_tag_a_pinned_and_a_plain_line_both_give_is_immutable() {
        let plan = PublicationPlan::new(
            &computed(
                &["type=raw,value=1.2.3", "type=semver,pattern={{version}}"],
                "v1.2.3",
            ),
            &[],
            false,
        );
        assert_eq!(plan.writes[0].tag.as_str(), "1.2.3");
        assert!(plan.writes[0].immutable, "{plan:?}");
        assert_eq!(
            plan.writes
                .iter()
                .filter(|w| w.tag.as_str() == "1.2.3")
                .count(),
            1
        );
    }
}
