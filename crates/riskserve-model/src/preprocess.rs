//! Feature programs: the preprocessing an ONNX-ML graph does before its model (scaling, imputing,
//! one-hot encoding...), as a flat list of steps over a scratch buffer.
//!
//! A program is a small register machine. The scratch buffer is a row of `f64` slots: the raw
//! inputs occupy slots `0..num_inputs`, each [`Step`] reads some slots and writes a contiguous
//! range of fresh slots, and [`FeatureProgram::output`] lists the slots that form the model body's
//! feature vector, in order. Operators that only move columns around (ONNX's `Concat`, `Identity`,
//! `Reshape`, `ArrayFeatureExtractor`) cost nothing at run time: the importer resolves them into
//! the slot lists of the steps that follow.
//!
//! Every step reproduces ONNX Runtime's arithmetic bit for bit where the library works in `f32`
//! ([`Arithmetic::F32`]): a value computed in `f32` is stored widened, so the slots always hold
//! exactly what ONNX Runtime's tensors hold.
//!
//! [`FeatureProgram::validate`] checks every index once, so that [`FeatureProgram::apply`], which
//! runs for every row, neither allocates nor fails.

/// The most slots a program may use, far above any real preprocessing graph; it bounds the scratch
/// buffer every scoring thread allocates (8 MiB).
pub const MAX_SCRATCH_SLOTS: usize = 1 << 20;

/// Turns one row of model inputs into the body's feature vector.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureProgram {
    /// Number of raw inputs, copied into slots `0..num_inputs` before the first step.
    pub num_inputs: usize,
    /// Length of the scratch buffer.
    pub scratch_len: usize,
    pub steps: Vec<Step>,
    /// The slots that form the body's feature vector, in order.
    pub output: Vec<u32>,
}

/// The type ONNX Runtime computes a step in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arithmetic {
    /// Every operation rounds to `f32`, as ONNX Runtime's float kernels do.
    F32,
    /// Every operation is in `f64` (double tensors).
    F64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOperator {
    Add,
    Subtract,
    Multiply,
    Divide,
}

/// ONNX-ML `Normalizer` norms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// Divide by the largest value (unless it is 0).
    Max,
    /// Divide by the sum of absolute values (unless it is 0).
    L1,
    /// Divide by the Euclidean norm (unless it is 0).
    L2,
}

/// One category-code column of an encoder: the slot holding the code, and the codes the encoder
/// lists with the position each maps to, sorted by code and distinct. Any other code is an
/// unknown category. (A sorted list rather than a table indexed by code keeps the size of each
/// column to its own encoder's categories, however many categories other encoders add.)
#[derive(Debug, Clone, PartialEq)]
pub struct CodeColumn {
    pub input: u32,
    pub entries: Vec<(u32, u32)>,
}

