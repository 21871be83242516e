//! What the three stores share: table naming, settings, instant and version conversions,
//! time limits.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use session_core::{Codec, Error, MessagePack, Result, Timeout};
use time::OffsetDateTime;

/// The table name used unless the store is configured otherwise.
pub(crate) const DEFAULT_TABLE: &str = "sessions";

/// Longest schema or table name accepted. PostgreSQL truncates identifiers at 63 bytes and MySQL
/// rejects table names over 64; 48 leaves room for the index name derived from the table name.
pub(crate) const MAX_IDENTIFIER_LEN: usize = 48;

/// Checks that `name` is a plain SQL identifier: an ASCII letter or `_`, then ASCII letters,
/// digits or `_`, at most [`MAX_IDENTIFIER_LEN`] characters.
///
/// Names are interpolated into SQL text (they cannot be bound as parameters), so only this
/// alphabet is accepted: nothing in it can end a quoted identifier.
pub(crate) fn identifier(what: &'static str, name: &str) -> Result<String> {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_start || !valid_rest || name.len() > MAX_IDENTIFIER_LEN {
        return Err(Error::invalid_config(Cow::Owned(format!(
            "{what} {name:?} is not a valid SQL identifier: use 1 to {MAX_IDENTIFIER_LEN} ASCII \
             letters, digits and underscores, not starting with a digit"
        ))));
    }
    Ok(name.to_owned())
}

/// Where the sessions live: an optional schema (PostgreSQL schema, MySQL database, SQLite
/// attached database) and a table, both validated identifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableName {
    pub(crate) schema: Option<String>,
    pub(crate) table: String,
}

impl Default for TableName {
    fn default() -> Self {
        Self {
            schema: None,
            table: DEFAULT_TABLE.to_owned(),
        }
    }
}

impl TableName {
    pub(crate) fn with_table(mut self, table: &str) -> Result<Self> {
        self.table = identifier("table name", table)?;
        Ok(self)
    }

    pub(crate) fn with_schema(mut self, schema: &str) -> Result<Self> {
        self.schema = Some(identifier("schema name", schema)?);
        Ok(self)
    }

    /// The table, qualified by its schema if it has one, each part between `quote`s.
    pub(crate) fn qualified(&self, quote: char) -> String {
        match &self.schema {
            Some(schema) => format!("{quote}{schema}{quote}.{quote}{}{quote}", self.table),
            None => format!("{quote}{}{quote}", self.table),
        }
    }

    /// The name of the index on the expiry column, unquoted.
    pub(crate) fn expiry_index(&self) -> String {
        format!("{}_expires_at_idx", self.table)
    }
}

/// Settings every store has besides its pool and SQL.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) codec: Arc<dyn Codec>,
    pub(crate) timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            codec: Arc::new(MessagePack),
            timeout: crate::DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("codec", &self.codec)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Settings {
    /// Runs `operation`, failing with [`Timeout`] (as [`Error::Backend`]) if it takes longer
    /// than the configured timeout.
    pub(crate) async fn timed<T>(
        &self,
        what: &'static str,
        operation: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(result) => result,
            Err(_) => Err(Error::backend(what, Timeout(self.timeout))),
        }
    }

    /// Runs one sqlx `statement` within the timeout, its error kept as the source.
    pub(crate) async fn run<T>(
        &self,
        what: &'static str,
        statement: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T> {
        self.timed(what, async {
            statement.await.map_err(|e| Error::backend(what, e))
        })
        .await
    }
}

/// Unix milliseconds of `t`, rounded down: the stored form of every instant.
pub(crate) fn millis(t: OffsetDateTime) -> Result<i64> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).map_err(Error::encode)
}

/// Unix milliseconds of the current instant.
pub(crate) fn now_millis() -> Result<i64> {
    millis(OffsetDateTime::now_utc())
}

/// The instant `ms` unix milliseconds denote, as read from a row.
pub(crate) fn instant(ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(Error::decode)
}

/// A record's version as stored (a signed 64-bit column).
pub(crate) fn version_to_db(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(Error::encode)
}

/// A stored version as a record's.
pub(crate) fn version_from_db(version: i64) -> Result<u64> {
    u64::try_from(version).map_err(Error::decode)
}

