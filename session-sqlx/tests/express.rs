//! connect-pg-simple's layout (`express_compatible`) against PostgreSQL in a container: sessions
//! written exactly as connect-pg-simple writes them load in Rust, Rust writes exactly its shape,
//! a write by either side is never lost to a Rust save that did not read it, the `expire`
//! column's time zone, texts PostgreSQL's JSON operators cannot read, `migrate`, and the
//! database's clock. (`tests/express_conformance.rs` runs the suites on this layout.)
#![cfg(feature = "postgres")]

mod common;

use std::time::Duration as StdDuration;

use serde_json::json;
use session_core::express::{foreign_version, js_date};
use session_core::{Error, ExpiredDeletion as _, Id, Record, Store, now};
use session_sqlx::PostgresStore;
use session_testcontainers::{self as containers, Container};
use sqlx::Executor as _;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use time::OffsetDateTime;

const HOUR: time::Duration = time::Duration::hours(1);

async fn setup() -> (PostgresStore, PgPool, Container) {
    let server = containers::postgres().await;
    let store = PostgresStore::connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e:?}", server.url()))
        .express_compatible();
    store.migrate().await.expect("migrate");
    let pool = store.pool().clone();
    (store, pool, server)
}

fn millis(t: OffsetDateTime) -> i64 {
    session_core::clock::unix_millis(t)
}

/// A session as express-session 1.19 serializes it (`JSON.stringify`, cookie first, unset
/// optional cookie fields left out), with `originalMaxAge` 1 hour and the app's `username`.
fn express_json(expires: OffsetDateTime, username: &str) -> String {
    format!(
        r#"{{"cookie":{{"originalMaxAge":3600000,"expires":"{}","httpOnly":true,"path":"/"}},"username":"{username}"}}"#,
        js_date(expires)
    )
}

/// `cookie.expires` in whole seconds, rounded up, as connect-pg-simple 10 writes `expire`.
fn expire_seconds(expires: OffsetDateTime) -> i64 {
    (millis(expires) + 999).div_euclid(1000)
}

/// What connect-pg-simple 10 sends to save a session (`set`). node-postgres sends the session
/// object as its JSON text and the expiry as a number; here the text is cast to `json`
/// explicitly, since sqlx types a text parameter.
async fn connect_pg_simple_set(pool: &PgPool, sid: &str, json: &str, expires: OffsetDateTime) {
    sqlx::query(
        "INSERT INTO \"session\" (sess, expire, sid) SELECT $1::json, to_timestamp($2), $3 \
         ON CONFLICT (sid) DO UPDATE SET sess=$1::json, expire=to_timestamp($2) RETURNING sid",
    )
    .bind(json)
    .bind(expire_seconds(expires))
    .bind(sid)
    .execute(pool)
    .await
    .expect("INSERT as connect-pg-simple");
}

/// What connect-pg-simple 10 reads (`get`): the session if `expire` is not before now, in whole
/// seconds rounded up by the app's clock.
async fn connect_pg_simple_get(pool: &PgPool, sid: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT sess::text FROM \"session\" WHERE sid = $1 AND expire >= to_timestamp($2)",
    )
    .bind(sid)
    .bind(expire_seconds(now()))
    .fetch_optional(pool)
    .await
    .expect("SELECT as connect-pg-simple")
}

/// What connect-pg-simple 10 sends to touch a session: only `expire` moves.
async fn connect_pg_simple_touch(pool: &PgPool, sid: &str, expires: OffsetDateTime) {
    sqlx::query("UPDATE \"session\" SET expire = to_timestamp($1) WHERE sid = $2 RETURNING sid")
        .bind(expire_seconds(expires))
        .bind(sid)
        .execute(pool)
        .await
        .expect("UPDATE as connect-pg-simple");
}

/// The stored text and `expire` (Unix ms, read as UTC like the store's connections) of `sid`.
async fn stored(pool: &PgPool, sid: &str) -> Option<(String, i64)> {
    sqlx::query_as(
        "SELECT sess::text, (extract(epoch from expire AT TIME ZONE 'UTC') * 1000)::bigint \
         FROM \"session\" WHERE sid = $1",
    )
    .bind(sid)
    .fetch_optional(pool)
    .await
    .expect("read the row")
}

