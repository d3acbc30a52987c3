//! The store conformance suite: one behaviour, checked on every database. Each case is an
//! `async fn(&Store)` (or, for what several replicas do at once, `async fn(&Store, &Store)`:
//! two stores opened on one database) that uses the operations of [`Backend`](crate::Backend)
//! and, to look at the tables, portable SQL through the fixture operations. A database's
//! crate runs the whole suite with [`conformance_suite!`](crate::conformance_suite), given a
//! function that opens a fresh, empty store.

// Test code, compiled for other crates' tests through the `test-support` feature (where
// clippy's allow-unwrap-in-tests does not reach): a failed unwrap is a failed case.
#![allow(clippy::unwrap_used)]

pub mod ingest;
pub mod jobs;
pub mod ledger;
pub mod replicas;

use crate::Store;

/// The text of every column of every row `sql` returns (see `Backend::fixture_query`).
pub async fn rows(store: &Store, sql: &str) -> Vec<Vec<Option<String>>> {
    store
        .fixture_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The one text value `sql` returns.
pub async fn text(store: &Store, sql: &str) -> Option<String> {
    let rows = rows(store, sql).await;
    assert_eq!(rows.len(), 1, "{sql}: expected one row, got {rows:?}");
    rows[0][0].clone()
}

/// How many rows `table` holds.
pub async fn count(store: &Store, table: &str) -> i64 {
    let sql = format!("SELECT CAST(count(*) AS TEXT) FROM {table}");
    text(store, &sql)
        .await
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{sql}: not a count"))
}

/// Runs `sql` (portable statements) on the writer.
pub async fn execute(store: &Store, sql: &str) {
    store
        .fixture_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Generates one `#[tokio::test]` per conformance case. `$open` is an `async fn() ->
/// (Store, G)` giving a fresh, empty, migrated store and a guard kept until the test ends;
/// `$open_pair` gives two stores on one fresh database (two replicas).
#[macro_export]
macro_rules! conformance_suite {
    ($open:path, $open_pair:path) => {
        $crate::__conformance_cases! { [$open, $open_pair] }
    };
}

/// The list of cases; a new case is one line here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ([$open:path, $open_pair:path]) => {
        $crate::__conformance_tests! { [$open, $open_pair]
            single:
            ledger::moves_create_then_move_and_the_same_move_again_writes_nothing,
            ledger::an_immutable_tag_is_refused_elsewhere_unless_forced,
            ledger::rollbacks_are_recorded_as_such,
            ledger::events_and_view_agree_after_every_operation,
            ledger::immutability_belongs_to_the_tag_whatever_writes_it_next,
            ingest::a_redelivery_gets_the_first_answer_and_stores_nothing_new,
            ingest::a_release_whose_target_is_a_commit_resolves_at_once_and_waits_for_builds,
            ingest::a_release_on_a_branch_waits_until_a_tag_push_names_its_commit,
            ingest::a_claimed_build_for_the_tag_decides_nothing_and_a_contradiction_shows,
            ingest::a_claim_arriving_after_the_release_resolved_is_a_conflict_too,
            ingest::a_build_arriving_after_the_release_resolves_it,
            ingest::drafts_are_stored_but_not_acted_on_and_deletion_is_final,
            ingest::a_deleted_tag_names_no_commit_until_it_is_pushed_again,
            ingest::builds_are_idempotent_replaceable_until_published_then_refused,
            ingest::an_index_build_and_per_platform_builds_are_distinct,
            ingest::the_same_images_reported_for_a_second_tag_resolve_that_release_too,
            ingest::the_workers_are_woken_only_when_a_delivery_or_a_build_queued_a_job,
            ingest::retention_purges_old_records_keeps_the_ledger_and_ignores_pushes_it_cannot_place,
            jobs::jobs_are_claimed_once_oldest_first_and_come_back_when_retried,
            jobs::a_publication_has_one_queued_job_and_runs_one_job_at_a_time,
            jobs::a_restart_requeues_running_jobs_and_old_finished_jobs_are_purged,
            jobs::a_waiting_or_running_publication_without_a_live_job_is_queued_again,
            jobs::a_publication_waiting_past_the_timeout_stalls_and_a_retry_revives_it,
            ;
            pair:
            replicas::a_late_completion_after_the_lease_moved_is_refused_by_the_fence,
            replicas::two_replicas_claim_every_job_exactly_once,
            replicas::tag_moves_of_one_image_from_two_replicas_never_interleave,
            replicas::reconcilers_on_two_replicas_queue_one_job_per_publication,
            ingest::a_delivery_received_by_two_replicas_at_once_is_stored_once,
            ingest::a_build_reported_to_two_replicas_at_once_is_stored_once,
            replicas::a_job_queued_on_one_replica_wakes_the_idle_workers_of_the_other,
            replicas::an_image_lock_on_one_replica_keeps_the_other_waiting_until_let_go,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ([$open:path, $open_pair:path]
     single: $($module:ident :: $case:ident),* $(,)? ;
     pair: $($pmodule:ident :: $pcase:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, guard) = $open().await;
                $crate::conformance::$module::$case(&store).await;
                store.close().await;
                drop(guard);
            }
        )*
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $pcase() {
                let (a, b, guard) = $open_pair().await;
                $crate::conformance::$pmodule::$pcase(&a, &b).await;
                a.close().await;
                b.close().await;
                drop(guard);
            }
        )*
    };
}
