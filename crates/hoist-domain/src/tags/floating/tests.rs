use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use super::*;
use crate::tags::{EventContext, TagPolicy};

fn v(text: &str) -> Version {
    text.parse().unwrap()
}

fn versions(texts: &[&str]) -> Vec<Version> {
    texts.iter().map(|text| v(text)).collect()
}

/// hoist's default policy: full version, `X.Y`, `X`, sha, and `latest=auto`.
fn default_policy() -> TagPolicy {
    TagPolicy::parse(
        &[
            "type=semver,pattern={{version}}",
            "type=semver,pattern={{major}}.{{minor}}",
            "type=semver,pattern={{major}}",
            "type=sha",
        ],
        &["latest=auto"],
    )
    .unwrap()
}

fn tags_of(policy: &TagPolicy, version: &str) -> ComputedTags {
    policy
        .compute(&EventContext {
            git_ref: format!("refs/tags/v{version}").parse().unwrap(),
            commit: "860c1904a1ce19322e91ac35af1ab07466440c37".parse().unwrap(),
            default_branch: "main".to_owned(),
            time: UNIX_EPOCH,
        })
        .unwrap()
}

fn moved(plan: &ReleasePlan) -> Vec<&str> {
    plan.moves.iter().map(|m| m.tag.as_str()).collect()
}

#[test]
fn scopes_hold_stable_versions_sharing_their_parts() {
    let one_four = Scope::new(Some(1), Some(4), None);
    assert!(one_four.contains(&v("1.4.9")));
    assert!(!one_four.contains(&v("1.5.0")));
    assert!(!one_four.contains(&v("1.4.10-rc.1")));
    assert!(Scope::everything().contains(&v("0.0.1")));
    assert!(!Scope::everything().contains(&v("9.0.0-alpha")));
}

#[test]
fn highest_ignores_build_metadata_and_prefers_the_later_of_equals() {
    let published = versions(&["1.0.0+a", "0.9.0", "1.0.0+b", "1.0.0-rc.9"]);
    assert_eq!(Scope::everything().highest(&published), Some(&v("1.0.0+b")));
    assert_eq!(Scope::new(Some(2), None, None).highest(&published), None);
}

#[test]
fn first_release_moves_every_floating_tag() {
    let plan = plan_release(&tags_of(&default_policy(), "1.2.3"), &[]);
    assert_eq!(moved(&plan), ["1.2", "1", "latest"]);
    assert!(plan.held_back.is_empty());
    assert!(plan.moves.iter().all(|m| m.to == v("1.2.3")));
}

#[test]
fn releasing_1_4_9_after_2_0_0_moves_1_and_1_4_but_not_latest() {
    let published = versions(&["1.4.8", "2.0.0"]);
    let plan = plan_release(&tags_of(&default_policy(), "1.4.9"), &published);
    assert_eq!(moved(&plan), ["1.4", "1"]);
    assert_eq!(
        plan.held_back,
        [HeldBack {
            tag: "latest".parse().unwrap(),
            reason: HoldReason::NewerInScope {
                highest: v("2.0.0")
            },
        }]
    );
}

#[test]
fn an_older_patch_holds_back_nothing_it_leads() {
    let published = versions(&["1.4.9", "1.5.0"]);
    let plan = plan_release(&tags_of(&default_policy(), "1.4.10"), &published);
    assert_eq!(moved(&plan), ["1.4"]);
    let held: Vec<&str> = plan.held_back.iter().map(|h| h.tag.as_str()).collect();
    assert_eq!(held, ["1", "latest"]);
}

#[test]
fn republishing_an_equal_version_moves_its_tags_again() {
    let published = versions(&["1.2.3+build.1"]);
    let plan = plan_release(&tags_of(&default_policy(), "1.2.3+build.2"), &published);
    assert_eq!(moved(&plan), ["1.2", "1", "latest"]);
}

#[test]
fn prereleases_never_move_floating_tags_even_when_latest_is_forced() {
    let policy = TagPolicy::parse(
        &[
            "type=semver,pattern={{version}}",
            "type=semver,pattern={{major}}",
        ],
        &["latest=true"],
    )
    .unwrap();
    let plan = plan_release(&tags_of(&policy, "3.0.0-rc.1"), &versions(&["2.0.0"]));
    assert!(plan.moves.is_empty());
    assert_eq!(
        plan.held_back,
        [HeldBack {
            tag: "latest".parse().unwrap(),
            reason: HoldReason::Prerelease,
        }]
    );
}

