//! Plain aligned columns and key/value blocks for people reading the client's answers.

use serde_json::Value;

/// Columns separated by two spaces, each as wide as its widest cell; the last column is not padded.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header_row: Vec<String> = headers.iter().map(|header| header.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if index + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.chars().count())));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `key  value` lines with the values aligned.
pub fn render_pairs(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(key, _)| key.chars().count()).max().unwrap_or(0);
    let mut text = String::new();
    for (key, value) in pairs {
        text.push_str(format!("{key:<width$}  {value}").trim_end());
        text.push('\n');
    }
    text
}

/// A JSON member as a cell: strings bare, null or absent as `-`, anything else as compact JSON.
pub fn cell(value: &Value, key: &str) -> String {
    show(value.get(key).unwrap_or(&Value::Null))
}

pub fn show(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(text) if text.is_empty() => "-".to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "-".to_string(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        Value::Object(members) if members.is_empty() => "-".to_string(),
        Value::Object(members) => {
            members.iter().map(|(key, value)| format!("{key}={}", show(value))).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// The `items` of a list answer (empty when absent).
pub fn items(value: &Value) -> &[Value] {
    value.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let text = render(
            &["NAME", "STATUS"],
            &[vec!["a".into(), "InService".into()], vec!["credit-long".into(), "Creating".into()]],
        );
        assert_eq!(text, "NAME         STATUS\na            InService\ncredit-long  Creating\n");
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(render(&["NAME", "CREATED"], &[]), "NAME  CREATED\n");
    }

    #[test]
    fn pairs_align_their_values() {
        assert_eq!(render_pairs(&[("name", "x".into()), ("status", "-".into())]), "name    x\nstatus  -\n");
    }

    #[test]
    fn cells_show_json_plainly() {
        let value = serde_json::json!({"s": "text", "n": 1.5, "z": null, "a": ["x", "y"], "o": {"k": "v"}, "e": ""});
        assert_eq!(cell(&value, "s"), "text");
        assert_eq!(cell(&value, "n"), "1.5");
        assert_eq!(cell(&value, "z"), "-");
        assert_eq!(cell(&value, "missing"), "-");
        assert_eq!(cell(&value, "a"), "x, y");
        assert_eq!(cell(&value, "o"), "k=v");
        assert_eq!(cell(&value, "e"), "-");
    }
}
