//! Turning text cells (a CSV file, a request body) into model rows: header mapping, number
//! parsing, category codes, each error naming the row and the column.

use std::collections::HashMap;

use crate::error::InputError;
use crate::ir::{Feature, FeatureKind, UnknownCategory};

/// Cells read as a missing value besides the empty cell.
const MISSING_WORDS: [&str; 5] = ["NaN", "nan", "NA", "null", "None"];

/// How the columns of a tabular input map onto a model's inputs, and how each cell is read.
#[derive(Debug, Clone)]
pub struct RowDecoder {
    /// For each input column, the model input it feeds, or `None` when the column is ignored.
    targets: Vec<Option<usize>>,
    /// The column names, for error messages.
    column_names: Vec<String>,
    readers: Vec<CellReader>,
    num_inputs: usize,
}

#[derive(Debug, Clone)]
enum CellReader {
    Number,
    CategoryCode,
    CategoryName { codes: HashMap<String, u32>, unknown: UnknownCategory, unlisted_code: f64 },
}

/// How the header was matched to the model's inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnMapping {
    ByName,
    ByPosition,
}

impl RowDecoder {
    /// Maps a header onto `inputs`: by name when every input's name is in the header (other
    /// columns are then ignored), else by position when the counts agree.
    pub fn from_header<S: AsRef<str>>(
        inputs: &[Feature],
        header: &[S],
    ) -> Result<(RowDecoder, ColumnMapping), InputError> {
        let names: Vec<String> = header.iter().map(|name| name.as_ref().trim().to_string()).collect();
        let mut position_of: HashMap<&str, usize> = HashMap::with_capacity(names.len());
        for (position, name) in names.iter().enumerate() {
            if position_of.insert(name.as_str(), position).is_some() {
                return Err(InputError::Header(format!("column {name:?} appears more than once")));
            }
        }
        let absent: Vec<&str> =
            inputs.iter().map(|feature| feature.name.as_str()).filter(|name| !position_of.contains_key(name)).collect();
        let (targets, mapping) = if absent.is_empty() {
            let mut targets = vec![None; names.len()];
            for (index, feature) in inputs.iter().enumerate() {
                targets[position_of[feature.name.as_str()]] = Some(index);
            }
            (targets, ColumnMapping::ByName)
        } else if names.len() == inputs.len() {
            ((0..inputs.len()).map(Some).collect(), ColumnMapping::ByPosition)
        } else {
            let shown: Vec<&str> = absent.iter().take(5).copied().collect();
            return Err(InputError::Header(format!(
                "the input has {} columns but the model has {} inputs, and the header lacks the model's inputs {}{}",
                names.len(),
                inputs.len(),
                shown.join(", "),
                if absent.len() > shown.len() {
                    format!(" and {} more", absent.len() - shown.len())
                } else {
                    String::new()
                }
            )));
        };
        let readers = inputs.iter().map(CellReader::for_feature).collect();
        Ok((RowDecoder { targets, column_names: names, readers, num_inputs: inputs.len() }, mapping))
    }

    /// Number of columns each row must have.
    pub fn num_columns(&self) -> usize {
        self.targets.len()
    }

    /// Reads one row of cells into `out` (the model's `num_inputs` values). `row` is the 1-based
    /// data row number used in errors.
    pub fn decode<'a>(
        &self,
        row: usize,
        cells: impl Iterator<Item = &'a str> + Clone,
        out: &mut [f64],
    ) -> Result<(), InputError> {
        let found = cells.clone().count();
        if found != self.targets.len() {
            return Err(InputError::ColumnCount { row, expected: self.targets.len(), found });
        }
        debug_assert_eq!(out.len(), self.num_inputs);
        for (column, cell) in cells.enumerate() {
            let Some(target) = self.targets[column] else { continue };
            out[target] = self.readers[target].read(cell).map_err(|message| InputError::Cell {
                row,
                column: self.column_names[column].clone(),
                message,
            })?;
        }
        Ok(())
    }
}

impl CellReader {
    fn for_feature(feature: &Feature) -> CellReader {
        match &feature.kind {
            FeatureKind::Numeric => CellReader::Number,
            FeatureKind::Categorical { categories: None, .. } => CellReader::CategoryCode,
            FeatureKind::Categorical { categories: Some(categories), unknown } => CellReader::CategoryName {
                codes: categories.iter().enumerate().map(|(code, name)| (name.clone(), code as u32)).collect(),
                unknown: *unknown,
                unlisted_code: categories.len() as f64,
            },
        }
    }

    fn read(&self, cell: &str) -> Result<f64, String> {
        let cell = cell.trim();
        if cell.is_empty() || MISSING_WORDS.contains(&cell) {
            return Ok(f64::NAN);
        }
        match self {
            CellReader::Number => {
                parse_number(cell).ok_or_else(|| format!("expected a number, found {:?}", shorten(cell)))
            }
            CellReader::CategoryCode => parse_number(cell).ok_or_else(|| {
                format!("expected a category code (the model stores no category names), found {:?}", shorten(cell))
            }),
            CellReader::CategoryName { codes, unknown, unlisted_code } => match codes.get(cell) {
                Some(code) => Ok(f64::from(*code)),
                None => match unknown {
                    UnknownCategory::Missing => Ok(f64::NAN),
                    UnknownCategory::Unlisted => Ok(*unlisted_code),
                    UnknownCategory::Error => Err(format!("unknown category {:?}", shorten(cell))),
                },
            },
        }
    }
}

