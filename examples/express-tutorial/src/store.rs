//! Store selection: the store a URL names, opened and ready (tables and indexes created), and
//! how the page names it.

use std::sync::Arc;

use session_core::{Error, Store, cleanup::CleanupTask};

/// The store used when neither `--store` nor `SESSION_STORE` names one: a file beside the app,
/// so sessions survive a restart.
pub const DEFAULT_STORE: &str = "sqlite://express-tutorial.db";

/// A store opened from a URL, with the cleanup task SQL stores need (dropping it stops it).
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// What it is and where, for the page and the logs.
    pub info: StoreInfo,
    /// Deletes expired rows periodically, for stores without native expiry.
    pub cleanup: Option<CleanupTask>,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("info", &self.info)
            .field("cleanup", &self.cleanup.is_some())
            .finish_non_exhaustive()
    }
}

/// Which store holds the sessions, fit to show to anyone: the URL without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    /// The kind of store, e.g. `SQLite` or `Redis`.
    pub kind: &'static str,
    /// Its URL, with any password replaced by `***` (see [`redact`]).
    pub url: String,
}

impl StoreInfo {
    /// Describes the store `url` names, or `None` for a scheme the app does not know.
    #[must_use]
    pub fn of(url: &str) -> Option<Self> {
        let kind = match scheme(url) {
            "memory" => "memory (this process only: lost on restart)",
            "sqlite" => "SQLite",
            "redis" | "rediss" => "Redis",
            "postgres" | "postgresql" => "PostgreSQL",
            "mysql" => "MySQL",
            "mariadb" => "MariaDB",
            "mongodb" | "mongodb+srv" => "MongoDB",
            _ => return None,
        };
        Some(Self {
            kind,
            url: redact(url),
        })
    }
}

impl StoreInfo {
    /// Describes the store `url` names in its Express-compatible layout, or `None` for a scheme
    /// without one (an Express app keeps its sessions in Redis, PostgreSQL or MongoDB through
    /// connect-redis, connect-pg-simple or connect-mongo).
    #[must_use]
    pub fn express(url: &str) -> Option<Self> {
        let kind = match scheme(url) {
            "redis" | "rediss" => "Redis, connect-redis's layout (shared with Express)",
            "postgres" | "postgresql" => {
                "PostgreSQL, connect-pg-simple's layout (shared with Express)"
            }
            "mongodb" | "mongodb+srv" => "MongoDB, connect-mongo's layout (shared with Express)",
            _ => return None,
        };
        Some(Self {
            kind,
            url: redact(url),
        })
    }
}

fn scheme(url: &str) -> &str {
    url.split_once(':').map_or(url, |(scheme, _)| scheme)
}

/// Opens the store a URL names: `memory`, `sqlite://file.db` (or `sqlite::memory:`),
/// `redis://` (or `rediss://`), `postgres://`, `mysql://` (or `mariadb://`), `mongodb://` (or
/// `mongodb+srv://`). SQL tables and MongoDB indexes are created if missing.
///
/// # Errors
///
/// [`Error::InvalidConfig`] for an unknown scheme or one this build leaves out (its cargo
/// feature is off), [`Error::Backend`] if the store cannot be reached.
pub async fn open_store(url: &str) -> Result<OpenedStore, Error> {
    let Some(info) = StoreInfo::of(url) else {
        return Err(Error::invalid_config(format!(
            "unknown session store URL {:?}: use memory, sqlite://FILE, redis://, postgres://, mysql:// or mongodb://",
            redact(url)
        )));
    };
    let (store, cleanup) = match scheme(url) {
        "memory" => plain(session_memory::MemoryStore::new()),
        "sqlite" => sqlite(url).await?,
        "redis" | "rediss" => redis(url).await?,
        "postgres" | "postgresql" => postgres(url).await?,
        "mysql" | "mariadb" => mysql(url).await?,
        _ => mongodb(url).await?,
    };
    Ok(OpenedStore {
        store,
        info,
        cleanup,
    })
}