/// One operation of a feature program. `inputs` are slots to read; `output` is the first slot of
/// the contiguous range written (one slot per input unless the step says otherwise).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Rounds each value to `f32` (ONNX `Cast` to float, and float input tensors).
    RoundToF32 { inputs: Vec<u32>, output: u32 },
    /// Truncates each value toward zero (ONNX `Cast` to an integer type); NaN stays NaN.
    Truncate { inputs: Vec<u32>, output: u32 },
    /// ONNX-ML `Scaler`: `(x - offsets[i]) * scales[i]`, computed in `arithmetic` and then
    /// rounded to `f32` (the operator's output is always float).
    Scale { inputs: Vec<u32>, output: u32, offsets: Vec<f64>, scales: Vec<f64>, arithmetic: Arithmetic },
    /// ONNX `Add`, `Sub`, `Mul`, `Div` with a constant operand, one constant per column:
    /// `x op c`, or `c op x` when `constant_first`.
    Binary {
        operator: BinaryOperator,
        inputs: Vec<u32>,
        output: u32,
        constants: Vec<f64>,
        constant_first: bool,
        arithmetic: Arithmetic,
    },
    /// ONNX-ML `Imputer`: a value equal to `replaced` (or NaN when `replaced` is NaN) becomes
    /// `values[i]`.
    Impute { inputs: Vec<u32>, output: u32, replaced: f64, values: Vec<f64> },
    /// ONNX-ML `Normalizer` over all the inputs together, in `f32`.
    Normalize { inputs: Vec<u32>, output: u32, norm: Norm },
    /// ONNX-ML `Binarizer`: 1 when `x > threshold`, else 0. ONNX Runtime refuses a NaN input; here
    /// NaN stays NaN, so that the model's missing-value rule applies.
    Binarize { inputs: Vec<u32>, output: u32, threshold: f64 },
    /// ONNX-ML `OneHotEncoder` over category codes: writes `width` slots per column, a 1 at the
    /// category's position and 0 elsewhere; an unknown category writes only zeros.
    OneHotCodes { columns: Vec<CodeColumn>, width: u32, output: u32 },
    /// ONNX-ML `OneHotEncoder` over numbers: each value is truncated to an integer and looked up
    /// in `categories` (sorted by value, distinct: value and position); `width` slots per input.
    OneHotNumbers { inputs: Vec<u32>, categories: Vec<(i64, u32)>, width: u32, output: u32 },
    /// ONNX-ML `LabelEncoder` over category codes: `values[position]` for a listed code, else
    /// `default`.
    LabelCodes { columns: Vec<CodeColumn>, values: Vec<f64>, default: f64, output: u32 },
    /// ONNX-ML `LabelEncoder` over numbers: `keys` sorted by key, distinct, none NaN; a NaN input
    /// maps to `nan_value` when the encoder has a NaN key; anything else unknown to `default`.
    LabelNumbers { inputs: Vec<u32>, keys: Vec<(f64, f64)>, nan_value: Option<f64>, default: f64, output: u32 },
}

impl Step {
    /// Number of slots the step writes.
    fn output_len(&self) -> usize {
        match self {
            Step::RoundToF32 { inputs, .. }
            | Step::Truncate { inputs, .. }
            | Step::Scale { inputs, .. }
            | Step::Binary { inputs, .. }
            | Step::Impute { inputs, .. }
            | Step::Normalize { inputs, .. }
            | Step::Binarize { inputs, .. }
            | Step::LabelNumbers { inputs, .. } => inputs.len(),
            Step::OneHotCodes { columns, width, .. } => columns.len().saturating_mul(*width as usize),
            Step::OneHotNumbers { inputs, width, .. } => inputs.len().saturating_mul(*width as usize),
            Step::LabelCodes { columns, .. } => columns.len(),
        }
    }

    fn output_start(&self) -> u32 {
        match self {
            Step::RoundToF32 { output, .. }
            | Step::Truncate { output, .. }
            | Step::Scale { output, .. }
            | Step::Binary { output, .. }
            | Step::Impute { output, .. }
            | Step::Normalize { output, .. }
            | Step::Binarize { output, .. }
            | Step::OneHotCodes { output, .. }
            | Step::OneHotNumbers { output, .. }
            | Step::LabelCodes { output, .. }
            | Step::LabelNumbers { output, .. } => *output,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Step::RoundToF32 { .. } => "round to f32",
            Step::Truncate { .. } => "truncate",
            Step::Scale { .. } => "scale",
            Step::Binary { .. } => "binary operation",
            Step::Impute { .. } => "impute",
            Step::Normalize { .. } => "normalize",
            Step::Binarize { .. } => "binarize",
            Step::OneHotCodes { .. } | Step::OneHotNumbers { .. } => "one-hot",
            Step::LabelCodes { .. } | Step::LabelNumbers { .. } => "label encode",
        }
    }

    /// Every slot the step reads.
    fn for_each_input(&self, mut visit: impl FnMut(u32) -> Result<(), String>) -> Result<(), String> {
        match self {
            Step::RoundToF32 { inputs, .. }
            | Step::Truncate { inputs, .. }
            | Step::Scale { inputs, .. }
            | Step::Binary { inputs, .. }
            | Step::Impute { inputs, .. }
            | Step::Normalize { inputs, .. }
            | Step::Binarize { inputs, .. }
            | Step::OneHotNumbers { inputs, .. }
            | Step::LabelNumbers { inputs, .. } => inputs.iter().try_for_each(|slot| visit(*slot)),
            Step::OneHotCodes { columns, .. } | Step::LabelCodes { columns, .. } => {
                columns.iter().try_for_each(|column| visit(column.input))
            }
        }
    }

