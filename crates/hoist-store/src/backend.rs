//! The store's interface: every operation hoist runs on its database, listed once in
//! [`with_store_operations!`]. From that one list come the [`Backend`] trait and, in each
//! database's crate, the implementation that forwards to its inherent methods of the same
//! names ([`implement_backend!`]), so the SQLite and PostgreSQL stores cannot drift apart
//! in what they offer: a missing or differently typed operation does not compile.

use std::ops::Deref;
use std::sync::Arc;

/// Calls `$crate::$then!` with `$args` followed by every operation: the `async fn`s, then
/// `;;`, then the plain `fn`s. Types are written in full, as the expansion may happen in
/// another crate.
#[doc(hidden)]
#[macro_export]
macro_rules! with_store_operations {
    ($then:ident $args:tt) => {
        $crate::$then! { $args
            // Ingest: webhooks and CI reports.
            /// Records a verified webhook delivery and what it changes, in one transaction.
            async fn record_webhook(&self, delivery: &$crate::Delivery<'_>, effect: $crate::WebhookEffect<'_>) -> Result<$crate::Recorded, $crate::StoreError>;
            /// Records a CI build report and queues the publications it completes.
            async fn record_build(&self, target: &$crate::Target, report: &hoist_domain::build::BuildReport, provenance: &hoist_domain::ci::Provenance) -> Result<$crate::BuildOutcome, $crate::StoreError>;
            /// Builds of a repository, oldest first, after id `after`.
            async fn list_builds(&self, repository: &str, commit: Option<&str>, after: i64, limit: i64) -> Result<Vec<$crate::BuildRow>, $crate::StoreError>;
            /// Every build reported for a commit.
            async fn builds_of_commit(&self, repository: &str, commit: &str) -> Result<Vec<$crate::BuildRow>, $crate::StoreError>;
            /// Re-reads a repository's releases against its current configuration.
            async fn resync_repository(&self, target: &$crate::Target, repository: &str) -> Result<(), $crate::StoreError>;
            /// Resolves a waiting release to the commit GitHub's API named.
            async fn resolve_release_from_api(&self, target: &$crate::Target, release_id: i64, commit: &str) -> Result<bool, $crate::StoreError>;
            /// Releases whose CI claims a signed fact contradicts.
            async fn claim_conflicts(&self) -> Result<i64, $crate::StoreError>;
            /// One release.
            async fn release(&self, id: i64) -> Result<Option<$crate::ReleaseRow>, $crate::StoreError>;
            /// Releases of a repository after id `after`.
            async fn list_releases(&self, repository: &str, after: i64, limit: i64) -> Result<Vec<$crate::ReleaseRow>, $crate::StoreError>;

            // The job queue.
            /// Queues a job and wakes the workers.
            async fn enqueue_job(&self, job: &hoist_domain::job::Job) -> Result<Option<i64>, $crate::StoreError>;
            /// Takes the oldest due job, leasing it for `lease`.
            async fn claim_job(&self, lease: std::time::Duration) -> Result<Option<$crate::ClaimedJob>, $crate::StoreError>;
            /// Renews a held lease; false when the claim is lost.
            async fn extend_lease(&self, job: &$crate::ClaimedJob, lease: std::time::Duration) -> Result<bool, $crate::StoreError>;
            /// Ends a claim as done (fenced: a lost claim records nothing).
            async fn finish_job(&self, job: &$crate::ClaimedJob) -> Result<(), $crate::StoreError>;
            /// Ends a claim by putting the job back, due after `delay`.
            async fn retry_job(&self, job: &$crate::ClaimedJob, delay: std::time::Duration, error: &str) -> Result<(), $crate::StoreError>;
            /// Ends a claim as failed for good.
            async fn fail_job(&self, job: &$crate::ClaimedJob, error: &str) -> Result<(), $crate::StoreError>;
            /// Re-queues jobs whose lease ran out.
            async fn requeue_expired_jobs(&self) -> Result<u64, $crate::StoreError>;
            /// Jobs queued or running.
            async fn pending_jobs(&self) -> Result<i64, $crate::StoreError>;
            /// At start-up: re-queues the jobs a previous run of this process left running.
            async fn requeue_running_jobs(&self) -> Result<u64, $crate::StoreError>;
            /// Deletes finished jobs older than `retention`.
            async fn purge_finished_jobs(&self, retention: std::time::Duration) -> Result<u64, $crate::StoreError>;
            /// Jobs not done: (kind, state, last error).
            async fn unfinished_jobs(&self) -> Result<Vec<(String, String, Option<String>)>, $crate::StoreError>;

            // Publications.
            /// One publication.
            async fn publication(&self, id: i64) -> Result<Option<$crate::PublicationRow>, $crate::StoreError>;
            /// Publications, newest first, before id `before`.
            async fn list_publications(&self, image: Option<&str>, state: Option<hoist_domain::PublicationState>, before: i64, limit: i64) -> Result<Vec<$crate::PublicationRow>, $crate::StoreError>;
            /// Applies a lifecycle event to a publication.
            async fn advance_publication(&self, id: i64, event: hoist_domain::PublicationEvent, step: Option<hoist_domain::Step>, detail: Option<&str>) -> Result<$crate::Moved, $crate::StoreError>;
            /// Moves a running publication on to `step`.
            async fn reach_step(&self, id: i64, step: hoist_domain::Step, index_digest: Option<&str>) -> Result<bool, $crate::StoreError>;
            /// Enters the tags step under a version tag.
            async fn begin_tags(&self, id: i64, version_tag: Option<&str>) -> Result<bool, $crate::StoreError>;
            /// Notes that a step started.
            async fn step_started(&self, id: i64, step: hoist_domain::Step) -> Result<(), $crate::StoreError>;
            /// Notes that a step ended, with its error if it failed.
            async fn step_finished(&self, id: i64, step: hoist_domain::Step, error: Option<&str>) -> Result<(), $crate::StoreError>;
            /// The steps a publication went through.
            async fn publication_steps(&self, id: i64) -> Result<Vec<$crate::StepRow>, $crate::StoreError>;
            /// When a commit was first published to an image.
            async fn first_published_at(&self, image: &str, commit: &str) -> Result<String, $crate::StoreError>;
            /// Where a commit stands in a branch's push order.
            async fn branch_position(&self, repository: &str, branch: &str, commit: &str) -> Result<Option<i64>, $crate::StoreError>;
            /// Whether a signed fact puts a commit on a branch.
            async fn branch_confirmed(&self, repository: &str, branch: &str, commit: &str) -> Result<bool, $crate::StoreError>;
            /// Records GitHub's API saying a commit is on a branch.
            async fn confirm_branch_from_api(&self, repository: &str, branch: &str, commit: &str) -> Result<(), $crate::StoreError>;
            /// The index a release of a commit published, if any.
            async fn release_index_of_commit(&self, image: &str, commit: &str) -> Result<Option<String>, $crate::StoreError>;
            /// The versions an image's published releases hold.
            async fn live_versions(&self, image: &str, except: Option<i64>) -> Result<Vec<$crate::LiveVersion>, $crate::StoreError>;
            /// The tag events a publication wrote.
            async fn tags_of_publication(&self, id: i64) -> Result<Vec<$crate::TagEventRow>, $crate::StoreError>;
            /// Records what a publication's index lists per platform.
            async fn record_platforms(&self, id: i64, platforms: &[$crate::PublishedPlatform]) -> Result<(), $crate::StoreError>;
            /// Records what was signed for a publication.
            async fn record_signing(&self, id: i64, signature_digest: &str, attestation_digest: &str) -> Result<(), $crate::StoreError>;
            /// What a publication's index lists and what was signed.
            async fn publication_contents(&self, id: i64) -> Result<$crate::PublicationContents, $crate::StoreError>;

            // Recovery.
            /// Stalls publications waiting longer than `after`.
            async fn stall_waiting_publications(&self, after: std::time::Duration) -> Result<u64, $crate::StoreError>;
            /// Queues a job for every waiting or running publication that has none.
            async fn requeue_stranded_publications(&self) -> Result<u64, $crate::StoreError>;
            /// Publications per state.
            async fn publication_counts(&self) -> Result<Vec<(hoist_domain::PublicationState, i64)>, $crate::StoreError>;
            /// Jobs per (kind, state).
            async fn job_counts(&self) -> Result<Vec<(String, String, i64)>, $crate::StoreError>;
            /// An operator's retry of a failed or stalled publication.
            async fn retry_publication(&self, id: i64) -> Result<$crate::RetryOutcome, $crate::StoreError>;
            /// Purges records older than `retention`; the ledger is kept.
            async fn purge_expired(&self, retention: std::time::Duration) -> Result<$crate::Purged, $crate::StoreError>;

            // The ledger.
            /// Moves a tag, writing its event and the current view in one transaction.
            async fn move_tag(&self, m: &$crate::TagMove<'_>) -> Result<$crate::MoveOutcome, $crate::StoreError>;
            /// An image's current tags after `after`.
            async fn list_tags(&self, image: &str, after: &str, limit: i64) -> Result<Vec<$crate::TagRow>, $crate::StoreError>;
            /// The tags that point at a digest.
            async fn tags_at_digest(&self, image: &str, digest: &str) -> Result<Vec<$crate::TagRow>, $crate::StoreError>;
            /// Current tags per image.
            async fn tag_counts(&self) -> Result<Vec<(String, i64)>, $crate::StoreError>;
            /// Who holds a tag now.
            async fn tag_holder(&self, image: &str, tag: &str) -> Result<Option<$crate::TagHolder>, $crate::StoreError>;
            /// Branch tags that point at a commit's index.
            async fn branch_tags_of_commit(&self, image: &str, commit: &str, index: &str) -> Result<Vec<String>, $crate::StoreError>;
            /// Waits until this caller alone, among every worker of every process on this
            /// database, decides about `image`'s tags; held until the lock is dropped.
            async fn lock_image(&self, image: &str) -> Result<$crate::ImageLock, $crate::StoreError>;
            /// Where a tag points and whether it is immutable.
            async fn tag_target(&self, image: &str, tag: &str) -> Result<Option<(String, bool)>, $crate::StoreError>;
            /// [`list_tags`](Self::list_tags) rendered as JSON by the database.
            async fn list_tags_json(&self, image: &str, after: &str, limit: i64) -> Result<$crate::JsonPage, $crate::StoreError>;
            /// The ledger of an image (or one tag) rendered as JSON by the database.
            async fn list_tag_events_json(&self, image: &str, tag: Option<&str>, after: i64, limit: i64) -> Result<$crate::JsonPage, $crate::StoreError>;

            // The database itself.
            /// Proves the database accepts writes now; returns the time written.
            async fn check_writable(&self) -> Result<String, $crate::StoreError>;
            /// The migrations recorded as applied, oldest first.
            async fn applied_migrations(&self) -> Result<Vec<$crate::AppliedMigration>, $crate::StoreError>;
            /// Waits for in-flight queries and closes every connection.
            async fn close(&self);
            /// Test fixture: what publishing release `tag` on `commit` leaves behind.
            async fn seed_published_release(&self, repository: &str, image: &str, tag: &str, commit: &str, digest: &str, tags: &[&str]) -> Result<(), $crate::StoreError>;
            /// Test fixture: a succeeded publication of `commit`.
            async fn mark_published(&self, repository: &str, image: &str, commit: &str) -> Result<(), $crate::StoreError>;
            /// Test fixture: runs `sql` (statements both databases accept, `;`-separated) on
            /// the writer, to put rows in states the operations do not reach (old timestamps).
            async fn fixture_execute(&self, sql: &str) -> Result<(), $crate::StoreError>;
            /// Test fixture: the rows of a query whose every column is text or NULL (cast
            /// others with `CAST(x AS TEXT)`), for a conformance test to look at the tables.
            async fn fixture_query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, $crate::StoreError>;
            ;;
            /// "sqlite" or "postgres".
            fn kind(&self) -> &'static str;
            /// Where the database is, for logs (never a password).
            fn describe(&self) -> String;
            /// Wakes idle workers of this process.
            fn notify_workers(&self);
            /// Resolves when a job may have been queued. Create it *before* looking for work.
            fn jobs_changed(&self) -> tokio::sync::futures::Notified<'_>;
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __declare_backend {
    ([]
     $( $(#[$m:meta])* async fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) $(-> $ret:ty)?; )*
     ;;
     $( $(#[$sm:meta])* fn $sname:ident(&self $(, $sarg:ident : $sty:ty)* $(,)?) $(-> $sret:ty)?; )*
    ) => {
        /// A database hoist can run on; [`Store`] holds one.
        #[$crate::async_trait]
        pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
            $( $(#[$m])* async fn $name(&self $(, $arg: $ty)*) $(-> $ret)?; )*
            $( $(#[$sm])* fn $sname(&self $(, $sarg: $sty)*) $(-> $sret)?; )*
        }
    };
}

/// Implements [`Backend`] for `$ty` by forwarding every operation to `$ty`'s inherent
/// method of the same name. Each forward names the inherent method through a function
/// pointer first, outside the trait's impl, so a missing one fails to compile rather than
/// resolving to the trait method (which would call itself).
#[macro_export]
macro_rules! implement_backend {
    ($ty:ty) => {
        $crate::with_store_operations! { __forward_backend [$ty] }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __forward_backend {
    ([$ty:ty]
     $( $(#[$m:meta])* async fn $name:ident(&self $(, $arg:ident : $argty:ty)* $(,)?) $(-> $ret:ty)?; )*
     ;;
     $( $(#[$sm:meta])* fn $sname:ident(&self $(, $sarg:ident : $sty:ty)* $(,)?) $(-> $sret:ty)?; )*
    ) => {
        const _: () = {
            // Inherent methods only: the trait is not in scope here.
            $( let _ = <$ty>::$name; )*
            $( let _ = <$ty>::$sname; )*
        };

        #[$crate::async_trait]
        impl $crate::Backend for $ty {
            $( async fn $name(&self $(, $arg: $argty)*) $(-> $ret)? { <$ty>::$name(self $(, $arg)*).await } )*
            $( fn $sname(&self $(, $sarg: $sty)*) $(-> $sret)? { <$ty>::$sname(self $(, $sarg)*) } )*
        }
    };
}

with_store_operations! { __declare_backend [] }

/// The store every part of hoist uses: one database behind [`Backend`], shared by clones.
/// Its operations are [`Backend`]'s, reached through `Deref`.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl Store {
    /// A store over `backend` (the PostgreSQL crate opens one this way).
    pub fn from_backend(backend: impl Backend) -> Store {
        Store {
            backend: Arc::new(backend),
        }
    }
}

impl Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.backend
    }
}