async fn stored_text(pool: &PgPool, sid: &str) -> String {
    stored(pool, sid).await.expect("the row exists").0
}

/// The first 60 bits of the text's MD5, computed by PostgreSQL itself.
async fn postgres_digest_version(pool: &PgPool, text: &str) -> u64 {
    let hex: String = sqlx::query_scalar("SELECT md5($1)")
        .bind(text)
        .fetch_one(pool)
        .await
        .expect("md5");
    foreign_version(&hex).expect("a 32-digit digest")
}

/// The stored text as express-session rebuilds it when it saves: the app's values kept, the
/// `cookie` object rebuilt from express-session's own fields (so the Rust side's are dropped),
/// and `changes` applied.
fn as_express_rewrites(stored: &str, changes: &[(&str, serde_json::Value)]) -> String {
    let mut session: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(stored).expect("stored JSON");
    let cookie = session
        .get_mut("cookie")
        .and_then(serde_json::Value::as_object_mut)
        .expect("a cookie object");
    cookie.retain(|k, _| {
        [
            "originalMaxAge",
            "partitioned",
            "priority",
            "expires",
            "secure",
            "httpOnly",
            "domain",
            "path",
            "sameSite",
        ]
        .contains(&k.as_str())
    });
    for (key, value) in changes {
        session.insert((*key).to_owned(), value.clone());
    }
    serde_json::to_string(&session).expect("JSON")
}

/// A record with express-session's `cookie` object and a `username`, as the middleware's
/// Express mode keeps it.
fn express_record() -> Record {
    let mut record = Record::new(Id::random(), HOUR);
    let cookie = json!({"originalMaxAge": 3_600_000, "expires": js_date(record.expires_at), "httpOnly": true, "path": "/"});
    record.data.insert("cookie", &cookie).expect("encode");
    record.data.insert("username", "JohnDoe").expect("encode");
    record
}

async fn execute(pool: &PgPool, sql: &str) {
    pool.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A session written by connect-pg-simple loads in Rust: its values as plain JSON, its `cookie`
/// object, `expire` as `expires_at`, and as version the first 60 bits of the text's MD5 (the
/// digest PostgreSQL computes); `created_at` is the database's clock at load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_written_session_loads() {
    let (store, pool, _server) = setup().await;
    let id: Id = "xuPkBiPkSJh0hqy8vj3TvDkBjzODO9ch"
        .parse()
        .expect("an express-session id");
    let expires = now() + HOUR;
    let text = express_json(expires, "JohnDoe");
    connect_pg_simple_set(&pool, id.as_str(), &text, expires).await;

    let before = now();
    let loaded = store.load(&id).await.expect("load").expect("live");
    assert_eq!(
        loaded.data.get::<String>("username").expect("decode"),
        Some("JohnDoe".to_owned())
    );
    assert_eq!(
        loaded
            .data
            .get::<serde_json::Value>("cookie")
            .expect("decode"),
        Some(
            json!({"originalMaxAge": 3_600_000, "expires": js_date(expires), "httpOnly": true, "path": "/"})
        ),
        "the cookie object is data"
    );
    assert_eq!(
        loaded.version,
        postgres_digest_version(&pool, &text).await,
        "the version of a text Express wrote"
    );
    assert_eq!(
        millis(loaded.expires_at),
        expire_seconds(expires) * 1000,
        "expires_at is `expire`, whole seconds as connect-pg-simple writes it"
    );
    let since = loaded.created_at - before;
    assert!(
        since.abs() <= time::Duration::seconds(5),
        "no created_at is stored: the database's clock at load stands in ({since} from the \
         test's clock)"
    );
    assert_eq!(loaded.principal, None);
}

