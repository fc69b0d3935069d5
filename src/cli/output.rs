//! Printing results: one [`emit`] for anything that is both [`Serialize`] (for `--json`) and
//! [`Display`] (for people), and [`Table`] for lists.
//!
//! Owns: the output format of the command line. Talks to: nothing (stdout).

use std::fmt::{self, Display};

use serde::Serialize;

/// Prints `v` as pretty JSON when `json`, else as text.
pub fn emit<T: Serialize + Display + ?Sized>(json: bool, v: &T) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        println!("{v}");
    }
    Ok(())
}

/// A list: JSON is the array of rows; text is an optional header line, one line per row, and a
/// footer (the count).
pub struct Table<'a, T> {
    pub rows: &'a [T],
    pub header: Option<String>,
    pub line: fn(&T) -> String,
    pub footer: String,
}

impl<T: Serialize> Serialize for Table<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.rows.serialize(s)
    }
}

impl<T> Display for Table<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(h) = &self.header {
            writeln!(f, "{h}")?;
        }
        for r in self.rows {
            writeln!(f, "{}", (self.line)(r))?;
        }
        write!(f, "{}", self.footer)
    }
}

/// `n thing(s)`-style counts: `1 entry`, `2 entries`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_an_array_in_json_and_lines_in_text() {
        let rows = [1, 2];
        let t = Table {
            rows: &rows,
            header: Some("n".into()),
            line: |n: &i32| format!("#{n}"),
            footer: count(2, "x", "xs"),
        };
        assert_eq!(serde_json::to_string(&t).ok().as_deref(), Some("[1,2]"));
        assert_eq!(t.to_string(), "n\n#1\n#2\n2 xs");
    }
}
