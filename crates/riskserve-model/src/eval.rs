//! The evaluator: compiles a validated [`Model`] once into compact, cache-friendly arrays and
//! scores single rows (without allocating) and batches (row blocks interleaved with trees,
//! optionally over several threads).

use crate::ModelError;
use crate::compile::{BinScratch, CompileReport, EvaluatorChoice, TreeEvaluator, compile_trees};
use crate::forest::{Float, ROW_BLOCK};
use crate::ir::{LinearModel, MissingRule, Model, ModelBody, OutputKind, Precision, Transform};
use crate::kernel::KernelChoice;
use crate::preprocess::FeatureProgram;
use crate::scorecard::Scorecard;

/// A model compiled for scoring. Immutable and `Sync`: one instance is shared by every thread.
#[derive(Debug)]
pub struct Predictor {
    num_inputs: usize,
    num_features: usize,
    num_outputs: usize,
    missing_rules: Option<Vec<MissingRule>>,
    preprocess: Option<FeatureProgram>,
    engine: Engine,
    transform: Transform,
    kind: OutputKind,
    columns: Vec<String>,
    /// What the compile step chose, for tree ensembles.
    report: Option<CompileReport>,
}

#[derive(Debug)]
enum Engine {
    Trees32(TreeEvaluator<f32>),
    Trees64(TreeEvaluator<f64>),
    Linear(LinearModel),
    Scorecard(Scorecard),
}

/// Buffers one scoring thread reuses, so that scoring a row allocates nothing.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    rewritten: Vec<f64>,
    program: Vec<f64>,
    features: Vec<f64>,
    features32: Vec<f32>,
    margin: Vec<f64>,
    margin32: Vec<f32>,
    leaf_values: Vec<f64>,
    leaf_values32: Vec<f32>,
    bins: BinScratch,
    /// Reason-code ids of the last scorecard row scored.
    pub reasons: Vec<u32>,
}

/// Why a row could not be scored after it was parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    #[error("expected {expected} values, got {found}")]
    RowLength { expected: usize, found: usize },
    #[error(transparent)]
    NoAttributeMatched(#[from] crate::scorecard::NoAttributeMatched),
}

impl Predictor {
    /// Validates and compiles a model, choosing the tree evaluator by the model's shape
    /// ([`EvaluatorChoice::Auto`]).
    pub fn new(model: Model) -> Result<Predictor, ModelError> {
        Predictor::with_evaluator(model, EvaluatorChoice::Auto)
    }

    /// Validates and compiles a model with the tree evaluator `choice` asks for; every evaluator scores exactly as
    /// the reference walk (see [`crate::compile`]).
    pub fn with_evaluator(model: Model, choice: EvaluatorChoice) -> Result<Predictor, ModelError> {
        Predictor::with_kernel(model, choice, KernelChoice::Auto)
    }

    /// As [`Predictor::with_evaluator`], with the quantised one-row walk's kernel chosen too (a kernel this CPU cannot
    /// run falls back to the widest one it can; the compile report says so).
    pub fn with_kernel(model: Model, choice: EvaluatorChoice, kernel: KernelChoice) -> Result<Predictor, ModelError> {
        model.validate()?;
        let columns = output_columns(&model);
        let num_inputs = model.inputs.len();
        let num_features = model.num_body_features();
        let num_outputs = model.num_outputs();
        let missing_rules = model
            .inputs
            .iter()
            .any(|feature| feature.missing != MissingRule::AsIs)
            .then(|| model.inputs.iter().map(|feature| feature.missing).collect());
        let mut report = None;
        let engine = match model.body {
            ModelBody::Trees(ensemble) => match ensemble.precision {
                Precision::F32 => {
                    let (evaluator, compiled) = compile_trees(&ensemble, choice, kernel);
                    report = Some(compiled);
                    Engine::Trees32(evaluator)
                }
                Precision::F64 => {
                    let (evaluator, compiled) = compile_trees(&ensemble, choice, kernel);
                    report = Some(compiled);
                    Engine::Trees64(evaluator)
                }
            },
            ModelBody::Linear(linear) => Engine::Linear(linear),
            ModelBody::Scorecard(scorecard) => Engine::Scorecard(scorecard),
        };
        Ok(Predictor {
            num_inputs,
            num_features,
            num_outputs,
            missing_rules,
            preprocess: model.preprocess,
            engine,
            transform: model.output.transform,
            kind: model.output.kind,
            columns,
            report,
        })
    }