/// A Rust save over a session Express wrote succeeds once; a second save from the same load
/// (a stale version) conflicts and leaves the first one's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_save_over_express_session_succeeds_once() {
    let (store, pool, _server) = setup().await;
    let id = Id::random();
    let expires = now() + HOUR;
    connect_pg_simple_set(
        &pool,
        id.as_str(),
        &express_json(expires, "JohnDoe"),
        expires,
    )
    .await;

    let loaded = store.load(&id).await.expect("load").expect("live");
    let mut first = loaded.clone();
    first.data.insert("visits", &1).expect("encode");
    store.save(&first).await.expect("save over Express's text");
    let mut second = loaded.clone();
    second.data.insert("visits", &2).expect("encode");
    assert!(
        matches!(store.save(&second).await, Err(Error::Conflict)),
        "a second save at the version Express's text had"
    );

    let now_stored = store.load(&id).await.expect("load").expect("live");
    assert_eq!(now_stored.version, loaded.version + 1);
    assert_eq!(
        now_stored.data.get::<i64>("visits").expect("decode"),
        Some(1)
    );
    assert_eq!(
        now_stored.data.get::<String>("username").expect("decode"),
        Some("JohnDoe".to_owned()),
        "Express's values are kept"
    );
    assert_eq!(
        now_stored.created_at, loaded.created_at,
        "the first Rust write stores the created_at it loaded"
    );
}

/// No lost update: a Rust save at a version read before an Express write conflicts, whether the
/// Rust side or Express wrote the text it read; after a reload the save goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_write_makes_older_rust_save_conflict() {
    let (store, pool, _server) = setup().await;
    let record = express_record();
    store.create(&record).await.expect("create");
    let sid = record.id.as_str();

    // 1. The Rust side wrote last: its version is `rsVersion`.
    let rust_read = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(rust_read.version, record.version);
    let express_text = as_express_rewrites(
        &stored_text(&pool, sid).await,
        &[("username", json!("Express1"))],
    );
    connect_pg_simple_set(&pool, sid, &express_text, record.expires_at).await;
    let mut late = rust_read.clone();
    late.data.insert("username", "Rust").expect("encode");
    assert!(
        matches!(store.save(&late).await, Err(Error::Conflict)),
        "a save from before Express's write must conflict"
    );
    assert_eq!(
        stored_text(&pool, sid).await,
        express_text,
        "Express's write is kept byte for byte"
    );

    // 2. Express wrote last: its version is the digest; another Express write changes it.
    let express_read = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(
        express_read.data.get::<String>("username").expect("decode"),
        Some("Express1".to_owned())
    );
    let express_text2 = as_express_rewrites(&express_text, &[("username", json!("Express2"))]);
    connect_pg_simple_set(&pool, sid, &express_text2, record.expires_at).await;
    let mut late = express_read.clone();
    late.data.insert("username", "Rust").expect("encode");
    assert!(
        matches!(store.save(&late).await, Err(Error::Conflict)),
        "a save from before Express's second write must conflict"
    );

    // 3. Reloaded, the Rust save goes through on top of Express's data.
    let mut fresh = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(
        fresh.version,
        postgres_digest_version(&pool, &express_text2).await
    );
    fresh.data.insert("visits", &1).expect("encode");
    store.save(&fresh).await.expect("save after reload");
    let last = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(
        last.data.get::<String>("username").expect("decode"),
        Some("Express2".to_owned())
    );
    assert_eq!(last.data.get::<i64>("visits").expect("decode"), Some(1));
    assert_eq!(last.version, fresh.version + 1);
}

