//! The store conformance suite (`hoist_store::conformance`) on PostgreSQL: every test gets
//! a new database on the test process's throwaway cluster; a pair is two stores (two pools,
//! two lease owners) on one database, as two hoist replicas.

use std::time::Duration;

use hoist_store::Store;

use crate::PgOptions;
use crate::cluster::Cluster;

fn options(url: String) -> PgOptions {
    PgOptions {
        url,
        password: None,
        max_connections: 8,
        acquire_timeout: Duration::from_secs(30),
    }
}

async fn open() -> (Store, ()) {
    let url = Cluster::shared()
        .create_database()
        .expect("a test database");
    (crate::open(&options(url)).await.expect("open"), ())
}

async fn open_pair() -> (Store, Store, ()) {
    let url = Cluster::shared()
        .create_database()
        .expect("a test database");
    let a = crate::open(&options(url.clone())).await.expect("open a");
    let b = crate::open(&options(url)).await.expect("open b");
    (a, b, ())
}

hoist_store::conformance_suite!(open, open_pair);