    /// Number of values each input row holds.
    pub fn num_inputs(&self) -> usize {
        self.num_inputs
    }

    /// Names of the answer's columns, in order; [`Predictor::predict_row`] writes one value per
    /// numeric column, and scorecards' `reason_code_N` columns come from [`Scratch::reasons`].
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Number of numeric values written per row.
    pub fn num_values(&self) -> usize {
        match self.kind {
            OutputKind::ClassProbabilities | OutputKind::Margin | OutputKind::Value => self.num_outputs,
            OutputKind::Probability | OutputKind::ClassLabel | OutputKind::Score => 1,
        }
    }

    /// For tree ensembles: (nodes in the source trees, resident bytes of the compiled trees).
    pub fn tree_memory(&self) -> Option<(usize, usize)> {
        match &self.engine {
            Engine::Trees32(forest) => Some((forest.source_nodes(), forest.resident_bytes())),
            Engine::Trees64(forest) => Some((forest.source_nodes(), forest.resident_bytes())),
            Engine::Linear(_) | Engine::Scorecard(_) => None,
        }
    }

    /// For tree ensembles, what the compile step chose: the evaluator, why, its memory and the compile time.
    pub fn compile_report(&self) -> Option<&CompileReport> {
        self.report.as_ref()
    }

    /// The scorecard, when the model is one (for reason-code texts).
    pub fn scorecard(&self) -> Option<&Scorecard> {
        match &self.engine {
            Engine::Scorecard(scorecard) => Some(scorecard),
            _ => None,
        }
    }