    /// Checks the step's own tables and constants agree with its inputs.
    fn validate_parameters(&self) -> Result<(), String> {
        let same_length = |what: &str, found: usize, inputs: usize| {
            if found == inputs { Ok(()) } else { Err(format!("{found} {what} for {inputs} inputs")) }
        };
        match self {
            Step::RoundToF32 { .. } | Step::Truncate { .. } | Step::Normalize { .. } | Step::Binarize { .. } => Ok(()),
            Step::Scale { inputs, offsets, scales, .. } => {
                same_length("offsets", offsets.len(), inputs.len())?;
                same_length("scales", scales.len(), inputs.len())
            }
            Step::Binary { inputs, constants, .. } => same_length("constants", constants.len(), inputs.len()),
            Step::Impute { inputs, values, .. } => same_length("imputed values", values.len(), inputs.len()),
            Step::OneHotCodes { columns, width, .. } => {
                for column in columns {
                    validate_entries(&column.entries)?;
                    if column.entries.iter().any(|(_, position)| *position >= *width) {
                        return Err(format!("a category position is outside the {width} categories"));
                    }
                }
                Ok(())
            }
            Step::OneHotNumbers { categories, width, .. } => {
                if categories.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
                    return Err("categories are not sorted and distinct".into());
                }
                if categories.iter().any(|(_, position)| *position >= *width) {
                    return Err(format!("a category position is outside the {width} categories"));
                }
                Ok(())
            }
            Step::LabelCodes { columns, values, .. } => {
                for column in columns {
                    validate_entries(&column.entries)?;
                    if column.entries.iter().any(|(_, index)| *index as usize >= values.len()) {
                        return Err(format!("a label index is outside the {} values", values.len()));
                    }
                }
                Ok(())
            }
            Step::LabelNumbers { keys, .. } => {
                if keys.iter().any(|(key, _)| key.is_nan()) {
                    return Err("a key is NaN".into());
                }
                if keys.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
                    return Err("keys are not sorted and distinct".into());
                }
                Ok(())
            }
        }
    }

    /// Runs the step on a validated scratch buffer.
    fn run(&self, scratch: &mut [f64]) {
        match self {
            Step::RoundToF32 { inputs, output } => {
                for (index, input) in inputs.iter().enumerate() {
                    scratch[*output as usize + index] = f64::from(scratch[*input as usize] as f32);
                }
            }
            Step::Truncate { inputs, output } => {
                for (index, input) in inputs.iter().enumerate() {
                    scratch[*output as usize + index] = scratch[*input as usize].trunc();
                }
            }
            Step::Scale { inputs, output, offsets, scales, arithmetic } => {
                for (index, input) in inputs.iter().enumerate() {
                    let value = scratch[*input as usize];
                    let scaled = match arithmetic {
                        Arithmetic::F32 => (value as f32 - offsets[index] as f32) * scales[index] as f32,
                        Arithmetic::F64 => ((value - offsets[index]) * scales[index]) as f32,
                    };
                    scratch[*output as usize + index] = f64::from(scaled);
                }
            }
            Step::Binary { operator, inputs, output, constants, constant_first, arithmetic } => {
                for (index, input) in inputs.iter().enumerate() {
                    let (left, right) = if *constant_first {
                        (constants[index], scratch[*input as usize])
                    } else {
                        (scratch[*input as usize], constants[index])
                    };
                    scratch[*output as usize + index] = match arithmetic {
                        Arithmetic::F32 => f64::from(operator.apply_f32(left as f32, right as f32)),
                        Arithmetic::F64 => operator.apply_f64(left, right),
                    };
                }
            }
            Step::Impute { inputs, output, replaced, values } => {
                for (index, input) in inputs.iter().enumerate() {
                    let value = scratch[*input as usize];
                    let missing = if replaced.is_nan() { value.is_nan() } else { value == *replaced };
                    scratch[*output as usize + index] = if missing { values[index] } else { value };
                }
            }
            Step::Normalize { inputs, output, norm } => normalize(*norm, inputs, *output as usize, scratch),
            Step::Binarize { inputs, output, threshold } => {
                for (index, input) in inputs.iter().enumerate() {
                    let value = scratch[*input as usize];
                    scratch[*output as usize + index] = if value.is_nan() {
                        f64::NAN
                    } else if value > *threshold {
                        1.0
                    } else {
                        0.0
                    };
                }
            }
            Step::OneHotCodes { columns, width, output } => {
                let width = *width as usize;
                for (index, column) in columns.iter().enumerate() {
                    let start = *output as usize + index * width;
                    scratch[start..start + width].fill(0.0);
                    if let Some(position) = lookup_code(&column.entries, scratch[column.input as usize]) {
                        scratch[start + position as usize] = 1.0;
                    }
                }
            }
            Step::OneHotNumbers { inputs, categories, width, output } => {
                let width = *width as usize;
                for (index, input) in inputs.iter().enumerate() {
                    let start = *output as usize + index * width;
                    let value = scratch[*input as usize];
                    scratch[start..start + width].fill(0.0);
                    // ONNX Runtime casts the value to int64, truncating; NaN and values outside
                    // int64 match no category.
                    if value.is_finite() && value.abs() < 9.2e18 {
                        let key = value.trunc() as i64;
                        if let Ok(found) = categories.binary_search_by_key(&key, |(category, _)| *category) {
                            scratch[start + categories[found].1 as usize] = 1.0;
                        }
                    }
                }
            }
            Step::LabelCodes { columns, values, default, output } => {
                for (index, column) in columns.iter().enumerate() {
                    scratch[*output as usize + index] =
                        match lookup_code(&column.entries, scratch[column.input as usize]) {
                            Some(position) => values[position as usize],
                            None => *default,
                        };
                }
            }
            Step::LabelNumbers { inputs, keys, nan_value, default, output } => {
                for (index, input) in inputs.iter().enumerate() {
                    let value = scratch[*input as usize];
                    scratch[*output as usize + index] = if value.is_nan() {
                        nan_value.unwrap_or(*default)
                    } else {
                        match keys.binary_search_by(|(key, _)| key.total_cmp(&value)) {
                            Ok(found) => keys[found].1,
                            // -0.0 and 0.0 are the same key for ONNX Runtime's hash map.
                            Err(_) if value == 0.0 => keys
                                .binary_search_by(|(key, _)| key.total_cmp(&-value))
                                .map_or(*default, |found| keys[found].1),
                            Err(_) => *default,
                        }
                    };
                }
            }
        }
    }
}

