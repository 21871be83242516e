//! `migrate`'s check of an existing table: the columns the store needs, with the types it
//! writes, and `id` alone as the primary key.

use std::fmt::Write as _;

use session_core::{Error, Result};

/// One column of the table as the database's catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    /// The type, lower case, in the form the dialect's `columns` statement reports.
    pub(crate) kind: String,
    pub(crate) primary_key: bool,
}

impl From<(String, String, i64)> for Column {
    fn from((name, kind, primary_key): (String, String, i64)) -> Self {
        Self {
            name,
            kind: kind.trim().to_ascii_lowercase(),
            primary_key: primary_key != 0,
        }
    }
}

/// What is wrong with `found` compared with `expected` (name, type): every problem, or
/// nothing.
pub(crate) fn problems(found: &[Column], expected: &[(&str, &str)]) -> Vec<String> {
    if found.is_empty() {
        return vec!["the table does not exist".to_owned()];
    }
    let mut problems = Vec::new();
    for (name, kind) in expected {
        match found.iter().find(|c| c.name == *name) {
            None => problems.push(format!("column `{name}` is missing")),
            Some(column) if column.kind != *kind => problems.push(format!(
                "column `{name}` is `{}`, expected `{kind}`",
                column.kind
            )),
            Some(_) => {}
        }
    }
    let key: Vec<&str> = found
        .iter()
        .filter(|c| c.primary_key)
        .map(|c| c.name.as_str())
        .collect();
    if key != ["id"] && found.iter().any(|c| c.name == "id") {
        problems.push(if key.is_empty() {
            "there is no primary key, expected `id`".to_owned()
        } else {
            format!(
                "the primary key is ({}), expected `id` alone",
                key.join(", ")
            )
        });
    }
    problems
}

/// Fails with [`Error::InvalidConfig`] naming every problem of the table `table`, if any.
pub(crate) fn check(table: &str, found: &[Column], expected: &[(&str, &str)]) -> Result<()> {
    let problems = problems(found, expected);
    if problems.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "the table {table} does not have the layout this store needs, so it is left as it is: "
    );
    message.push_str(&problems.join("; "));
    let _ = write!(
        message,
        ". Give the store a table of its own (`with_table`), or change this one to the layout \
         in the crate documentation"
    );
    Err(Error::invalid_config(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPECTED: &[(&str, &str)] = &[
        ("id", "text"),
        ("data", "bytea"),
        ("created_at", "bigint"),
        ("expires_at", "bigint"),
        ("version", "bigint"),
    ];

    fn column(name: &str, kind: &str, primary_key: bool) -> Column {
        Column::from((name.to_owned(), kind.to_owned(), i64::from(primary_key)))
    }

    fn good() -> Vec<Column> {
        vec![
            column("id", "TEXT", true),
            column("data", "bytea", false),
            column("created_at", "bigint", false),
            column("expires_at", "bigint", false),
            column("version", "bigint", false),
        ]
    }

    #[test]
    fn the_expected_layout_passes_and_extra_columns_are_allowed() {
        assert_eq!(problems(&good(), EXPECTED), Vec::<String>::new());
        let mut extra = good();
        extra.push(column("user_id", "bigint", false));
        assert!(check("\"sessions\"", &extra, EXPECTED).is_ok());
    }

    #[test]
    fn every_problem_is_named() {
        let mut found = good();
        found.retain(|c| c.name != "version");
        found[3].kind = "text".to_owned();
        found[0].primary_key = false;
        assert_eq!(
            problems(&found, EXPECTED),
            [
                "column `expires_at` is `text`, expected `bigint`",
                "column `version` is missing",
                "there is no primary key, expected `id`",
            ]
        );
        let mut composite = good();
        composite[4].primary_key = true;
        assert_eq!(
            problems(&composite, EXPECTED),
            ["the primary key is (id, version), expected `id` alone"]
        );
        assert_eq!(problems(&[], EXPECTED), ["the table does not exist"]);
    }

    #[test]
    fn the_error_names_the_table_and_the_problems() {
        let found = vec![
            column("sid", "varchar", true),
            column("sess", "json", false),
        ];
        match check("\"sessions\"", &found, EXPECTED) {
            Err(Error::InvalidConfig(message)) => {
                assert!(message.contains("\"sessions\""), "{message}");
                assert!(message.contains("column `id` is missing"), "{message}");
                assert!(message.contains("column `version` is missing"), "{message}");
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }
}
