//! Readers against the ledger endpoints of a running hoist while a writer appends tag
//! moves to the same database. Reports latency percentiles per endpoint.
//!
//! The writer goes through `hoist_store::Store::move_tag`, the same call the publication
//! pipeline makes, from this process: SQLite allows it alongside hoist's own connections,
//! and on PostgreSQL it is one more client, as a second replica would be.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use hoist_store::{MoveIntent, Store, StoreOptions, TagMove};
use serde_json::json;
use tokio::sync::Mutex;

/// Closed-loop readers of GET /v1/tags and /v1/tag-events, with a concurrent writer.
#[derive(Debug, Parser)]
struct Args {
    /// hoist's base URL.
    #[arg(long)]
    url: String,
    /// An operator API token hoist accepts.
    #[arg(long, env = "HOIST_BENCH_TOKEN")]
    token: String,
    /// The database hoist uses (sqlite://... or postgres://...), for the writer.
    #[arg(long)]
    database: String,
    /// Images are named `<image-prefix><n>` for n in 0..images.
    #[arg(long, default_value = "bench.local/app-")]
    image_prefix: String,
    #[arg(long, default_value_t = 1000)]
    images: u64,
    /// Tags per image in the seeded ledger (`t0`, `t1`, ...).
    #[arg(long, default_value_t = 50)]
    tags: u64,
    #[arg(long, default_value_t = 50)]
    readers: usize,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Tag moves per second the writer appends.
    #[arg(long, default_value_t = 200)]
    write_rate: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.readers)
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let tags_latency = Arc::new(Mutex::new(Vec::new()));
    let events_latency = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(AtomicU64::new(0));

    let store = if args.database.starts_with("postgres") {
        hoist_store_postgres::open(&hoist_store_postgres::PgOptions {
            url: args.database.clone(),
            password: None,
            max_connections: 4,
            acquire_timeout: Duration::from_secs(30),
        })
        .await?
    } else {
        Store::open(&StoreOptions {
            url: args.database.clone(),
            read_connections: 1,
            busy_timeout: Duration::from_secs(5),
        })
        .await?
    };
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (args, stop, writes, store) =
            (args.clone(), stop.clone(), writes.clone(), store.clone());
        tokio::spawn(async move {
            let mut rng = Rng(7);
            let start = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = start + Duration::from_secs_f64(n as f64 / args.write_rate as f64);
                tokio::time::sleep_until(due.into()).await;
                let image = format!("{}{}", args.image_prefix, rng.next() % args.images);
                let tag = format!("t{}", rng.next() % args.tags);
                let digest = format!("sha256:{:064x}", 10_000_000 + n);
                let m = TagMove {
                    image: &image,
                    tag: &tag,
                    digest: &digest,
                    immutable: false,
                    intent: MoveIntent::Publish,
                    reason: "bench writer",
                    publication_id: None,
                    release_tag: None,
                };
                store.move_tag(&m).await?;
                writes.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            anyhow::Ok(())
        })
    };

    let mut readers = tokio::task::JoinSet::new();
    for r in 0..args.readers {
        let (args, client, stop) = (args.clone(), client.clone(), stop.clone());
        let (tags_latency, events_latency, failures) = (
            tags_latency.clone(),
            events_latency.clone(),
            failures.clone(),
        );
        readers.spawn(async move {
            let mut rng = Rng(1000 + r as u64);
            let mut mine_tags = Vec::new();
            let mut mine_events = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let image = format!("{}{}", args.image_prefix, rng.next() % args.images);
                let (path, is_tags) = match i % 3 {
                    0 => (format!("/v1/tags?image={image}"), true),
                    1 => (format!("/v1/tag-events?image={image}"), false),
                    _ => (
                        format!(
                            "/v1/tag-events?image={image}&tag=t{}",
                            rng.next() % args.tags
                        ),
                        false,
                    ),
                };
                i += 1;
                let sent = Instant::now();
                let ok = match client
                    .get(format!("{}{path}", args.url))
                    .bearer_auth(&args.token)
                    .send()
                    .await
                {
                    Ok(response) if response.status().is_success() => {
                        response.bytes().await.is_ok()
                    }
                    _ => false,
                };
                let took = sent.elapsed();
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                } else if is_tags {
                    mine_tags.push(took);
                } else {
                    mine_events.push(took);
                }
            }
            tags_latency.lock().await.extend(mine_tags);
            events_latency.lock().await.extend(mine_events);
        });
    }

    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    while readers.join_next().await.is_some() {}
    writer.await??;
    store.close().await;

    let mut tags = tags_latency.lock().await.clone();
    let mut events = events_latency.lock().await.clone();
    tags.sort();
    events.sort();
    let seconds = args.seconds as f64;
    let report = json!({
        "readers": args.readers,
        "seconds": args.seconds,
        "writes_appended": writes.load(Ordering::Relaxed),
        "failed_reads": failures.load(Ordering::Relaxed),
        "get_tags": { "requests": tags.len(), "per_second": tags.len() as f64 / seconds,
                      "p50_ms": percentile(&tags, 50.0), "p99_ms": percentile(&tags, 99.0), "max_ms": percentile(&tags, 100.0) },
        "get_tag_events": { "requests": events.len(), "per_second": events.len() as f64 / seconds,
                            "p50_ms": percentile(&events, 50.0), "p99_ms": percentile(&events, 99.0), "max_ms": percentile(&events, 100.0) },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} reads failed");
    }
    Ok(())
}
