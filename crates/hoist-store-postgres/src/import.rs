//! Moving off SQLite: `hoist import-sqlite PATH` copies a SQLite database, row for row with
//! its ids, into an empty PostgreSQL database, in one transaction. The ledger (tag_events,
//! tags) keeps its event ids, so `GET /v1/tag-events` pages the same before and after, and
//! every identity sequence continues after the highest id copied.
//!
//! The SQLite side is read in one read transaction, so the copy is of one point in time
//! even when the file is in use (what is written after it is not copied: stop hoist
//! first). SQLite's queue may hold two queued jobs (or two running ones, left by a crash)
//! for one publication, which PostgreSQL's `jobs_one_queued`/`jobs_one_running` refuse:
//! the oldest of each is copied as it is and the others as done, as PostgreSQL ends a job
//! another one stands for.
//!
//! The statements are built from the two schemas (the columns both tables have), not
//! written out per table, so they are the one place in this crate that sqlx cannot check at
//! compile time; the table list below is, against the migrations, by the import test.

use hoist_store::{Sqlite, StoreError};
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, Row};

use crate::Postgres;

/// Every table, parents before children (foreign keys), and whether it has an identity id.
const TABLES: [(&str, bool); 14] = [
    ("deliveries", true),
    ("releases", true),
    ("git_tags", false),
    ("branch_commits", true),
    ("branch_confirmations", false),
    ("builds", true),
    ("publications", true),
    ("publication_steps", false),
    ("publication_contents", false),
    ("jobs", true),
    ("tag_events", true),
    ("tags", false),
    ("purge_horizon", false),
    ("heartbeat", false),
];

/// Rows per INSERT: PostgreSQL takes at most 65,535 parameters in one statement.
const ROWS_PER_INSERT: usize = 200;

/// What an import copied: rows per table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub tables: Vec<(&'static str, u64)>,
}

impl Imported {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// The columns of `table` on PostgreSQL, with whether each is an integer.
async fn pg_columns(
    conn: &mut sqlx::PgConnection,
    table: &str,
) -> Result<Vec<(String, bool)>, StoreError> {
    let columns = sqlx::query!(
        r#"SELECT column_name AS "name!", (data_type = 'bigint') AS "integer!"
           FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = $1
           ORDER BY ordinal_position"#,
        table
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(columns.into_iter().map(|c| (c.name, c.integer)).collect())
}

/// What the copy reads from SQLite for `column` of `table`: the column itself, except a
/// job's state: a queued or running job with an older one in the same state for its
/// publication is copied as done (the older one stands for it).
fn source_column(table: &str, column: &str) -> String {
    if (table, column) == ("jobs", "state") {
        "CASE WHEN state IN ('queued', 'running') AND publication_id IS NOT NULL
                   AND EXISTS (SELECT 1 FROM jobs AS older
                               WHERE older.publication_id = jobs.publication_id
                                 AND older.state = jobs.state AND older.id < jobs.id)
              THEN 'done' ELSE state END"
            .to_owned()
    } else {
        column.to_owned()
    }
}

impl Postgres {
    /// Copies every row of `source` (a SQLite database of this version's schema, not in
    /// use) into this database, which must hold no rows yet. All or nothing.
    pub async fn import_sqlite(&self, source: &Sqlite) -> Result<Imported, StoreError> {
        let mut tx = self.writer.begin().await?;
        // The transaction waits while SQLite's tables are read; a large file may take longer
        // than the idle-in-transaction limit every session has.
        sqlx::query("SET LOCAL idle_in_transaction_session_timeout = 0")
            .execute(&mut *tx)
            .await?;
        // One import at a time, and no replica writing meanwhile would go unnoticed: the
        // emptiness check and the copy are one transaction.
        crate::lock(&mut tx, "import", "sqlite").await?;
        for (table, _) in TABLES {
            let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&mut *tx)
                .await?;
            // The heartbeat is written by any running replica's /readyz; it is not data.
            if rows > 0 && table != "heartbeat" {
                return Err(StoreError::NotCurrent(
                    self.describe(),
                    "it already holds hoist's data; import only into a new, empty database",
                ));
            }
        }
        let mut snapshot = source.reader().begin().await?;
        let mut tables = Vec::new();
        for (table, identity) in TABLES {
            if table == "heartbeat" {
                continue;
            }
            let sqlite_columns: Vec<String> =
                sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .fetch_all(&mut *snapshot)
                    .await?;
            // PostgreSQL's own columns (jobs.locked_by) keep their defaults.
            let columns: Vec<(String, bool)> = pg_columns(&mut tx, table)
                .await?
                .into_iter()
                .filter(|(name, _)| sqlite_columns.contains(name))
                .collect();
            if columns.is_empty() {
                return Err(StoreError::Corrupt(format!("table {table} has no columns")));
            }
            let names = columns
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let read = columns
                .iter()
                .map(|(name, _)| source_column(table, name))
                .collect::<Vec<_>>()
                .join(", ");
            let rows = sqlx::query(&format!("SELECT {read} FROM {table} ORDER BY rowid"))
                .fetch_all(&mut *snapshot)
                .await?;
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut args = PgArguments::default();
                let mut values = Vec::with_capacity(chunk.len());
                for row in chunk {
                    let mut placeholders = Vec::with_capacity(columns.len());
                    for (i, (_, integer)) in columns.iter().enumerate() {
                        let bound = if *integer {
                            args.add(row.try_get::<Option<i64>, _>(i)?)
                        } else {
                            args.add(row.try_get::<Option<String>, _>(i)?)
                        };
                        bound.map_err(|e| StoreError::Corrupt(format!("{table}: {e}")))?;
                        placeholders.push(format!("${}", args.len()));
                    }
                    values.push(format!("({})", placeholders.join(", ")));
                }
                let insert = format!("INSERT INTO {table} ({names}) VALUES {}", values.join(", "));
                sqlx::query_with(&insert, args).execute(&mut *tx).await?;
            }
            if identity {
                // The next id follows the highest copied one.
                sqlx::query(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                   coalesce(max(id), 0) + 1, false) FROM {table}"
                ))
                .execute(&mut *tx)
                .await?;
            }
            tables.push((table, rows.len() as u64));
        }
        // Everything is read: the SQLite snapshot ends before the copy commits, so a failure
        // to end it cannot be reported for a copy that committed.
        snapshot.rollback().await?;
        tx.commit().await?;
        Ok(Imported { tables })
    }
}
