use std::time::Duration;

use super::*;

fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        url: format!("sqlite://{}/nested/dir/hoist.db", dir.display()),
        read_connections: 2,
        busy_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn opening_an_empty_database_creates_its_folder_and_applies_every_migration() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&options(dir.path())).await.unwrap();
    assert!(dir.path().join("nested/dir/hoist.db").exists());

    let applied = store.applied_migrations().await.unwrap();
    let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    assert_eq!(applied.iter().map(|m| m.version).collect::<Vec<_>>(), known);
    assert_eq!(applied[0].description, "initial");

    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.reader())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.writer())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.writer())
        .await
        .unwrap();
    assert_eq!(sync, 1, "synchronous=NORMAL");
    store.close().await;
}

#[tokio::test]
async fn reopening_a_database_that_holds_rows_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&options(dir.path())).await.unwrap();
    sqlx::query(
        "INSERT INTO builds (repository, commit_sha, platform, image, digest, reported_by)
         VALUES ('octo-org/app', ?1, 'linux/amd64', 'r/x@sha256:1', 'sha256:1', 'ci')",
    )
    .bind("a".repeat(40))
    .execute(store.writer())
    .await
    .unwrap();
    sqlx::query("INSERT INTO tag_events (image, tag, digest, kind) VALUES ('ghcr.io/o/a', '1.0.0', 'sha256:1', 'create')")
        .execute(store.writer())
        .await
        .unwrap();
    store.close().await;

    let store = Sqlite::open(&options(dir.path())).await.unwrap();
    let builds: i64 = sqlx::query_scalar("SELECT count(*) FROM builds")
        .fetch_one(store.reader())
        .await
        .unwrap();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM tag_events")
        .fetch_one(store.reader())
        .await
        .unwrap();
    assert_eq!((builds, events), (1, 1));
    assert_eq!(
        store.applied_migrations().await.unwrap().len(),
        MIGRATOR.iter().count()
    );
    store.close().await;
}

#[tokio::test]
async fn tables_are_strict_and_the_ledger_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&options(dir.path())).await.unwrap();
    let not_strict: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table'
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' AND strict = 0",
    )
    .fetch_all(store.reader())
    .await
    .unwrap();
    assert!(not_strict.is_empty(), "tables not STRICT: {not_strict:?}");

    let wrong_type = sqlx::query("INSERT INTO heartbeat (id, beat_at) VALUES ('one', 'x')")
        .execute(store.writer())
        .await;
    assert!(
        wrong_type.is_err(),
        "STRICT refuses text in an INTEGER column"
    );

    sqlx::query(
        "INSERT INTO tag_events (image, tag, digest, kind) VALUES ('i', 't', 'd', 'create')",
    )
    .execute(store.writer())
    .await
    .unwrap();
    let update = sqlx::query("UPDATE tag_events SET digest = 'other'")
        .execute(store.writer())
        .await;
    let delete = sqlx::query("DELETE FROM tag_events")
        .execute(store.writer())
        .await;
    for result in [update, delete] {
        let err = result.unwrap_err().to_string();
        assert!(err.contains("append-only"), "{err}");
    }
    store.close().await;
}

#[tokio::test]
async fn the_read_pool_refuses_writes_and_the_writer_proves_writability() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&options(dir.path())).await.unwrap();
    let at = store.check_writable().await.unwrap();
    assert!(at.ends_with('Z'), "{at}");
    let beat: i64 = sqlx::query_scalar("SELECT count(*) FROM heartbeat")
        .fetch_one(store.reader())
        .await
        .unwrap();
    assert_eq!(beat, 1);
    let write = sqlx::query("DELETE FROM heartbeat")
        .execute(store.reader())
        .await;
    assert!(write.unwrap_err().to_string().contains("readonly"));
    store.close().await;
}

