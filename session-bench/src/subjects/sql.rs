//! The SQL floors: `SELECT` and `UPDATE` of the stored blob, on the store's own pool.

use std::sync::Arc;

use async_trait::async_trait;
use session_core::Id;
use sqlx::{Database, Pool};

use super::{an_hour_from_now, fill};
use crate::harness::{Res, Role, Subject, Workload};
use crate::payload;

fn millis(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn now_millis() -> i64 {
    millis(session_core::now())
}

/// The statements of one SQL dialect.
pub(crate) struct Dialect {
    name: &'static str,
    table: String,
    create: String,
    index: Option<String>,
    insert: String,
    select: String,
    update: String,
    touch: String,
}

impl Dialect {
    fn new(name: &'static str, id_type: &str, blob: &str, p: fn(usize) -> String) -> Self {
        const TABLE: &str = "session_bench_floor";
        Self {
            name,
            table: TABLE.to_owned(),
            create: format!(
                "CREATE TABLE {TABLE} (id {id_type} NOT NULL PRIMARY KEY, \
                 data {blob} NOT NULL, expires_at BIGINT NOT NULL)"
            ),
            index: Some(format!(
                "CREATE INDEX {TABLE}_expires ON {TABLE} (expires_at)"
            )),
            insert: format!(
                "INSERT INTO {TABLE} (id, data, expires_at) VALUES ({}, {}, {})",
                p(1),
                p(2),
                p(3)
            ),
            select: format!(
                "SELECT data FROM {TABLE} WHERE id = {} AND expires_at > {}",
                p(1),
                p(2)
            ),
            update: format!(
                "UPDATE {TABLE} SET data = {}, expires_at = {} WHERE id = {}",
                p(1),
                p(2),
                p(3)
            ),
            touch: format!(
                "UPDATE {TABLE} SET expires_at = {} WHERE id = {} AND expires_at > {}",
                p(1),
                p(2),
                p(3)
            ),
        }
    }

    pub(crate) fn postgres() -> Self {
        Self::new("postgres", "TEXT COLLATE \"C\"", "BYTEA", |i| {
            format!("${i}")
        })
    }

    pub(crate) fn mysql() -> Self {
        Self::new(
            "mysql",
            "VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin",
            "LONGBLOB",
            |_| "?".into(),
        )
    }

    pub(crate) fn sqlite() -> Self {
        Self::new("sqlite", "TEXT", "BLOB", |i| format!("?{i}"))
    }

    /// The same statements on another table that has no index on `expires_at`.
    pub(crate) fn without_expiry_index(self) -> Self {
        let other = "session_bench_floor_noindex";
        let swap = |s: &str| s.replace(&self.table, other);
        Self {
            name: self.name,
            table: other.to_owned(),
            create: swap(&self.create),
            index: None,
            insert: swap(&self.insert),
            select: swap(&self.select),
            update: swap(&self.update),
            touch: swap(&self.touch),
        }
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
            pub(crate) async fn prepare(
                pool: Pool<$db>,
                dialect: Dialect,
                n: usize,
                size: usize,
            ) -> Res<Self> {
                let sql = Arc::new(dialect);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP TABLE IF EXISTS {}",
                    sql.table
                )))
                .execute(&pool)
                .await?;
                sqlx::query(sqlx::AssertSqlSafe(sql.create.clone()))
                    .execute(&pool)
                    .await?;
                if let Some(index) = &sql.index {
                    sqlx::query(sqlx::AssertSqlSafe(index.clone()))
                        .execute(&pool)
                        .await?;
                }
                let ids: Arc<Vec<String>> =
                    Arc::new((0..n).map(|_| Id::random().to_string()).collect());
                fill(n, 16, |i| {
                    let (pool, sql, ids) = (pool.clone(), Arc::clone(&sql), Arc::clone(&ids));
                    async move {
                        sqlx::query(sqlx::AssertSqlSafe(sql.insert.clone()))
                            .bind(ids[i].as_str())
                            .bind(payload::bytes(&payload::object(i, size)))
                            .bind(millis(an_hour_from_now()))
                            .execute(&pool)
                            .await?;
                        Ok(())
                    }
                })
                .await?;
                let ids = Arc::try_unwrap(ids).unwrap_or_else(|s| (*s).clone());
                Ok(Self { pool, sql, ids })
            }
        }

        #[async_trait]
        impl Subject for SqlFloor<$db> {
            fn label(&self) -> String {
                if self.sql.index.is_some() {
                    format!("floor: sqlx ({}) SELECT / UPDATE", self.sql.name)
                } else {
                    "reference: the floor without an index on expires_at".to_owned()
                }
            }

            fn role(&self) -> Role {
                if self.sql.index.is_some() {
                    Role::Floor
                } else {
                    Role::Reference
                }
            }

            fn sessions(&self) -> usize {
                self.ids.len()
            }

            async fn cycle(&self, workload: Workload, _task: usize, slot: usize, _n: u64) -> Res {
                let id = self.ids[slot].as_str();
                if workload == Workload::Touch {
                    let done = sqlx::query(sqlx::AssertSqlSafe(self.sql.touch.as_str()))
                        .bind(millis(an_hour_from_now()))
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
                        .bind(millis(an_hour_from_now()))
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