#[test]
fn deleting_the_highest_release_rolls_its_tags_back() {
    let remaining = versions(&["1.4.9", "1.3.0"]);
    let rollbacks = plan_deletion(&tags_of(&default_policy(), "2.0.0"), &remaining);
    let summary: Vec<(&str, RollbackTarget)> = rollbacks
        .iter()
        .map(|r| (r.tag.as_str(), r.to.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("2.0", RollbackTarget::NoneRemaining),
            ("2", RollbackTarget::NoneRemaining),
            ("latest", RollbackTarget::Version(v("1.4.9"))),
        ]
    );
}

#[test]
fn deleting_a_release_that_holds_nothing_changes_nothing() {
    let remaining = versions(&["1.4.9", "2.0.0", "1.5.0"]);
    let rollbacks = plan_deletion(&tags_of(&default_policy(), "1.4.8"), &remaining);
    assert!(rollbacks.is_empty(), "{rollbacks:?}");
    let prerelease = plan_deletion(&tags_of(&default_policy(), "3.0.0-rc.1"), &remaining);
    assert!(prerelease.is_empty(), "{prerelease:?}");
}

/// SplitMix64: small, deterministic, good enough to shuffle release histories.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn random_version(rng: &mut Rng) -> String {
    let mut text = format!("{}.{}.{}", rng.below(3), rng.below(3), rng.below(3));
    if rng.chance(25) {
        text.push_str(&format!("-rc.{}", rng.below(3)));
    }
    if rng.chance(10) {
        text.push_str(&format!("+build.{}", rng.below(2)));
    }
    text
}

/// What a floating tag should name: the highest stable version in scope, if any.
fn expected(scope: Scope, published: &[Version]) -> Option<&Version> {
    published
        .iter()
        .filter(|version| scope.contains(version))
        .max_by(|a, b| a.cmp_precedence(b))
}

/// After every step, each floating tag the registry holds names the highest stable
/// published version of its scope, and no tag exists for a scope with none.
fn check_invariant(step: &str, registry: &BTreeMap<String, Version>, published: &[Version]) {
    let mut scopes = vec![("latest".to_owned(), Scope::everything())];
    for major in 0..3 {
        scopes.push((major.to_string(), Scope::new(Some(major), None, None)));
        for minor in 0..3 {
            scopes.push((
                format!("{major}.{minor}"),
                Scope::new(Some(major), Some(minor), None),
            ));
        }
    }
    for (tag, scope) in scopes {
        let want = expected(scope, published);
        let have = registry.get(&tag);
        let agree = match (want, have) {
            (None, None) => true,
            (Some(want), Some(have)) => want.cmp_precedence(have) == Ordering::Equal,
            _ => false,
        };
        assert!(
            agree,
            "{step}: tag {tag} names {have:?}, expected {want:?}; published {published:?}"
        );
    }
}

#[test]
fn floating_tags_always_name_the_highest_stable_version_published_and_not_deleted() {
    let policy = default_policy();
    for seed in 0..300 {
        let mut rng = Rng(seed);
        let mut published: Vec<Version> = Vec::new();
        let mut registry: BTreeMap<String, Version> = BTreeMap::new();
        for step in 0..40 {
            let delete = !published.is_empty() && rng.chance(30);
            let description;
            if delete {
                let index = rng.below(published.len() as u64) as usize;
                let gone = published.remove(index);
                description = format!("seed {seed} step {step}: delete {gone}");
                let tags = tags_of(&policy, &gone.to_string());
                for rollback in plan_deletion(&tags, &published) {
                    match rollback.to {
                        RollbackTarget::Version(to) => {
                            registry.insert(rollback.tag.to_string(), to);
                        }
                        // Nothing left to point at: the tag no longer names a live release.
                        RollbackTarget::NoneRemaining => {
                            registry.remove(rollback.tag.as_str());
                        }
                    }
                }
            } else {
                let text = random_version(&mut rng);
                let version = v(&text);
                if published.contains(&version) {
                    continue;
                }
                description = format!("seed {seed} step {step}: release {text}");
                let plan = plan_release(&tags_of(&policy, &text), &published);
                for held in &plan.held_back {
                    if let HoldReason::NewerInScope { highest } = &held.reason {
                        assert_eq!(
                            highest.cmp_precedence(&version),
                            Ordering::Greater,
                            "{description}"
                        );
                    }
                }
                for FloatingMove { tag, to, .. } in plan.moves {
                    registry.insert(tag.to_string(), to);
                }
                published.push(version);
            }
            check_invariant(&description, &registry, &published);
        }
    }
}
