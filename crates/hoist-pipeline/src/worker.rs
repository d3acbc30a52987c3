//! The worker loop: claim a job, dispatch on its kind, record how it ended.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use hoist_domain::config::Config;
use hoist_domain::job::Job;
use hoist_domain::metrics::PipelineCounters;
use hoist_domain::{Backoff, PublicationEvent, Step};
use hoist_registry::Client;
use hoist_store::{ClaimedJob, Store, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::PipelineError;

/// How long done and failed jobs stay in the table (for operators to read) before purging.
pub const JOB_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often the reconciler purges what is past `[retention] days`.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions {
    /// How long a claimed job is a worker's before another may take it.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs (retries come due without a wake-up).
    pub poll: Duration,
    /// Backoff between attempts of a job that failed in a way that may pass.
    pub backoff: Backoff,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            lease: Duration::from_secs(300),
            poll: Duration::from_secs(1),
            backoff: Backoff {
                base: Duration::from_secs(2),
                max_delay: Duration::from_secs(300),
                max_server_delay: Duration::from_secs(600),
                max_attempts: 10,
            },
        }
    }
}

/// Everything a worker needs; shared by all of them.
#[derive(Debug)]
pub struct Pipeline {
    pub(crate) store: Store,
    pub(crate) config: Arc<Config>,
    pub(crate) registry: Client,
    pub(crate) github: reqwest::Client,
    pub(crate) counters: Arc<PipelineCounters>,
    options: PipelineOptions,
    /// When the reconciler last purged expired records.
    last_purge: Mutex<Option<std::time::Instant>>,
}

