//! Ingest: webhook deliveries (releases and tag pushes) and CI build reports, what they
//! resolve and queue, retention of what they leave behind, and the same delivery or report
//! arriving at two replicas at once.

use std::collections::HashMap;
use std::time::Duration;

use hoist_domain::build::{self, BuildReport};
use hoist_domain::ci::{CiIdentity, Provenance};
use hoist_domain::config::{Config, ConfigFile};
use hoist_domain::github::{PushEvent, ReleaseEvent, WebhookEvent};
use hoist_domain::job::Job;
use serde_json::json;

use super::{count, execute, rows, text};
use crate::publications::NO_BUILDS_YET;
use crate::{
    BuildOutcome, Delivery, MoveIntent, MoveOutcome, Purged, Recorded, Store, TagMove, Target,
    WebhookEffect,
};

const COMMIT: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const OTHER: &str = "0000000000000000000000000000000000000abc";
const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const REPOSITORY: &str = "Codertocat/Hello-World";
const IMAGE: &str = "ghcr.io/codertocat/hello-world";

/// A time long past, as both databases write timestamps, and the same instant in unix
/// seconds (as GitHub's `pushed_at`).
const LONG_AGO: &str = "2000-01-01T00:00:00.000Z";
const LONG_AGO_UNIX: i64 = 946_684_800;

struct Fixture {
    store: Store,
    config: Config,
}

/// The fixture over the case's store (a cheap handle: the runner owns the database).
fn fixture(store: &Store) -> Fixture {
    let config = ConfigFile::parse(
        r#"
[[registry]]
host = "ghcr.io"
anonymous = true
[[repository]]
github = "Codertocat/Hello-World"
image = "ghcr.io/codertocat/hello-world"
platforms = ["linux/amd64", "linux/arm64"]
sources = ["ghcr.io/codertocat/ci"]
"#,
        "t",
    )
    .unwrap()
    .validate(&HashMap::new())
    .unwrap();
    Fixture {
        store: store.clone(),
        config,
    }
}