/// What Rust writes is connect-pg-simple's shape: a row of `"session"` keyed by the id, `sess`
/// express-session's JSON with the `cookie` object first (the Rust side's `rsVersion` and
/// `rsCreated` in it, which express-session ignores) and the values as plain JSON, `expire` the
/// session's expiry; connect-pg-simple's own `get` returns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_writes_connect_pg_simple_shape() {
    let (store, pool, _server) = setup().await;
    assert_eq!(store.table(), "session");
    assert!(store.is_express_compatible());
    let mut record = express_record();
    record.version = 12;
    record
        .data
        .insert("cart", &json!({"items": [1, 2], "total": 9.5}))
        .expect("encode");
    record.principal = Some("ada".to_owned());
    store.create(&record).await.expect("create");

    let (text, expire) = stored(&pool, record.id.as_str())
        .await
        .expect("a row under the id");
    assert!(
        text.starts_with(r#"{"cookie":{"#),
        "cookie first, as JSON.stringify writes express-session's object: {text}"
    );
    let mut expected_cookie = record
        .data
        .get::<serde_json::Value>("cookie")
        .expect("decode")
        .expect("cookie");
    expected_cookie["rsVersion"] = json!("12");
    expected_cookie["rsCreated"] = json!(millis(record.created_at));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).expect("JSON"),
        json!({
            "cookie": expected_cookie,
            "username": "JohnDoe",
            "cart": {"items": [1, 2], "total": 9.5},
        }),
        "stored text {text}"
    );
    assert_eq!(expire, millis(record.expires_at), "`expire` is the expiry");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM \"session\"")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 1, "one row per session");
    assert_eq!(
        connect_pg_simple_get(&pool, record.id.as_str())
            .await
            .as_deref(),
        Some(text.as_str()),
        "connect-pg-simple reads the session"
    );
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(loaded.principal, None, "the layout keeps no principal");

    // A save keeps the shape, bumps rsVersion and moves `expire`.
    let mut changed = loaded;
    changed.expires_at = now() + time::Duration::hours(2);
    store.save(&changed).await.expect("save");
    let (text, expire) = stored(&pool, record.id.as_str()).await.expect("row");
    let saved: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(saved["cookie"]["rsVersion"], json!("13"));
    assert_eq!(
        saved["cookie"]["rsCreated"],
        json!(millis(record.created_at))
    );
    assert_eq!(saved["username"], json!("JohnDoe"));
    assert_eq!(expire, millis(changed.expires_at));

    // Expired by `expire`, connect-pg-simple no longer reads it either.
    assert!(
        store
            .touch(&record.id, now() - time::Duration::seconds(5))
            .await
            .expect("touch")
    );
    assert_eq!(connect_pg_simple_get(&pool, record.id.as_str()).await, None);
}

/// A touch from either side moves only `expire`: Rust's leaves the text byte for byte (so the
/// version Express sees, and the one Rust read, stay), and after connect-pg-simple's a Rust
/// save at the version it read still goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_from_either_side_moves_only_expire() {
    let (store, pool, _server) = setup().await;
    let id = Id::random();
    let expires = now() + HOUR;
    connect_pg_simple_set(
        &pool,
        id.as_str(),
        &express_json(expires, "JohnDoe"),
        expires,
    )
    .await;
    let loaded = store.load(&id).await.expect("load").expect("live");
    let text = stored_text(&pool, id.as_str()).await;

    let later = now() + time::Duration::hours(3);
    assert!(store.touch(&id, later).await.expect("touch"));
    let (after, expire) = stored(&pool, id.as_str()).await.expect("row");
    assert_eq!(after, text, "the text is untouched");
    assert_eq!(expire, millis(later));
    let touched = store.load(&id).await.expect("load").expect("live");
    assert_eq!(touched.version, loaded.version);
    assert_eq!(touched.expires_at, later);

    let even_later = now() + time::Duration::hours(5);
    connect_pg_simple_touch(&pool, id.as_str(), even_later).await;
    let touched = store.load(&id).await.expect("load").expect("live");
    assert_eq!(touched.version, loaded.version);
    assert_eq!(
        millis(touched.expires_at),
        expire_seconds(even_later) * 1000
    );
    let mut saving = loaded;
    saving.data.insert("visits", &1).expect("encode");
    store
        .save(&saving)
        .await
        .expect("a touch is not a write of the data");
}

