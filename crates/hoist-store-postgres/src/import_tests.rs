//! `import_sqlite`: a SQLite ledger copied into PostgreSQL reads the same through every
//! operation, its ids go on from where they were, and a database that holds data is never
//! imported into.

use std::time::Duration;

use hoist_domain::job::Job;
use hoist_store::{MoveIntent, MoveOutcome, Sqlite, Store, StoreOptions, TagMove};

use crate::cluster::Cluster;
use crate::{PgOptions, Postgres};

const REPO: &str = "octo-org/app";
const IMAGE: &str = "ghcr.io/octo-org/app";

fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

async fn sqlite_with_history(dir: &std::path::Path) -> String {
    let url = format!("sqlite://{}/hoist.db", dir.display());
    let sqlite = Store::open(&StoreOptions {
        url: url.clone(),
        read_connections: 1,
        busy_timeout: Duration::from_secs(5),
    })
    .await
    .expect("open sqlite");
    for (n, tag) in ["v1.0.0", "v1.1.0"].into_iter().enumerate() {
        let commit = format!("{:040x}", n + 1);
        sqlite
            .seed_published_release(
                REPO,
                IMAGE,
                tag,
                &commit,
                &digest(n as u32),
                &["latest", "1"],
            )
            .await
            .expect("seed");
    }
    let rollback = TagMove {
        image: IMAGE,
        tag: "latest",
        digest: &digest(0),
        immutable: false,
        intent: MoveIntent::Rollback,
        reason: "release v1.1.0 deleted",
        publication_id: None,
        release_tag: None,
    };
    assert!(matches!(
        sqlite.move_tag(&rollback).await.expect("rollback"),
        MoveOutcome::Moved(_)
    ));
    sqlite
        .enqueue_job(&Job::ResolveRelease { release_id: 1 })
        .await
        .expect("a job");
    sqlite
        .fixture_execute(
            "INSERT INTO deliveries (source, delivery_id, event, outcome, status, response, received_at)
             VALUES ('github', 'd-1', 'ping', 'pong', 200, '{\"zen\":\"x\"}', '2026-01-01T00:00:00.000Z')",
        )
        .await
        .expect("a delivery");
    sqlite.close().await;
    url
}

async fn postgres() -> (Postgres, PgOptions) {
    let options = PgOptions {
        url: Cluster::shared()
            .create_database()
            .expect("a test database"),
        password: None,
        max_connections: 4,
        acquire_timeout: Duration::from_secs(30),
    };
    (Postgres::open(&options).await.expect("open"), options)
}

/// What the API shows of a store.
async fn snapshot(store: &Store) -> Vec<String> {
    let tags = store.list_tags_json(IMAGE, "", 1000).await.expect("tags");
    let events = store
        .list_tag_events_json(IMAGE, None, 0, 1000)
        .await
        .expect("events");
    let publications = store
        .list_publications(None, None, i64::MAX, 1000)
        .await
        .expect("publications");
    let releases = store.list_releases(REPO, 0, 1000).await.expect("releases");
    let jobs = store.unfinished_jobs().await.expect("jobs");
    let deliveries = store
        .fixture_query(
            "SELECT delivery_id, event, outcome, CAST(status AS TEXT), response, received_at
             FROM deliveries",
        )
        .await
        .expect("deliveries");
    vec![
        tags.items,
        events.items,
        format!("{publications:?}"),
        format!("{releases:?}"),
        format!("{jobs:?}"),
        format!("{deliveries:?}"),
    ]
}

