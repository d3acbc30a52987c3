//! `GET /metrics`: Prometheus text, read from the database at scrape time so it is true
//! after a restart and costs nothing between scrapes.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use hoist_domain::metrics::{BUCKETS, PipelineCounters, STEPS};

use crate::{ApiError, AppState};

/// Label values are quoted; backslashes, quotes and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus metrics: publications by state, jobs, queue depth, tags per image, transfers,
/// retries, job outcomes, step durations.
#[utoipa::path(
    get,
    path = "/metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 408, description = "The request took too long", body = crate::error::ErrorBody),
        (status = 503, description = "Database busy", body = crate::error::ErrorBody),
    ),
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let store = state.store();
    let publications = store.publication_counts().await?;
    let jobs = store.job_counts().await?;
    let depth = store.pending_jobs().await?;
    let tags = store.tag_counts().await?;
    let conflicts = store.claim_conflicts().await?;
    let build = state.build();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP hoist_build_info The running hoist's version and commit."
    );
    let _ = writeln!(out, "# TYPE hoist_build_info gauge");
    let _ = writeln!(
        out,
        "hoist_build_info{{version=\"{}\",git_sha=\"{}\"}} 1",
        label(&build.version),
        label(&build.git_sha)
    );
    let _ = writeln!(
        out,
        "# HELP hoist_release_claim_conflicts Releases whose CI-claimed builds contradict the commit GitHub signed."
    );
    let _ = writeln!(out, "# TYPE hoist_release_claim_conflicts gauge");
    let _ = writeln!(out, "hoist_release_claim_conflicts {conflicts}");
    let _ = writeln!(out, "# HELP hoist_publications Publications by state.");
    let _ = writeln!(out, "# TYPE hoist_publications gauge");
    for known in hoist_domain::PublicationState::ALL {
        let n = publications
            .iter()
            .find(|(s, _)| s == known)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "hoist_publications{{state=\"{known}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP hoist_jobs Jobs in the queue table by kind and state."
    );
    let _ = writeln!(out, "# TYPE hoist_jobs gauge");
    for (kind, job_state, n) in &jobs {
        let _ = writeln!(
            out,
            "hoist_jobs{{kind=\"{}\",state=\"{}\"}} {n}",
            label(kind),
            label(job_state)
        );
    }
    let _ = writeln!(out, "# HELP hoist_job_queue_depth Jobs queued or running.");
    let _ = writeln!(out, "# TYPE hoist_job_queue_depth gauge");
    let _ = writeln!(out, "hoist_job_queue_depth {depth}");
    let _ = writeln!(out, "# HELP hoist_tags Tags each image has in the ledger.");
    let _ = writeln!(out, "# TYPE hoist_tags gauge");
    for (image, n) in &tags {
        let _ = writeln!(out, "hoist_tags{{image=\"{}\"}} {n}", label(image));
    }
    render_counters(&mut out, state.counters());
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    ))
}

fn render_counters(out: &mut String, c: &PipelineCounters) {
    let counters = [
        (
            "hoist_blobs_total",
            "Blobs a publication needed, by how they reached the target.",
            vec![
                ("how=\"present\"", PipelineCounters::get(&c.blobs_present)),
                ("how=\"mounted\"", PipelineCounters::get(&c.blobs_mounted)),
                ("how=\"uploaded\"", PipelineCounters::get(&c.blobs_uploaded)),
            ],
        ),
        (
            "hoist_bytes_uploaded_total",
            "Blob bytes the workers streamed to target registries.",
            vec![("", PipelineCounters::get(&c.bytes_uploaded))],
        ),
        (
            "hoist_jobs_finished_total",
            "Jobs run by this process, by outcome.",
            vec![
                ("outcome=\"done\"", PipelineCounters::get(&c.jobs_done)),
                (
                    "outcome=\"retried\"",
                    PipelineCounters::get(&c.jobs_retried),
                ),
                ("outcome=\"failed\"", PipelineCounters::get(&c.jobs_failed)),
            ],
        ),
    ];
    for (name, help, series) in counters {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (labels, value) in series {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {value}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
    }
    let name = "hoist_registry_retries_total";
    let _ = writeln!(
        out,
        "# HELP {name} Registry requests tried again, by the status (or connection failure) that caused it."
    );
    let _ = writeln!(out, "# TYPE {name} counter");
    for (reason, n) in c.registry_retries.snapshot() {
        let _ = writeln!(out, "{name}{{reason=\"{}\"}} {n}", label(&reason));
    }
    let name = "hoist_publication_step_duration_seconds";
    let _ = writeln!(out, "# HELP {name} How long each publication step took.");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for step in STEPS {
        let Some(histogram) = c.step(step) else {
            continue;
        };
        let (counts, sum) = histogram.snapshot();
        for (bound, count) in BUCKETS.iter().zip(&counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{step=\"{step}\",le=\"{bound}\"}} {count}"
            );
        }
        let total = counts.last().copied().unwrap_or(0);
        let _ = writeln!(out, "{name}_bucket{{step=\"{step}\",le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_sum{{step=\"{step}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{step=\"{step}\"}} {total}");
    }
}