/// The configuration methods every store has, documented once.
macro_rules! config_methods {
    ($store:ident, $pool:ty, $schema_doc:literal) => {
        impl $store {
            /// The pool the store runs on.
            #[must_use]
            pub fn pool(&self) -> &$pool {
                &self.pool
            }

            /// Keeps sessions in the table `table` instead of `sessions`.
            ///
            /// # Errors
            ///
            /// [`Error::InvalidConfig`](session_core::Error::InvalidConfig) unless `table` is 1 to
            /// 48 ASCII letters, digits and underscores, not starting with a digit.
            pub fn with_table(mut self, table: &str) -> session_core::Result<Self> {
                self.name = self.name.with_table(table)?;
                self.sql = std::sync::Arc::new(Sql::new(&self.name));
                Ok(self)
            }

            #[doc = $schema_doc]
            ///
            /// # Errors
            ///
            /// [`Error::InvalidConfig`](session_core::Error::InvalidConfig) unless `schema` is 1
            /// to 48 ASCII letters, digits and underscores, not starting with a digit.
            pub fn with_schema(mut self, schema: &str) -> session_core::Result<Self> {
                self.name = self.name.with_schema(schema)?;
                self.sql = std::sync::Arc::new(Sql::new(&self.name));
                Ok(self)
            }

            /// Encodes session data with `codec` instead of
            /// [`MessagePack`](session_core::MessagePack). Both built-in codecs read both
            /// formats, so switching keeps stored sessions readable.
            #[must_use]
            pub fn with_codec(mut self, codec: impl session_core::Codec) -> Self {
                self.settings.codec = std::sync::Arc::new(codec);
                self
            }

            /// Bounds every operation, waiting for a pooled connection included, to `timeout`
            /// (default [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT)). An operation that takes
            /// longer fails with [`Error::Backend`](session_core::Error::Backend) whose source is
            /// a [`Timeout`](session_core::Timeout).
            #[must_use]
            pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.settings.timeout = timeout;
                self
            }
        }

        impl std::fmt::Debug for $store {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($store))
                    .field("schema", &self.name.schema)
                    .field("table", &self.name.table)
                    .field("codec", &self.settings.codec)
                    .field("timeout", &self.settings.timeout)
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use config_methods;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_accept_plain_names_only() {
        for good in [
            "sessions",
            "_s",
            "Sessions_2",
            &"a".repeat(MAX_IDENTIFIER_LEN),
        ] {
            assert_eq!(identifier("table name", good).ok().as_deref(), Some(good));
        }
        for bad in [
            "",
            "1sessions",
            "sessions;drop table users",
            "a\"b",
            "a`b",
            "a.b",
            "a b",
            "sessions--",
            "séssions",
            &"a".repeat(MAX_IDENTIFIER_LEN + 1),
        ] {
            assert!(
                matches!(identifier("table name", bad), Err(Error::InvalidConfig(_))),
                "{bad:?} must be rejected"
            );
        }
    }

    #[test]
    fn qualified_names_are_quoted() {
        let name = TableName::default()
            .with_table("web_sessions")
            .and_then(|n| n.with_schema("auth"))
            .expect("valid names");
        assert_eq!(name.qualified('"'), "\"auth\".\"web_sessions\"");
        assert_eq!(name.qualified('`'), "`auth`.`web_sessions`");
        assert_eq!(TableName::default().qualified('"'), "\"sessions\"");
        assert_eq!(name.expiry_index(), "web_sessions_expires_at_idx");
    }

    #[test]
    fn instants_round_trip_to_the_millisecond() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
            .expect("valid instant");
        let ms = millis(t).expect("in range");
        assert_eq!(ms, 1_700_000_000_123);
        assert_eq!(
            instant(ms).expect("in range"),
            session_core::truncate_to_millis(t)
        );
        // Before 1970 rounds down too, so the stored instant never moves later.
        let early = OffsetDateTime::from_unix_timestamp_nanos(-1_500_000).expect("valid instant");
        assert_eq!(millis(early).expect("in range"), -2);
    }

    #[test]
    fn out_of_range_values_are_errors_not_panics() {
        assert!(matches!(instant(i64::MAX), Err(Error::Decode(_))));
        assert!(matches!(version_from_db(-1), Err(Error::Decode(_))));
        assert!(matches!(version_to_db(u64::MAX), Err(Error::Encode(_))));
        assert_eq!(version_from_db(7).expect("valid"), 7);
    }
}