/// Opens the store a URL names in the layout of the Node package an Express app keeps its
/// sessions with, at that package's default place: `redis://` (connect-redis, keys `sess:ID`),
/// `postgres://` (connect-pg-simple, table `"session"`), `mongodb://` (connect-mongo,
/// collection `sessions`). Tables and indexes are created if missing.
///
/// # Errors
///
/// [`Error::InvalidConfig`] for a scheme without an Express-compatible layout, or one this
/// build leaves out; [`Error::Backend`] if the store cannot be reached.
pub async fn open_express_store(url: &str) -> Result<OpenedStore, Error> {
    let Some(info) = StoreInfo::express(url) else {
        return Err(Error::invalid_config(format!(
            "the session store URL {:?} has no Express-compatible layout: use redis://, postgres:// or mongodb:// \
             (the stores of connect-redis, connect-pg-simple and connect-mongo)",
            redact(url)
        )));
    };
    let (store, cleanup) = match scheme(url) {
        "redis" | "rediss" => express_redis(url).await?,
        "postgres" | "postgresql" => express_postgres(url).await?,
        _ => express_mongodb(url).await?,
    };
    Ok(OpenedStore {
        store,
        info,
        cleanup,
    })
}

type Opened = (Arc<dyn Store>, Option<CleanupTask>);

fn plain(store: impl Store) -> Opened {
    (Arc::new(store), None)
}

