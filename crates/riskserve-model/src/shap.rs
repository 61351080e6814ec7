//! Exact explanations in margin space: path-dependent TreeSHAP for tree ensembles and exact
//! contributions for linear models, each summing (with the bias) to the margin [`Predictor`](crate::Predictor)
//! computes.
//!
//! # Trees
//! Path-dependent TreeSHAP (Lundberg et al. 2020, "From local explanations to global
//! understanding with explainable AI for trees", Algorithm 2): for every tree, one recursive walk
//! that follows the row's branch ("hot") and the other branch ("cold") at each split, weighing the
//! cold side by the training cover that went there. The bias of a tree is its expected value, the
//! cover-weighted mean of its leaves. This needs each node's cover: XGBoost's `sum_hessian` and
//! LightGBM's `internal_count`/`leaf_count` (the numbers their own TreeSHAP uses); formats
//! without it (ONNX, PMML) are refused with [`ModelError::Unsupported`].
//!
//! `shap.TreeExplainer(model)` (path-dependent, raw output, no background data) hands XGBoost and
//! LightGBM models to the libraries' own TreeSHAP (`pred_contribs` / `pred_contrib`), so the
//! arithmetic here follows theirs, step for step, in the model's precision:
//! - [`Precision::F32`] (XGBoost): every path weight, fraction and contribution is an `f32`, in
//!   XGBoost's order of operations; a tree's contributions are summed on their own and then added
//!   to the row's totals; the bias is the trees' mean values (XGBoost's `FillNodeMeanValues`: each
//!   node's mean is its children's means weighted by their covers, over its own cover) summed in
//!   tree order, then `base_score` added.
//! - [`Precision::F64`] (LightGBM): the same recursion in `f64`, contributions added straight to
//!   the totals; a tree's expected value is `Σ leaf_count / internal_count[root] · leaf_value`.
//!
//! The result is bit for bit what shap returns on every fixture (`tests/shap_parity.rs`, values
//! from `scripts/fixtures_shap.sh`). For f32 models the contributions therefore sum to the margin
//! only to f32 precision, as XGBoost's own do (a few f32 roundings of the terms: up to 2.4e-5 on
//! the fixtures, where contributions of ±10 cancel); for f64 models to about 1e-14.
//!
//! The recursion is the libraries', arranged for speed without changing any operation: nodes in
//! pre-order, the two leaves under one split computed together (their chains of divisions
//! overlap), path elements computed in SIMD lanes grouped by formula, extensions of cold branches
//! without their zero `one` terms, each extension fused with the copy of the parent's path.
//!
//! Splits are decided exactly as the evaluator decides them: `x < threshold` (a library's `<=` is
//! already `< next_up`), inputs rounded to `f32` for F32 models, NaN to the node's missing
//! direction after the feature's [`MissingRule`], and categorical `CategoryIn` splits by their
//! category code. shap's own C++ TreeSHAP refuses XGBoost categorical splits, but
//! `shap.TreeExplainer` without background data explains them through xgboost's and lightgbm's
//! TreeSHAP, which ask the same decision function their prediction uses, as here (the fixtures
//! `xgb3_categorical_*`, `lgbm_categorical_*` check it). A feature split on several times on one
//! path is one player of the game, as in the paper (the earlier split is unwound).
//!
//! Random forests ([`Aggregation::Mean`]) divide every contribution and the bias by the number of
//! trees of the output, as the margin is divided.
//!
//! # Linear models
//! `contribution_j = w_kj · x_j` and the bias is the intercept: an exact decomposition of the
//! margin `intercept_k + Σ w_kj · x_j`. (shap's `LinearExplainer` centres on the data mean
//! instead; that needs training data riskserve does not have.)
//!
//! # Preprocessing
//! A model with a [`FeatureProgram`] (ONNX pipelines) is explained in the body's feature space,
//! after the program: one contribution per body feature, named after the raw input when the body
//! reads that input unchanged and `f<index>` otherwise.
//!
//! Scorecards are refused: their points are already additive explanations.

use std::ops::{Add, Div, Mul, Sub};

use crate::error::ModelError;
use crate::eval::ScoreError;
use crate::forest::Float;
use crate::ir::{Aggregation, Direction, LinearModel, MissingRule, Model, ModelBody, Node, Precision, SplitTest};
use crate::preprocess::FeatureProgram;

/// Deepest tree explained. The recursion and its path buffer grow with depth (the buffer with its
/// square); real models stay far below this.
pub const MAX_EXPLAINED_DEPTH: usize = 256;

/// A model compiled for explanations. Immutable and `Sync`: one instance serves every thread.
#[derive(Debug)]
pub struct Explainer {
    num_inputs: usize,
    num_features: usize,
    num_groups: usize,
    feature_names: Vec<String>,
    missing_rules: Option<Vec<MissingRule>>,
    preprocess: Option<FeatureProgram>,
    engine: Engine,
}

#[derive(Debug)]
enum Engine {
    Trees32(TreeShap<f32>),
    Trees64(TreeShap<f64>),
    Linear(LinearModel),
}

/// The recursion's buffers for one precision.
#[derive(Debug, Default, Clone)]
struct WalkScratch<T> {
    path: Vec<PathElement<T>>,
    pending: Vec<(u32, T)>,
    lists: Vec<(T, T, u32)>,
}

impl<T: Real> WalkScratch<T> {
    fn for_depth(max_depth: usize) -> WalkScratch<T> {
        // XGBoost's (d + 2)(d + 3) / 2 elements, plus room for the sibling leaf's path.
        let longest = max_depth + 2;
        WalkScratch {
            path: vec![
                PathElement {
                    feature: NO_FEATURE,
                    zero_fraction: T::ZERO,
                    one_fraction: T::ZERO,
                    pweight: T::ZERO
                };
                longest * (longest + 1) / 2 + longest + 1
            ],
            pending: Vec::with_capacity(longest + 1),
            lists: vec![(T::ZERO, T::ZERO, 0); 4 * (longest + 1)],
        }
    }
}