#[tokio::test]
async fn a_bad_url_or_an_unwritable_folder_is_a_clear_error() {
    let err = Sqlite::open(&StoreOptions {
        url: "mysql://nope".into(),
        read_connections: 1,
        busy_timeout: Duration::from_secs(1),
    })
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Url(..)), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let err = Sqlite::open(&StoreOptions {
        url: format!("sqlite://{}/sub/hoist.db", blocker.display()),
        read_connections: 1,
        busy_timeout: Duration::from_secs(1),
    })
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::CreateDir(..)), "{err}");
    assert!(!err.is_retryable());
}

/// A database written by the first schema, with a row in every table that matters and work
/// queued in the old job shapes, upgrades in place: ids and rows kept, every foreign key
/// still pointing somewhere, the old jobs failed with a reason, and the release's
/// publication found again by a resync.
#[tokio::test]
async fn a_first_schema_database_with_rows_upgrades_and_loses_no_work() {
    let dir = tempfile::tempdir().unwrap();
    let first_only = dir.path().join("first");
    std::fs::create_dir(&first_only).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../migrations/0001_initial.sql"
        ),
        first_only.join("0001_initial.sql"),
    )
    .unwrap();
    let url = format!("sqlite://{}/hoist.db", dir.path().display());
    {
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        Migrator::new(first_only.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        for sql in [
            "INSERT INTO releases (id, repository, github_id, tag_name, target_commitish, prerelease, state, last_action, commit_sha, commit_source) VALUES (7, 'o/a', 70, 'v1.0.0', 'main', 0, 'published', 'published', ?1, 'push')",
            "INSERT INTO releases (id, repository, github_id, tag_name, target_commitish, prerelease, state, last_action, commit_sha, commit_source) VALUES (8, 'o/a', 80, 'v2.0.0', 'main', 0, 'published', 'published', ?2, 'push')",
            // Resolved by CI claims, never published: resolved again from what GitHub signed
            // (here the tag's push, at another commit), or left waiting for it.
            "INSERT INTO releases (id, repository, github_id, tag_name, target_commitish, prerelease, state, last_action, commit_sha, commit_source) VALUES (9, 'o/a', 90, 'v3.0.0', 'main', 0, 'published', 'published', ?2, 'build')",
            "INSERT INTO releases (id, repository, github_id, tag_name, target_commitish, prerelease, state, last_action, commit_sha, commit_source) VALUES (10, 'o/a', 100, 'v4.0.0', 'main', 0, 'published', 'published', ?2, 'build')",
            "INSERT INTO git_tags (repository, tag, commit_sha) VALUES ('o/a', 'v2.0.0', ?2)",
            "INSERT INTO git_tags (repository, tag, commit_sha) VALUES ('o/a', 'v3.0.0', ?1)",
            "INSERT INTO publications (id, image, repository, commit_sha, release_id, state, step, index_digest) VALUES (5, 'r/o/a', 'o/a', ?1, 7, 'succeeded', NULL, 'sha256:1111111111111111111111111111111111111111111111111111111111111111')",
            "INSERT INTO publication_steps (publication_id, step, finished_at) VALUES (5, 'tags', 'now')",
            "INSERT INTO tag_events (id, image, tag, digest, kind, publication_id, release_tag) VALUES (3, 'r/o/a', '1.0.0', 'sha256:1111111111111111111111111111111111111111111111111111111111111111', 'create', 5, 'v1.0.0')",
            "INSERT INTO tag_events (id, image, tag, digest, kind, publication_id, release_tag) VALUES (4, 'r/o/a', 'latest', 'sha256:1111111111111111111111111111111111111111111111111111111111111111', 'create', 5, 'v1.0.0')",
            "INSERT INTO tags (image, tag, digest, event_id, publication_id) VALUES ('r/o/a', '1.0.0', 'sha256:1111111111111111111111111111111111111111111111111111111111111111', 3, 5)",
            "INSERT INTO tags (image, tag, digest, event_id, publication_id) VALUES ('r/o/a', 'latest', 'sha256:1111111111111111111111111111111111111111111111111111111111111111', 4, 5)",
            "INSERT INTO jobs (kind, payload) VALUES ('release', '{\"kind\":\"release\",\"release_id\":8,\"action\":\"published\"}')",
        ] {
            sqlx::query(sql)
                .bind(&a)
                .bind(&b)
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    }

    let store = Sqlite::open(&StoreOptions {
        url,
        read_connections: 1,
        busy_timeout: Duration::from_secs(5),
    })
    .await
    .unwrap();
    let releases = store.list_releases("o/a", 0, 10).await.unwrap();
    let resolved: Vec<(i64, Option<&str>, Option<&str>)> = releases
        .iter()
        .map(|r| {
            (
                r.id,
                r.commit.as_ref().map(|c| c.as_str()),
                r.commit_source.as_deref(),
            )
        })
        .collect();
    let (a, b) = ("a".repeat(40), "b".repeat(40));
    assert_eq!(
        resolved,
        [
            (7, Some(a.as_str()), Some("push")),
            (8, Some(b.as_str()), Some("push")),
            (9, Some(a.as_str()), Some("push")),
            (10, None, None)
        ]
    );
    let tag: (String, String) =
        sqlx::query_as("SELECT commit_sha, source FROM git_tags WHERE tag = 'v2.0.0'")
            .fetch_one(store.reader())
            .await
            .unwrap();
    assert_eq!(tag, (b.clone(), "push".to_owned()));
    let publication = store.publication(5).await.unwrap().unwrap();
    assert_eq!(publication.state, hoist_domain::PublicationState::Succeeded);
    assert_eq!(publication.version_tag.as_deref(), Some("v1.0.0"));
    assert_eq!(store.publication_steps(5).await.unwrap().len(), 1);
    assert_eq!(
        store.tag_target("r/o/a", "1.0.0").await.unwrap(),
        Some((
            "sha256:1111111111111111111111111111111111111111111111111111111111111111".to_owned(),
            true
        )),
        "a release's own version tag is immutable"
    );
    assert_eq!(
        store.tag_target("r/o/a", "latest").await.unwrap(),
        Some((
            "sha256:1111111111111111111111111111111111111111111111111111111111111111".to_owned(),
            false
        ))
    );
    assert_eq!(
        store.unfinished_jobs().await.unwrap(),
        [(
            "release".to_owned(),
            "failed".to_owned(),
            Some("superseded by publication jobs (migration 0002)".to_owned())
        )]
    );
    // The release the old job was for gets its publication back at start, parked until a
    // build of its commit arrives (none has); so does the one resolved again by its push.
    let target = Target {
        image: "r/o/a".to_owned(),
        default_branch: "main".to_owned(),
    };
    store.resync_repository(&target, "o/a").await.unwrap();
    let revived = store
        .list_publications(
            None,
            Some(hoist_domain::PublicationState::Waiting),
            i64::MAX,
            10,
        )
        .await
        .unwrap();
    let revived: Vec<(Option<i64>, &str, Option<&str>)> = revived
        .iter()
        .map(|p| (p.release_id, p.commit.as_str(), p.error.as_deref()))
        .collect();
    let parked = Some(publications::NO_BUILDS_YET);
    assert_eq!(
        revived,
        [(Some(9), a.as_str(), parked), (Some(8), b.as_str(), parked)],
        "newest first"
    );
    assert_eq!(
        store.claim_job(Duration::from_secs(60)).await.unwrap(),
        None,
        "nothing for a worker to do yet, and the publication that succeeded is left alone"
    );
    store.close().await;
}

/// The conformance suite on SQLite: a fresh database file per test. SQLite runs one hoist
/// process per file, so a pair is that one process's store twice: its workers and
/// reconciler race through the single writer as two replicas race on PostgreSQL.
mod conformance_on_sqlite {
    use super::*;

    fn options(dir: &Path) -> StoreOptions {
        StoreOptions {
            url: format!("sqlite://{}/hoist.db", dir.display()),
            read_connections: 2,
            busy_timeout: Duration::from_secs(10),
        }
    }

    async fn open() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (Store::open(&options(dir.path())).await.unwrap(), dir)
    }

    async fn open_pair() -> (Store, Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(&options(dir.path())).await.unwrap();
        (a.clone(), a, dir)
    }

    crate::conformance_suite!(open, open_pair);
}
