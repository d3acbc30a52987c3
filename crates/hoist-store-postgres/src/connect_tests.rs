//! How the store connects: what it refuses before connecting, what it shows of a URL, and
//! the settings every session runs with.

use std::time::Duration;

use crate::PgOptions;
use crate::cluster::Cluster;

fn options(url: &str) -> PgOptions {
    PgOptions {
        url: url.to_owned(),
        password: Some("from-the-secret".to_owned()),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(30),
    }
}

#[test]
fn a_url_config_check_refuses_is_refused_again_and_shown_without_its_password() {
    for url in [
        "postgres://hoist:hunter2@db/hoist",
        "postgres://hoist@db/hoist?password=hunter2",
        "postgres://hoist@db/hoist?pass%77ord=hunter2",
        "postgres://hoist@db?password=hunter2&x=/hoist",
        "postgres://hoist@db/hoist?host=elsewhere",
        "postgres://hoist@db/hoist?options=-c%20lock_timeout%3D0",
        "postgres://hoist@db/hoist?sslmode=on",
        "mysql://root:hunter2@db/hoist",
        // A password holding `/` or `?` still ends at the last `@`.
        "postgres://hoist:hunt/er2@db/hoist",
        "postgres://hoist:hunt?er2@db/hoist",
        "postgres:hoist:hunter2@db/hoist",
        // The driver reads keys as written: an upper-case sslmode would be ignored.
        "postgres://hoist@db/hoist?SSLMODE=verify-full",
    ] {
        let refused = crate::connect_options(&options(url))
            .err()
            .unwrap_or_else(|| panic!("{url} was taken"));
        let shown = refused.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("from-the-secret"), "{shown}");
        assert!(shown.contains("is not a usable database URL"), "{shown}");
    }
    let taken = crate::connect_options(&options(
        "postgres://hoist@db:5433/hoist?sslmode=verify-full&sslrootcert=/etc/ca.pem",
    ))
    .expect("a URL with TLS settings");
    assert_eq!(taken.get_port(), 5433);
    assert_eq!(taken.get_database(), Some("hoist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_bounds_its_lock_waits_and_idle_transactions_and_probes_its_peer() {
    let url = Cluster::shared()
        .create_database()
        .expect("a test database");
    let mut options = options(&url);
    options.password = None;
    let store = crate::open(&options).await.expect("open");
    let settings = store
        .fixture_query(
            "SELECT name, setting FROM pg_settings
             WHERE name IN ('lock_timeout', 'idle_in_transaction_session_timeout',
                            'tcp_keepalives_idle', 'tcp_keepalives_interval',
                            'tcp_keepalives_count', 'application_name')
             ORDER BY name",
        )
        .await
        .unwrap();
    let settings: Vec<(String, String)> = settings
        .into_iter()
        .map(|row| (row[0].clone().unwrap(), row[1].clone().unwrap()))
        .collect();
    let expected = [
        ("application_name", "hoist"),
        ("idle_in_transaction_session_timeout", "60000"),
        ("lock_timeout", "30000"),
        ("tcp_keepalives_count", "6"),
        ("tcp_keepalives_idle", "60"),
        ("tcp_keepalives_interval", "10"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(settings, expected);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_lock_waits_longer_than_other_locks_as_another_replica_may_be_tagging() {
    let url = Cluster::shared()
        .create_database()
        .expect("a test database");
    let mut options = options(&url);
    options.password = None;
    let store = crate::Postgres::open(&options).await.expect("open");
    let mut conn = store.connector.connect().await.expect("connect");
    let timeout: String =
        sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = 'lock_timeout'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(timeout, "300000");
    sqlx::Connection::close(conn).await.unwrap();
    store.close().await;
}