/// Texts PostgreSQL's JSON operators refuse (a NUL, which both sides write as `\u0000`) are
/// compared in Rust under a row lock: the save goes through once, a stale one conflicts, an
/// Express write in between conflicts, and the stored `created_at` is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_the_json_operators_refuse_are_compared_in_rust() {
    let (store, pool, _server) = setup().await;

    // Written by Rust, with a NUL in a value.
    let mut record = express_record();
    record.data.insert("note", "nul\0here").expect("encode");
    store.create(&record).await.expect("create");
    assert!(
        stored_text(&pool, record.id.as_str())
            .await
            .contains(r"\u0000")
    );
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    let mut first = loaded.clone();
    first.data.insert("visits", &1).expect("encode");
    first.created_at = loaded.created_at - time::Duration::days(1);
    store.save(&first).await.expect("save over the NUL text");
    let saved = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(saved.version, loaded.version + 1);
    assert_eq!(saved.created_at, record.created_at, "created_at is kept");
    assert_eq!(
        saved.data.get::<String>("note").expect("decode").as_deref(),
        Some("nul\0here")
    );
    assert!(
        matches!(store.save(&loaded).await, Err(Error::Conflict)),
        "a stale save conflicts"
    );
    let express_text = as_express_rewrites(
        &stored_text(&pool, record.id.as_str()).await,
        &[("username", json!("Express"))],
    );
    connect_pg_simple_set(&pool, record.id.as_str(), &express_text, record.expires_at).await;
    assert!(
        matches!(store.save(&saved).await, Err(Error::Conflict)),
        "a save from before Express's write conflicts"
    );

    // Written by Express, whose `JSON.stringify` writes a NUL as `\u0000` too.
    let id = Id::random();
    let expires = now() + HOUR;
    let text = express_json(expires, r"nul \u0000 here");
    connect_pg_simple_set(&pool, id.as_str(), &text, expires).await;
    let loaded = store.load(&id).await.expect("load").expect("live");
    assert_eq!(loaded.version, postgres_digest_version(&pool, &text).await);
    let mut first = loaded.clone();
    first.data.insert("visits", &1).expect("encode");
    store
        .save(&first)
        .await
        .expect("save over Express's NUL text");
    assert!(
        matches!(store.save(&loaded).await, Err(Error::Conflict)),
        "a stale save conflicts"
    );
    let saved = store.load(&id).await.expect("load").expect("live");
    assert_eq!(saved.data.get::<i64>("visits").expect("decode"), Some(1));
}

/// Sessions express-session itself cannot read (no `cookie` object, not an object), Rust
/// fields of the wrong form and lone surrogates (which no Rust string holds) are
/// `Error::Decode` from `load` and `save`, and a save leaves them as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_express_cannot_read_are_decode_errors() {
    let (store, pool, _server) = setup().await;
    for text in [
        r#"{"username":"JohnDoe"}"#,
        "[]",
        r#""text""#,
        r#"{"cookie":"x"}"#,
        r#"{"cookie":{"path":"/","rsVersion":7}}"#,
        r#"{"cookie":{"path":"/","rsVersion":"0","rsCreated":"soon"}}"#,
        r#"{"cookie":null,"nul":"\u0000"}"#,
        r#"{"cookie":{"path":"/"},"username":"lone \ud800 surrogate"}"#,
    ] {
        let id = Id::random();
        connect_pg_simple_set(&pool, id.as_str(), text, now() + HOUR).await;
        assert!(
            matches!(store.load(&id).await, Err(Error::Decode(_))),
            "load of {text}"
        );
        let mut record = Record::new(id.clone(), HOUR);
        record.version = 0;
        let saved = store.save(&record).await;
        assert!(
            matches!(saved, Err(Error::Decode(_))),
            "save over {text}: {saved:?}"
        );
        assert_eq!(stored_text(&pool, id.as_str()).await, text, "left as it is");
        assert!(store.touch(&id, now() + HOUR).await.expect("touch"));
        store.delete(&id).await.expect("delete");
        assert_eq!(stored(&pool, id.as_str()).await, None);
    }
}