impl BinaryOperator {
    fn apply_f32(self, left: f32, right: f32) -> f32 {
        match self {
            BinaryOperator::Add => left + right,
            BinaryOperator::Subtract => left - right,
            BinaryOperator::Multiply => left * right,
            BinaryOperator::Divide => left / right,
        }
    }

    fn apply_f64(self, left: f64, right: f64) -> f64 {
        match self {
            BinaryOperator::Add => left + right,
            BinaryOperator::Subtract => left - right,
            BinaryOperator::Multiply => left * right,
            BinaryOperator::Divide => left / right,
        }
    }
}

/// The encoder position of a category code, or `None` for NaN, non-integer or negative codes and
/// categories the encoder does not list.
fn lookup_code(entries: &[(u32, u32)], code: f64) -> Option<u32> {
    if !(code >= 0.0 && code <= f64::from(u32::MAX)) || code.fract() != 0.0 {
        return None;
    }
    let code = code as u32;
    entries.binary_search_by_key(&code, |(listed, _)| *listed).ok().map(|found| entries[found].1)
}

fn validate_entries(entries: &[(u32, u32)]) -> Result<(), String> {
    if entries.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
        return Err("category codes are not sorted and distinct".into());
    }
    Ok(())
}

/// ONNX Runtime's `Normalizer`, which works in `f32` whatever the input type. The product of two
/// `f32` values is exact in `f64`, so squaring in `f64` and rounding once equals squaring in
/// `f32`.
fn normalize(norm: Norm, inputs: &[u32], output: usize, scratch: &mut [f64]) {
    let value = |scratch: &[f64], index: usize| scratch[inputs[index] as usize];
    match norm {
        Norm::Max => {
            let mut max = f32::MIN;
            for index in 0..inputs.len() {
                let x = value(scratch, index) as f32;
                // std::max(max, x) keeps `max` when the comparison fails, so NaN is skipped.
                if max < x {
                    max = x;
                }
            }
            for index in 0..inputs.len() {
                let x = value(scratch, index) as f32;
                scratch[output + index] = f64::from(if max != 0.0 { x / max } else { x });
            }
        }
        Norm::L1 => {
            let mut sum = 0.0f32;
            for index in 0..inputs.len() {
                sum += value(scratch, index).abs() as f32;
            }
            for index in 0..inputs.len() {
                let x = value(scratch, index) as f32;
                scratch[output + index] = f64::from(if sum != 0.0 { x / sum } else { x });
            }
        }
        Norm::L2 => {
            let square = |x: f64| (x * x) as f32;
            let mut sum = 0.0f32;
            for index in 0..inputs.len() {
                sum += square(value(scratch, index));
            }
            for index in 0..inputs.len() {
                let x = value(scratch, index);
                scratch[output + index] = f64::from(if sum != 0.0 {
                    let root = (square(x) / sum).sqrt();
                    if x < 0.0 { -root } else { root }
                } else {
                    x as f32
                });
            }
        }
    }
}