fn payload(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../tests/fixtures/github/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn release(action: &str, tag: &str, target: &str) -> ReleaseEvent {
    let mut body = payload("release.published");
    body["action"] = json!(action);
    body["release"]["tag_name"] = json!(tag);
    body["release"]["target_commitish"] = json!(target);
    body["release"]["draft"] = json!(action == "unpublished");
    match WebhookEvent::parse("release", body.to_string().as_bytes()).unwrap() {
        WebhookEvent::Release(event) => event,
        other => panic!("{other:?}"),
    }
}

fn tag_push(tag: &str, commit: Option<&str>) -> PushEvent {
    let mut body = payload("push.tag-created");
    body["ref"] = json!(format!("refs/tags/{tag}"));
    match commit {
        Some(c) => body["head_commit"]["id"] = json!(c),
        None => {
            body["head_commit"] = json!(null);
            body["deleted"] = json!(true);
        }
    }
    match WebhookEvent::parse("push", body.to_string().as_bytes()).unwrap() {
        WebhookEvent::Push(event) => event,
        other => panic!("{other:?}"),
    }
}

fn build_report(f: &Fixture, platform: &str, digest: &str, git_ref: Option<&str>) -> BuildReport {
    let mut body = json!({
        "repository": "codertocat/hello-world",
        "commit": COMMIT,
        "platform": platform,
        "image": format!("ghcr.io/codertocat/ci@{digest}"),
    });
    if let Some(r) = git_ref {
        body["ref"] = json!(r);
    }
    build::validate(&body, &f.config).unwrap()
}

/// A static CI token's report: its ref is a claim.
fn claimed() -> Provenance {
    Provenance::Claim {
        token: "ci".to_owned(),
    }
}

/// A report under a GitHub Actions OIDC token: GitHub signed its ref.
fn signed() -> Provenance {
    Provenance::Signed {
        identity: CiIdentity {
            run_id: "7".to_owned(),
            run_attempt: "1".to_owned(),
            workflow_ref: "Codertocat/Hello-World/.github/workflows/release.yml@refs/tags/v1"
                .to_owned(),
            job_workflow_ref: "Codertocat/Hello-World/.github/workflows/release.yml@refs/tags/v1"
                .to_owned(),
            actor: "octocat".to_owned(),
            event_name: "push".to_owned(),
            runner_environment: Some("github-hosted".to_owned()),
        },
    }
}

impl Fixture {
    fn repo(&self) -> &hoist_domain::RepoName {
        &self.config.repositories[0].github
    }

    fn target(&self) -> Target {
        Target {
            image: IMAGE.to_owned(),
            default_branch: "main".to_owned(),
        }
    }

    async fn publications(&self) -> Vec<(String, String)> {
        rows(
            &self.store,
            "SELECT commit_sha, state FROM publications ORDER BY id",
        )
        .await
        .into_iter()
        .map(|row| match &row[..] {
            [Some(commit), Some(state)] => (commit.clone(), state.clone()),
            other => panic!("a publication row {other:?}"),
        })
        .collect()
    }

    async fn deliver_release(&self, id: &str, event: &ReleaseEvent) -> Recorded {
        let delivery = Delivery {
            delivery_id: id,
            event: "release",
            action: Some(event.action.as_str()),
            repository: Some(REPOSITORY),
            body_sha256: id,
        };
        self.store
            .record_webhook(
                &delivery,
                WebhookEffect::Release {
                    resolve_via_api: false,
                    repository: self.repo(),
                    target: self.target(),
                    event,
                },
            )
            .await
            .unwrap()
    }

    async fn deliver_push(&self, id: &str, tag: &str, event: &PushEvent) -> Recorded {
        let delivery = Delivery {
            delivery_id: id,
            event: "push",
            action: None,
            repository: Some(REPOSITORY),
            body_sha256: id,
        };
        self.store
            .record_webhook(
                &delivery,
                WebhookEffect::TagPush {
                    repository: self.repo(),
                    target: self.target(),
                    tag,
                    event,
                },
            )
            .await
            .unwrap()
    }

    async fn jobs(&self) -> Vec<Job> {
        rows(&self.store, "SELECT payload FROM jobs ORDER BY id")
            .await
            .iter()
            .map(|row| Job::from_payload(row[0].as_deref().unwrap()).unwrap())
            .collect()
    }

    async fn count(&self, table: &str) -> i64 {
        count(&self.store, table).await
    }

    /// The id of the one publication of `commit`.
    async fn publication_of(&self, commit: &str) -> i64 {
        text(
            &self.store,
            &format!("SELECT CAST(id AS TEXT) FROM publications WHERE commit_sha = '{commit}'"),
        )
        .await
        .unwrap()
        .parse()
        .unwrap()
    }
}

pub async fn a_redelivery_gets_the_first_answer_and_stores_nothing_new(store: &Store) {
    let f = fixture(store);
    let event = release("published", "v1.0.0", COMMIT);
    let first = f.deliver_release("d-1", &event).await;
    assert!(!first.duplicate);
    assert_eq!(first.status, 202);
    let again = f.deliver_release("d-1", &event).await;
    assert!(again.duplicate);
    assert_eq!((again.status, &again.answer), (first.status, &first.answer));
    assert_eq!(f.count("deliveries").await, 1);
    assert_eq!(f.count("releases").await, 1);
    assert_eq!(f.count("publications").await, 1);
}

pub async fn a_release_whose_target_is_a_commit_resolves_at_once_and_waits_for_builds(
    store: &Store,
) {
    let f = fixture(store);
    let recorded = f
        .deliver_release("d-1", &release("published", "v1.0.0", COMMIT))
        .await;
    let summary = recorded.answer.release.unwrap();
    assert_eq!(summary.commit.as_deref(), Some(COMMIT));
    assert_eq!(summary.commit_source.as_deref(), Some("target_commitish"));
    assert_eq!(summary.state, "published");
    assert_eq!(
        f.publications().await,
        [(COMMIT.to_owned(), "waiting".to_owned())],
        "its publication is created with the release"
    );
    assert!(
        f.jobs().await.is_empty(),
        "no build yet: nothing for a worker to do"
    );
    let parked = f
        .store
        .list_publications(None, None, i64::MAX, 10)
        .await
        .unwrap();
    assert_eq!(
        (parked[0].step, parked[0].error.as_deref()),
        (Some(hoist_domain::Step::Wait), Some(NO_BUILDS_YET))
    );
    // The first build wakes it.
    let report = build_report(&f, "linux/amd64", DIGEST_A, None);
    f.store
        .record_build(&f.target(), &report, &claimed())
        .await
        .unwrap();
    let kinds: Vec<&str> = f.jobs().await.iter().map(Job::kind).collect();
    assert_eq!(kinds, ["publish"]);
}

pub async fn a_release_on_a_branch_waits_until_a_tag_push_names_its_commit(store: &Store) {
    let f = fixture(store);
    let recorded = f
        .deliver_release("d-1", &release("published", "v1.0.0", "main"))
        .await;
    assert_eq!(recorded.answer.release.as_ref().unwrap().commit, None);
    assert!(
        recorded
            .answer
            .reason
            .as_deref()
            .unwrap()
            .starts_with("commit of v1.0.0 not yet confirmed by GitHub")
    );
    assert!(f.jobs().await.is_empty());

    let pushed = f
        .deliver_push("d-2", "v1.0.0", &tag_push("v1.0.0", Some(COMMIT)))
        .await;
    assert_eq!(
        pushed.answer.reason.as_deref(),
        Some(format!("tag v1.0.0 is commit {COMMIT}").as_str())
    );
    let releases = f.store.list_releases(REPOSITORY, 0, 10).await.unwrap();
    assert_eq!(
        releases[0].commit.as_ref().map(|c| c.as_str()),
        Some(COMMIT)
    );
    assert_eq!(releases[0].commit_source.as_deref(), Some("push"));
    assert_eq!(
        f.publications().await,
        [(COMMIT.to_owned(), "waiting".to_owned())]
    );
}

pub async fn a_claimed_build_for_the_tag_decides_nothing_and_a_contradiction_shows(store: &Store) {
    let f = fixture(store);
    f.deliver_push("d-0", "v2.0.0", &tag_push("v2.0.0", Some(OTHER)))
        .await;
    let report = build_report(&f, "linux/amd64", DIGEST_A, Some("refs/tags/v2.0.0"));
    f.store
        .record_build(&f.target(), &report, &claimed())
        .await
        .unwrap();
    let recorded = f
        .deliver_release("d-1", &release("published", "v2.0.0", "main"))
        .await;
    let summary = recorded.answer.release.unwrap();
    assert_eq!(
        (summary.commit.as_deref(), summary.commit_source.as_deref()),
        (Some(OTHER), Some("push")),
        "the signed push decides, not the claim"
    );
    let releases = f
        .store
        .list_releases(f.repo().as_str(), 0, 10)
        .await
        .unwrap();
    assert_eq!(
        releases[0].claim_conflict.as_deref(),
        Some(format!(
            "CI claimed refs/tags/v2.0.0 is {COMMIT} (by ci), but GitHub says {OTHER} (push): those builds are not used"
        ).as_str())
    );
    assert_eq!(f.store.claim_conflicts().await.unwrap(), 1);
    assert_eq!(
        f.publications().await,
        [(OTHER.to_owned(), "waiting".to_owned())],
        "the publication is of the signed commit, whose builds it waits for"
    );
}

/// The second half of the case above, which needs a database of its own.
pub async fn a_claim_arriving_after_the_release_resolved_is_a_conflict_too(store: &Store) {
    let f = fixture(store);
    let report = build_report(&f, "linux/amd64", DIGEST_A, Some("refs/tags/v2.0.0"));
    f.deliver_release("d-1", &release("published", "v2.0.0", OTHER))
        .await;
    f.store
        .record_build(&f.target(), &report, &claimed())
        .await
        .unwrap();
    let releases = f
        .store
        .list_releases(f.repo().as_str(), 0, 10)
        .await
        .unwrap();
    assert!(
        releases[0]
            .claim_conflict
            .as_deref()
            .is_some_and(|c| c.contains("(target_commitish)")),
        "{releases:?}"
    );
}

pub async fn a_build_arriving_after_the_release_resolves_it(store: &Store) {
    let f = fixture(store);
    f.deliver_release("d-1", &release("published", "v3.0.0", "main"))
        .await;
    let report = build_report(&f, "linux/arm64", DIGEST_A, Some("refs/tags/v3.0.0"));
    f.store
        .record_build(&f.target(), &report, &claimed())
        .await
        .unwrap();
    let releases = f.store.list_releases(REPOSITORY, 0, 10).await.unwrap();
    assert_eq!(releases[0].commit, None, "a claim resolves nothing");
    assert_eq!(
        releases[0].detail.as_deref(),
        Some("commit of v3.0.0 not yet confirmed by GitHub")
    );
    assert!(f.jobs().await.is_empty());
    let report = build_report(&f, "linux/amd64", DIGEST_A, Some("refs/tags/v3.0.0"));
    assert!(matches!(
        f.store
            .record_build(&f.target(), &report, &signed())
            .await
            .unwrap(),
        BuildOutcome::Recorded(_)
    ));
    let releases = f.store.list_releases(REPOSITORY, 0, 10).await.unwrap();
    assert_eq!(releases[0].commit_source.as_deref(), Some("oidc"));
    assert_eq!(releases[0].detail, None);
    assert_eq!(
        releases[0].claim_conflict, None,
        "the claim was on the same commit"
    );
    let kinds: Vec<&str> = f.jobs().await.iter().map(Job::kind).collect();
    assert_eq!(
        kinds,
        ["publish"],
        "one job for the publication, however many facts"
    );
}

pub async fn drafts_are_stored_but_not_acted_on_and_deletion_is_final(store: &Store) {
    let f = fixture(store);
    let mut draft = release("created", "v4.0.0", COMMIT);
    draft.draft = true;
    let recorded = f.deliver_release("d-1", &draft).await;
    assert_eq!(
        recorded.answer.reason.as_deref(),
        Some("draft releases are not published")
    );
    assert_eq!(recorded.answer.release.unwrap().state, "draft");
    assert!(f.jobs().await.is_empty());

    f.deliver_release("d-2", &release("published", "v4.0.0", COMMIT))
        .await;
    f.deliver_release("d-3", &release("deleted", "v4.0.0", COMMIT))
        .await;
    // A late redelivered "published" does not bring it back.
    let late = f
        .deliver_release("d-4", &release("published", "v4.0.0", COMMIT))
        .await;
    assert_eq!(late.answer.release.unwrap().state, "deleted");
    assert_eq!(
        f.publications().await,
        [(COMMIT.to_owned(), "withdrawn".to_owned())]
    );
    assert!(
        f.jobs().await.is_empty(),
        "it never ran nor wrote a tag: nothing to do, nothing to roll back"
    );
}

pub async fn a_deleted_tag_names_no_commit_until_it_is_pushed_again(store: &Store) {
    let f = fixture(store);
    f.deliver_push("d-1", "v5", &tag_push("v5", Some(COMMIT)))
        .await;
    let tagged = || text(store, "SELECT commit_sha FROM git_tags WHERE tag = 'v5'");
    assert_eq!(tagged().await.as_deref(), Some(COMMIT));
    let deleted = f.deliver_push("d-2", "v5", &tag_push("v5", None)).await;
    assert_eq!(deleted.answer.reason.as_deref(), Some("tag v5 deleted"));
    assert_eq!(tagged().await, None, "remembered as deleted");
    // A signed report of the old tag's run does not bring the commit back.
    let report = build_report(&f, "linux/amd64", DIGEST_A, Some("refs/tags/v5"));
    f.store
        .record_build(&f.target(), &report, &signed())
        .await
        .unwrap();
    assert_eq!(tagged().await, None);
    f.deliver_push("d-3", "v5", &tag_push("v5", Some(OTHER)))
        .await;
    assert_eq!(tagged().await.as_deref(), Some(OTHER));
}

pub async fn builds_are_idempotent_replaceable_until_published_then_refused(store: &Store) {
    let f = fixture(store);
    let a = build_report(&f, "linux/amd64", DIGEST_A, None);
    assert!(matches!(
        f.store
            .record_build(&f.target(), &a, &claimed())
            .await
            .unwrap(),
        BuildOutcome::Recorded(_)
    ));
    assert!(matches!(
        f.store
            .record_build(&f.target(), &a, &claimed())
            .await
            .unwrap(),
        BuildOutcome::Unchanged(_)
    ));
    assert!(
        f.jobs().await.is_empty(),
        "a build no release or branch names queues nothing"
    );

    let b = build_report(&f, "linux/amd64", DIGEST_B, None);
    match f
        .store
        .record_build(&f.target(), &b, &claimed())
        .await
        .unwrap()
    {
        BuildOutcome::Replaced {
            build,
            previous_digest,
        } => {
            assert_eq!(previous_digest, DIGEST_A);
            assert_eq!(build.digest.as_str(), DIGEST_B);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.count("builds").await, 1);

    f.store
        .mark_published(REPOSITORY, IMAGE, COMMIT)
        .await
        .unwrap();
    match f
        .store
        .record_build(&f.target(), &a, &claimed())
        .await
        .unwrap()
    {
        BuildOutcome::AlreadyPublished { existing } => {
            assert_eq!(existing.digest.as_str(), DIGEST_B)
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        f.store
            .record_build(&f.target(), &b, &claimed())
            .await
            .unwrap(),
        BuildOutcome::Unchanged(_)
    ));
    let builds = f
        .store
        .list_builds(REPOSITORY, Some(COMMIT), 0, 10)
        .await
        .unwrap();
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0].digest.as_str(), DIGEST_B);
}

