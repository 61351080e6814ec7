//! Raw input fields: reading a cell of any kind into the number the pipeline works on, and the
//! schema's policies for missing and out-of-range values.

use std::borrow::Cow;
use std::collections::HashMap;

pub use crate::spec::FeatureType as FieldType;
use crate::spec::OutOfRangePolicy;

/// One value of a row as a caller sends it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Missing,
    Number(f64),
    Text(Cow<'a, str>),
    Bool(bool),
}

/// A raw input field, as the pipeline's schema declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub kind: FieldType,
    /// Whether a missing value is an error.
    pub required: bool,
    /// The allowed categories of a categorical field (empty otherwise).
    pub categories: Vec<String>,
    pub description: Option<String>,
}

/// Text cells read as missing in numeric and boolean fields, besides the empty cell (the words
/// `riskserve score --model` reads as missing too).
const MISSING_WORDS: [&str; 5] = ["NaN", "nan", "NA", "null", "None"];

/// Category lists up to this long are searched one by one rather than hashed.
const SHORT_CATEGORY_LIST: usize = 16;

/// What the readers return for a value outside the range that the field's policy reads as
/// missing; no valid value is infinite, so it cannot be confused with one.
const OUT_OF_RANGE: f64 = f64::NEG_INFINITY;

/// How one field's cell becomes a number: a category becomes its index in the field's
/// categories, a boolean 1 or 0, a missing value NaN.
#[derive(Debug, Clone)]
pub(crate) struct FieldRule {
    pub kind: FieldType,
    pub required: bool,
    /// The value a missing cell becomes (NaN keeps it missing).
    pub impute: f64,
    pub min: f64,
    pub max: f64,
    pub out_of_range: OutOfRangePolicy,
    pub category_index: HashMap<String, u32>,
    /// The categories in order; short lists are searched directly, which is faster than hashing.
    pub category_list: Vec<String>,
    /// For a bare model's categorical input whose unknown categories are valid values (PMML's
    /// open value lists): the code an unknown category gets.
    pub unlisted_code: Option<f64>,
}

impl FieldRule {
    pub fn numeric() -> FieldRule {
        FieldRule {
            kind: FieldType::Numeric,
            required: false,
            impute: f64::NAN,
            min: f64::NEG_INFINITY,
            max: f64::INFINITY,
            out_of_range: OutOfRangePolicy::Reject,
            category_index: HashMap::new(),
            category_list: Vec::new(),
            unlisted_code: None,
        }
    }

    /// Reads one cell; the error is the message of a [`crate::RowError`].
    #[inline]
    pub fn read(&self, cell: &Cell<'_>) -> Result<f64, String> {
        let value = match self.kind {
            FieldType::Numeric => self.read_number(cell)?,
            FieldType::Categorical => self.read_category(cell)?,
            FieldType::Boolean => read_boolean(cell)?,
        };
        if value.is_nan() {
            if self.required {
                return Err("a value is required".into());
            }
            return Ok(self.impute);
        }
        if value == OUT_OF_RANGE {
            // A value sent but outside the declared range, read as missing: never an error.
            return Ok(self.impute);
        }
        Ok(value)
    }

    fn read_number(&self, cell: &Cell<'_>) -> Result<f64, String> {
        let value = match cell {
            Cell::Missing => return Ok(f64::NAN),
            Cell::Number(value) => *value,
            Cell::Text(text) => {
                let text = text.trim();
                if text.is_empty() || MISSING_WORDS.contains(&text) {
                    return Ok(f64::NAN);
                }
                text.parse::<f64>().map_err(|_| format!("{text:?} is not a number"))?
            }
            Cell::Bool(value) => return Err(format!("expected a number, got the boolean {value}")),
        };
        if value.is_nan() {
            return Ok(f64::NAN);
        }
        if !value.is_finite() {
            return Err(format!("{value} is not a finite number"));
        }
        if value < self.min || value > self.max {
            return match self.out_of_range {
                OutOfRangePolicy::Reject => Err(if value < self.min {
                    format!("{value} is below the minimum {}", self.min)
                } else {
                    format!("{value} is above the maximum {}", self.max)
                }),
                OutOfRangePolicy::Clip => Ok(value.clamp(self.min, self.max)),
                OutOfRangePolicy::Missing => Ok(OUT_OF_RANGE),
            };
        }
        Ok(value)
    }

    fn read_category(&self, cell: &Cell<'_>) -> Result<f64, String> {
        let number_text;
        let text: &str = match cell {
            Cell::Missing => return Ok(f64::NAN),
            Cell::Text(text) => text.trim(),
            Cell::Number(value) if value.is_nan() => return Ok(f64::NAN),
            Cell::Number(value) => {
                number_text = number_as_category(*value);
                &number_text
            }
            Cell::Bool(value) => return Err(format!("expected a category, got the boolean {value}")),
        };
        if text.is_empty() {
            return Ok(f64::NAN);
        }
        let found = if self.category_list.len() <= SHORT_CATEGORY_LIST {
            self.category_list.iter().position(|category| category == text).map(|position| position as u32)
        } else {
            self.category_index.get(text).copied()
        };
        match found {
            Some(index) => Ok(f64::from(index)),
            None => {
                if let Some(code) = self.unlisted_code {
                    return Ok(code);
                }
                match self.out_of_range {
                    OutOfRangePolicy::Missing => Ok(OUT_OF_RANGE),
                    OutOfRangePolicy::Reject | OutOfRangePolicy::Clip => {
                        Err(format!("{text:?} is not one of the declared categories"))
                    }
                }
            }
        }
    }
}

/// A number as the category text it stands for: whole numbers without a fraction (`2.0` is `2`).
pub(crate) fn number_as_category(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { format!("{value}") }
}

fn read_boolean(cell: &Cell<'_>) -> Result<f64, String> {
    match cell {
        Cell::Missing => Ok(f64::NAN),
        Cell::Bool(value) => Ok(if *value { 1.0 } else { 0.0 }),
        Cell::Number(value) if value.is_nan() => Ok(f64::NAN),
        Cell::Number(value) if *value == 1.0 || *value == 0.0 => Ok(*value),
        Cell::Number(value) => Err(format!("expected a boolean, got the number {value}")),
        Cell::Text(text) => {
            let text = text.trim();
            if text.is_empty() || MISSING_WORDS.contains(&text) {
                Ok(f64::NAN)
            } else if text.eq_ignore_ascii_case("true") || text == "1" {
                Ok(1.0)
            } else if text.eq_ignore_ascii_case("false") || text == "0" {
                Ok(0.0)
            } else {
                Err(format!("{text:?} is not a boolean (true, false, 1 or 0)"))
            }
        }
    }
}