impl FeatureProgram {
    /// Checks the program reads `num_inputs` inputs and writes `num_features` features, and that
    /// every step reads only slots already written and writes inside the scratch buffer.
    pub fn validate(&self, num_inputs: usize, num_features: usize) -> Result<(), String> {
        if self.num_inputs != num_inputs {
            return Err(format!(
                "the feature program reads {} inputs but the model declares {num_inputs}",
                self.num_inputs
            ));
        }
        if self.output.len() != num_features {
            return Err(format!(
                "the feature program writes {} features but the model reads {num_features}",
                self.output.len()
            ));
        }
        if self.scratch_len > MAX_SCRATCH_SLOTS {
            return Err(format!("the feature program needs {} slots, more than {MAX_SCRATCH_SLOTS}", self.scratch_len));
        }
        if self.scratch_len < self.num_inputs {
            return Err(format!("the feature program has {} slots for {} inputs", self.scratch_len, self.num_inputs));
        }
        let mut written = vec![false; self.scratch_len];
        written[..self.num_inputs].fill(true);
        for (index, step) in self.steps.iter().enumerate() {
            let fail = |message: String| format!("feature program step {index} ({}): {message}", step.name());
            step.validate_parameters().map_err(fail)?;
            step.for_each_input(|slot| match written.get(slot as usize) {
                Some(true) => Ok(()),
                Some(false) => Err(format!("reads slot {slot} before it is written")),
                None => Err(format!("reads slot {slot} outside the {} slots", self.scratch_len)),
            })
            .map_err(fail)?;
            let start = step.output_start() as usize;
            let end = start.checked_add(step.output_len()).filter(|end| *end <= self.scratch_len).ok_or_else(|| {
                fail(format!(
                    "writes {} slots from slot {start}, past the {} slots",
                    step.output_len(),
                    self.scratch_len
                ))
            })?;
            written[start..end].fill(true);
        }
        for slot in &self.output {
            if !written.get(*slot as usize).copied().unwrap_or(false) {
                return Err(format!("the feature program's output reads slot {slot}, which no step writes"));
            }
        }
        Ok(())
    }

    /// Length of the scratch buffer [`FeatureProgram::apply`] needs.
    pub fn scratch_len(&self) -> usize {
        self.scratch_len
    }

