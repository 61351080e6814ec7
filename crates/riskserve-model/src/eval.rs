//! The evaluator: compiles a validated [`Model`] once into compact, cache-friendly arrays and
//! scores single rows (without allocating) and batches (row blocks interleaved with trees,
//! optionally over several threads).

use crate::ModelError;
use crate::ir::{
    Aggregation, Direction, LinearModel, MissingRule, Model, ModelBody, Node, OutputKind, Precision, SplitTest,
    Transform,
};
use crate::preprocess::FeatureProgram;
use crate::scorecard::Scorecard;

/// Rows scored together per tree in a batch: enough to amortise a tree's cache misses, few enough
/// that the block's features and margins stay in L1.
const ROW_BLOCK: usize = 64;

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
}

#[derive(Debug)]
enum Engine {
    Trees32(TreeEngine<f32>),
    Trees64(TreeEngine<f64>),
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
    /// Validates and compiles a model.
    pub fn new(model: Model) -> Result<Predictor, ModelError> {
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
        let engine = match model.body {
            ModelBody::Trees(ensemble) => match ensemble.precision {
                Precision::F32 => Engine::Trees32(TreeEngine::compile(&ensemble)),
                Precision::F64 => Engine::Trees64(TreeEngine::compile(&ensemble)),
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
            reasons: Vec::new(),
        }
    }

    /// Scores one row of `num_inputs` values into `out` (`num_values` long). Allocates nothing
    /// once `scratch` came from [`Predictor::scratch`].
    pub fn predict_row(&self, row: &[f64], scratch: &mut Scratch, out: &mut [f64]) -> Result<(), ScoreError> {
        if row.len() != self.num_inputs {
            return Err(ScoreError::RowLength { expected: self.num_inputs, found: row.len() });
        }
        let Scratch { rewritten, program, features, features32, margin, margin32, reasons } = scratch;
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
                engine.margin_one(features32, margin32);
                finish_f32(self.transform, &self.kind, margin32, out);
            }
            Engine::Trees64(engine) => {
                engine.margin_one(row, margin);
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
    pub fn predict_batch(&self, rows: &[f64], out: &mut [f64], threads: usize) -> Result<(), BatchError> {
        let width = self.num_inputs.max(1);
        if rows.len() % width != 0 || (self.num_inputs == 0 && !rows.is_empty()) {
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
            handles
                .into_iter()
                .map(|handle| handle.join().expect("a scoring thread panicked"))
                .collect::<Result<(), _>>()
        })
    }

    fn predict_chunk(&self, rows: &[f64], out: &mut [f64], first_row: usize) -> Result<(), BatchError> {
        let mut scratch = self.scratch();
        let values = self.num_values();
        let direct = self.missing_rules.is_none() && self.preprocess.is_none();
        match &self.engine {
            Engine::Trees32(engine) if direct => {
                engine.margin_block_run(rows, self.num_inputs, out, values, |margin, out| {
                    finish_f32(self.transform, &self.kind, margin, out)
                });
                Ok(())
            }
            Engine::Trees64(engine) if direct => {
                engine.margin_block_run(rows, self.num_inputs, out, values, |margin, out| {
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

/// The numbers a tree engine works in: f32 for XGBoost-style models, f64 for LightGBM-style.
pub trait Float:
    Copy + PartialOrd + std::ops::AddAssign + std::ops::Div<Output = Self> + std::fmt::Debug + Send + Sync + 'static
{
    const ZERO: Self;
    fn from_f64(value: f64) -> Self;
    fn from_count(count: usize) -> Self;
    fn from_bits_index(index: u32) -> Self;
    fn to_bits_index(self) -> u32;
    fn is_nan(self) -> bool;
    /// The integer code of a categorical value, or `None` when it is negative or too large.
    fn category_code(self) -> Option<u32>;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn from_count(count: usize) -> Self {
        count as f32
    }
    fn from_bits_index(index: u32) -> Self {
        f32::from_bits(index)
    }
    fn to_bits_index(self) -> u32 {
        self.to_bits()
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn category_code(self) -> Option<u32> {
        (self >= 0.0 && self < 16_777_216.0).then_some(self as u32)
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    fn from_f64(value: f64) -> Self {
        value
    }
    fn from_count(count: usize) -> Self {
        count as f64
    }
    fn from_bits_index(index: u32) -> Self {
        f64::from_bits(u64::from(index))
    }
    fn to_bits_index(self) -> u32 {
        self.to_bits() as u32
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn category_code(self) -> Option<u32> {
        (self >= 0.0 && self < 2_147_483_648.0).then_some(self as u32)
    }
}

const LEAF: u32 = 1 << 31;
const DEFAULT_LEFT: u32 = 1 << 30;
const CATEGORICAL: u32 = 1 << 29;
const IN_SET_LEFT: u32 = 1 << 28;
const FEATURE_MASK: u32 = (1 << 28) - 1;

/// One node in pre-order: the left child is the next node. 12 bytes for f32, 16 for f64.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct PackedNode<T> {
    /// The threshold of a split, the value of a leaf, or (categorical) the index of its set.
    value: T,
    /// Feature index and the flags above.
    feature: u32,
    right: u32,
}

/// All trees of an ensemble in one array.
#[derive(Debug)]
struct TreeEngine<T> {
    nodes: Vec<PackedNode<T>>,
    roots: Vec<u32>,
    outputs: Vec<u32>,
    category_sets: Vec<Vec<u32>>,
    base_margin: Vec<T>,
    /// For [`Aggregation::Mean`], the number of trees of each output.
    divisors: Option<Vec<T>>,
}

impl<T: Float> TreeEngine<T> {
    fn compile(ensemble: &crate::ir::TreeEnsemble) -> TreeEngine<T> {
        let total: usize = ensemble.trees.iter().map(|tree| tree.nodes.len()).sum();
        let mut engine = TreeEngine {
            nodes: Vec::with_capacity(total),
            roots: Vec::with_capacity(ensemble.trees.len()),
            outputs: Vec::with_capacity(ensemble.trees.len()),
            category_sets: Vec::new(),
            base_margin: ensemble.base_margin.iter().map(|v| T::from_f64(*v)).collect(),
            divisors: None,
        };
        for tree in &ensemble.trees {
            engine.roots.push(engine.nodes.len() as u32);
            engine.outputs.push(tree.output);
            engine.push_preorder(&tree.nodes);
        }
        if ensemble.aggregation == Aggregation::Mean {
            let mut counts = vec![0usize; ensemble.num_outputs];
            for tree in &ensemble.trees {
                counts[tree.output as usize] += 1;
            }
            engine.divisors = Some(counts.into_iter().map(|count| T::from_count(count.max(1))).collect());
        }
        engine
    }

    /// Appends one validated tree in pre-order, so that a left child directly follows its parent.
    fn push_preorder(&mut self, nodes: &[Node]) {
        // (source index, position of the parent whose `right` must point here)
        let mut stack: Vec<(u32, Option<usize>)> = vec![(0, None)];
        while let Some((index, parent)) = stack.pop() {
            let position = self.nodes.len();
            if let Some(parent) = parent {
                self.nodes[parent].right = position as u32;
            }
            match &nodes[index as usize] {
                Node::Leaf { value } => {
                    self.nodes.push(PackedNode { value: T::from_f64(*value), feature: LEAF, right: 0 });
                }
                Node::Split { feature, test, left, right, missing } => {
                    let mut flags = *feature;
                    if *missing == Direction::Left {
                        flags |= DEFAULT_LEFT;
                    }
                    let value = match test {
                        SplitTest::LessThan(threshold) => T::from_f64(*threshold),
                        SplitTest::CategoryIn { categories, in_set } => {
                            flags |= CATEGORICAL;
                            if *in_set == Direction::Left {
                                flags |= IN_SET_LEFT;
                            }
                            self.category_sets.push(categories.clone());
                            T::from_bits_index((self.category_sets.len() - 1) as u32)
                        }
                    };
                    self.nodes.push(PackedNode { value, feature: flags, right: 0 });
                    // Right is pushed first so that left is visited (and placed) next.
                    stack.push((*right, Some(position)));
                    stack.push((*left, None));
                }
            }
        }
    }

    #[inline(always)]
    fn leaf(&self, root: u32, features: &[T]) -> T {
        let mut index = root as usize;
        loop {
            let node = self.nodes[index];
            let flags = node.feature;
            if flags & LEAF != 0 {
                return node.value;
            }
            let value = features[(flags & FEATURE_MASK) as usize];
            let go_left = if flags & CATEGORICAL == 0 {
                if value.is_nan() { flags & DEFAULT_LEFT != 0 } else { value < node.value }
            } else {
                self.categorical_left(flags, node.value, value)
            };
            index = if go_left { index + 1 } else { node.right as usize };
        }
    }

    #[cold]
    fn categorical_left(&self, flags: u32, set: T, value: T) -> bool {
        if value.is_nan() {
            return flags & DEFAULT_LEFT != 0;
        }
        let in_set = value
            .category_code()
            .is_some_and(|code| self.category_sets[set.to_bits_index() as usize].binary_search(&code).is_ok());
        in_set == (flags & IN_SET_LEFT != 0)
    }

    fn finish_margin(&self, margin: &mut [T]) {
        if let Some(divisors) = &self.divisors {
            for ((slot, divisor), base) in margin.iter_mut().zip(divisors).zip(&self.base_margin) {
                *slot = *slot / *divisor;
                *slot += *base;
            }
        }
    }

    fn start_margin(&self, margin: &mut [T]) {
        if self.divisors.is_some() {
            margin.fill(T::ZERO);
        } else {
            margin.copy_from_slice(&self.base_margin);
        }
    }

    fn margin_one(&self, features: &[T], margin: &mut [T]) {
        self.start_margin(margin);
        if margin.len() == 1 {
            let mut sum = margin[0];
            for root in &self.roots {
                sum += self.leaf(*root, features);
            }
            margin[0] = sum;
        } else {
            for (root, output) in self.roots.iter().zip(&self.outputs) {
                margin[*output as usize] += self.leaf(*root, features);
            }
        }
        self.finish_margin(margin);
    }

    /// Scores row blocks: every tree runs over a block of rows before the next tree, so a tree's
    /// nodes are fetched once per block rather than once per row.
    fn margin_block_run(
        &self,
        rows: &[f64],
        width: usize,
        out: &mut [f64],
        values: usize,
        mut finish: impl FnMut(&mut [T], &mut [f64]),
    ) {
        let outputs = self.base_margin.len();
        let width = width.max(1);
        let mut features = vec![T::ZERO; ROW_BLOCK * width];
        let mut margins = vec![T::ZERO; ROW_BLOCK * outputs];
        for (rows, out) in rows.chunks(ROW_BLOCK * width).zip(out.chunks_mut(ROW_BLOCK * values)) {
            let count = rows.len() / width;
            for (slot, value) in features.iter_mut().zip(rows) {
                *slot = T::from_f64(*value);
            }
            for margin in margins.chunks_mut(outputs).take(count) {
                self.start_margin(margin);
            }
            for (root, output) in self.roots.iter().zip(&self.outputs) {
                let output = *output as usize;
                for row in 0..count {
                    let leaf = self.leaf(*root, &features[row * width..(row + 1) * width]);
                    margins[row * outputs + output] += leaf;
                }
            }
            for (margin, out) in margins.chunks_mut(outputs).zip(out.chunks_mut(values)).take(count) {
                self.finish_margin(margin);
                finish(margin, out);
            }
        }
    }
}