pub async fn an_index_build_and_per_platform_builds_are_distinct(store: &Store) {
    let f = fixture(store);
    let mut body = json!({"repository": "Codertocat/Hello-World", "commit": COMMIT, "image": format!("ghcr.io/codertocat/ci@{DIGEST_A}")});
    let index = build::validate(&body, &f.config).unwrap();
    f.store
        .record_build(&f.target(), &index, &claimed())
        .await
        .unwrap();
    f.store
        .record_build(&f.target(), &index, &claimed())
        .await
        .unwrap();
    body["platform"] = json!("linux/amd64");
    f.store
        .record_build(
            &f.target(),
            &build::validate(&body, &f.config).unwrap(),
            &claimed(),
        )
        .await
        .unwrap();
    let builds = f.store.list_builds(REPOSITORY, None, 0, 10).await.unwrap();
    let platforms: Vec<Option<&str>> = builds.iter().map(|b| b.platform.as_deref()).collect();
    assert_eq!(platforms, [None, Some("linux/amd64")]);
    let page = f
        .store
        .list_builds(REPOSITORY, None, builds[0].id, 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
}

pub async fn the_same_images_reported_for_a_second_tag_resolve_that_release_too(store: &Store) {
    let f = fixture(store);
    for platform in ["linux/amd64", "linux/arm64"] {
        let first = build_report(&f, platform, DIGEST_A, Some("refs/tags/v1.0.0"));
        f.store
            .record_build(&f.target(), &first, &signed())
            .await
            .unwrap();
    }
    f.deliver_release("d-1", &release("published", "v1.1.0", "main"))
        .await;
    let again = build_report(&f, "linux/amd64", DIGEST_A, Some("refs/tags/v1.1.0"));
    assert!(matches!(
        f.store
            .record_build(&f.target(), &again, &signed())
            .await
            .unwrap(),
        BuildOutcome::Unchanged(_)
    ));
    let releases = f.store.list_releases(REPOSITORY, 0, 10).await.unwrap();
    assert_eq!(
        (
            releases[0].commit.as_ref().map(|c| c.as_str()),
            releases[0].commit_source.as_deref()
        ),
        (Some(COMMIT), Some("oidc"))
    );
    assert_eq!(
        f.publications().await,
        [(COMMIT.to_owned(), "waiting".to_owned())]
    );
}

/// Whether `notified` has fired, without waiting.
async fn fired(notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>) -> bool {
    tokio::select! {
        biased;
        () = notified => true,
        () = std::future::ready(()) => false,
    }
}

pub async fn the_workers_are_woken_only_when_a_delivery_or_a_build_queued_a_job(store: &Store) {
    let f = fixture(store);
    let woken = f.store.jobs_changed();
    tokio::pin!(woken);
    woken.as_mut().enable();
    // A release with no build yet: its publication is parked, nothing is queued.
    f.deliver_release("d-1", &release("published", "v1.0.0", COMMIT))
        .await;
    f.deliver_push("d-2", "v9", &tag_push("v9", Some(OTHER)))
        .await;
    assert!(f.jobs().await.is_empty());
    assert!(!fired(woken.as_mut()).await, "nothing to do, nobody woken");
    // The first build queues the publication's job and wakes them.
    let report = build_report(&f, "linux/amd64", DIGEST_A, None);
    f.store
        .record_build(&f.target(), &report, &claimed())
        .await
        .unwrap();
    assert_eq!(f.jobs().await.len(), 1);
    assert!(fired(woken.as_mut()).await);
    // The same report again queues nothing (the job stands) but makes it due: woken.
    let again = f.store.jobs_changed();
    tokio::pin!(again);
    again.as_mut().enable();
    let other = build_report(&f, "linux/arm64", DIGEST_A, None);
    f.store
        .record_build(&f.target(), &other, &claimed())
        .await
        .unwrap();
    assert_eq!(f.jobs().await.len(), 1, "one queued job per publication");
    assert!(fired(again.as_mut()).await);
}

pub async fn retention_purges_old_records_keeps_the_ledger_and_ignores_pushes_it_cannot_place(
    store: &Store,
) {
    let f = fixture(store);
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let day = 86_400;
    let pushed = |tag: &str, commit: Option<&str>, at: i64| PushEvent {
        pushed_at: Some(at),
        ..tag_push(tag, commit)
    };
    // v6 went to OTHER, then to COMMIT; v7 was deleted. All long ago: GitHub took the pushes
    // a day before and at LONG_AGO, and hoist received them then (set below).
    let first = pushed("v6", Some(OTHER), LONG_AGO_UNIX - day);
    f.deliver_push("d-1", "v6", &first).await;
    f.deliver_push("d-2", "v6", &pushed("v6", Some(COMMIT), LONG_AGO_UNIX))
        .await;
    f.deliver_push("d-3", "v7", &pushed("v7", None, LONG_AGO_UNIX))
        .await;
    // A finished publication with its steps and a ledger event, and a waiting one.
    f.store
        .mark_published(REPOSITORY, IMAGE, COMMIT)
        .await
        .unwrap();
    execute(
        store,
        &format!(
            "INSERT INTO publications (image, repository, commit_sha, state)
             VALUES ('{IMAGE}', '{REPOSITORY}', '{OTHER}', 'waiting')"
        ),
    )
    .await;
    let (finished, waiting) = (
        f.publication_of(COMMIT).await,
        f.publication_of(OTHER).await,
    );
    for id in [finished, waiting] {
        for step in [hoist_domain::Step::Wait, hoist_domain::Step::Copy] {
            f.store.step_started(id, step).await.unwrap();
        }
    }
    let event = TagMove {
        image: IMAGE,
        tag: "6.0.0",
        digest: DIGEST_A,
        immutable: false,
        intent: MoveIntent::Publish,
        reason: "",
        publication_id: Some(finished),
        release_tag: None,
    };
    assert!(matches!(
        f.store.move_tag(&event).await.unwrap(),
        MoveOutcome::Moved(_)
    ));
    for statement in [
        format!("UPDATE deliveries SET received_at = '{LONG_AGO}'"),
        format!("UPDATE git_tags SET updated_at = '{LONG_AGO}'"),
        format!("UPDATE publications SET updated_at = '{LONG_AGO}'"),
    ] {
        execute(store, &statement).await;
    }
    // Yesterday's push stays.
    f.deliver_push("d-4", "v8", &pushed("v8", Some(COMMIT), now - day))
        .await;

    let ninety_days = Duration::from_secs(90 * 86_400);
    let purged = f.store.purge_expired(ninety_days).await.unwrap();
    assert_eq!(
        purged,
        Purged {
            deliveries: 3,
            steps: 2,
            deleted_tags: 1
        }
    );
    assert_eq!(f.count("deliveries").await, 1);
    assert_eq!(f.count("publication_steps").await, 2, "the waiting one's");
    assert_eq!(f.count("publications").await, 2);
    assert_eq!(f.count("tag_events").await, 1, "the ledger is kept");
    assert_eq!(f.count("git_tags").await, 2, "v6 and v8");
    assert_eq!(
        f.store.purge_expired(ninety_days).await.unwrap(),
        Purged::default()
    );

    // The first push replayed, under its old or a new id: its delivery is gone, so it
    // cannot be recognized, and as older than what hoist remembers it changes nothing.
    for id in ["d-1", "d-5"] {
        let replay = f.deliver_push(id, "v6", &first).await;
        assert_eq!(replay.answer.outcome, "ignored", "{id}");
        assert!(
            replay
                .answer
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("older than the deliveries hoist still remembers")),
            "{:?}",
            replay.answer
        );
    }
    let v6 = text(store, "SELECT commit_sha FROM git_tags WHERE tag = 'v6'").await;
    assert_eq!(v6.as_deref(), Some(COMMIT));
    // A push GitHub took now still applies.
    let moved = f
        .deliver_push("d-6", "v6", &pushed("v6", Some(OTHER), now))
        .await;
    assert_eq!(moved.answer.outcome, "accepted", "{:?}", moved.answer);
}