    /// A scratch sized for this model; reuse it for every row a thread scores.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            rewritten: vec![0.0; if self.missing_rules.is_some() { self.num_inputs } else { 0 }],
            program: vec![0.0; self.preprocess.as_ref().map_or(0, FeatureProgram::scratch_len)],
            features: vec![0.0; if self.preprocess.is_some() { self.num_features } else { 0 }],
            features32: vec![0.0; self.num_features],
            margin: vec![0.0; self.num_outputs],
            margin32: vec![0.0; self.num_outputs],
            leaf_values: vec![0.0; if let Engine::Trees64(forest) = &self.engine { forest.num_trees() } else { 0 }],
            leaf_values32: vec![0.0; if let Engine::Trees32(forest) = &self.engine { forest.num_trees() } else { 0 }],
            bins: match &self.engine {
                Engine::Trees32(evaluator) => evaluator.bin_scratch(1),
                Engine::Trees64(evaluator) => evaluator.bin_scratch(1),
                Engine::Linear(_) | Engine::Scorecard(_) => BinScratch::default(),
            },
            reasons: Vec::new(),
        }
    }

    /// Scores one row of `num_inputs` values into `out` (`num_values` long). Allocates nothing
    /// once `scratch` came from [`Predictor::scratch`].
    pub fn predict_row(&self, row: &[f64], scratch: &mut Scratch, out: &mut [f64]) -> Result<(), ScoreError> {
        if row.len() != self.num_inputs {
            return Err(ScoreError::RowLength { expected: self.num_inputs, found: row.len() });
        }
        let Scratch {
            rewritten,
            program,
            features,
            features32,
            margin,
            margin32,
            leaf_values,
            leaf_values32,
            bins,
            reasons,
        } = scratch;
        let mut row = row;
        if let Some(rules) = &self.missing_rules {
            for ((slot, value), rule) in rewritten.iter_mut().zip(row).zip(rules) {
                *slot = rule.apply(*value);
            }
            row = rewritten;
        }
        if let Some(preprocess) = &self.preprocess {
            preprocess.apply(row, program, features);
            row = features;
        }
        match &self.engine {
            Engine::Trees32(engine) => {
                for (slot, value) in features32.iter_mut().zip(row) {
                    *slot = *value as f32;
                }
                engine.margin_one(features32, bins, margin32, leaf_values32);
                finish_f32(self.transform, &self.kind, margin32, out);
            }
            Engine::Trees64(engine) => {
                engine.margin_one(row, bins, margin, leaf_values);
                finish_f64(self.transform, &self.kind, margin, out);
            }
            Engine::Linear(linear) => {
                linear_margin(linear, row, margin);
                finish_f64(self.transform, &self.kind, margin, out);
            }
            Engine::Scorecard(scorecard) => {
                out[0] = scorecard.evaluate(row, reasons)?;
            }
        }
        Ok(())
    }

    /// Scores `rows` (row-major, `num_inputs` values a row) into `out` (`num_values` a row) on
    /// `threads` threads. Scorecard reason codes are not returned by this path.
    ///
    /// # Panics
    /// If `out` does not hold exactly `num_values` values for every row: a caller's bug, not bad
    /// input (a row count that does not divide is an error).
    pub fn predict_batch(&self, rows: &[f64], out: &mut [f64], threads: usize) -> Result<(), BatchError> {
        let width = self.num_inputs.max(1);
        if !rows.len().is_multiple_of(width) || (self.num_inputs == 0 && !rows.is_empty()) {
            return Err(BatchError {
                row: rows.len() / width,
                error: ScoreError::RowLength { expected: self.num_inputs, found: rows.len() % width },
            });
        }
        let num_rows = rows.len() / width;
        let values = self.num_values();
        assert_eq!(out.len(), num_rows * values, "output buffer must hold num_rows * num_values values");
        let threads = threads.max(1).min(num_rows.div_ceil(ROW_BLOCK).max(1));
        if threads == 1 {
            return self.predict_chunk(rows, out, 0);
        }
        let rows_per_thread = num_rows.div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = rows
                .chunks(rows_per_thread * width)
                .zip(out.chunks_mut(rows_per_thread * values))
                .enumerate()
                .map(|(index, (rows, out))| scope.spawn(move || self.predict_chunk(rows, out, index * rows_per_thread)))
                .collect();
            handles.into_iter().try_for_each(|handle| handle.join().expect("a scoring thread panicked"))
        })
    }

    fn predict_chunk(&self, rows: &[f64], out: &mut [f64], first_row: usize) -> Result<(), BatchError> {
        let mut scratch = self.scratch();
        let values = self.num_values();
        // Missing-value rewrites are applied while a block is converted; a feature program needs the row path.
        let direct = self.preprocess.is_none();
        let rules = self.missing_rules.as_deref();
        match &self.engine {
            Engine::Trees32(forest) if direct => {
                score_blocks(forest, rows, self.num_inputs, rules, out, values, |margin, out| {
                    finish_f32(self.transform, &self.kind, margin, out)
                });
                Ok(())
            }
            Engine::Trees64(forest) if direct => {
                score_blocks(forest, rows, self.num_inputs, rules, out, values, |margin, out| {
                    finish_f64(self.transform, &self.kind, margin, out)
                });
                Ok(())
            }
            _ => {
                for (index, (row, out)) in rows.chunks(self.num_inputs.max(1)).zip(out.chunks_mut(values)).enumerate() {
                    self.predict_row(row, &mut scratch, out)
                        .map_err(|error| BatchError { row: first_row + index, error })?;
                }
                Ok(())
            }
        }
    }
}

/// A batch row that failed; `row` counts from 0.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("row {row}: {error}")]
pub struct BatchError {
    pub row: usize,
    pub error: ScoreError,
}

fn output_columns(model: &Model) -> Vec<String> {
    let mut columns = model.output_columns();
    if let ModelBody::Scorecard(scorecard) = &model.body {
        columns.extend((1..=scorecard.reason_code_columns()).map(|rank| format!("reason_code_{rank}")));
    }
    columns
}

fn linear_margin(linear: &LinearModel, features: &[f64], margin: &mut [f64]) {
    for (k, slot) in margin.iter_mut().enumerate() {
        let weights = &linear.coefficients[k * linear.num_features..(k + 1) * linear.num_features];
        *slot = linear.intercepts[k] + weights.iter().zip(features).map(|(w, x)| w * x).sum::<f64>();
    }
}

