//! `migrate`'s check of an existing table: the columns the store needs, with the types it
//! writes, `id` alone as the primary key, and the nullable `principal` column, which `migrate`
//! adds to a table made before it existed.

use std::fmt::Write as _;

use session_core::{Error, Result};

/// The name of the column that holds a session's principal.
pub(crate) const PRINCIPAL: &str = "principal";

/// One column of the table as the database's catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    /// The type, lower case, in the form the dialect's `columns` statement reports.
    pub(crate) kind: String,
    pub(crate) primary_key: bool,
    pub(crate) nullable: bool,
}

impl From<(String, String, i64, i64)> for Column {
    fn from((name, kind, primary_key, nullable): (String, String, i64, i64)) -> Self {
        Self {
            name,
            kind: kind.trim().to_ascii_lowercase(),
            primary_key: primary_key != 0,
            nullable: nullable != 0,
        }
    }
}

/// The layout the store needs: columns (name, type) that must exist, and the type of the
/// `principal` column, which may be missing (`migrate` adds it) but, if present, must have that
/// type and allow NULL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout<'a> {
    pub(crate) columns: &'a [(&'a str, &'a str)],
    pub(crate) principal: &'a str,
}

/// What is wrong with `found` compared with `expected`: every problem, or nothing.
pub(crate) fn problems(found: &[Column], expected: Layout<'_>) -> Vec<String> {
    if found.is_empty() {
        return vec!["the table does not exist".to_owned()];
    }
    let mut problems = Vec::new();
    for (name, kind) in expected.columns {
        match found.iter().find(|c| c.name == *name) {
            None => problems.push(format!("column `{name}` is missing")),
            Some(column) if column.kind != *kind => problems.push(format!(
                "column `{name}` is `{}`, expected `{kind}`",
                column.kind
            )),
            Some(_) => {}
        }
    }
    if let Some(column) = found.iter().find(|c| c.name == PRINCIPAL) {
        if column.kind != expected.principal {
            problems.push(format!(
                "column `{PRINCIPAL}` is `{}`, expected `{}`",
                column.kind, expected.principal
            ));
        }
        if !column.nullable {
            problems.push(format!(
                "column `{PRINCIPAL}` is NOT NULL, expected it to allow NULL (sessions without \
                 a principal)"
            ));
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

/// Fails with [`Error::InvalidConfig`] naming every problem of the table `table`, if any;
/// otherwise says whether the `principal` column is missing (a table made before it existed),
/// for `migrate` to add.
pub(crate) fn check(table: &str, found: &[Column], expected: Layout<'_>) -> Result<bool> {
    let problems = problems(found, expected);
    if problems.is_empty() {
        return Ok(!found.iter().any(|c| c.name == PRINCIPAL));
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

    const EXPECTED: Layout<'static> = Layout {
        columns: &[
            ("id", "text"),
            ("data", "bytea"),
            ("created_at", "bigint"),
            ("expires_at", "bigint"),
            ("version", "bigint"),
        ],
        principal: "text",
    };

    fn column(name: &str, kind: &str, primary_key: bool) -> Column {
        Column::from((
            name.to_owned(),
            kind.to_owned(),
            i64::from(primary_key),
            i64::from(!primary_key),
        ))
    }

    /// The layout before principals: no `principal` column.
    fn old() -> Vec<Column> {
        vec![
            column("id", "TEXT", true),
            column("data", "bytea", false),
            column("created_at", "bigint", false),
            column("expires_at", "bigint", false),
            column("version", "bigint", false),
        ]
    }

    fn good() -> Vec<Column> {
        let mut columns = old();
        columns.push(column("principal", "text", false));
        columns
    }

    #[test]
    fn the_expected_layout_passes_and_extra_columns_are_allowed() {
        assert_eq!(problems(&good(), EXPECTED), Vec::<String>::new());
        assert!(matches!(
            check("\"sessions\"", &good(), EXPECTED),
            Ok(false)
        ));
        let mut extra = good();
        extra.push(column("user_id", "bigint", false));
        assert!(matches!(check("\"sessions\"", &extra, EXPECTED), Ok(false)));
    }

    #[test]
    fn a_table_without_the_principal_column_passes_and_gets_it_added() {
        assert_eq!(problems(&old(), EXPECTED), Vec::<String>::new());
        assert!(
            matches!(check("\"sessions\"", &old(), EXPECTED), Ok(true)),
            "the missing principal column is reported for migrate to add"
        );
    }

    #[test]
    fn every_problem_is_named() {
        let mut found = good();
        found.retain(|c| c.name != "version");
        found[3].kind = "text".to_owned();
        found[0].primary_key = false;
        found[4].kind = "bytea".to_owned();
        found[4].nullable = false;
        assert_eq!(
            problems(&found, EXPECTED),
            [
                "column `expires_at` is `text`, expected `bigint`",
                "column `version` is missing",
                "column `principal` is `bytea`, expected `text`",
                "column `principal` is NOT NULL, expected it to allow NULL (sessions without a \
                 principal)",
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