/// Two replicas receive the same delivery (one X-GitHub-Delivery id) at once, as when
/// GitHub's retry lands on the other one while the first is still answering: one of them
/// records it, the other gets its answer back as a duplicate.
pub async fn a_delivery_received_by_two_replicas_at_once_is_stored_once(a: &Store, b: &Store) {
    let (fa, fb) = (fixture(a), fixture(b));
    // A build of the commit first, so the release's publication has something to do and one
    // delivery queues exactly one job.
    let report = build_report(&fa, "linux/amd64", DIGEST_A, None);
    fa.store
        .record_build(&fa.target(), &report, &claimed())
        .await
        .unwrap();
    assert!(fa.jobs().await.is_empty(), "a build alone queues nothing");
    let event = release("published", "v1.0.0", COMMIT);
    let deliver =
        |f: Fixture, event: ReleaseEvent| async move { f.deliver_release("d-1", &event).await };
    let (x, y) = tokio::join!(
        tokio::spawn(deliver(fa, event.clone())),
        tokio::spawn(deliver(fb, event))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(count(a, "deliveries").await, 1, "stored once");
    assert_eq!((x.status, &x.answer), (y.status, &y.answer), "one answer");
    assert_eq!(x.status, 202);
    assert_eq!(
        [x.duplicate, y.duplicate].iter().filter(|d| **d).count(),
        1,
        "exactly one replica saw it first: {x:?} {y:?}"
    );
    assert_eq!(count(a, "releases").await, 1);
    assert_eq!(count(a, "publications").await, 1);
    let id = fixture(a).publication_of(COMMIT).await;
    assert_eq!(
        fixture(b).jobs().await,
        [Job::Publish { publication_id: id }],
        "the jobs of one delivery, no more"
    );
}

/// CI reports the same build to two replicas at once (a retried request): one builds row,
/// recorded by one of them; the other finds it there, as a repeated report does.
pub async fn a_build_reported_to_two_replicas_at_once_is_stored_once(a: &Store, b: &Store) {
    let (fa, fb) = (fixture(a), fixture(b));
    let report = build_report(&fa, "linux/amd64", DIGEST_A, Some("refs/tags/v1.0.0"));
    let record = |f: Fixture, report: BuildReport| async move {
        f.store
            .record_build(&f.target(), &report, &claimed())
            .await
            .unwrap()
    };
    let (x, y) = tokio::join!(
        tokio::spawn(record(fa, report.clone())),
        tokio::spawn(record(fb, report))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(count(a, "builds").await, 1, "stored once");
    // As on one store, where the same report again is Unchanged: one Recorded, one
    // Unchanged, both of the same row.
    let (recorded, unchanged) = match (x, y) {
        (BuildOutcome::Recorded(r), BuildOutcome::Unchanged(u))
        | (BuildOutcome::Unchanged(u), BuildOutcome::Recorded(r)) => (r, u),
        other => panic!("expected one Recorded and one Unchanged: {other:?}"),
    };
    assert_eq!(recorded.id, unchanged.id);
    assert_eq!(recorded.digest.as_str(), DIGEST_A);
    assert_eq!(unchanged.digest.as_str(), DIGEST_A);
    let builds = b
        .list_builds(REPOSITORY, Some(COMMIT), 0, 10)
        .await
        .unwrap();
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0].id, recorded.id);
}