/// Buffers one explaining thread reuses, so that explaining a row allocates nothing.
#[derive(Debug, Default, Clone)]
pub struct ExplainScratch {
    rewritten: Vec<f64>,
    program: Vec<f64>,
    features: Vec<f64>,
    features32: Vec<f32>,
    walk32: WalkScratch<f32>,
    walk64: WalkScratch<f64>,
    /// Per group: totals of the contributions, then the bias (F32 models).
    totals32: Vec<f32>,
    /// One tree's contributions before they join the totals (F32 models).
    tree_phi32: Vec<f32>,
}

impl Explainer {
    /// Compiles a model for explanations. Tree ensembles need every node's cover (see the module
    /// documentation); scorecards are refused.
    pub fn new(model: &Model) -> Result<Explainer, ModelError> {
        model.validate()?;
        let num_inputs = model.inputs.len();
        let num_features = model.num_body_features();
        let num_groups = model.num_outputs();
        let missing_rules = model
            .inputs
            .iter()
            .any(|feature| feature.missing != MissingRule::AsIs)
            .then(|| model.inputs.iter().map(|feature| feature.missing).collect());
        let engine = match &model.body {
            ModelBody::Trees(ensemble) => {
                for (index, tree) in ensemble.trees.iter().enumerate() {
                    let has_split = tree.nodes.iter().any(|node| matches!(node, Node::Split { .. }));
                    if has_split && tree.cover.is_none() {
                        return Err(ModelError::unsupported(
                            model.source,
                            format!(
                                "exact TreeSHAP needs the training cover of every node, which this {} model does \
                                 not record (tree {index} has none)",
                                model.source
                            ),
                        ));
                    }
                }
                let compile_error = |message: String| ModelError::unsupported(model.source, message);
                match ensemble.precision {
                    Precision::F32 => Engine::Trees32(TreeShap::compile(ensemble).map_err(compile_error)?),
                    Precision::F64 => Engine::Trees64(TreeShap::compile(ensemble).map_err(compile_error)?),
                }
            }
            ModelBody::Linear(linear) => Engine::Linear(linear.clone()),
            ModelBody::Scorecard(_) => {
                return Err(ModelError::unsupported(
                    model.source,
                    "a scorecard is explained by its points and reason codes, not by SHAP values",
                ));
            }
        };
        let feature_names = body_feature_names(model, num_features);
        Ok(Explainer {
            num_inputs,
            num_features,
            num_groups,
            feature_names,
            missing_rules,
            preprocess: model.preprocess.clone(),
            engine,
        })
    }

    /// Width of the feature space the contributions are in (the model body's features).
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Number of margin groups: 1 for binary classifiers and regression, K for K classes.
    pub fn num_groups(&self) -> usize {
        self.num_groups
    }

    /// Number of values each input row holds (as [`Predictor::num_inputs`](crate::Predictor::num_inputs)).
    pub fn num_inputs(&self) -> usize {
        self.num_inputs
    }

    /// Names of the features, in contribution order: the model's names, or `f0`, `f1`, ... for
    /// features without one.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// A scratch sized for this model; reuse it for every row a thread explains.
    pub fn scratch(&self) -> ExplainScratch {
        let (walk32, walk64, totals32, tree_phi32) = match &self.engine {
            Engine::Trees32(shap) => (
                WalkScratch::for_depth(shap.max_depth),
                WalkScratch::default(),
                vec![0.0; self.num_groups * (self.num_features + 1)],
                vec![0.0; self.num_features],
            ),
            Engine::Trees64(shap) => {
                (WalkScratch::default(), WalkScratch::for_depth(shap.max_depth), Vec::new(), Vec::new())
            }
            Engine::Linear(_) => (WalkScratch::default(), WalkScratch::default(), Vec::new(), Vec::new()),
        };
        ExplainScratch {
            rewritten: vec![0.0; if self.missing_rules.is_some() { self.num_inputs } else { 0 }],
            program: vec![0.0; self.preprocess.as_ref().map_or(0, FeatureProgram::scratch_len)],
            features: vec![0.0; if self.preprocess.is_some() { self.num_features } else { 0 }],
            features32: vec![0.0; if matches!(self.engine, Engine::Trees32(_)) { self.num_features } else { 0 }],
            walk32,
            walk64,
            totals32,
            tree_phi32,
        }
    }

    /// Explains one row of `num_inputs` values (the row [`Predictor::predict_row`] takes) into
    /// `out`: per group, the contribution of each feature and then the bias (expected value), so
    /// that each group's `num_features + 1` values sum to that group's margin before the output
    /// transform. Allocates nothing once `scratch` came from [`Explainer::scratch`].
    ///
    /// # Panics
    /// If `out` does not hold exactly `num_groups * (num_features + 1)` values (a caller's bug,
    /// not bad input), or if `scratch` came from another explainer.
    ///
    /// [`Predictor::predict_row`]: crate::Predictor::predict_row
    pub fn explain_row(&self, row: &[f64], scratch: &mut ExplainScratch, out: &mut [f64]) -> Result<(), ScoreError> {
        if row.len() != self.num_inputs {
            return Err(ScoreError::RowLength { expected: self.num_inputs, found: row.len() });
        }
        assert_eq!(
            out.len(),
            self.num_groups * (self.num_features + 1),
            "out must hold num_groups * (num_features + 1)"
        );
        let ExplainScratch { rewritten, program, features, features32, walk32, walk64, totals32, tree_phi32 } = scratch;
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
            Engine::Trees32(shap) => {
                for (slot, value) in features32.iter_mut().zip(row) {
                    *slot = *value as f32;
                }
                shap.explain_per_tree(features32, walk32, totals32, tree_phi32);
                for (slot, value) in out.iter_mut().zip(totals32.iter()) {
                    *slot = f64::from(*value);
                }
                shap.finish(out);
            }
            Engine::Trees64(shap) => {
                shap.explain_direct(row, walk64, out);
                shap.finish(out);
            }
            Engine::Linear(linear) => linear_contributions(linear, row, out),
        }
        Ok(())
    }
}