    /// Computes the body's features from one row of inputs, without allocating. The program must
    /// have passed [`FeatureProgram::validate`]; `scratch` is `scratch_len` long and `features`
    /// as long as the output.
    pub fn apply(&self, inputs: &[f64], scratch: &mut [f64], features: &mut [f64]) {
        scratch[..self.num_inputs].copy_from_slice(inputs);
        for step in &self.steps {
            step.run(scratch);
        }
        for (feature, slot) in features.iter_mut().zip(&self.output) {
            *feature = scratch[*slot as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(program: &FeatureProgram, inputs: &[f64]) -> Vec<f64> {
        program.validate(inputs.len(), program.output.len()).unwrap();
        let mut scratch = vec![0.0; program.scratch_len()];
        let mut features = vec![0.0; program.output.len()];
        program.apply(inputs, &mut scratch, &mut features);
        features
    }

    #[test]
    fn scale_rounds_every_operation_to_f32() {
        let program = FeatureProgram {
            num_inputs: 1,
            scratch_len: 3,
            steps: vec![
                Step::RoundToF32 { inputs: vec![0], output: 1 },
                Step::Scale {
                    inputs: vec![1],
                    output: 2,
                    offsets: vec![0.1],
                    scales: vec![3.0],
                    arithmetic: Arithmetic::F32,
                },
            ],
            output: vec![2],
        };
        let expected = (0.7f32 - 0.1f64 as f32) * 3.0f32;
        assert_eq!(run(&program, &[0.7]), vec![f64::from(expected)]);
    }

    #[test]
    fn one_hot_codes_write_zeros_for_unknown_categories() {
        let program = FeatureProgram {
            num_inputs: 1,
            scratch_len: 4,
            steps: vec![Step::OneHotCodes {
                columns: vec![CodeColumn { input: 0, entries: vec![(0, 2), (2, 0)] }],
                width: 3,
                output: 1,
            }],
            output: vec![1, 2, 3],
        };
        assert_eq!(run(&program, &[0.0]), vec![0.0, 0.0, 1.0]);
        assert_eq!(run(&program, &[2.0]), vec![1.0, 0.0, 0.0]);
        for unknown in [1.0, 3.0, f64::NAN, -1.0, 0.5] {
            assert_eq!(run(&program, &[unknown]), vec![0.0, 0.0, 0.0], "code {unknown}");
        }
    }

    #[test]
    fn normalize_l2_keeps_signs_and_zero_rows() {
        let program = FeatureProgram {
            num_inputs: 2,
            scratch_len: 4,
            steps: vec![Step::Normalize { inputs: vec![0, 1], output: 2, norm: Norm::L2 }],
            output: vec![2, 3],
        };
        assert_eq!(run(&program, &[-3.0, 4.0]), vec![f64::from(-0.6f32), f64::from(0.8f32)]);
        assert_eq!(run(&program, &[0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn label_numbers_match_nan_and_signed_zero() {
        let program = FeatureProgram {
            num_inputs: 1,
            scratch_len: 2,
            steps: vec![Step::LabelNumbers {
                inputs: vec![0],
                keys: vec![(0.0, 5.0), (2.5, 7.0)],
                nan_value: Some(9.0),
                default: -1.0,
                output: 1,
            }],
            output: vec![1],
        };
        assert_eq!(run(&program, &[-0.0]), vec![5.0]);
        assert_eq!(run(&program, &[2.5]), vec![7.0]);
        assert_eq!(run(&program, &[f64::NAN]), vec![9.0]);
        assert_eq!(run(&program, &[3.0]), vec![-1.0]);
    }

    #[test]
    fn validate_refuses_reads_of_unwritten_slots_and_writes_past_the_end() {
        let unwritten = FeatureProgram {
            num_inputs: 1,
            scratch_len: 3,
            steps: vec![Step::RoundToF32 { inputs: vec![2], output: 1 }],
            output: vec![1],
        };
        assert!(unwritten.validate(1, 1).unwrap_err().contains("before it is written"));
        let past_end = FeatureProgram {
            num_inputs: 1,
            scratch_len: 2,
            steps: vec![Step::RoundToF32 { inputs: vec![0, 0], output: 1 }],
            output: vec![1],
        };
        assert!(past_end.validate(1, 1).unwrap_err().contains("past the 2 slots"));
        let bad_table = FeatureProgram {
            num_inputs: 1,
            scratch_len: 3,
            steps: vec![Step::OneHotCodes {
                columns: vec![CodeColumn { input: 0, entries: vec![(0, 5)] }],
                width: 2,
                output: 1,
            }],
            output: vec![1, 2],
        };
        assert!(bad_table.validate(1, 2).unwrap_err().contains("outside the 2 categories"));
        let wrong_count = FeatureProgram { num_inputs: 1, scratch_len: 1, steps: vec![], output: vec![0] };
        assert!(wrong_count.validate(2, 1).unwrap_err().contains("reads 1 inputs"));
    }
}