/// Applies the output transform in f32, as XGBoost does, then widens.
fn finish_f32(transform: Transform, kind: &OutputKind, margin: &mut [f32], out: &mut [f64]) {
    match transform {
        Transform::Identity => {}
        Transform::Sigmoid { scale } => {
            for value in margin.iter_mut() {
                *value = (1.0 / (1.0 + (-scale * f64::from(*value)).exp())) as f32;
            }
        }
        Transform::Exp => {
            for value in margin.iter_mut() {
                *value = value.exp();
            }
        }
        Transform::Softmax => {
            let max = margin.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for value in margin.iter_mut() {
                *value = (*value - max).exp();
                sum += *value;
            }
            for value in margin.iter_mut() {
                *value /= sum;
            }
        }
    }
    match kind {
        OutputKind::ClassLabel => out[0] = argmax(margin.iter().map(|v| f64::from(*v))) as f64,
        OutputKind::Probability | OutputKind::Score => out[0] = f64::from(margin[0]),
        OutputKind::ClassProbabilities | OutputKind::Margin | OutputKind::Value => {
            for (slot, value) in out.iter_mut().zip(margin.iter()) {
                *slot = f64::from(*value);
            }
        }
    }
}

fn finish_f64(transform: Transform, kind: &OutputKind, margin: &mut [f64], out: &mut [f64]) {
    match transform {
        Transform::Identity => {}
        Transform::Sigmoid { scale } => {
            for value in margin.iter_mut() {
                *value = 1.0 / (1.0 + (-scale * *value).exp());
            }
        }
        Transform::Exp => {
            for value in margin.iter_mut() {
                *value = value.exp();
            }
        }
        Transform::Softmax => {
            let max = margin.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for value in margin.iter_mut() {
                *value = (*value - max).exp();
                sum += *value;
            }
            for value in margin.iter_mut() {
                *value /= sum;
            }
        }
    }
    match kind {
        OutputKind::ClassLabel => out[0] = argmax(margin.iter().copied()) as f64,
        OutputKind::Probability | OutputKind::Score => out[0] = margin[0],
        OutputKind::ClassProbabilities | OutputKind::Margin | OutputKind::Value => out.copy_from_slice(margin),
    }
}

/// Index of the first largest value, as numpy's argmax.
fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (index, value) in values.enumerate() {
        if value > best.1 {
            best = (index, value);
        }
    }
    best.0
}

/// Scores rows in blocks of [`ROW_BLOCK`]: rewrites missing values by `rules` and converts each block to the
/// forest's precision, runs every tree over it, then finishes each row's margin.
fn score_blocks<T: Float>(
    forest: &TreeEvaluator<T>,
    rows: &[f64],
    width: usize,
    rules: Option<&[MissingRule]>,
    out: &mut [f64],
    values: usize,
    mut finish: impl FnMut(&mut [T], &mut [f64]),
) {
    let outputs = forest.num_outputs();
    let width = width.max(1);
    let mut features = vec![T::ZERO; ROW_BLOCK * width];
    let mut margins = vec![T::ZERO; ROW_BLOCK * outputs];
    let mut bins = forest.bin_scratch(ROW_BLOCK);
    for (rows, out) in rows.chunks(ROW_BLOCK * width).zip(out.chunks_mut(ROW_BLOCK * values)) {
        let count = rows.len() / width;
        match rules {
            None => {
                for (slot, value) in features.iter_mut().zip(rows) {
                    *slot = T::from_f64(*value);
                }
            }
            // The rewrite before the conversion, as `predict_row` does.
            Some(rules) => {
                for (slots, row) in features.chunks_mut(width).zip(rows.chunks(width)) {
                    for ((slot, value), rule) in slots.iter_mut().zip(row).zip(rules) {
                        *slot = T::from_f64(rule.apply(*value));
                    }
                }
            }
        }
        forest.margin_block(&features, width, count, &mut bins, &mut margins);
        for (margin, out) in margins.chunks_mut(outputs).zip(out.chunks_mut(values)).take(count) {
            finish(margin, out);
        }
    }
}