/// Parses a decimal number; Rust's parser also takes `inf`, `-inf` and `infinity`.
fn parse_number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok()
}

/// Keeps error messages short when a cell is huge.
fn shorten(cell: &str) -> String {
    const LIMIT: usize = 40;
    match cell.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &cell[..cut]),
        None => cell.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::MissingRule;

    fn categorical(name: &str, categories: Option<&[&str]>, unknown: UnknownCategory) -> Feature {
        Feature {
            name: name.into(),
            kind: FeatureKind::Categorical {
                categories: categories.map(|list| list.iter().map(|c| c.to_string()).collect()),
                unknown,
            },
            missing: MissingRule::AsIs,
        }
    }

    #[test]
    fn maps_by_name_in_any_order_and_ignores_extra_columns() {
        let inputs = [Feature::numeric("a"), Feature::numeric("b")];
        let (decoder, mapping) = RowDecoder::from_header(&inputs, &["id", "b", "a"]).unwrap();
        assert_eq!(mapping, ColumnMapping::ByName);
        let mut out = [0.0; 2];
        decoder.decode(1, ["x", "2.5", "-1"].into_iter(), &mut out).unwrap();
        assert_eq!(out, [-1.0, 2.5]);
    }

    #[test]
    fn maps_by_position_when_names_differ() {
        let inputs = [Feature::numeric("f0"), Feature::numeric("f1")];
        let (decoder, mapping) = RowDecoder::from_header(&inputs, &["x", "y"]).unwrap();
        assert_eq!(mapping, ColumnMapping::ByPosition);
        let mut out = [0.0; 2];
        decoder.decode(1, ["1", ""].into_iter(), &mut out).unwrap();
        assert_eq!(out[0], 1.0);
        assert!(out[1].is_nan());
    }

    #[test]
    fn header_errors_name_the_problem() {
        let inputs = [Feature::numeric("a"), Feature::numeric("b")];
        let error = RowDecoder::from_header(&inputs, &["a", "c", "d"]).unwrap_err();
        assert!(error.to_string().contains("lacks the model's inputs b"), "{error}");
        let error = RowDecoder::from_header(&inputs, &["a", "a"]).unwrap_err();
        assert!(error.to_string().contains("more than once"), "{error}");
    }

    #[test]
    fn cell_errors_name_row_and_column() {
        let inputs = [Feature::numeric("income"), categorical("purpose", Some(&["car", "tv"]), UnknownCategory::Error)];
        let (decoder, _) = RowDecoder::from_header(&inputs, &["income", "purpose"]).unwrap();
        let mut out = [0.0; 2];
        let error = decoder.decode(7, ["12k", "car"].into_iter(), &mut out).unwrap_err();
        assert_eq!(
            error,
            InputError::Cell { row: 7, column: "income".into(), message: "expected a number, found \"12k\"".into() }
        );
        let error = decoder.decode(8, ["1", "boat"].into_iter(), &mut out).unwrap_err();
        assert!(error.to_string().contains("row 8, column \"purpose\": unknown category \"boat\""), "{error}");
        let error = decoder.decode(9, ["1"].into_iter(), &mut out).unwrap_err();
        assert_eq!(error, InputError::ColumnCount { row: 9, expected: 2, found: 1 });
    }

    #[test]
    fn categories_follow_the_model_rule() {
        let inputs = [
            categorical("named", Some(&["a", "b"]), UnknownCategory::Missing),
            categorical("coded", None, UnknownCategory::Missing),
        ];
        let (decoder, _) = RowDecoder::from_header(&inputs, &["named", "coded"]).unwrap();
        let mut out = [0.0; 2];
        decoder.decode(1, ["b", "3"].into_iter(), &mut out).unwrap();
        assert_eq!(out, [1.0, 3.0]);
        decoder.decode(2, ["zzz", "NA"].into_iter(), &mut out).unwrap();
        assert!(out[0].is_nan() && out[1].is_nan());
        let error = decoder.decode(3, ["a", "red"].into_iter(), &mut out).unwrap_err();
        assert!(error.to_string().contains("category code"), "{error}");
    }

    #[test]
    fn an_unlisted_category_gets_a_code_no_test_holds() {
        let inputs = [categorical("department", Some(&["marketing", "business"]), UnknownCategory::Unlisted)];
        let (decoder, _) = RowDecoder::from_header(&inputs, &["department"]).unwrap();
        let mut out = [0.0];
        decoder.decode(1, ["sales"].into_iter(), &mut out).unwrap();
        assert_eq!(out, [2.0]);
        decoder.decode(2, ["business"].into_iter(), &mut out).unwrap();
        assert_eq!(out, [1.0]);
    }
}
