//! The README's option table is the option table (`core/src/options/table.rs`), rendered.
//! A new or changed option fails this test until the README says the same; the message prints
//! the table to paste.

use strata_core::options::{OptionDescriptor, descriptors};

const README: &str = include_str!("../../README.md");
const MARKER: &str = "<!-- option table: generated from core/src/options/table.rs";

fn row(d: &OptionDescriptor) -> Option<String> {
    let setter = d.setter?;
    let range = d.range.as_ref().map_or_else(|| String::from("any"), |r| r.text());
    Some(format!("| `{setter}` | `{}` | {} | {} | {range} |", d.name, d.summary, d.default))
}

fn expected_table() -> String {
    let mut lines = vec![
        String::from("| Builder method | Option | What it does | Default | Valid values |"),
        String::from("|---|---|---|---|---|"),
    ];
    lines.extend(descriptors().iter().filter_map(row));
    lines.join("\n")
}

#[test]
fn readme_option_table_matches_the_option_table() {
    let start = README.find(MARKER).expect("README has the option table marker");
    let after = &README[start..];
    let table: Vec<&str> = after
        .lines()
        .skip(1)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'))
        .collect();
    let expected = expected_table();
    assert_eq!(
        table.join("\n"),
        expected,
        "README's option table is out of date; replace it with:\n\n{expected}\n"
    );
}

#[test]
fn every_builder_option_is_in_the_readme_and_internal_ones_are_not() {
    let all = descriptors();
    let shown = all.iter().filter(|d| d.setter.is_some()).count();
    assert!(shown >= 19, "the builder exposes every user option ({shown})");
    for d in all.iter().filter(|d| d.setter.is_none()) {
        assert!(!README.contains(&format!("| `{}` |", d.name)), "{} is internal", d.name);
    }
}