/// Concurrent writers on both sides of one session lose nothing: Express's writes (here
/// atomic, as a single statement that rebuilds the text without the Rust fields) and the Rust
/// side's conditional saves, each reloading and retrying on `Conflict`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_from_both_sides_lose_nothing() {
    const WRITES: i64 = 25;
    let (store, pool, _server) = setup().await;
    let record = express_record();
    store.create(&record).await.expect("create");
    let id = record.id.clone();

    let express = {
        let pool = pool.clone();
        let id = id.clone();
        tokio::spawn(async move {
            for _ in 0..WRITES {
                sqlx::query(
                    "UPDATE \"session\" SET sess = jsonb_set(jsonb_set(sess::jsonb, '{cookie}', \
                     (sess::jsonb -> 'cookie') - 'rsVersion' - 'rsCreated'), '{express}', \
                     to_jsonb(coalesce((sess ->> 'express')::int, 0) + 1))::json WHERE sid = $1",
                )
                .bind(id.as_str())
                .execute(&pool)
                .await
                .expect("Express's write");
                tokio::time::sleep(StdDuration::from_millis(3)).await;
            }
        })
    };
    let rust = {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..WRITES {
                loop {
                    let mut loaded = store.load(&id).await.expect("load").expect("live");
                    let count = loaded.data.get::<i64>("rust").expect("decode").unwrap_or(0);
                    loaded.data.insert("rust", &(count + 1)).expect("encode");
                    match store.save(&loaded).await {
                        Ok(()) => break,
                        Err(Error::Conflict) => conflicts += 1,
                        Err(e) => panic!("save: {e:?}"),
                    }
                }
            }
            conflicts
        })
    };
    express.await.expect("the Express writer");
    let conflicts = rust.await.expect("the Rust writer");
    let last = store.load(&id).await.expect("load").expect("live");
    assert_eq!(
        last.data.get::<i64>("express").expect("decode"),
        Some(WRITES),
        "every Express write is kept ({conflicts} Rust conflicts)"
    );
    assert_eq!(
        last.data.get::<i64>("rust").expect("decode"),
        Some(WRITES),
        "every Rust write is kept"
    );
}

/// `migrate` creates exactly the table connect-pg-simple's `table.sql` creates (columns, types,
/// primary key, the index on `expire`), accepts that table when it is already there (and is
/// safe to run at once from several instances), and refuses a table of another layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_makes_and_accepts_connect_pg_simple_table() {
    let (store, pool, _server) = setup().await;
    // connect-pg-simple 10's table.sql, verbatim, in a schema of its own.
    execute(
        &pool,
        "CREATE SCHEMA node; SET search_path = node; \
         CREATE TABLE \"session\" (\
           \"sid\" varchar NOT NULL COLLATE \"default\", \
           \"sess\" json NOT NULL, \
           \"expire\" timestamp(6) NOT NULL) WITH (OIDS=FALSE); \
         ALTER TABLE \"session\" ADD CONSTRAINT \"session_pkey\" PRIMARY KEY (\"sid\") \
           NOT DEFERRABLE INITIALLY IMMEDIATE; \
         CREATE INDEX \"IDX_session_expire\" ON \"session\" (\"expire\"); \
         SET search_path = DEFAULT",
    )
    .await;
    let catalog = |schema: &'static str| {
        let pool = pool.clone();
        async move {
            let columns: Vec<(String, String, bool, Option<String>)> = sqlx::query_as(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                 c.collname::text FROM pg_attribute a \
                 LEFT JOIN pg_collation c ON c.oid = a.attcollation \
                 WHERE a.attrelid = ($1 || '.session')::regclass AND a.attnum > 0 \
                 ORDER BY a.attnum",
            )
            .bind(schema)
            .fetch_all(&pool)
            .await
            .expect("columns");
            let indexes: Vec<(String, String)> = sqlx::query_as(
                "SELECT indexname::text, replace(indexdef, $1 || '.', '') FROM pg_indexes \
                 WHERE schemaname = $1 AND tablename = 'session' ORDER BY indexname",
            )
            .bind(schema)
            .fetch_all(&pool)
            .await
            .expect("indexes");
            (columns, indexes)
        }
    };
    let (made, node) = (catalog("public").await, catalog("node").await);
    assert_eq!(made, node, "migrate's table is connect-pg-simple's");
    assert_eq!(
        node.1
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        ["IDX_session_expire", "session_pkey"]
    );

    // connect-pg-simple's table, already there: accepted as it is, from several instances.
    let on_node = store.clone().with_schema("node").expect("valid schema");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let store = on_node.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for run in runs {
        run.await
            .expect("migrate task")
            .expect("migrate over connect-pg-simple's table");
    }
    assert_eq!(catalog("node").await, node, "nothing added");
    let record = express_record();
    on_node.create(&record).await.expect("create");
    let in_node: i64 = sqlx::query_scalar("SELECT count(*) FROM node.session")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(in_node, 1);

    common::migrate_reports_what_is_wrong(
        async |table| store.clone().with_table(table)?.migrate().await,
        |sql| {
            let pool = pool.clone();
            async move { execute(&pool, &sql).await }
        },
        |table| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&pool)
                    .await
                    .expect("count the rows")
            }
        },
        &[
            (
                // The store's own layout.
                "CREATE TABLE {table} (id TEXT PRIMARY KEY, data BYTEA NOT NULL, \
                 created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, version BIGINT NOT NULL)",
                &[
                    "column `sid` is missing",
                    "column `sess` is missing",
                    "column `expire` is missing",
                ],
            ),
            (
                "CREATE TABLE {table} (sid varchar PRIMARY KEY, sess jsonb NOT NULL, \
                 expire timestamptz NOT NULL)",
                &[
                    "column `sess` is `jsonb`, expected `json`",
                    "column `expire` is `timestamp with time zone`, expected \
                     `timestamp(6) without time zone`",
                ],
            ),
            (
                "CREATE TABLE {table} (sid varchar NOT NULL, sess json NOT NULL, \
                 expire timestamp NOT NULL)",
                &["there is no primary key, expected `sid`"],
            ),
        ],
    )
    .await;
}