#[tokio::test]
async fn an_imported_ledger_reads_the_same_and_its_ids_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_with_history(dir.path()).await;
    let (_, options) = postgres().await;

    let imported = crate::import_sqlite(&options, &url).await.expect("import");
    let count = |table: &str| {
        imported
            .tables
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, n)| *n)
    };
    assert_eq!(
        count("tag_events"),
        Some(5),
        "four publishes and a rollback"
    );
    assert_eq!(count("releases"), Some(2));
    assert_eq!(count("deliveries"), Some(1));

    let sqlite = Store::from_backend(Sqlite::open_read_only(&url).await.expect("reopen"));
    let pg = crate::open(&options).await.expect("open");
    assert_eq!(snapshot(&pg).await, snapshot(&sqlite).await);

    // New rows continue the ids: the next ledger event is the sixth.
    let next = TagMove {
        image: IMAGE,
        tag: "edge",
        digest: &digest(9),
        immutable: false,
        intent: MoveIntent::Publish,
        reason: "push to main",
        publication_id: None,
        release_tag: None,
    };
    let MoveOutcome::Moved(event) = pg.move_tag(&next).await.expect("move") else {
        panic!("edge is new");
    };
    assert_eq!(event.id, 6);
    let job = pg
        .enqueue_job(&Job::ResolveRelease { release_id: 2 })
        .await
        .expect("enqueue")
        .expect("a new job");
    assert_eq!(job, 2);

    // A second import finds data and changes nothing.
    let before = snapshot(&pg).await;
    let err = crate::import_sqlite(&options, &url)
        .await
        .expect_err("the database holds data");
    assert!(
        err.to_string()
            .contains("already holds hoist's data; import only into a new, empty database"),
        "{err}"
    );
    assert_eq!(snapshot(&pg).await, before);
    pg.close().await;
    sqlite.close().await;
}

#[tokio::test]
async fn a_missing_or_older_sqlite_database_is_refused_before_anything_is_copied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pg, options) = postgres().await;
    let missing = format!("sqlite://{}/none.db", dir.path().display());
    let err = crate::import_sqlite(&options, &missing)
        .await
        .expect_err("no such file");
    assert!(err.to_string().contains("does not exist"), "{err}");

    // A database another version of hoist wrote: its recorded migrations differ.
    let old = sqlite_with_history(dir.path()).await;
    let store = Store::open(&StoreOptions {
        url: old.clone(),
        read_connections: 1,
        busy_timeout: Duration::from_secs(5),
    })
    .await
    .expect("open");
    store
        .fixture_execute("DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)")
        .await
        .expect("forget a migration");
    store.close().await;
    let err = crate::import_sqlite(&options, &old)
        .await
        .expect_err("an older schema");
    assert!(
        err.to_string().contains("schema is not this version's"),
        "{err}"
    );
    let rows = pg
        .fixture_query("SELECT CAST(count(*) AS TEXT) FROM tag_events")
        .await
        .expect("count");
    assert_eq!(rows, [[Some("0".to_owned())]]);
    pg.close().await;
}

#[tokio::test]
async fn a_queue_sqlite_allows_but_postgresql_refuses_is_collapsed_on_import() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_with_history(dir.path()).await;
    let sqlite = Store::open(&StoreOptions {
        url: url.clone(),
        read_connections: 1,
        busy_timeout: Duration::from_secs(5),
    })
    .await
    .expect("open");
    // A publication's job fails in a way that may pass while a second one is queued for
    // it: SQLite keeps both queued.
    let publish = Job::Publish { publication_id: 1 };
    sqlite.enqueue_job(&publish).await.expect("enqueue");
    let lease = Duration::from_secs(60);
    let mut first = sqlite
        .claim_job(lease)
        .await
        .expect("claim")
        .expect("a job");
    while first.kind != "publish" {
        sqlite.finish_job(&first).await.expect("finish");
        first = sqlite
            .claim_job(lease)
            .await
            .expect("claim")
            .expect("a job");
    }
    sqlite.enqueue_job(&publish).await.expect("enqueue");
    sqlite
        .retry_job(&first, Duration::ZERO, "registry answered 503")
        .await
        .expect("retry");
    let queued = sqlite
        .fixture_query(
            "SELECT CAST(count(*) AS TEXT) FROM jobs WHERE state = 'queued' AND publication_id = 1",
        )
        .await
        .expect("count");
    assert_eq!(queued, [[Some("2".to_owned())]]);
    sqlite.close().await;

    let (pg, options) = postgres().await;
    crate::import_sqlite(&options, &url).await.expect("import");
    let jobs = pg
        .fixture_query(
            "SELECT CAST(id AS TEXT) AS id, state FROM jobs WHERE publication_id = 1 ORDER BY id",
        )
        .await
        .expect("jobs");
    let states: Vec<&str> = jobs.iter().filter_map(|j| j[1].as_deref()).collect();
    assert_eq!(states, ["queued", "done"], "{jobs:?}");
    let claimed = pg.claim_job(lease).await.expect("claim");
    assert!(claimed.is_some(), "the queued one runs");
    pg.close().await;
}
