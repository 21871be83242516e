//! The SQL floors: `SELECT` and `UPDATE` of the stored blob, on the store's own pool.

use std::sync::Arc;

use async_trait::async_trait;
use session_core::Id;
use sqlx::{Database, Pool};

use super::{an_hour_from_now_millis, fill};
use crate::harness::{Contender, Res, Role, Subject, Workload};
use crate::payload;

fn now_millis() -> i64 {
    session_core::clock::unix_millis(session_core::now())
}

/// The statements of one SQL dialect on one table.
pub(crate) struct Dialect {
    name: &'static str,
    table: &'static str,
    create: String,
    /// The index on the expiry, which the floor has and the reference has not.
    index: Option<String>,
    insert: String,
    select: String,
    update: String,
    touch: String,
}

impl Dialect {
    fn new(name: &'static str, types: [&str; 2], p: fn(usize) -> String, indexed: bool) -> Self {
        let table = if indexed {
            "session_bench_floor"
        } else {
            "session_bench_floor_noindex"
        };
        let ([id, blob], [a, b, c]) = (types, [1, 2, 3].map(p));
        Self {
            name,
            table,
            create: format!(
                "CREATE TABLE {table} (id {id} NOT NULL PRIMARY KEY, data {blob} NOT NULL, \
                 expires_at BIGINT NOT NULL)"
            ),
            index: indexed.then(|| format!("CREATE INDEX {table}_e ON {table} (expires_at)")),
            insert: format!("INSERT INTO {table} (id, data, expires_at) VALUES ({a}, {b}, {c})"),
            select: format!("SELECT data FROM {table} WHERE id = {a} AND expires_at > {b}"),
            update: format!("UPDATE {table} SET data = {a}, expires_at = {b} WHERE id = {c}"),
            touch: format!(
                "UPDATE {table} SET expires_at = {a} WHERE id = {b} AND expires_at > {c}"
            ),
        }
    }

    pub(crate) fn postgres(indexed: bool) -> Self {
        let types = ["TEXT COLLATE \"C\"", "BYTEA"];
        Self::new("postgres", types, |i| format!("${i}"), indexed)
    }

    pub(crate) fn mysql(indexed: bool) -> Self {
        let types = [
            "VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin",
            "LONGBLOB",
        ];
        Self::new("mysql", types, |_| "?".into(), indexed)
    }

    pub(crate) fn sqlite(indexed: bool) -> Self {
        Self::new("sqlite", ["TEXT", "BLOB"], |i| format!("?{i}"), indexed)
    }
}

/// The raw driver on the same pool as our store: `SELECT data` (ro), then `UPDATE` of the same
/// bytes and expiry (rw), or an `UPDATE` of the expiry alone (touch).
pub(crate) struct SqlFloor<DB: Database> {
    pool: Pool<DB>,
    sql: Arc<Dialect>,
    ids: Vec<String>,
}

macro_rules! sql_floor {
    ($db:ty) => {
        impl SqlFloor<$db> {
            /// The floor, and the reference: the floor on a table without the expiry index.
            pub(crate) async fn contenders(
                pool: Pool<$db>,
                dialect: fn(bool) -> Dialect,
                n: usize,
                size: usize,
            ) -> Res<[Contender; 2]> {
                let floor = Self::prepare(pool.clone(), dialect(true), n, size).await?;
                let label = format!("floor: sqlx ({}) SELECT / UPDATE", floor.sql.name);
                let bare = Self::prepare(pool, dialect(false), n, size).await?;
                Ok([
                    Contender::new(label, Role::Floor, floor),
                    Contender::new(
                        "reference: the floor without an index on expires_at",
                        Role::Reference,
                        bare,
                    ),
                ])
            }

            async fn prepare(
                pool: Pool<$db>,
                dialect: Dialect,
                n: usize,
                size: usize,
            ) -> Res<Self> {
                let sql = Arc::new(dialect);
                let drop = format!("DROP TABLE IF EXISTS {}", sql.table);
                for statement in [Some(&drop), Some(&sql.create), sql.index.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                        .execute(&pool)
                        .await?;
                }
                let ids = (0..n).map(|_| Id::random().to_string()).collect();
                let ids = fill(ids, 16, |i, id| {
                    let (pool, sql) = (pool.clone(), Arc::clone(&sql));
                    async move {
                        sqlx::query(sqlx::AssertSqlSafe(sql.insert.clone()))
                            .bind(id)
                            .bind(payload::bytes(&payload::object(i, size)))
                            .bind(an_hour_from_now_millis())
                            .execute(&pool)
                            .await?;
                        Ok(())
                    }
                })
                .await?;
                Ok(Self { pool, sql, ids })
            }
        }

        #[async_trait]
        impl Subject for SqlFloor<$db> {
            fn sessions(&self) -> usize {
                self.ids.len()
            }

            async fn cycle(&self, workload: Workload, _task: usize, slot: usize, _n: u64) -> Res {
                let id = self.ids[slot].as_str();
                if workload == Workload::Touch {
                    let done = sqlx::query(sqlx::AssertSqlSafe(self.sql.touch.as_str()))
                        .bind(an_hour_from_now_millis())
                        .bind(id)
                        .bind(now_millis())
                        .execute(&self.pool)
                        .await?;
                    return if done.rows_affected() == 1 {
                        Ok(())
                    } else {
                        Err("session vanished".into())
                    };
                }
                let (data,): (Vec<u8>,) =
                    sqlx::query_as(sqlx::AssertSqlSafe(self.sql.select.as_str()))
                        .bind(id)
                        .bind(now_millis())
                        .fetch_optional(&self.pool)
                        .await?
                        .ok_or("session vanished")?;
                if workload == Workload::Rw {
                    sqlx::query(sqlx::AssertSqlSafe(self.sql.update.as_str()))
                        .bind(data)
                        .bind(an_hour_from_now_millis())
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                }
                Ok(())
            }
        }
    };
}

sql_floor!(sqlx::Postgres);
sql_floor!(sqlx::MySql);
sql_floor!(sqlx::Sqlite);