impl Pipeline {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        registry: Client,
        counters: Arc<PipelineCounters>,
        options: PipelineOptions,
    ) -> Self {
        Pipeline {
            store,
            config,
            registry,
            github: crate::github::client(),
            counters,
            options,
            last_purge: Mutex::default(),
        }
    }

    /// Claims and runs one due job. Returns false when there was none.
    pub async fn step(&self) -> Result<bool, StoreError> {
        // The lease runs from before the claim was asked for, at the latest.
        let asked = std::time::Instant::now();
        let Some(claimed) = self.store.claim_job(self.options.lease).await? else {
            return Ok(false);
        };
        let span = tracing::info_span!("job", id = claimed.id, kind = %claimed.kind, attempt = claimed.attempts);
        self.run_claimed(claimed, asked).instrument(span).await?;
        Ok(true)
    }

    async fn run_claimed(
        &self,
        claimed: ClaimedJob,
        asked: std::time::Instant,
    ) -> Result<(), StoreError> {
        let job = match Job::from_payload(&claimed.payload) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "job payload unreadable");
                return self
                    .store
                    .fail_job(&claimed, &format!("unreadable payload: {e}"))
                    .await;
            }
        };
        let Some(outcome) = self.run_leased(&claimed, &job, asked).await else {
            // Another worker holds the job now; what this one did is for it to redo.
            tracing::warn!("the job's lease was taken back while it ran; stopped it");
            return Ok(());
        };
        match outcome {
            Ok(Ok(())) => {
                PipelineCounters::add(&self.counters.jobs_done, 1);
                tracing::info!("job done");
                self.store.finish_job(&claimed).await
            }
            Ok(Err(failure)) => {
                let message = failure.error.to_string();
                let attempts = u32::try_from(claimed.attempts).unwrap_or(u32::MAX);
                let delay = failure
                    .error
                    .is_retryable()
                    .then(|| {
                        self.options
                            .backoff
                            .delay(attempts, jitter(), failure.error.retry_after())
                    })
                    .flatten();
                match delay {
                    Some(delay) => {
                        PipelineCounters::add(&self.counters.jobs_retried, 1);
                        tracing::warn!(error = %message, ?delay, "job failed; will retry");
                        self.store.retry_job(&claimed, delay, &message).await
                    }
                    None => {
                        PipelineCounters::add(&self.counters.jobs_failed, 1);
                        tracing::error!(error = %message, "job failed");
                        if let Some((id, step)) = failure.publication {
                            self.store
                                .advance_publication(
                                    id,
                                    PublicationEvent::Fail,
                                    Some(step),
                                    Some(&message),
                                )
                                .await?;
                        }
                        self.store.fail_job(&claimed, &message).await
                    }
                }
            }
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                PipelineCounters::add(&self.counters.jobs_failed, 1);
                tracing::error!(panic = detail, "job panicked");
                let message = format!("panicked: {detail}");
                // Running it again would panic again: the publication fails, for an
                // operator to read and retry.
                if let Some(id) = job.publication_id() {
                    self.store
                        .advance_publication(id, PublicationEvent::Fail, None, Some(&message))
                        .await?;
                }
                self.store.fail_job(&claimed, &message).await
            }
        }
    }

    /// Runs the job, renewing its lease while it runs, with panics caught. `None` when the
    /// lease was lost (it ran out and the job went to another worker), or may be about to
    /// be: renewals that fail (the database unreachable) for as long as the lease, less one
    /// renewal, stop the work too, before another worker can have taken the job. The work
    /// is dropped at its next await, so two workers never go on with one job.
    async fn run_leased(
        &self,
        claimed: &ClaimedJob,
        job: &Job,
        asked: std::time::Instant,
    ) -> Option<std::thread::Result<Result<(), JobFailure>>> {
        let work = AssertUnwindSafe(self.handle(job)).catch_unwind();
        tokio::pin!(work);
        let renew = self.options.lease / 3;
        let mut renewed = asked;
        loop {
            tokio::select! {
                // A renewal due is seen before the work is polled again.
                biased;
                () = tokio::time::sleep_until((renewed + self.options.lease).into()) => {
                    tracing::warn!("the job's lease ran out before it could be renewed; stopping the job");
                    return None;
                }
                outcome = &mut work => return Some(outcome),
                () = tokio::time::sleep(renew) => {
                    let asked = std::time::Instant::now();
                    match self.store.extend_lease(claimed, self.options.lease).await {
                        Ok(true) => renewed = asked,
                        Ok(false) => return None,
                        Err(e) if renewed.elapsed() + renew >= self.options.lease => {
                            tracing::warn!(error = %e, "could not renew the job's lease for as long as it lasts; stopping the job");
                            return None;
                        }
                        Err(e) => tracing::warn!(error = %e, "could not renew the job's lease"),
                    }
                }
            }
        }
    }

    /// One pass of the reconciler: purges old jobs, re-queues jobs whose lease ran out,
    /// stalls publications that waited too long, and queues a job for every waiting or
    /// running publication that has none, so no publication is stranded.
    pub async fn reconcile(&self) -> Result<(), StoreError> {
        let passes = [
            (
                "purged finished jobs",
                self.store.purge_finished_jobs(JOB_RETENTION).await,
            ),
            (
                "re-queued jobs whose lease ran out",
                self.store.requeue_expired_jobs().await,
            ),
            (
                "publications stalled waiting for builds",
                self.store
                    .stall_waiting_publications(self.config.publish.wait_timeout)
                    .await,
            ),
            (
                "queued stranded publications",
                self.store.requeue_stranded_publications().await,
            ),
        ];
        let purge = if self.purge_due() {
            self.store
                .purge_expired(self.config.retention)
                .await
                .map(|purged| {
                    if purged.total() > 0 {
                        tracing::info!(
                            deliveries = purged.deliveries,
                            steps = purged.steps,
                            deleted_tags = purged.deleted_tags,
                            "purged records past [retention] days"
                        );
                    }
                    0
                })
        } else {
            Ok(0)
        };
        for (what, outcome) in passes
            .into_iter()
            .chain([("purged records past [retention] days", purge)])
        {
            match outcome {
                Ok(0) => {}
                Ok(n) => tracing::info!(count = n, "{what}"),
                Err(e) if e.is_retryable() => tracing::warn!(error = %e, "reconciler: {what}"),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether an hour has passed since the last purge (or none ran yet); if so, the next
    /// one starts now.
    fn purge_due(&self) -> bool {
        let mut last = self
            .last_purge
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = last.is_none_or(|at| at.elapsed() >= PURGE_EVERY);
        if due {
            *last = Some(std::time::Instant::now());
        }
        due
    }

    /// [`Pipeline::reconcile`] every half lease, at most once a minute, until `shutdown`:
    /// a job whose worker died is back in the queue within one and a half leases.
    pub async fn run_reconciler(&self, shutdown: CancellationToken) -> Result<(), StoreError> {
        let every = Duration::from_secs(60).min(self.options.lease / 2);
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return Ok(()),
            }
            self.reconcile().await?;
        }
    }

    /// Runs jobs until `shutdown`: woken when jobs are queued, polling as a fallback.
    pub async fn run_worker(&self, shutdown: CancellationToken) -> Result<(), StoreError> {
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            // Registered before looking, so a job queued in between still wakes us.
            let woken = self.store.jobs_changed();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match self.step().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) if e.is_retryable() => tracing::warn!(error = %e, "the queue is busy"),
                Err(e) => return Err(e),
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(self.options.poll) => {}
                () = shutdown.cancelled() => return Ok(()),
            }
        }
    }
}

/// A job failure, and the publication step it failed in (to mark it failed for good).
#[derive(Debug)]
pub(crate) struct JobFailure {
    pub error: PipelineError,
    pub publication: Option<(i64, Step)>,
}

impl<E: Into<PipelineError>> From<E> for JobFailure {
    fn from(error: E) -> Self {
        JobFailure {
            error: error.into(),
            publication: None,
        }
    }
}

/// A value in [0, 1] for backoff jitter; the clock's nanoseconds are random enough here.
fn jitter() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}
