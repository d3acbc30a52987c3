//! `GET /metrics`: Prometheus text, read from the database at scrape time so it is true
//! after a restart and costs nothing between scrapes.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::{ApiError, AppState};

/// Label values are quoted; backslashes, quotes and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let store = state.store();
    let publications = store.publication_counts().await?;
    let jobs = store.job_counts().await?;
    let depth = store.pending_jobs().await?;
    let tags = store.tag_counts().await?;
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
    let _ = writeln!(out, "# HELP hoist_publications Publications by state.");
    let _ = writeln!(out, "# TYPE hoist_publications gauge");
    for known in ["waiting", "running", "succeeded", "failed", "stalled"] {
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
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    ))
}
