//! The written word agrees with the code: the contract in `session-core` names exactly the
//! rules of the five macros, in their order, and the README's tables list exactly those rules
//! with exactly the bugs planted for them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::Bug;
use session_conformance::{CLEANUP_RULES, OUTAGE_RULES, PRINCIPAL_RULES, RULES, Rule, SKEW_RULES};

const MACROS: [&str; 5] = [
    "store_tests!",
    "skew_tests!",
    "cleanup_tests!",
    "outage_tests!",
    "principal_tests!",
];

fn names<A>(rules: &[Rule<A>]) -> Vec<String> {
    rules.iter().map(|r| r.name.to_owned()).collect()
}

/// Each macro's rules, in order.
fn code() -> BTreeMap<&'static str, Vec<String>> {
    BTreeMap::from([
        ("store_tests!", names(RULES)),
        ("skew_tests!", names(SKEW_RULES)),
        ("cleanup_tests!", names(CLEANUP_RULES)),
        ("outage_tests!", names(OUTAGE_RULES)),
        ("principal_tests!", names(PRINCIPAL_RULES)),
    ])
}

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The spans between backticks in `text`.
fn quoted(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// The rules the contract's "*Suite…*" notes name, per macro, in order of appearance. A note
/// starts with `store_tests!`'s rules; a quoted macro name switches to that macro's.
fn contract() -> BTreeMap<&'static str, Vec<String>> {
    let source = read("../session-core/src/store.rs");
    let docs: String = source
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("///"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut found: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut rest = docs.as_str();
    while let Some(start) = rest.find("*Suite") {
        let note = &rest[start..];
        let end = note
            .find(".*")
            .unwrap_or_else(|| panic!("a *Suite note that never ends: {note:.80}"));
        let mut current = "store_tests!";
        for name in quoted(&note[..end]) {
            if let Some(m) = MACROS.iter().find(|m| **m == name) {
                current = m;
            } else {
                found.entry(current).or_default().push(name.to_owned());
            }
        }
        rest = &note[end..];
    }
    found
}

#[test]
fn the_contract_names_exactly_the_rules_of_each_macro_in_order() {
    assert_eq!(
        contract(),
        code(),
        "rules named by the *Suite notes of session-core/src/store.rs vs. the macros' lists"
    );
}

/// One table row: the rule and the bugs its third column names (as "`Name`:").
struct Row {
    rule: String,
    bugs: BTreeSet<String>,
}

/// The rows of the README's rule tables, per macro section ("### `store_tests!`").
fn readme() -> BTreeMap<String, Vec<Row>> {
    let text = read("README.md");
    let mut tables: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut section = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            // Only the macros' sections: other sections may hold tables of their own.
            section = quoted(heading)
                .next()
                .filter(|name| MACROS.contains(name))
                .map(str::to_owned);
            continue;
        }
        if line.starts_with("## ") {
            section = None;
        }
        let (Some(section), Some(cells)) = (&section, line.strip_prefix("| `")) else {
            continue;
        };
        let cells: Vec<&str> = cells.split(" | ").collect();
        assert_eq!(cells.len(), 3, "a rule row of three cells: {line}");
        let rule = cells[0].trim_end_matches('`').to_owned();
        let bugs = cells[2]
            .split('`')
            .collect::<Vec<_>>()
            .windows(2)
            .enumerate()
            // A quoted span (odd index) followed by a colon names a bug.
            .filter(|(i, w)| i % 2 == 1 && w[1].starts_with(':'))
            .map(|(_, w)| w[0].to_owned())
            .collect::<Vec<_>>();
        let bugs = bugs.into_iter().collect();
        tables
            .entry(section.clone())
            .or_default()
            .push(Row { rule, bugs });
    }
    tables
}

#[test]
fn the_readme_lists_exactly_the_rules_of_each_macro_in_order() {
    let listed: BTreeMap<String, Vec<String>> = readme()
        .into_iter()
        .map(|(section, rows)| (section, rows.into_iter().map(|r| r.rule).collect()))
        .collect();
    let code: BTreeMap<String, Vec<String>> = code()
        .into_iter()
        .map(|(m, rules)| (m.to_owned(), rules))
        .collect();
    assert_eq!(listed, code, "README tables vs. the macros' lists");
}

#[test]
fn the_readme_names_exactly_the_bugs_planted_for_each_rule() {
    let mut planted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for bug in Bug::ALL {
        planted
            .entry(bug.rule().to_owned())
            .or_default()
            .insert(format!("{bug:?}"));
    }
    let listed: BTreeMap<String, BTreeSet<String>> = readme()
        .into_values()
        .flatten()
        .map(|row| (row.rule, row.bugs))
        .collect();
    assert_eq!(listed, planted, "README bug column vs. Bug::rule");
}