/// `with_table` and `with_schema` after `express_compatible` are connect-pg-simple's
/// `tableName` and `schemaName`; such a table gets an index named after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_and_schema_are_configurable() {
    let (store, pool, _server) = setup().await;
    execute(&pool, "CREATE SCHEMA auth").await;
    let custom = store
        .clone()
        .with_table("web_session")
        .and_then(|s| s.with_schema("auth"))
        .expect("valid names");
    assert!(custom.is_express_compatible());
    custom.migrate().await.expect("migrate");
    let index: Option<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes \
         WHERE schemaname = 'auth' AND tablename = 'web_session' AND indexdef LIKE '%(expire)'",
    )
    .fetch_optional(&pool)
    .await
    .expect("read the catalog");
    assert_eq!(index.as_deref(), Some("IDX_web_session_expire"));
    let record = express_record();
    custom.create(&record).await.expect("create");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.web_session")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 1, "the session is in auth.web_session");
    assert!(
        store.load(&record.id).await.expect("load").is_none(),
        "the default table is another table"
    );

    // `express_compatible` sets connect-pg-simple's default table and keeps the schema.
    let reset = PostgresStore::new(pool.clone())
        .with_schema("auth")
        .and_then(|s| s.with_table("elsewhere"))
        .expect("valid names")
        .express_compatible();
    assert_eq!((reset.schema(), reset.table()), (Some("auth"), "session"));
}

/// A pool whose sessions run in `zone`, as node-postgres's do under a server whose default
/// `TimeZone` is `zone`.
async fn pool_in_zone(url: &str, zone: &'static str) -> PgPool {
    PgPoolOptions::new()
        .after_connect(move |connection, _| {
            Box::pin(async move {
                connection
                    .execute(sqlx::AssertSqlSafe(format!("SET TimeZone = '{zone}'")))
                    .await
                    .map(drop)
            })
        })
        .connect(url)
        .await
        .expect("connect")
}

