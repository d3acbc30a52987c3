//! What a GitHub Actions OIDC token costs a build report, beside a static CI token: a
//! running hoist (`HOIST_BIN`) trusting a local issuer gets `--reports` reports of each kind,
//! interleaved one by one over one keep-alive connection, each for a new commit, and the
//! latencies of both are printed side by side. Tokens are signed before the clock starts, so
//! what differs is hoist's check (header, key lookup, RS256 verification, claims, binding).

use std::time::{Duration, Instant};

use clap::Parser;
use hoist_tests::oidc::Issuer;
use hoist_tests::{Hoist, free_port};
use serde_json::json;

const SECRET: &str = "bench-oidc-webhook-secret";
const CI_TOKEN: &str = "bench-oidc-ci-token-0123";
const REPOSITORY: &str = "bench/app";
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

#[derive(Parser)]
struct Args {
    /// Reports of each kind.
    #[arg(long, default_value_t = 1000)]
    reports: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted[at]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let issuer = Issuer::start();
    let listen = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "[server]\nlisten = \"{listen}\"\n[github]\nwebhook_secret_env = \"SECRET\"\n{oidc}\
         [[ci_token]]\nname = \"ci\"\ntoken_env = \"CI_TOKEN\"\nrepositories = [\"bench/*\"]\n\
         [[registry]]\nhost = \"registry.bench.test\"\nanonymous = true\n\
         [[repository]]\ngithub = \"{REPOSITORY}\"\nimage = \"registry.bench.test/bench/app\"\n\
         platforms = [\"linux/amd64\"]\n",
        oidc = issuer.config_lines()
    );
    let hoist = Hoist::start(
        Some(&config),
        &[
            ("SECRET", SECRET),
            ("CI_TOKEN", CI_TOKEN),
            ("RUST_LOG", "warn"),
        ],
        &listen,
    );
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = hoist.url("/v1/builds");
    // Every report is for a new commit of a feature branch: recorded, nothing published.
    let body = |n: usize, kind: u8| {
        let commit = format!("{kind:02x}{n:038x}");
        let git_ref = format!("refs/heads/feature-{n}");
        let report = json!({
            "repository": REPOSITORY, "commit": commit, "ref": git_ref,
            "platform": "linux/amd64", "image": format!("registry.bench.test/bench/app@{DIGEST}"),
        });
        (commit, git_ref, report.to_string())
    };
    let oidc: Vec<(String, String)> = (0..=args.reports)
        .map(|n| {
            let (commit, git_ref, report) = body(n, 1);
            (issuer.token_for(REPOSITORY, &commit, &git_ref), report)
        })
        .collect();
    let statics: Vec<String> = (0..=args.reports).map(|n| body(n, 2).2).collect();

    let send = |token: &str, report: &str| -> anyhow::Result<Duration> {
        let started = Instant::now();
        let response = client
            .post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(report.to_owned())
            .send()?;
        let took = started.elapsed();
        anyhow::ensure!(
            response.status() == 202,
            "hoist answered {}: {}",
            response.status(),
            response.text().unwrap_or_default()
        );
        Ok(took)
    };
    // The first of each warms the connection and, for OIDC, fetches the issuer's keys.
    send(CI_TOKEN, &statics[0])?;
    send(&oidc[0].0, &oidc[0].1)?;
    let (mut static_times, mut oidc_times) = (Vec::new(), Vec::new());
    for n in 1..=args.reports {
        static_times.push(send(CI_TOKEN, &statics[n])?);
        oidc_times.push(send(&oidc[n].0, &oidc[n].1)?);
    }
    static_times.sort();
    oidc_times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (s50, o50) = (
        percentile(&static_times, 50.0),
        percentile(&oidc_times, 50.0),
    );
    let (s99, o99) = (
        percentile(&static_times, 99.0),
        percentile(&oidc_times, 99.0),
    );
    println!(
        "bench/oidc: {} reports of each kind, interleaved",
        args.reports
    );
    println!("{:<34} {:>12} {:>12}", "", "static token", "OIDC token");
    println!(
        "{:<34} {:>12.3} {:>12.3}",
        "p50 latency (ms)",
        ms(s50),
        ms(o50)
    );
    println!(
        "{:<34} {:>12.3} {:>12.3}",
        "p99 latency (ms)",
        ms(s99),
        ms(o99)
    );
    println!(
        "{:<34} {:>25.3}",
        "OIDC cost per report, p50 (ms)",
        ms(o50.saturating_sub(s50))
    );
    println!(
        "{:<34} {:>25}",
        "issuer key set fetches",
        issuer.jwks_fetches()
    );
    Ok(())
}
