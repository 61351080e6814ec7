//! Invocation payloads: request bodies (CSV, JSON) become rows of cells, outcomes become answer
//! bodies. Errors name the line and field (CSV) or the line and column (JSON).

use std::borrow::Cow;

use serde_json::Value;

use crate::error::ServiceError;
use crate::scoring::{Cell, Outcome, RowError, Scorer};

/// At most this many row errors are listed in one answer; the rest are counted.
const MAX_LISTED_ROW_ERRORS: usize = 20;

/// The content types an invocation speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Csv,
    Json,
}

impl BodyFormat {
    /// Reads a `Content-Type` header value; parameters such as `charset` are ignored.
    pub fn from_content_type(content_type: Option<&str>) -> Result<BodyFormat, ServiceError> {
        let Some(value) = content_type else {
            return Err(ServiceError::UnsupportedMediaType(
                "the request has no Content-Type; send text/csv or application/json".to_string(),
            ));
        };
        let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" => Ok(BodyFormat::Csv),
            "application/json" => Ok(BodyFormat::Json),
            _ => Err(ServiceError::UnsupportedMediaType(format!(
                "Content-Type {value:?} is not supported; send text/csv or application/json"
            ))),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Csv => "text/csv",
            BodyFormat::Json => "application/json",
        }
    }
}

/// Decodes a CSV body: no header, one row a line, values in `fields` order; an empty cell is a
/// missing value.
pub fn decode_csv<'a>(body: &'a [u8], fields: &[String]) -> Result<Vec<Vec<Cell<'a>>>, ServiceError> {
    let text = std::str::from_utf8(body).map_err(|error| {
        ServiceError::validation(format!("the CSV body is not UTF-8 (byte {})", error.valid_up_to()))
    })?;
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let mut row = Vec::with_capacity(fields.len());
        for (column, cell) in split_csv_line(line, index + 1)?.into_iter().enumerate() {
            if column >= fields.len() {
                return Err(ServiceError::validation(format!(
                    "CSV line {}: expected {} fields, found more",
                    index + 1,
                    fields.len()
                )));
            }
            row.push(if cell.trim().is_empty() { Cell::Missing } else { Cell::Text(cell) });
        }
        if row.len() != fields.len() {
            return Err(ServiceError::validation(format!(
                "CSV line {}: expected {} fields, found {}",
                index + 1,
                fields.len(),
                row.len()
            )));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(ServiceError::validation("the CSV body holds no rows"));
    }
    Ok(rows)
}

/// Splits one CSV line into cells, honouring double quotes (`""` inside quotes is one quote).
fn split_csv_line(line: &str, line_number: usize) -> Result<Vec<Cow<'_, str>>, ServiceError> {
    if !line.contains('"') {
        return Ok(line.split(',').map(Cow::Borrowed).collect());
    }
    let mut cells = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut field_start = true;
    while let Some(character) = chars.next() {
        match (quoted, character) {
            (false, '"') if field_start => quoted = true,
            (false, '"') => {
                return Err(ServiceError::validation(format!(
                    "CSV line {line_number}, field {}: a quote inside an unquoted field",
                    cells.len() + 1
                )));
            }
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            (true, '"') => quoted = false,
            (false, ',') => {
                cells.push(Cow::Owned(std::mem::take(&mut current)));
                field_start = true;
                continue;
            }
            (_, other) => current.push(other),
        }
        field_start = false;
    }
    if quoted {
        return Err(ServiceError::validation(format!(
            "CSV line {line_number}, field {}: an unterminated quote",
            cells.len() + 1
        )));
    }
    cells.push(Cow::Owned(current));
    Ok(cells)
}

/// Decodes `{"instances": [[v, ...], ...]}` or `{"instances": [{"field": v, ...}, ...]}`.
pub fn decode_json(body: &[u8], fields: &[String]) -> Result<Vec<Vec<Cell<'static>>>, ServiceError> {
    let document: Value = serde_json::from_slice(body).map_err(|error| {
        // JSON's grammar allows 1e999, but no value is infinite: that is the row's fault, not the syntax's.
        if error.to_string().starts_with("number out of range") {
            ServiceError::InvalidInput(format!(
                "a value at line {} column {} is out of range: values must be finite numbers",
                error.line(),
                error.column()
            ))
        } else {
            ServiceError::validation(format!("the JSON body is malformed: {error}"))
        }
    })?;
    let Some(instances) = document.get("instances") else {
        return Err(ServiceError::validation("the JSON body has no \"instances\" member"));
    };
    let Value::Array(instances) = instances else {
        return Err(ServiceError::validation("\"instances\" must be a list of rows"));
    };
    if instances.is_empty() {
        return Err(ServiceError::validation("\"instances\" holds no rows"));
    }
    let mut rows = Vec::with_capacity(instances.len());
    for (index, instance) in instances.iter().enumerate() {
        let row = match instance {
            Value::Array(values) => {
                if values.len() != fields.len() {
                    return Err(ServiceError::validation(format!(
                        "row {}: expected {} values, found {}",
                        index + 1,
                        fields.len(),
                        values.len()
                    )));
                }
                values
                    .iter()
                    .zip(fields)
                    .map(|(value, field)| cell_of(value, index, field))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Value::Object(members) => {
                let mut row = vec![Cell::Missing; fields.len()];
                for (name, value) in members {
                    let Some(position) = fields.iter().position(|field| field == name) else {
                        return Err(ServiceError::validation(format!(
                            "row {}: unknown field {name:?}; the fields are {}",
                            index + 1,
                            list_fields(fields)
                        )));
                    };
                    row[position] = cell_of(value, index, name)?;
                }
                row
            }
            _ => {
                return Err(ServiceError::validation(format!(
                    "row {}: expected a list of values or an object of fields",
                    index + 1
                )));
            }
        };
        rows.push(row);
    }
    Ok(rows)
}

