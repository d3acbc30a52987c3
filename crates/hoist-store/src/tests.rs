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
    let store = Store::open(&options(dir.path())).await.unwrap();
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
    let store = Store::open(&options(dir.path())).await.unwrap();
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

    let store = Store::open(&options(dir.path())).await.unwrap();
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
    let store = Store::open(&options(dir.path())).await.unwrap();
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
    let store = Store::open(&options(dir.path())).await.unwrap();
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
    let err = Store::open(&StoreOptions {
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
    let err = Store::open(&StoreOptions {
        url: format!("sqlite://{}/sub/hoist.db", blocker.display()),
        read_connections: 1,
        busy_timeout: Duration::from_secs(1),
    })
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::CreateDir(..)), "{err}");
    assert!(!err.is_retryable());
}