/// Names of the body's features: the inputs' names when there is no program; with one, the name
/// of the input a feature copies unchanged, else `f<index>`.
fn body_feature_names(model: &Model, num_features: usize) -> Vec<String> {
    let input_name = |index: usize| {
        model.inputs.get(index).map(|input| input.name.as_str()).filter(|name| !name.is_empty()).map(str::to_owned)
    };
    (0..num_features)
        .map(|index| {
            let source = match &model.preprocess {
                None => Some(index),
                Some(program) => program.output.get(index).map(|slot| *slot as usize).filter(|slot| {
                    *slot < program.num_inputs && program.output.iter().filter(|s| **s as usize == *slot).count() == 1
                }),
            };
            source.and_then(input_name).unwrap_or_else(|| format!("f{index}"))
        })
        .collect()
}

fn linear_contributions(linear: &LinearModel, features: &[f64], out: &mut [f64]) {
    let width = linear.num_features;
    for (k, group) in out.chunks_mut(width + 1).enumerate() {
        let weights = &linear.coefficients[k * width..(k + 1) * width];
        for ((slot, weight), value) in group.iter_mut().zip(weights).zip(features) {
            *slot = weight * value;
        }
        group[width] = linear.intercepts[k];
    }
}

/// The numbers the recursion works in, with the operations it needs beyond [`Float`].
trait Real: Float + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self> {
    const ONE: Self;
    fn from_u32(value: u32) -> Self;
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    const ONE: Self = 1.0;
    #[inline(always)]
    fn from_u32(value: u32) -> Self {
        value as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    const ONE: Self = 1.0;
    #[inline(always)]
    fn from_u32(value: u32) -> Self {
        f64::from(value)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// One element of the unique path: a feature, the fraction of "zero" (feature unknown: follow
/// the cover) and "one" (feature known: follow the row) paths through it, and the permutation
/// weight of paths with that many ones.
#[derive(Debug, Clone, Copy)]
struct PathElement<T> {
    feature: u32,
    zero_fraction: T,
    one_fraction: T,
    pweight: T,
}

/// The parent of the root splits on no feature.
const NO_FEATURE: u32 = u32::MAX;
/// `left` of a leaf.
const LEAF: u32 = u32::MAX;
const MISSING_LEFT: u8 = 1;
const CATEGORICAL: u8 = 2;
const IN_SET_LEFT: u8 = 4;

/// A node of a compiled tree. Child indices are global (into `TreeShap::nodes`); the fractions
/// are the children's covers over this node's cover, divided once here exactly as the libraries
/// divide them at every visit.
#[derive(Debug, Clone, Copy)]
struct ShapNode<T> {
    /// The threshold of a numeric split; the value of a leaf.
    value: T,
    left_fraction: T,
    right_fraction: T,
    left: u32,
    right: u32,
    feature: u32,
    /// Index into `TreeShap::category_sets` (categorical splits).
    set: u32,
    flags: u8,
}

#[derive(Debug, Clone)]
struct CompiledTree<T> {
    root: u32,
    group: u32,
    expected: T,
    /// The distinct features the tree splits on, as a range of `TreeShap::tree_features`.
    features: (u32, u32),
    single_leaf: bool,
}

/// A tree ensemble compiled for TreeSHAP.
#[derive(Debug)]
struct TreeShap<T> {
    nodes: Vec<ShapNode<T>>,
    category_sets: Vec<Vec<u32>>,
    /// Trees in explanation order: by group, in ensemble order within a group.
    trees: Vec<CompiledTree<T>>,
    tree_features: Vec<u32>,
    num_features: usize,
    base_margin: Vec<T>,
    /// For [`Aggregation::Mean`], the number of trees of each group.
    divisors: Option<Vec<f64>>,
    max_depth: usize,
    /// `(d - i) / (d + 1)` for every depth `d` up to `max_depth + 1` and `i < d`, by depth.
    ratios: Vec<T>,
}

impl<T: Real> TreeShap<T> {
    fn compile(ensemble: &crate::ir::TreeEnsemble) -> Result<TreeShap<T>, String> {
        let mut shap = TreeShap {
            nodes: Vec::new(),
            category_sets: Vec::new(),
            trees: Vec::with_capacity(ensemble.trees.len()),
            tree_features: Vec::new(),
            num_features: ensemble.num_features,
            base_margin: ensemble.base_margin.iter().map(|value| T::from_f64(*value)).collect(),
            divisors: None,
            max_depth: 0,
            ratios: Vec::new(),
        };
        let mut counts = vec![0usize; ensemble.num_outputs];
        let mut order: Vec<usize> = (0..ensemble.trees.len()).collect();
        // Stable: ensemble order within a group.
        order.sort_by_key(|index| ensemble.trees[*index].output);
        let mut seen = vec![false; ensemble.num_features];
        for index in order {
            let tree = &ensemble.trees[index];
            counts[tree.output as usize] += 1;
            let depth = tree.depth();
            if depth > MAX_EXPLAINED_DEPTH {
                return Err(format!(
                    "tree {index} is {depth} splits deep; TreeSHAP explains trees up to {MAX_EXPLAINED_DEPTH} deep"
                ));
            }
            shap.max_depth = shap.max_depth.max(depth);
            let cover = tree.cover.as_deref().unwrap_or(&[]);
            let cover_of = |node: u32| cover.get(node as usize).copied().unwrap_or(0.0);
            let offset = shap.nodes.len() as u32;
            let first_feature = shap.tree_features.len() as u32;
            // Pre-order (a left child right after its parent, every subtree contiguous): the walk
            // visits every node of the tree, and this keeps its loads within a small range.
            let mut order = Vec::with_capacity(tree.nodes.len());
            let mut stack = vec![0u32];
            while let Some(position) = stack.pop() {
                order.push(position);
                if let Node::Split { left, right, .. } = &tree.nodes[position as usize] {
                    stack.push(*right);
                    stack.push(*left);
                }
            }
            let mut new_index = vec![0u32; tree.nodes.len()];
            for (placed, position) in order.iter().enumerate() {
                new_index[*position as usize] = placed as u32;
            }
            for position in order {
                let node = &tree.nodes[position as usize];
                let compiled = match node {
                    Node::Leaf { value } => ShapNode {
                        value: T::from_f64(*value),
                        left_fraction: T::ZERO,
                        right_fraction: T::ZERO,
                        left: LEAF,
                        right: LEAF,
                        feature: 0,
                        set: 0,
                        flags: 0,
                    },
                    Node::Split { feature, test, left, right, missing } => {
                        let own = cover_of(position);
                        let (left_cover, right_cover) = (cover_of(*left), cover_of(*right));
                        if !(own.is_finite() && own > 0.0) {
                            return Err(format!(
                                "tree {index} node {position} has cover {own}; TreeSHAP needs a positive cover at \
                                 every split"
                            ));
                        }
                        if !(left_cover.is_finite()
                            && left_cover >= 0.0
                            && right_cover.is_finite()
                            && right_cover >= 0.0)
                        {
                            return Err(format!(
                                "tree {index} node {position} has a child with a negative or non-finite cover"
                            ));
                        }
                        let own = T::from_f64(own);
                        let mut flags = if *missing == Direction::Left { MISSING_LEFT } else { 0 };
                        let (value, set) = match test {
                            SplitTest::LessThan(threshold) => (T::from_f64(*threshold), 0),
                            SplitTest::CategoryIn { categories, in_set } => {
                                flags |= CATEGORICAL;
                                if *in_set == Direction::Left {
                                    flags |= IN_SET_LEFT;
                                }
                                shap.category_sets.push(categories.clone());
                                (T::ZERO, (shap.category_sets.len() - 1) as u32)
                            }
                        };
                        if !seen[*feature as usize] {
                            seen[*feature as usize] = true;
                            shap.tree_features.push(*feature);
                        }
                        ShapNode {
                            value,
                            left_fraction: T::from_f64(left_cover) / own,
                            right_fraction: T::from_f64(right_cover) / own,
                            left: offset + new_index[*left as usize],
                            right: offset + new_index[*right as usize],
                            feature: *feature,
                            set,
                            flags,
                        }
                    }
                };
                shap.nodes.push(compiled);
            }
            for feature in &shap.tree_features[first_feature as usize..] {
                seen[*feature as usize] = false;
            }
            let expected = match ensemble.precision {
                Precision::F32 => mean_value_xgboost(&tree.nodes, cover, 0),
                Precision::F64 => expected_value_lightgbm(&tree.nodes, cover),
            };
            shap.trees.push(CompiledTree {
                root: offset,
                group: tree.output,
                expected,
                features: (first_feature, shap.tree_features.len() as u32),
                single_leaf: tree.nodes.len() == 1,
            });
        }
        for depth in 0..=shap.max_depth + 1 {
            let next = T::from_u32(depth as u32 + 1);
            shap.ratios.extend((0..depth).map(|i| T::from_u32((depth - i) as u32) / next));
        }
        if ensemble.aggregation == Aggregation::Mean {
            shap.divisors = Some(counts.into_iter().map(|count| count.max(1) as f64).collect());
        }
        Ok(shap)
    }

    /// XGBoost's accumulation: each tree into its own buffer, then into the group's totals;
    /// the bias is the sum of the trees' mean values, then the base margin.
    fn explain_per_tree(&self, x: &[T], scratch: &mut WalkScratch<T>, totals: &mut [T], tree_phi: &mut [T]) {
        totals.fill(T::ZERO);
        let stride = self.num_features + 1;
        for tree in &self.trees {
            let group = &mut totals[tree.group as usize * stride..][..stride];
            group[self.num_features] += tree.expected;
            if tree.single_leaf {
                continue;
            }
            let WalkScratch { path, pending, lists } = scratch;
            Walk { shap: self, x, phi: tree_phi, path, pending, lists }.visit(
                tree.root,
                0,
                0,
                T::ONE,
                T::ONE,
                NO_FEATURE,
            );
            for feature in &self.tree_features[tree.features.0 as usize..tree.features.1 as usize] {
                let feature = *feature as usize;
                group[feature] += tree_phi[feature];
                tree_phi[feature] = T::ZERO;
            }
        }
        for (group, base) in totals.chunks_mut(stride).zip(&self.base_margin) {
            group[self.num_features] += *base;
        }
    }

    /// Widens the bias and scales by the number of trees for random forests.
    fn finish(&self, out: &mut [f64]) {
        if let Some(divisors) = &self.divisors {
            let stride = self.num_features + 1;
            for ((group, divisor), base) in out.chunks_mut(stride).zip(divisors).zip(&self.base_margin) {
                // The base margin is added after the mean, as the evaluator does.
                let base = base.to_f64();
                group[self.num_features] -= base;
                for value in group.iter_mut() {
                    *value /= divisor;
                }
                group[self.num_features] += base;
            }
        }
    }
}

impl TreeShap<f64> {
    /// LightGBM's accumulation: every tree straight into the output, expected values into the
    /// bias in tree order.
    fn explain_direct(&self, x: &[f64], scratch: &mut WalkScratch<f64>, out: &mut [f64]) {
        out.fill(0.0);
        let stride = self.num_features + 1;
        for tree in &self.trees {
            let group = &mut out[tree.group as usize * stride..][..stride];
            group[self.num_features] += tree.expected;
            if !tree.single_leaf {
                let phi = &mut group[..self.num_features];
                let WalkScratch { path, pending, lists } = scratch;
                Walk { shap: self, x, phi, path, pending, lists }.visit(tree.root, 0, 0, 1.0, 1.0, NO_FEATURE);
            }
        }
        for (group, base) in out.chunks_mut(stride).zip(&self.base_margin) {
            group[self.num_features] += *base;
        }
    }
}

/// XGBoost's `FillNodeMeanValues` for the root, in the model's precision: a node's mean is
/// `(mean(left) · cover(left) + mean(right) · cover(right)) / cover(node)`.
fn mean_value_xgboost<T: Real>(nodes: &[Node], cover: &[f64], index: u32) -> T {
    match &nodes[index as usize] {
        Node::Leaf { value } => T::from_f64(*value),
        Node::Split { left, right, .. } => {
            let cover_of = |node: u32| T::from_f64(cover.get(node as usize).copied().unwrap_or(0.0));
            let mut result = mean_value_xgboost::<T>(nodes, cover, *left) * cover_of(*left);
            result += mean_value_xgboost::<T>(nodes, cover, *right) * cover_of(*right);
            result / cover_of(index)
        }
    }
}

/// LightGBM's `Tree::ExpectedValue`: `Σ (leaf_count / internal_count[root]) · leaf_value` over the
/// leaves in order.
fn expected_value_lightgbm<T: Real>(nodes: &[Node], cover: &[f64]) -> T {
    if let [Node::Leaf { value }] = nodes {
        return T::from_f64(*value);
    }
    let total = T::from_f64(cover.first().copied().unwrap_or(0.0));
    let mut expected = T::ZERO;
    for (index, node) in nodes.iter().enumerate() {
        if let Node::Leaf { value } = node {
            expected += (T::from_f64(cover.get(index).copied().unwrap_or(0.0)) / total) * T::from_f64(*value);
        }
    }
    expected
}

impl<T: Real> TreeShap<T> {
    /// Whether the row goes left at `node`, exactly as the evaluator decides.
    #[inline(always)]
    fn goes_left(&self, node: &ShapNode<T>, value: T) -> bool {
        if value.is_nan() {
            return node.flags & MISSING_LEFT != 0;
        }
        if node.flags & CATEGORICAL != 0 {
            let categories = &self.category_sets[node.set as usize];
            let in_set = value.category_code().is_some_and(|code| categories.binary_search(&code).is_ok());
            return in_set == (node.flags & IN_SET_LEFT != 0);
        }
        value < node.value
    }

    /// `(depth - i) / (depth + 1)` for `i < depth`.
    #[inline(always)]
    fn ratios(&self, depth: usize) -> &[T] {
        &self.ratios[depth * depth.saturating_sub(1) / 2..][..depth]
    }
}

/// The state of one tree's recursion.
struct Walk<'a, T> {
    shap: &'a TreeShap<T>,
    x: &'a [T],
    phi: &'a mut [T],
    path: &'a mut [PathElement<T>],
    /// The cold leaf's shares (feature, share) while the hot leaf's are added (sibling leaves);
    /// its capacity holds every element of a path.
    pending: &'a mut Vec<(u32, T)>,
    /// Path elements (fractions, feature) sorted by unwound-sum formula, at a leaf.
    lists: &'a mut [(T, T, u32)],
}

impl<T: Real> Walk<'_, T> {
    /// One step of the recursion (XGBoost's `TreeShap`, LightGBM's `Tree::TreeSHAP`): the path
    /// of the parent starts at `parent`, holds `depth + 1` elements, and is extended here by the
    /// parent's split with the given fractions.
    fn visit(
        &mut self,
        node_index: u32,
        parent: usize,
        mut depth: usize,
        parent_zero_fraction: T,
        parent_one_fraction: T,
        parent_feature: u32,
    ) {
        let start = parent + depth + 1;
        extend_into(self.path, parent, start, depth, parent_zero_fraction, parent_one_fraction, parent_feature);
        let unique = &mut self.path[start..];
        let shap = self.shap;
        let node = &shap.nodes[node_index as usize];
        if node.left == LEAF {
            let phi = &mut *self.phi;
            leaf_shares([&*unique], depth, [node.value], shap.ratios(depth), self.lists, |_, feature, share| {
                phi[feature as usize] += share;
            });
            return;
        }
        let (hot, cold, hot_fraction, cold_fraction) = if shap.goes_left(node, self.x[node.feature as usize]) {
            (node.left, node.right, node.left_fraction, node.right_fraction)
        } else {
            (node.right, node.left, node.right_fraction, node.left_fraction)
        };
        let mut incoming_zero = T::ONE;
        let mut incoming_one = T::ONE;
        if let Some(found) = unique[..=depth].iter().position(|element| element.feature == node.feature) {
            incoming_zero = unique[found].zero_fraction;
            incoming_one = unique[found].one_fraction;
            unwind_path(unique, depth, found);
            depth -= 1;
        }
        let (hot_node, cold_node) = (&shap.nodes[hot as usize], &shap.nodes[cold as usize]);
        if hot_node.left == LEAF && cold_node.left == LEAF {
            // Both children are leaves (half the leaves of a full tree): their paths are built
            // side by side and their shares computed together; the hot leaf's go to phi first,
            // as the recursion would add them.
            let length = depth + 2;
            let hot_start = start + depth + 1;
            let cold_start = hot_start + length;
            let child_depth = depth + 1;
            let (hot_zero, cold_zero) = (hot_fraction * incoming_zero, cold_fraction * incoming_zero);
            extend_into(self.path, start, hot_start, child_depth, hot_zero, incoming_one, node.feature);
            extend_into(self.path, start, cold_start, child_depth, cold_zero, T::ZERO, node.feature);
            let (hot_path, cold_path) = self.path[hot_start..cold_start + length].split_at_mut(length);
            let (phi, pending) = (&mut *self.phi, &mut *self.pending);
            pending.clear();
            leaf_shares(
                [&*hot_path, &*cold_path],
                child_depth,
                [hot_node.value, cold_node.value],
                shap.ratios(child_depth),
                self.lists,
                |p, feature, share| {
                    if p == 0 {
                        phi[feature as usize] += share;
                    } else {
                        pending.push((feature, share));
                    }
                },
            );
            for (feature, share) in pending.iter() {
                phi[*feature as usize] += *share;
            }
            return;
        }
        self.visit(hot, start, depth + 1, hot_fraction * incoming_zero, incoming_one, node.feature);
        self.visit(cold, start, depth + 1, cold_fraction * incoming_zero, T::ZERO, node.feature);
    }
}

/// The path at `to` becomes the path at `from` (its first `depth` elements) extended by one
/// feature (XGBoost's `ExtendPath` on a copy, fused with the copy): element `j` gets
/// `zero · pw[j] · (depth - j) / (depth + 1) + one · pw[j - 1] · j / (depth + 1)`, with XGBoost's
/// operations in XGBoost's order.
#[inline(always)]
fn extend_into<T: Real>(
    path: &mut [PathElement<T>],
    from: usize,
    to: usize,
    depth: usize,
    zero_fraction: T,
    one_fraction: T,
    feature: u32,
) {
    let (source, target) = path.split_at_mut(to);
    let source = &source[from..from + depth];
    let target = &mut target[..=depth];
    target[depth] =
        PathElement { feature, zero_fraction, one_fraction, pweight: if depth == 0 { T::ONE } else { T::ZERO } };
    if depth == 0 {
        return;
    }
    let next = T::from_u32(depth as u32 + 1);
    // depth - i as a float, counted down exactly (small integers).
    let mut remaining = T::from_u32(depth as u32);
    for (target, source) in target[..depth].iter_mut().zip(source) {
        *target = PathElement { pweight: zero_fraction * source.pweight * remaining / next, ..*source };
        remaining = remaining - T::ONE;
    }
    if one_fraction == T::ZERO {
        // A cold branch: every `one` term is an exact 0 (the weights are never negative), and
        // adding it changes nothing.
        return;
    }
    // Element i + 1 gains the `one` term of element i (i + 1 as a float, counted up exactly).
    let mut position = T::ONE;
    for (target, source) in target[1..].iter_mut().zip(source) {
        target.pweight += one_fraction * source.pweight * position / next;
        position += T::ONE;
    }
}

/// Undoes the extension by the element at `index` (XGBoost's `UnwindPath`).
#[inline(always)]
fn unwind_path<T: Real>(path: &mut [PathElement<T>], depth: usize, index: usize) {
    let one_fraction = path[index].one_fraction;
    let zero_fraction = path[index].zero_fraction;
    let mut next_one_portion = path[depth].pweight;
    let next = T::from_u32(depth as u32 + 1);
    for i in (0..depth).rev() {
        if one_fraction != T::ZERO {
            let kept = path[i].pweight;
            path[i].pweight = next_one_portion * next / (T::from_u32(i as u32 + 1) * one_fraction);
            next_one_portion = kept - path[i].pweight * zero_fraction * T::from_u32((depth - i) as u32) / next;
        } else {
            path[i].pweight = (path[i].pweight * next) / (zero_fraction * T::from_u32((depth - i) as u32));
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

/// Path elements whose unwound sums are computed side by side at a leaf (one SSE register of
/// f32; the compiler vectorizes the fixed-width lane loops).
const LANES: usize = 4;

/// At the leaves ending `paths` (all of `depth` unique features, with leaf values `values`):
/// the share of each path feature (elements `1..=depth`) of each leaf,
/// `unwound_sum · (one_fraction - zero_fraction) · leaf_value`, where `unwound_sum` is the total
/// permutation weight with the element unwound (XGBoost's `UnwoundPathSum`). `emit(p, feature,
/// share)` receives them (a path's features are distinct, so their order does not matter).
///
/// XGBoost computes one element at a time, with one formula for elements the row follows
/// (`one_fraction != 0`: a chain of dependent divisions), another for the others
/// (`zero_fraction != 0`), and nothing for elements with both fractions 0 (their weight is 0).
/// Here the elements are sorted by formula, [`LANES`] of a formula are computed side by side, and
/// the chains of two sibling leaves run in the same loop, so that their latencies overlap; every
/// lane does exactly the scalar operations in the scalar order, so the results are bit for bit
/// the libraries'. `ratios[i]` is `(depth - i) / (depth + 1)`, computed once per depth. `lists`
/// holds at least `2 · P · (depth + 1)` entries.
#[inline(always)]
fn leaf_shares<T: Real, const P: usize>(
    paths: [&[PathElement<T>]; P],
    depth: usize,
    values: [T; P],
    ratios: &[T],
    lists: &mut [(T, T, u32)],
    mut emit: impl FnMut(usize, u32, T),
) {
    let stride = depth + 1;
    let (followed_lists, other_lists) = lists[..2 * P * stride].split_at_mut(P * stride);
    let mut followed_counts = [0usize; P];
    let mut other_counts = [0usize; P];
    for p in 0..P {
        let followed = &mut followed_lists[p * stride..][..stride];
        let other = &mut other_lists[p * stride..][..stride];
        let (mut followed_count, mut other_count) = (0, 0);
        // Branch-free: each element is written to both lists and kept by one or neither.
        for element in &paths[p][1..=depth] {
            let is_followed = element.one_fraction != T::ZERO;
            let is_other = !is_followed & (element.zero_fraction != T::ZERO);
            let entry = (element.one_fraction, element.zero_fraction, element.feature);
            followed[followed_count] = entry;
            other[other_count] = entry;
            followed_count += usize::from(is_followed);
            other_count += usize::from(is_other);
        }
        followed_counts[p] = followed_count;
        other_counts[p] = other_count;
    }
    let next = T::from_u32(depth as u32 + 1);
    let widest = followed_counts.iter().chain(&other_counts).copied().max().unwrap_or(0);
    let lists = (&*followed_lists, &*other_lists, stride);
    let counts = (&followed_counts, &other_counts);
    // Four lanes (one SSE register of f32) when they hold every element, else eight: two chains
    // per formula in flight instead of two chunks one after the other.
    if widest <= LANES {
        leaf_chunks::<T, P, LANES>(paths, depth, next, values, ratios, lists, counts, &mut emit);
    } else {
        leaf_chunks::<T, P, { 2 * LANES }>(paths, depth, next, values, ratios, lists, counts, &mut emit);
    }
}

/// [`leaf_shares`] in chunks of `L` elements of each formula: chunk k holds the k-th `L`
/// followed and the k-th `L` other elements of every path, computed in the same loop.
#[inline(always)]
#[allow(clippy::too_many_arguments, reason = "the leaf's state, passed through")]
#[allow(clippy::type_complexity, reason = "the lists and counts of both formulas")]
fn leaf_chunks<T: Real, const P: usize, const L: usize>(
    paths: [&[PathElement<T>]; P],
    depth: usize,
    next: T,
    values: [T; P],
    ratios: &[T],
    (followed_lists, other_lists, stride): (&[(T, T, u32)], &[(T, T, u32)], usize),
    (followed_counts, other_counts): (&[usize; P], &[usize; P]),
    emit: &mut impl FnMut(usize, u32, T),
) {
    let mut first = 0;
    while (0..P).any(|p| first < followed_counts[p] || first < other_counts[p]) {
        // Padding lanes compute with finite stand-ins and are not used.
        let mut one = [[T::ONE; L]; P];
        let mut zero = [[T::ZERO; L]; P];
        let mut other_zero = [[T::ONE; L]; P];
        let mut followed = [&followed_lists[..0]; P];
        let mut other = [&other_lists[..0]; P];
        for p in 0..P {
            let lanes = followed_counts[p].saturating_sub(first).min(L);
            followed[p] = &followed_lists[p * stride + first..][..lanes];
            for (lane, entry) in followed[p].iter().enumerate() {
                one[p][lane] = entry.0;
                zero[p][lane] = entry.1;
            }
            let lanes = other_counts[p].saturating_sub(first).min(L);
            other[p] = &other_lists[p * stride + first..][..lanes];
            for (lane, entry) in other[p].iter().enumerate() {
                other_zero[p][lane] = entry.1;
            }
        }
        let (followed_totals, other_totals) = unwound_sums(paths, depth, next, ratios, &one, &zero, &other_zero);
        for p in 0..P {
            for (entries, totals) in [(followed[p], &followed_totals[p]), (other[p], &other_totals[p])] {
                for (&(one, zero, feature), total) in entries.iter().zip(totals) {
                    emit(p, feature, *total * (one - zero) * values[p]);
                }
            }
        }
        first += L;
    }
}

/// Unwound sums of `L` followed elements (fractions `one`, `zero`) and `L` other elements
/// (fraction `other_zero`) per path, in one loop over the path: XGBoost's `UnwoundPathSum`, lane
/// by lane.
#[inline(always)]
fn unwound_sums<T: Real, const P: usize, const L: usize>(
    paths: [&[PathElement<T>]; P],
    depth: usize,
    next: T,
    ratios: &[T],
    one: &[[T; L]; P],
    zero: &[[T; L]; P],
    other_zero: &[[T; L]; P],
) -> ([[T; L]; P], [[T; L]; P]) {
    let mut next_one_portion = [[T::ZERO; L]; P];
    for p in 0..P {
        next_one_portion[p] = [paths[p][depth].pweight; L];
    }
    let mut followed_total = [[T::ZERO; L]; P];
    let mut other_total = [[T::ZERO; L]; P];
    // i + 1 as a float, counted down exactly (small integers).
    let mut position = T::from_u32(depth as u32);
    for i in (0..depth).rev() {
        let ratio = ratios[i];
        for p in 0..P {
            let pweight = paths[p][i].pweight;
            for lane in 0..L {
                let share = next_one_portion[p][lane] * next / (position * one[p][lane]);
                followed_total[p][lane] += share;
                next_one_portion[p][lane] = pweight - share * zero[p][lane] * ratio;
                other_total[p][lane] += (pweight / other_zero[p][lane]) / ratio;
            }
        }
        position = position - T::ONE;
    }
    (followed_total, other_total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Predictor;
    use crate::ir::{Feature, Output, OutputKind, Transform, Tree, TreeEnsemble};

    /// Lundberg et al.'s Algorithm 1: the expected value of the tree when only the features of
    /// `known` are known (the others follow the covers).
    fn conditional_expectation(tree: &Tree, row: &[f64], known: &[bool], node: u32) -> f64 {
        let cover = tree.cover.as_ref().unwrap();
        match &tree.nodes[node as usize] {
            Node::Leaf { value } => *value,
            Node::Split { feature, test: SplitTest::LessThan(threshold), left, right, missing } => {
                if known[*feature as usize] {
                    let value = row[*feature as usize];
                    let goes_left = if value.is_nan() { *missing == Direction::Left } else { value < *threshold };
                    conditional_expectation(tree, row, known, if goes_left { *left } else { *right })
                } else {
                    let own = cover[node as usize];
                    cover[*left as usize] / own * conditional_expectation(tree, row, known, *left)
                        + cover[*right as usize] / own * conditional_expectation(tree, row, known, *right)
                }
            }
            Node::Split { .. } => unreachable!("numeric trees only"),
        }
    }

    /// Shapley values by enumerating every coalition (an independent, exponential definition).
    fn brute_force(ensemble: &TreeEnsemble, row: &[f64]) -> Vec<f64> {
        let width = ensemble.num_features;
        let value = |mask: usize| -> f64 {
            let known: Vec<bool> = (0..width).map(|feature| mask >> feature & 1 == 1).collect();
            ensemble.trees.iter().map(|tree| conditional_expectation(tree, row, &known, 0)).sum()
        };
        let factorial = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
        let mut phi = vec![0.0; width + 1];
        for (feature, slot) in phi.iter_mut().enumerate().take(width) {
            for mask in 0..1usize << width {
                if mask >> feature & 1 == 1 {
                    continue;
                }
                let size = mask.count_ones() as usize;
                let weight = factorial(size) * factorial(width - size - 1) / factorial(width);
                *slot += weight * (value(mask | 1 << feature) - value(mask));
            }
        }
        phi[width] = value(0) + ensemble.base_margin[0];
        phi
    }

    /// A full tree of `depth` over 4 features (a feature may repeat on a path), covers uneven.
    fn tree(seed: u32, depth: u32) -> Tree {
        let mut nodes = Vec::new();
        let mut cover = Vec::new();
        fn grow(nodes: &mut Vec<Node>, cover: &mut Vec<f64>, seed: u32, level: u32, depth: u32, weight: f64) -> u32 {
            let index = nodes.len() as u32;
            nodes.push(Node::Leaf { value: f64::from((seed * 7 + index * 13) % 11) * 0.25 - 1.0 });
            cover.push(weight);
            if level < depth {
                let share = 0.2 + 0.6 * f64::from((seed + index * 5) % 7) / 6.0;
                let left = grow(nodes, cover, seed, level + 1, depth, weight * share);
                let right = grow(nodes, cover, seed, level + 1, depth, weight * (1.0 - share));
                nodes[index as usize] = Node::Split {
                    feature: (seed + index * 3) % 4,
                    test: SplitTest::LessThan(f64::from((seed + index) % 5) * 0.5),
                    left,
                    right,
                    missing: if index.is_multiple_of(2) { Direction::Left } else { Direction::Right },
                };
            }
            index
        }
        grow(&mut nodes, &mut cover, seed, 0, depth, 100.0);
        Tree { nodes, output: 0, cover: Some(cover) }
    }

    fn model(trees: Vec<Tree>) -> Model {
        Model {
            inputs: (0..4).map(|index| Feature::numeric(format!("x{index}"))).collect(),
            preprocess: None,
            body: ModelBody::Trees(TreeEnsemble {
                trees,
                num_outputs: 1,
                base_margin: vec![0.375],
                aggregation: Aggregation::Sum,
                precision: Precision::F64,
                num_features: 4,
            }),
            output: Output { transform: Transform::Identity, kind: OutputKind::Margin },
            source: crate::Format::Model,
        }
    }

    #[test]
    fn tree_shap_equals_the_shapley_values_of_the_path_dependent_game() {
        let model = model((0..6).map(|seed| tree(seed, 2 + seed % 4)).collect());
        let ModelBody::Trees(ensemble) = &model.body else { unreachable!() };
        let explainer = Explainer::new(&model).unwrap();
        let predictor = Predictor::new(model.clone()).unwrap();
        let (mut scratch, mut predictor_scratch) = (explainer.scratch(), predictor.scratch());
        let mut out = vec![0.0; 5];
        let mut margin = [0.0];
        for index in 0..40u32 {
            let mut row: Vec<f64> = (0..4).map(|column| f64::from((index * 3 + column * 7) % 6) * 0.4 - 0.2).collect();
            if index % 5 == 0 {
                row[(index as usize / 5) % 4] = f64::NAN;
            }
            explainer.explain_row(&row, &mut scratch, &mut out).unwrap();
            let expected = brute_force(ensemble, &row);
            for (actual, expected) in out.iter().zip(&expected) {
                assert!((actual - expected).abs() < 1e-12, "{out:?} vs {expected:?} for {row:?}");
            }
            predictor.predict_row(&row, &mut predictor_scratch, &mut margin).unwrap();
            assert!((out.iter().sum::<f64>() - margin[0]).abs() < 1e-12);
        }
    }

    #[test]
    fn random_forests_divide_by_the_number_of_trees() {
        let mut forest = model((0..3).map(|seed| tree(seed, 3)).collect());
        let ModelBody::Trees(ensemble) = &mut forest.body else { unreachable!() };
        ensemble.aggregation = Aggregation::Mean;
        let explainer = Explainer::new(&forest).unwrap();
        let predictor = Predictor::new(forest).unwrap();
        let (mut scratch, mut predictor_scratch) = (explainer.scratch(), predictor.scratch());
        let (mut out, mut margin) = (vec![0.0; 5], [0.0]);
        for row in [[0.1, 0.7, 1.3, -0.4], [f64::NAN, 2.0, 0.0, 0.9]] {
            explainer.explain_row(&row, &mut scratch, &mut out).unwrap();
            predictor.predict_row(&row, &mut predictor_scratch, &mut margin).unwrap();
            assert!((out.iter().sum::<f64>() - margin[0]).abs() < 1e-12, "{out:?} vs {margin:?}");
        }
    }

    #[test]
    fn trees_too_deep_or_without_positive_covers_are_refused() {
        let mut deep = tree(1, 1);
        let mut chain = Vec::new();
        for level in 0..=MAX_EXPLAINED_DEPTH as u32 {
            chain.push(Node::Split {
                feature: level % 4,
                test: SplitTest::LessThan(0.5),
                left: 2 * level + 1,
                right: 2 * level + 2,
                missing: Direction::Left,
            });
            chain.push(Node::Leaf { value: 1.0 });
        }
        chain.push(Node::Leaf { value: 0.0 });
        // Node 2k is the split of level k, node 2k + 1 its leaf, node 2k + 2 the next split.
        deep.cover = Some(vec![1.0; chain.len()]);
        deep.nodes = chain;
        let error = Explainer::new(&model(vec![deep])).unwrap_err();
        assert!(error.to_string().contains("TreeSHAP explains trees up to 256 deep"), "{error}");

        let mut zero = tree(2, 2);
        zero.cover.as_mut().unwrap()[0] = 0.0;
        let error = Explainer::new(&model(vec![zero])).unwrap_err();
        assert!(error.to_string().contains("tree 0 node 0 has cover 0"), "{error}");
    }
}
