//! Where the sessions live: a validated table name and optional schema.

use std::borrow::Cow;

use session_core::{Error, Result};

/// The table name used unless the store is configured otherwise.
pub(crate) const DEFAULT_TABLE: &str = "sessions";

/// Longest schema or table name accepted. PostgreSQL truncates identifiers at 63 bytes and MySQL
/// rejects table names over 64; 48 leaves room for the index name derived from the table name.
pub(crate) const MAX_IDENTIFIER_LEN: usize = 48;

/// Checks that `name` is a plain SQL identifier: an ASCII letter or `_`, then ASCII letters,
/// digits or `_`, at most [`MAX_IDENTIFIER_LEN`] characters.
///
/// Names are interpolated into SQL text (they cannot be bound as parameters), as identifiers
/// and, in the catalog queries of `migrate`, inside string literals; nothing in this alphabet
/// can end either.
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
pub struct TableName {
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

    /// The name of the index on the principal column, unquoted.
    pub(crate) fn principal_index(&self) -> String {
        format!("{}_principal_idx", self.table)
    }
}

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
            "a'b",
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
        assert_eq!(name.principal_index(), "web_sessions_principal_idx");
    }
}
