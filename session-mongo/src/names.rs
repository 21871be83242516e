//! MongoDB's rules for database and collection names, checked when a store is configured so
//! that a bad name is a clear error at startup rather than a server error on the first request.

use session_core::{Error, Result};

/// Characters no database name may contain on any platform MongoDB runs on.
const DATABASE_FORBIDDEN: &[char] = &[
    '/', '\\', '.', ' ', '"', '$', '*', '<', '>', ':', '|', '?', '\0',
];
/// Database names are shorter than 64 bytes.
const DATABASE_MAX_LEN: usize = 63;
/// `database.collection` is at most 255 bytes (MongoDB 4.4 and later).
const NAMESPACE_MAX_LEN: usize = 255;

/// Checks a database name.
pub(crate) fn check_database(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_config("the MongoDB database name is empty"));
    }
    if name.len() > DATABASE_MAX_LEN {
        return Err(Error::invalid_config(format!(
            "the MongoDB database name {name:?} is {} bytes long, over the limit of {DATABASE_MAX_LEN}",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| DATABASE_FORBIDDEN.contains(c)) {
        return Err(Error::invalid_config(format!(
            "the MongoDB database name {name:?} contains {c:?}, which database names may not contain"
        )));
    }
    Ok(())
}

/// Checks a collection name, and the namespace it makes in `database`.
pub(crate) fn check_collection(database: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_config(
            "the MongoDB collection name is empty",
        ));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '$' | '\0')) {
        return Err(Error::invalid_config(format!(
            "the MongoDB collection name {name:?} contains {c:?}, which collection names may not contain"
        )));
    }
    if name.starts_with("system.") {
        return Err(Error::invalid_config(format!(
            "the MongoDB collection name {name:?} starts with `system.`, reserved for the server"
        )));
    }
    let namespace = database.len() + 1 + name.len();
    if namespace > NAMESPACE_MAX_LEN {
        return Err(Error::invalid_config(format!(
            "the MongoDB namespace {database}.{name} is {namespace} bytes long, over the limit of {NAMESPACE_MAX_LEN}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass() {
        check_database("app").expect("plain name");
        check_database(&"d".repeat(63)).expect("63 bytes");
        check_collection("app", "sessions").expect("plain name");
        check_collection("app", "web.sessions_2").expect("dots are allowed in collections");
        check_collection("app", &"c".repeat(251)).expect("255-byte namespace");
    }

    #[test]
    fn bad_database_names_are_refused() {
        for name in [
            "", "a.b", "a b", "a/b", "a\\b", "a$b", "a\"b", "a\0b", "a:b", "a?b",
        ] {
            assert!(
                matches!(check_database(name), Err(Error::InvalidConfig(_))),
                "{name:?} was accepted"
            );
        }
        assert!(
            check_database(&"d".repeat(64)).is_err(),
            "64 bytes accepted"
        );
    }

    #[test]
    fn bad_collection_names_are_refused() {
        for name in ["", "a$b", "a\0b", "system.sessions"] {
            assert!(
                matches!(check_collection("app", name), Err(Error::InvalidConfig(_))),
                "{name:?} was accepted"
            );
        }
        assert!(
            check_collection("app", &"c".repeat(252)).is_err(),
            "256-byte namespace accepted"
        );
    }
}