/// `expire` has no time zone: connect-pg-simple writes and compares it in its connections'
/// `TimeZone`. With `with_time_zone` set to that zone, the two sides agree on every expiry;
/// without it, the store reads such an `expire` shifted by the zone's offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_is_read_and_written_in_the_configured_time_zone() {
    let (store, _pool, server) = setup().await;
    let node = pool_in_zone(server.url(), "Asia/Kolkata").await; // UTC+05:30, no DST
    let in_kolkata = store
        .clone()
        .with_time_zone("Asia/Kolkata")
        .expect("a zone name");
    in_kolkata
        .migrate()
        .await
        .expect("PostgreSQL knows the zone");

    let id = Id::random();
    let expires = now() + HOUR;
    connect_pg_simple_set(
        &node,
        id.as_str(),
        &express_json(expires, "JohnDoe"),
        expires,
    )
    .await;
    let loaded = in_kolkata.load(&id).await.expect("load").expect("live");
    assert_eq!(
        millis(loaded.expires_at),
        expire_seconds(expires) * 1000,
        "the same instant"
    );
    let utc = store.load(&id).await.expect("load").expect("live");
    assert_eq!(
        utc.expires_at - loaded.expires_at,
        time::Duration::minutes(330),
        "read as UTC, a Kolkata wall-clock time is 5:30 later"
    );

    // Written by Rust, read by connect-pg-simple in Kolkata: live until its expiry, not after.
    let record = express_record();
    in_kolkata.create(&record).await.expect("create");
    assert!(
        connect_pg_simple_get(&node, record.id.as_str())
            .await
            .is_some()
    );
    let expire_in_node: i64 =
        sqlx::query_scalar("SELECT (extract(epoch from expire::timestamptz) * 1000)::bigint FROM \"session\" WHERE sid = $1")
            .bind(record.id.as_str())
            .fetch_one(&node)
            .await
            .expect("read expire in the Kolkata session");
    assert_eq!(expire_in_node, millis(record.expires_at));
    assert!(
        in_kolkata
            .touch(&record.id, now() - time::Duration::seconds(5))
            .await
            .expect("touch")
    );
    assert_eq!(
        connect_pg_simple_get(&node, record.id.as_str()).await,
        None,
        "expired for connect-pg-simple too"
    );

    // Refused zones.
    for bad in ["", "UTC'; DROP TABLE session; --"] {
        assert!(matches!(
            store.clone().with_time_zone(bad),
            Err(Error::InvalidConfig(_))
        ));
    }
    assert!(
        matches!(
            PostgresStore::new(node.clone()).with_time_zone("UTC"),
            Err(Error::InvalidConfig(_))
        ),
        "the time zone is the Express layout's"
    );
    let unknown = store
        .clone()
        .with_time_zone("Nowhere/Atlantis")
        .expect("a well-formed name");
    match unknown.migrate().await {
        Err(Error::InvalidConfig(message)) => {
            assert!(message.contains("Nowhere/Atlantis"), "{message}");
        }
        other => panic!("migrate with an unknown zone returned {other:?}"),
    }
}

/// The instants the store reads and writes do not depend on its connections' own `TimeZone`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instants_do_not_depend_on_the_session_time_zone() {
    let (writer, _pool, server) = setup().await;
    let reader = PostgresStore::new(pool_in_zone(server.url(), "Pacific/Chatham").await)
        .express_compatible();
    common::instants_do_not_depend_on_the_time_zone(&writer, &reader).await;
}

/// A pool whose connections find `statement_timestamp()` in `schema` (a function shifted from
/// the real one) before `pg_catalog`'s.
async fn pool_with_clock(url: &str, schema: &'static str) -> PgPool {
    PgPoolOptions::new()
        .after_connect(move |connection, _| {
            Box::pin(async move {
                connection
                    .execute(sqlx::AssertSqlSafe(format!(
                        "SET search_path = {schema}, public, pg_catalog"
                    )))
                    .await
                    .map(drop)
            })
        })
        .connect(url)
        .await
        .expect("connect")
}

/// The database's clock decides every expiry in this layout too: load, touch, save, create and
/// cleanup on a database a day ahead or behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_clock_decides_expiry() {
    let (store, pool, server) = setup().await;
    for (schema, shift) in [
        ("ahead", "+ interval '1 day'"),
        ("behind", "- interval '1 day'"),
    ] {
        execute(
            &pool,
            &format!(
                "CREATE SCHEMA {schema}; \
                 CREATE FUNCTION {schema}.statement_timestamp() RETURNS timestamptz \
                 LANGUAGE sql STABLE AS $$ SELECT pg_catalog.statement_timestamp() {shift} $$"
            ),
        )
        .await;
    }
    let ahead = PostgresStore::new(pool_with_clock(server.url(), "ahead").await)
        .with_schema("public")
        .expect("valid schema")
        .express_compatible();
    let behind = PostgresStore::new(pool_with_clock(server.url(), "behind").await)
        .with_schema("public")
        .expect("valid schema")
        .express_compatible();
    common::the_database_clock_decides_expiry(&store, &ahead, &behind).await;
    // And cleanup leaves live sessions, whoever wrote them.
    let id = Id::random();
    connect_pg_simple_set(
        &pool,
        id.as_str(),
        &express_json(now() + HOUR, "x"),
        now() + HOUR,
    )
    .await;
    assert_eq!(store.delete_expired().await.expect("cleanup"), 0);
    assert!(store.load(&id).await.expect("load").is_some());
}
