//! Sends signed GitHub deliveries to a running hoist at a fixed rate and reports the rate
//! it sustained and the latency of each answer. A share of the deliveries are repeats of
//! earlier ones (same delivery id and body), as GitHub's redeliveries are.
//!
//! With several `--url`s (hoist replicas on one database) the deliveries are spread over
//! them in turn.
//!
//! Deliveries alternate between `release` (published, a new tag each) and `push` (a new
//! tag each), built from the example payloads in tests/fixtures/github.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hoist_domain::github::sign;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// Open-loop load generator for POST /webhooks/github.
#[derive(Debug, Parser)]
struct Args {
    /// hoist's base URL; given more than once (replicas on one database), deliveries go
    /// to each in turn, so a redelivery often reaches another replica than the first.
    #[arg(long, required = true)]
    url: Vec<String>,
    /// The webhook secret hoist is configured with.
    #[arg(long, env = "HOIST_BENCH_SECRET")]
    secret: String,
    /// Deliveries per second to send.
    #[arg(long, default_value_t = 2000)]
    rate: u32,
    /// How long to send for, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u32,
    /// Share of deliveries that repeat an earlier one.
    #[arg(long, default_value_t = 0.2)]
    repeat_share: f64,
    /// Folder holding release.published.json and push.tag-created.json.
    #[arg(long)]
    fixtures: PathBuf,
    /// Requests in flight at most; beyond it the generator falls behind and says so.
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
}

struct Delivery {
    id: String,
    event: &'static str,
    body: reqwest::Body,
    signature: String,
}

struct Generator {
    release: Value,
    push: Value,
    secret: String,
    sent: Vec<(String, &'static str, bytes::Bytes, String)>,
    state: u64,
}

impl Generator {
    fn random(&mut self) -> u64 {
        // SplitMix64: deterministic, so runs are comparable.
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn commit(&mut self) -> String {
        format!(
            "{:016x}{:016x}{:08x}",
            self.random(),
            self.random(),
            self.random() as u32
        )
    }

    fn next(&mut self, n: u64, repeat_share: f64) -> Delivery {
        let repeat =
            !self.sent.is_empty() && (self.random() % 10_000) as f64 / 10_000.0 < repeat_share;
        if repeat {
            let pick = (self.random() % self.sent.len() as u64) as usize;
            let (id, event, body, signature) = self.sent[pick].clone();
            return Delivery {
                id,
                event,
                body: body.into(),
                signature,
            };
        }
        let (event, body) = if n.is_multiple_of(2) {
            let mut body = self.release.clone();
            body["release"]["id"] = json!(1_000_000 + n);
            body["release"]["tag_name"] = json!(format!("v{}.{}.0", n / 1000, n % 1000));
            body["release"]["target_commitish"] = json!(self.commit());
            ("release", body)
        } else {
            let mut body = self.push.clone();
            body["ref"] = json!(format!("refs/tags/build-{n}"));
            body["head_commit"]["id"] = json!(self.commit());
            ("push", body)
        };
        let bytes = bytes::Bytes::from(body.to_string());
        let signature = sign(&self.secret, &bytes);
        let id = format!("bench-{n}");
        self.sent
            .push((id.clone(), event, bytes.clone(), signature.clone()));
        Delivery {
            id,
            event,
            body: bytes.into(),
            signature,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let read = |name: &str| -> anyhow::Result<Value> {
        let path = args.fixtures.join(name);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_slice(&bytes)?)
    };
    let mut generator = Generator {
        release: read("release.published.json")?,
        push: read("push.tag-created.json")?,
        secret: args.secret.clone(),
        sent: Vec::new(),
        state: 42,
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.max_in_flight)
        .timeout(Duration::from_secs(10))
        .build()?;
    let urls: Vec<String> = args
        .url
        .iter()
        .map(|url| format!("{}/webhooks/github", url.trim_end_matches('/')))
        .collect();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(
        (args.rate * args.seconds) as usize,
    )));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let permits = Arc::new(Semaphore::new(args.max_in_flight));

    let total = u64::from(args.rate) * u64::from(args.seconds);
    // Built and signed before the clock starts, so the generator's own work does not take
    // CPU from hoist while it is measured.
    let deliveries: Vec<Delivery> = (0..total)
        .map(|n| generator.next(n, args.repeat_share))
        .collect();
    let mut deliveries = deliveries.into_iter();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut behind = 0u64;
    for n in 0..total {
        // Open loop: delivery n is due at n / rate seconds, whatever the answers do.
        let due = start + Duration::from_secs_f64(n as f64 / f64::from(args.rate));
        tokio::time::sleep_until(due.into()).await;
        let Some(delivery) = deliveries.next() else {
            break;
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                behind += 1;
                permits.clone().acquire_owned().await?
            }
        };
        let (client, url) = (client.clone(), urls[n as usize % urls.len()].clone());
        let (latencies, failures) = (latencies.clone(), failures.clone());
        tasks.spawn(async move {
            let sent = Instant::now();
            let result = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-github-event", delivery.event)
                .header("x-github-delivery", &delivery.id)
                .header("x-hub-signature-256", &delivery.signature)
                .body(delivery.body)
                .send()
                .await;
            let outcome = match result {
                Ok(response) if response.status().is_success() => response
                    .bytes()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Ok(response) => Err(format!(
                    "{} {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                )),
                Err(e) => Err(e.to_string()),
            };
            let took = sent.elapsed();
            drop(permit);
            match outcome {
                Ok(()) => latencies.lock().expect("latency lock").push(took),
                Err(e) => failures.lock().expect("failure lock").push(e),
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    let sending = start.elapsed();
    while tasks.join_next().await.is_some() {}
    let finished = start.elapsed();

    let mut latencies = latencies.lock().expect("latency lock").clone();
    latencies.sort();
    let failures = failures.lock().expect("failure lock").clone();
    let unique = generator.sent.len();
    let releases = generator.sent.iter().filter(|d| d.1 == "release").count();
    let answered = latencies.len();
    let rate = answered as f64 / finished.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let report = json!({
        "sent": total,
        "unique_deliveries": unique,
        "unique_releases": releases,
        "repeats": total as usize - unique,
        "answered_2xx": answered,
        "failed": failures.len(),
        "sending_seconds": sending.as_secs_f64(),
        "total_seconds": finished.as_secs_f64(),
        "sustained_per_second": rate,
        "generator_fell_behind": behind,
        "latency_ms": {
            "p50": ms(percentile(&latencies, 50.0)),
            "p90": ms(percentile(&latencies, 90.0)),
            "p99": ms(percentile(&latencies, 99.0)),
            "max": ms(latencies.last().copied().unwrap_or_default()),
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(first) = failures.first() {
        bail!("{} deliveries failed; the first: {first}", failures.len());
    }
    Ok(())
}
