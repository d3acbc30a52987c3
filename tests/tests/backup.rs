//! `hoist backup` taken while webhooks keep arriving, and the restore docs/deploy.md
//! describes: stop hoist, put the copy in place of the database, start hoist.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hoist_tests::{
    Hoist, HoistRun, deliver_webhook, fixture, free_port, http, require_tool, wait_until,
};

const WEBHOOK_SECRET: &str = "webhook-secret-for-backups-61af";

fn config(listen: &str) -> String {
    format!(
        "[server]\nlisten = \"{listen}\"\nshutdown_timeout = \"3s\"\n\n\
         [github]\nwebhook_secret_env = \"HOIST_WEBHOOK_SECRET\"\n"
    )
}

fn sqlite3(db: &std::path::Path, sql: &str) -> String {
    let out = Command::new(require_tool("sqlite3", "sqlite3"))
        .arg(db)
        .arg(sql)
        .output()
        .expect("run sqlite3");
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Sends signed pings with fresh delivery ids until `stop`, recording each delivery id
/// once hoist has answered 200 for it (its row is committed by then).
fn webhook_load(url: String, stop: Arc<AtomicBool>, acknowledged: Arc<Mutex<Vec<String>>>) {
    let client = http();
    let body = fixture("ping");
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 0..20_000 {
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return;
        }
        let delivery = format!("load-{n}");
        let response = deliver_webhook(&client, &url, WEBHOOK_SECRET, "ping", &delivery, &body)
            .expect("deliver a ping");
        assert_eq!(response.status().as_u16(), 200, "delivery {delivery}");
        acknowledged
            .lock()
            .expect("the list of acknowledged deliveries")
            .push(delivery);
    }
}

#[test]
fn a_backup_under_webhook_load_restores_every_row_committed_before_it() {
    let listen = format!("127.0.0.1:{}", free_port());
    let env = [("HOIST_WEBHOOK_SECRET", WEBHOOK_SECRET)];
    let hoist = Hoist::start(Some(&config(&listen)), &env, &listen);

    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let load = {
        let (url, stop, acknowledged) = (
            hoist.url("/webhooks/github"),
            stop.clone(),
            acknowledged.clone(),
        );
        thread::spawn(move || webhook_load(url, stop, acknowledged))
    };
    wait_until("100 webhooks recorded", Duration::from_secs(30), || {
        acknowledged.lock().unwrap().len() >= 100
    });

    // Everything acknowledged so far was committed before the backup began.
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let backup = hoist.dir().join("backup.db");
    let out = HoistRun::new(
        hoist.dir(),
        &["--config", "hoist.toml", "backup", "backup.db"],
    )
    .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One delivery may be in flight as the backup ends; the one after it began later.
    let during = acknowledged.lock().unwrap().len();
    wait_until(
        "the load going on after the backup",
        Duration::from_secs(10),
        || acknowledged.lock().unwrap().len() >= during + 2,
    );
    stop.store(true, Ordering::Relaxed);
    load.join().expect("the load thread");
    let total = acknowledged.lock().unwrap().len();

    assert_eq!(sqlite3(&backup, "PRAGMA integrity_check").trim(), "ok");
    let copied = sqlite3(&backup, "SELECT delivery_id FROM deliveries");
    let copied: std::collections::HashSet<&str> = copied.lines().collect();
    let missing: Vec<&String> = before
        .iter()
        .filter(|d| !copied.contains(d.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "committed before the backup but not in it: {missing:?}"
    );
    assert!(
        copied.len() < total,
        "the backup is a snapshot, not the final state"
    );

    // Restore: stop hoist, replace the database (its WAL and shared-memory files belong
    // to the old one), start hoist again.
    let dir = hoist.into_dir();
    let db = dir.path().join("data/hoist.db");
    for stale in ["data/hoist.db-wal", "data/hoist.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(stale));
    }
    std::fs::copy(&backup, &db).expect("put the backup in place");
    let restored = Hoist::start_in(dir, Some(&config(&listen)), &env, &listen);
    assert_eq!(
        http()
            .get(restored.url("/readyz"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    // The restored ledger is the one hoist serves: a delivery from before the backup is a
    // duplicate, one from after it is new.
    let redelivered = deliver_webhook(
        &http(),
        &restored.url("/webhooks/github"),
        WEBHOOK_SECRET,
        "ping",
        &before[0],
        &fixture("ping"),
    )
    .unwrap();
    assert_eq!(
        redelivered
            .headers()
            .get("x-hoist-duplicate")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let last = format!("load-{}", total - 1);
    assert!(!copied.contains(last.as_str()));
    let fresh = deliver_webhook(
        &http(),
        &restored.url("/webhooks/github"),
        WEBHOOK_SECRET,
        "ping",
        &last,
        &fixture("ping"),
    )
    .unwrap();
    assert!(fresh.headers().get("x-hoist-duplicate").is_none());
    assert_eq!(sqlite3(&db, "PRAGMA integrity_check").trim(), "ok");
}

#[test]
fn backup_refuses_to_overwrite_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let migrated = HoistRun::new(dir.path(), &["migrate"]).output();
    assert!(migrated.status.success());
    std::fs::write(dir.path().join("taken.db"), "an older backup").unwrap();

    let out = HoistRun::new(dir.path(), &["backup", "taken.db"]).output();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("taken.db already exists"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("taken.db")).unwrap(),
        "an older backup"
    );
}

#[test]
fn backup_without_a_database_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = HoistRun::new(dir.path(), &["backup", "copy.db"]).output();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("there is no database at data/hoist.db"),
        "{stderr}"
    );
    assert!(!dir.path().join("copy.db").exists());
    assert!(!dir.path().join("data").exists());
}

#[test]
fn backup_on_postgresql_points_at_pg_dump_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hoist.toml"),
        "[database]\nurl = \"postgres://hoist@127.0.0.1:1/hoist\"\npassword_env = \"PGPASS\"\n",
    )
    .unwrap();
    let out = HoistRun::new(dir.path(), &["--config", "hoist.toml", "backup", "copy.db"]).output();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("on PostgreSQL use its own tools, e.g. pg_dump --format=custom"),
        "{stderr}"
    );
    assert!(!dir.path().join("copy.db").exists());
}
