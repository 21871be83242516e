//! The sessions of a principal: listing and revocation through the `principal` column's
//! index, with the database's clock deciding which rows are live, as in every other statement.

use std::sync::Arc;

use session_core::{Error, Id, Record, Result};
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use crate::SqlStore;
use crate::dialect::Dialect;
use crate::store::{retry, statement};

/// The columns `sessions_of` reads: the id, then those of [`Row`](crate::store::Row).
type Listed = (String, Vec<u8>, i64, i64, i64, Option<String>);

impl<DB: Dialect> SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    DB::Arguments: IntoArguments<DB>,
{
    /// Fails unless the table has the store's own layout: another program's (Express's) has
    /// no principal column.
    fn check_own_layout(&self) -> Result<()> {
        match self.layout() {
            None => Ok(()),
            Some(_) => Err(Error::invalid_config(
                "the sessions of a principal need the store's own table layout; the \
                 Express-compatible layout keeps no principal",
            )),
        }
    }

    pub(crate) async fn sessions_of(&self, principal: &str) -> Result<Vec<Record>> {
        const WHAT: &str = "list the sessions of a principal";
        self.check_own_layout()?;
        let rows = self
            .timed(
                WHAT,
                retry(WHAT, DB::classify, || {
                    sqlx::query_as::<DB, Listed>(AssertSqlSafe(Arc::clone(
                        &self.statements().sessions_of,
                    )))
                    .bind(principal)
                    .fetch_all(self.pool())
                }),
            )
            .await?;
        rows.into_iter()
            .map(|(id, data, created_at, expires_at, version, stored)| {
                let id = Id::try_from(id).map_err(Error::decode)?;
                self.record(id, (data, created_at, expires_at, version, stored))
            })
            .collect()
    }

    pub(crate) async fn revoke(&self, principal: &str, id: &Id) -> Result<bool> {
        const WHAT: &str = "revoke a session of a principal";
        self.check_own_layout()?;
        let done = self
            .timed(
                WHAT,
                self.execute(WHAT, || {
                    statement::<DB>(&self.statements().revoke)
                        .bind(id.as_str())
                        .bind(principal)
                }),
            )
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    pub(crate) async fn revoke_all(&self, principal: &str, keep: Option<&Id>) -> Result<u64> {
        const WHAT: &str = "revoke the sessions of a principal";
        self.check_own_layout()?;
        let done = self
            .timed(
                WHAT,
                self.execute(WHAT, || {
                    statement::<DB>(&self.statements().revoke_all)
                        .bind(principal)
                        .bind(keep.map(Id::as_str))
                }),
            )
            .await?;
        Ok(DB::rows_affected(&done))
    }
}

/// The statements of listing and revocation use the `principal` index, on each database: the
/// plan the database makes for the store's own statements names it. (A comparison the index
/// cannot serve, e.g. under another collation or through a conversion of the column, or a
/// partial index the query does not imply, would show as another plan.)
#[cfg(test)]
mod tests {
    use sqlx::AssertSqlSafe;

    /// Principals to fill the table with, so that a cost-based planner sees a selective index.
    const PRINCIPALS: usize = 50;

    fn records() -> Vec<session_core::Record> {
        (0..PRINCIPALS * 4)
            .map(|i| {
                let record =
                    session_core::Record::new(session_core::Id::random(), time::Duration::hours(1));
                // Every fourth session is anonymous.
                let principal = (i % 4 != 0).then(|| format!("user-{}", i % PRINCIPALS));
                record.with_principal(principal)
            })
            .collect()
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_lists_and_revokes_through_the_principal_index() {
        let store = crate::SqliteStore::connect("sqlite::memory:")
            .await
            .expect("open an in-memory database");
        store.migrate().await.expect("migrate");
        for record in records() {
            store.create(&record).await.expect("create");
        }
        let sql = store.statements();
        for (what, statement, binds) in [
            ("sessions_of", &sql.sessions_of, 1),
            ("revoke_all", &sql.revoke_all, 2),
        ] {
            let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(AssertSqlSafe(format!(
                "EXPLAIN QUERY PLAN {statement}"
            )));
            for _ in 0..binds {
                query = query.bind("user-1");
            }
            let plan: Vec<String> = query
                .fetch_all(store.pool())
                .await
                .expect("explain")
                .into_iter()
                .map(|(.., detail)| detail)
                .collect();
            assert!(
                plan.iter()
                    .any(|step| step.contains("USING INDEX sessions_principal_idx (principal=?)")),
                "{what}: the plan does not search the principal index: {plan:?}"
            );
        }
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_lists_and_revokes_through_the_principal_index() {
        use sqlx::Executor as _;
        let server = session_testcontainers::postgres().await;
        let store = crate::PostgresStore::connect(server.url())
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        for record in records() {
            store.create(&record).await.expect("create");
        }
        let mut connection = store.pool().acquire().await.expect("a connection");
        // A table this small is cheaper to read whole; without that option the plan shows
        // whether the index can serve the statement, not whether it pays on 200 rows.
        connection
            .execute("ANALYZE sessions; SET enable_seqscan = off")
            .await
            .expect("analyze, and no sequential scans");
        let sql = store.statements();
        for (what, statement, binds) in [
            ("sessions_of", &sql.sessions_of, 1),
            ("revoke_all", &sql.revoke_all, 2),
        ] {
            let mut query =
                sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("EXPLAIN {statement}")));
            for _ in 0..binds {
                query = query.bind("user-1");
            }
            let plan = query
                .fetch_all(&mut *connection)
                .await
                .expect("explain")
                .join("\n");
            // An index scan whose condition is the principal (bound as 'user-1'), not a scan
            // of the whole index with a filter, which is what is left with sequential scans
            // off when the index cannot serve the comparison.
            assert!(
                plan.contains("Index Scan on sessions_principal_idx")
                    && plan.contains("Index Cond: (principal = 'user-1'::text)"),
                "{what}: the plan does not search the principal index:\n{plan}"
            );
        }
    }

    #[cfg(feature = "mysql")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql_lists_and_revokes_through_the_principal_index() {
        use sqlx::{Executor as _, Row as _};
        let server = session_testcontainers::mariadb().await;
        let store = crate::MySqlStore::connect(server.url())
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        for record in records() {
            store.create(&record).await.expect("create");
        }
        let mut connection = store.pool().acquire().await.expect("a connection");
        connection
            .execute("ANALYZE TABLE sessions")
            .await
            .expect("analyze");
        let sql = store.statements();
        for (what, statement, binds) in [
            ("sessions_of", &sql.sessions_of, 1),
            ("revoke_all", &sql.revoke_all, 2),
        ] {
            let mut query = sqlx::query(AssertSqlSafe(format!("EXPLAIN {statement}")));
            for _ in 0..binds {
                query = query.bind("user-1");
            }
            let rows = query.fetch_all(&mut *connection).await.expect("explain");
            let keys: Vec<Option<String>> = rows
                .iter()
                .map(|row| {
                    row.try_get::<Option<String>, _>("key")
                        .expect("the key column")
                })
                .collect();
            assert_eq!(
                keys,
                [Some("sessions_principal_idx".to_owned())],
                "{what}: the index the plan uses"
            );
        }
    }
}
