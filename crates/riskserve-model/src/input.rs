//! Turning text cells (CSV) into model rows: header mapping, number parsing, category codes.