fn cell_of(value: &Value, index: usize, field: &str) -> Result<Cell<'static>, ServiceError> {
    Ok(match value {
        Value::Null => Cell::Missing,
        Value::Bool(flag) => Cell::Bool(*flag),
        Value::Number(number) => match number.as_f64() {
            Some(number) => Cell::Number(number),
            None => {
                return Err(ServiceError::validation(format!(
                    "row {}, field {field:?}: {number} is not a number riskserve can hold",
                    index + 1
                )));
            }
        },
        Value::String(text) => Cell::Text(Cow::Owned(text.clone())),
        Value::Array(_) | Value::Object(_) => {
            return Err(ServiceError::validation(format!(
                "row {}, field {field:?}: expected a number, string, boolean or null",
                index + 1
            )));
        }
    })
}

fn list_fields(fields: &[String]) -> String {
    let shown: Vec<&str> = fields.iter().take(8).map(String::as_str).collect();
    if fields.len() > shown.len() {
        format!("{} and {} more", shown.join(", "), fields.len() - shown.len())
    } else {
        shown.join(", ")
    }
}

/// The `invalid_input` error for rows that failed the schema; rows count from 1 as in the body.
pub fn row_errors(errors: &[RowError]) -> ServiceError {
    let listed: Vec<String> = errors
        .iter()
        .take(MAX_LISTED_ROW_ERRORS)
        .map(|error| {
            if error.field.is_empty() {
                format!("row {}: {}", error.row + 1, error.message)
            } else {
                format!("row {}, field `{}`: {}", error.row + 1, error.field, error.message)
            }
        })
        .collect();
    let more = errors.len().saturating_sub(listed.len());
    let tail = if more > 0 { format!("; and {more} more") } else { String::new() };
    ServiceError::InvalidInput(format!("{}{tail}", listed.join("; ")))
}

/// The answer body: CSV, one line per row, or `{"predictions": [...]}`.
pub fn encode(outcomes: &[Outcome], format: BodyFormat, scorer: &Scorer) -> Result<Vec<u8>, ServiceError> {
    match format {
        BodyFormat::Csv => {
            let mut body = String::new();
            for outcome in outcomes {
                for (index, cell) in scorer.csv_cells(outcome).iter().enumerate() {
                    if index > 0 {
                        body.push(',');
                    }
                    push_csv_cell(&mut body, cell);
                }
                body.push('\n');
            }
            Ok(body.into_bytes())
        }
        BodyFormat::Json => {
            #[derive(serde::Serialize)]
            struct Predictions<'a> {
                predictions: &'a [Outcome],
            }
            serde_json::to_vec(&Predictions { predictions: outcomes })
                .map_err(|error| ServiceError::internal(format!("cannot encode the answer: {error}")))
        }
    }
}

/// Writes a cell, quoted when it holds a comma, a quote or a line break.
fn push_csv_cell(body: &mut String, cell: &str) {
    if cell.contains([',', '"', '\n', '\r']) {
        body.push('"');
        body.push_str(&cell.replace('"', "\"\""));
        body.push('"');
    } else {
        body.push_str(cell);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<String> {
        vec!["a".to_string(), "b".to_string()]
    }

    #[test]
    fn csv_lines_become_rows_and_bad_lines_are_named() {
        let rows = decode_csv(b"1,2\n,\"x,y\"\r\n\n", &fields()).expect("rows");
        assert_eq!(
            rows,
            vec![vec![Cell::Text("1".into()), Cell::Text("2".into())], vec![Cell::Missing, Cell::Text("x,y".into())]]
        );
        let error = decode_csv(b"1,2\n1,2,3\n", &fields()).expect_err("too many");
        assert!(error.to_string().contains("CSV line 2"), "{error}");
        let error = decode_csv(b"1,\"2\n", &fields()).expect_err("quote");
        assert!(error.to_string().contains("unterminated quote"), "{error}");
        assert!(decode_csv(b"\n\n", &fields()).is_err());
    }

    #[test]
    fn json_rows_by_position_and_by_name() {
        let rows = decode_json(br#"{"instances": [[1, null], {"b": "x", "a": true}]}"#, &fields()).expect("rows");
        assert_eq!(rows, vec![vec![Cell::Number(1.0), Cell::Missing], vec![Cell::Bool(true), Cell::Text("x".into())]]);
        let error = decode_json(b"{\"instances\": [[1, 2]\n", &fields()).expect_err("malformed");
        assert!(error.to_string().contains("line 2"), "{error}");
        let error = decode_json(br#"{"instances": [[1e999, 1]]}"#, &fields()).expect_err("infinite");
        assert_eq!(error.code(), "invalid_input", "{error}");
        assert!(error.to_string().contains("line 1 column"), "{error}");
        let error = decode_json(br#"{"instances": [{"c": 1}]}"#, &fields()).expect_err("unknown");
        assert!(error.to_string().contains("unknown field \"c\""), "{error}");
    }
}