#[allow(dead_code)] // used only by builds that leave a store out
fn not_in_this_build(feature: &str) -> Error {
    Error::invalid_config(format!(
        "this store is not supported in this build: rebuild with `--features {feature}`"
    ))
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn with_cleanup<S>(store: S) -> Result<Opened, Error>
where
    S: Store + session_core::ExpiredDeletion,
{
    use session_core::cleanup::{self, CleanupConfig};
    let store = Arc::new(store);
    let cleanup = cleanup::spawn(
        Arc::clone(&store),
        CleanupConfig::new(std::time::Duration::from_secs(600)),
    )?;
    Ok((store, Some(cleanup)))
}

#[cfg(feature = "sqlite")]
async fn sqlite(url: &str) -> Result<Opened, Error> {
    let store = session_sqlx::SqliteStore::connect(url).await?;
    store.migrate().await?;
    with_cleanup(store)
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite(_: &str) -> Result<Opened, Error> {
    Err(not_in_this_build("sqlite"))
}

#[cfg(feature = "postgres")]
async fn postgres(url: &str) -> Result<Opened, Error> {
    let store = session_sqlx::PostgresStore::connect(url).await?;
    store.migrate().await?;
    with_cleanup(store)
}

#[cfg(not(feature = "postgres"))]
async fn postgres(_: &str) -> Result<Opened, Error> {
    Err(not_in_this_build("postgres"))
}

#[cfg(feature = "mysql")]
async fn mysql(url: &str) -> Result<Opened, Error> {
    // sqlx knows MariaDB by its MySQL scheme.
    let url = match url.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => url.to_owned(),
    };
    let store = session_sqlx::MySqlStore::connect(&url).await?;
    store.migrate().await?;
    with_cleanup(store)
}

#[cfg(not(feature = "mysql"))]
async fn mysql(_: &str) -> Result<Opened, Error> {
    Err(not_in_this_build("mysql"))
}

#[cfg(feature = "redis")]
async fn redis(url: &str) -> Result<Opened, Error> {
    Ok(plain(session_redis::RedisStore::connect(url).await?))
}

#[cfg(not(feature = "redis"))]
async fn redis(_: &str) -> Result<Opened, Error> {
    Err(not_in_this_build("redis"))
}

#[cfg(feature = "mongodb")]
async fn mongodb(url: &str) -> Result<Opened, Error> {
    let store = session_mongo::MongoStore::connect(url).await?;
    store.migrate().await?;
    Ok(plain(store))
}

#[cfg(not(feature = "mongodb"))]
async fn mongodb(_: &str) -> Result<Opened, Error> {
    Err(not_in_this_build("mongodb"))
}

#[cfg(feature = "redis")]
async fn express_redis(url: &str) -> Result<Opened, Error> {
    Ok(plain(
        session_redis::RedisStore::connect(url)
            .await?
            .express_compatible(),
    ))
}

#[cfg(not(feature = "redis"))]
async fn express_redis(_: &str) -> Result<Opened, Error> {
    Err(not_in_this_build("redis"))
}

#[cfg(feature = "postgres")]
async fn express_postgres(url: &str) -> Result<Opened, Error> {
    let store = session_sqlx::PostgresStore::connect(url)
        .await?
        .express_compatible();
    store.migrate().await?;
    // connect-pg-simple prunes expired rows too, when the Express app runs.
    with_cleanup(store)
}

#[cfg(not(feature = "postgres"))]
async fn express_postgres(_: &str) -> Result<Opened, Error> {
    Err(not_in_this_build("postgres"))
}

#[cfg(feature = "mongodb")]
async fn express_mongodb(url: &str) -> Result<Opened, Error> {
    let store = session_mongo::MongoStore::connect(url)
        .await?
        .express_compatible();
    store.migrate().await?;
    Ok(plain(store))
}

#[cfg(not(feature = "mongodb"))]
async fn express_mongodb(_: &str) -> Result<Opened, Error> {
    Err(not_in_this_build("mongodb"))
}

/// `url` fit for logs and pages: a password in its user information or in a `password` query
/// parameter (which PostgreSQL and MySQL URLs accept) becomes `***`. A URL the `url` crate
/// cannot parse (a MongoDB URL with several hosts) that might hold a password keeps only its
/// scheme.
#[must_use]
pub fn redact(url: &str) -> String {
    const HIDDEN: &str = "***";
    let Ok(mut parsed) = url::Url::parse(url) else {
        return if url.contains('@') || url.to_ascii_lowercase().contains("password") {
            format!("{}://({HIDDEN})", scheme(url))
        } else {
            url.to_owned()
        };
    };
    if parsed.password().is_some() {
        // Fails only for URLs that cannot hold a password, and this one held one.
        let _ = parsed.set_password(Some(HIDDEN));
    }
    let secret_query = parsed
        .query_pairs()
        .any(|(name, _)| name.eq_ignore_ascii_case("password"));
    if secret_query {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if name.eq_ignore_ascii_case("password") {
                    HIDDEN.to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::{StoreInfo, redact};

    #[test]
    fn redact_hides_passwords_and_keeps_the_rest() {
        let cases = [
            ("memory", "memory"),
            (
                "sqlite://express-tutorial.db",
                "sqlite://express-tutorial.db",
            ),
            ("sqlite::memory:", "sqlite::memory:"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
            (
                "postgres://app:s3cret@db/sessions?sslmode=require",
                "postgres://app:***@db/sessions?sslmode=require",
            ),
            (
                "postgres://app@db/sessions?password=s3cret&sslmode=require",
                "postgres://app@db/sessions?password=***&sslmode=require",
            ),
            ("mysql://app@db/sessions", "mysql://app@db/sessions"),
            (
                "mongodb://app:s3cret@a:27017,b:27017/?replicaSet=rs0",
                "mongodb://(***)",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn store_info_names_each_kind_and_refuses_unknown_schemes() {
        let info = StoreInfo::of("postgresql://app:s3cret@db/app").expect("known");
        assert_eq!(info.kind, "PostgreSQL");
        assert_eq!(info.url, "postgresql://app:***@db/app");
        assert_eq!(StoreInfo::of("redis://r").expect("known").kind, "Redis");
        assert_eq!(StoreInfo::of("cassandra://c"), None);
    }
}
