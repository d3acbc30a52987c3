use std::time::Duration;

use crate::{BackupError, Sqlite, StoreOptions, backup};

fn options(db: &std::path::Path) -> StoreOptions {
    StoreOptions {
        url: format!("sqlite://{}", db.display()),
        read_connections: 2,
        busy_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn a_backup_of_an_open_store_holds_its_committed_rows_and_opens_as_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&options(&dir.path().join("hoist.db")))
        .await
        .unwrap();
    let beat = store.check_writable().await.unwrap();

    let copy = dir.path().join("copy.db");
    let report = backup(&options(&dir.path().join("hoist.db")), &copy)
        .await
        .unwrap();
    assert_eq!(report.destination, copy);
    assert!(report.bytes > 0 && copy.is_file());
    // The daemon keeps writing after the backup.
    store.check_writable().await.unwrap();
    store.close().await;

    let restored = Sqlite::open(&options(&copy)).await.unwrap();
    let copied: String = sqlx::query_scalar("SELECT beat_at FROM heartbeat")
        .fetch_one(restored.reader())
        .await
        .unwrap();
    assert_eq!(copied, beat);
    restored.close().await;
}

#[tokio::test]
async fn a_backup_never_overwrites_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hoist.db");
    Sqlite::open(&options(&db)).await.unwrap().close().await;
    let taken = dir.path().join("taken.db");
    std::fs::write(&taken, "keep me").unwrap();

    let err = backup(&options(&db), &taken).await.unwrap_err();
    assert!(matches!(err, BackupError::DestinationExists(_)), "{err}");
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "keep me");
}

#[tokio::test]
async fn a_backup_of_a_missing_database_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let err = backup(&options(&dir.path().join("absent.db")), &copy)
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::NoDatabase(_)), "{err}");
    assert!(!copy.exists());
    assert!(!dir.path().join("absent.db").exists());
}
