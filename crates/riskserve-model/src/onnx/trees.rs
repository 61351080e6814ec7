//! Converts ONNX-ML `TreeEnsembleClassifier` and `TreeEnsembleRegressor` nodes into a
//! [`TreeEnsemble`], reproducing what ONNX Runtime computes.
//!
//! ONNX Runtime's rules, which this module mirrors:
//! - Nodes are identified by `(tree id, node id)`; a tree is a contiguous run of equal tree ids
//!   and its root is the run's first node. Children are looked up in the same tree.
//! - `BRANCH_LEQ` sends `x <= t` to the true child; `LT`, `GTE`, `GT`, `EQ` likewise. A NaN input
//!   fails every comparison, so it goes to the false child unless `nodes_missing_value_tracks_true`
//!   is 1.
//! - onnxmltools writes XGBoost's and LightGBM's categorical splits as chains of `BRANCH_EQ` nodes
//!   that share their true child; a chain becomes one category-set split. onnxruntime compares
//!   exactly where the category-set split truncates the input to an integer code (as XGBoost and
//!   LightGBM do): the two differ only for a non-integer value in a categorical column.
//! - A leaf may carry several weights, one per class or target; weights on split nodes are
//!   ignored; every leaf must have one.
//! - Scores are summed from zero in tree order (in `f32` for float inputs, `f64` for doubles),
//!   `AVERAGE` divides by the number of trees, then the base values are added.
//! - A regressor with one target ignores `post_transform` (only `PROBIT` would apply).
//! - A binary classifier whose weights all name one class ("binary case") reports that class's
//!   score `s` as the positive probability: `s` itself when all weights are non-negative (random
//!   forests), `sigmoid(s)` with `LOGISTIC` otherwise (gradient boosting). When class 1 has its
//!   own weights, its score goes through `post_transform` elementwise (`SOFTMAX` over both
//!   classes becomes a sigmoid of their difference).
//!
//! The IR gives each tree one output, so a leaf with weights for several classes becomes one
//! tree per class, sharing the structure.

use std::collections::{HashMap, HashSet};

use super::attributes::NodeView;
use super::errors::{invalid, unsupported};
use crate::error::ModelError;
use crate::ir::{
    Aggregation, Direction, ModelBody, Node, Output, OutputKind, Precision, SplitTest, Transform, Tree, TreeEnsemble,
};

/// The most nodes the converted ensemble may have once multi-class leaves are split per class:
/// enough for every real model (a forest's size times its classes), while a tiny hostile file
/// claiming thousands of classes cannot make the importer allocate gigabytes.
fn node_budget(source_nodes: usize) -> usize {
    source_nodes.saturating_mul(64).clamp(1 << 22, 1 << 26)
}

/// The most classes or targets accepted.
const MAX_OUTPUTS: usize = 1 << 16;

/// A converted model node: the body, how its margin becomes the answer, and whether the scores
/// ONNX Runtime reports already sum to one (so that a following L1 `Normalizer` changes nothing).
pub(super) struct Converted {
    pub body: ModelBody,
    pub output: Output,
    pub probabilities_normalized: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Leaf,
    LessOrEqual,
    Less,
    GreaterOrEqual,
    Greater,
    Equal,
}

/// ONNX-ML `post_transform` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PostTransform {
    None,
    Logistic,
    Softmax,
    /// Softmax that leaves scores within 1e-7 of zero near zero. riskserve computes a plain
    /// softmax, which differs only when a class score is within 1e-7 of zero.
    SoftmaxZero,
}

impl PostTransform {
    pub fn parse(node: &NodeView) -> Result<PostTransform, ModelError> {
        match node.string("post_transform")?.unwrap_or("NONE") {
            "NONE" => Ok(PostTransform::None),
            "LOGISTIC" => Ok(PostTransform::Logistic),
            "SOFTMAX" => Ok(PostTransform::Softmax),
            "SOFTMAX_ZERO" => Ok(PostTransform::SoftmaxZero),
            other => Err(unsupported(format!("{}: post_transform {other}", node.label()))),
        }
    }

    /// The transform applied to every score of a vector of several.
    pub fn elementwise(self) -> Transform {
        match self {
            PostTransform::None => Transform::Identity,
            PostTransform::Logistic => Transform::Sigmoid { scale: 1.0 },
            PostTransform::Softmax | PostTransform::SoftmaxZero => Transform::Softmax,
        }
    }

    pub fn is_softmax(self) -> bool {
        matches!(self, PostTransform::Softmax | PostTransform::SoftmaxZero)
    }
}

/// What a leaf adds to each output of the converted ensemble.
#[derive(Debug, Clone, Copy)]
enum LeafRule {
    /// One output: the leaf's first weight (ONNX Runtime's single-target regressor).
    FirstWeight,
    /// Output `k` is the sum of the leaf's weights for class or target `k`.
    PerClass,
    /// One output: the sum of the leaf's weights for this class.
    OneClass(u32),
    /// One output: class 1's weights minus class 0's (a two-class softmax as a sigmoid).
    ClassDifference,
}

/// One node of a tree's structure before leaf values are chosen per output.
#[derive(Debug, Clone)]
enum TemplateNode {
    Leaf { source: usize },
    Split { feature: u32, test: SplitTest, left: u32, right: u32, missing: Direction },
}

pub(super) fn convert(node: NodeView, num_features: usize, precision: Precision) -> Result<Converted, ModelError> {
    let label = node.label();
    let classifier = node.op_type() == "TreeEnsembleClassifier";

    let tree_ids = node.ints("nodes_treeids")?;
    let node_ids = node.ints("nodes_nodeids")?;
    let feature_ids = node.ints("nodes_featureids")?;
    let mode_names = node.strings("nodes_modes")?;
    let (thresholds, thresholds_double) = node.floats_or_tensor("nodes_values")?;
    let true_ids = node.ints("nodes_truenodeids")?;
    let false_ids = node.ints("nodes_falsenodeids")?;
    let missing_tracks_true = node.ints("nodes_missing_value_tracks_true")?;
    let count = tree_ids.len();
    if count == 0 {
        return Err(invalid(format!("{label} has no tree nodes")));
    }
    for (name, length) in [
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", feature_ids.len()),
        ("nodes_modes", mode_names.len()),
        ("nodes_values", thresholds.len()),
        ("nodes_truenodeids", true_ids.len()),
        ("nodes_falsenodeids", false_ids.len()),
    ] {
        if length != count {
            return Err(invalid(format!("{label}: nodes_treeids has {count} entries but {name} has {length}")));
        }
    }

    let prefix = if classifier { "class" } else { "target" };
    let weight_tree_ids = node.ints(&format!("{prefix}_treeids"))?;
    let weight_node_ids = node.ints(&format!("{prefix}_nodeids"))?;
    let weight_classes = node.ints(&format!("{prefix}_ids"))?;
    let (weights, weights_double) = node.floats_or_tensor(&format!("{prefix}_weights"))?;
    for (name, length) in [
        (format!("{prefix}_nodeids"), weight_node_ids.len()),
        (format!("{prefix}_ids"), weight_classes.len()),
        (format!("{prefix}_weights"), weights.len()),
    ] {
        if length != weight_tree_ids.len() {
            return Err(invalid(format!(
                "{label}: {prefix}_treeids has {} entries but {name} has {length}",
                weight_tree_ids.len()
            )));
        }
    }
    let (base_values, base_double) = node.floats_or_tensor("base_values")?;
    if precision == Precision::F32 {
        for (name, double) in
            [("nodes_values", thresholds_double), ("weights", weights_double), ("base_values", base_double)]
        {
            if double {
                return Err(unsupported(format!("{label}: {name} are doubles but the model's input is float")));
            }
        }
    }
    let post_transform = PostTransform::parse(&node)?;

    let num_outputs = if classifier {
        let integers = node.ints("classlabels_int64s")?.len();
        let strings = node.strings("classlabels_strings")?.len();
        if integers > 0 && strings > 0 {
            return Err(invalid(format!("{label} has both classlabels_int64s and classlabels_strings")));
        }
        integers.max(strings)
    } else {
        let targets = node.int("n_targets")?.unwrap_or(0);
        usize::try_from(targets).map_err(|_| invalid(format!("{label}: n_targets is {targets}")))?
    };
    if num_outputs == 0 {
        return Err(invalid(format!("{label} declares no {}", if classifier { "class labels" } else { "targets" })));
    }
    if num_outputs > MAX_OUTPUTS {
        return Err(unsupported(format!("{label} has {num_outputs} outputs, more than {MAX_OUTPUTS}")));
    }
    if classifier && num_outputs == 1 {
        return Err(unsupported(format!("{label} is a classifier with a single class")));
    }
    let aggregation = if classifier {
        Aggregation::Sum
    } else {
        match node.string("aggregate_function")?.unwrap_or("SUM") {
            "SUM" => Aggregation::Sum,
            "AVERAGE" => Aggregation::Mean,
            other => return Err(unsupported(format!("{label}: aggregate_function {other}"))),
        }
    };

    // Nodes by (tree id, node id), and the trees as contiguous runs.
    let mut index_of: HashMap<(i64, i64), usize> = HashMap::with_capacity(count);
    for (index, key) in tree_ids.iter().zip(node_ids).enumerate() {
        if index_of.insert((*key.0, *key.1), index).is_some() {
            return Err(invalid(format!("{label}: node {} of tree {} appears twice", key.1, key.0)));
        }
    }
    let mut roots = Vec::new();
    let mut seen_trees = HashSet::new();
    for (index, tree) in tree_ids.iter().enumerate() {
        if index == 0 || tree_ids[index - 1] != *tree {
            if !seen_trees.insert(*tree) {
                return Err(invalid(format!("{label}: the nodes of tree {tree} are not contiguous")));
            }
            roots.push(index);
        }
    }
    let modes = mode_names
        .iter()
        .map(|name| match *name {
            "LEAF" => Ok(Mode::Leaf),
            "BRANCH_LEQ" => Ok(Mode::LessOrEqual),
            "BRANCH_LT" => Ok(Mode::Less),
            "BRANCH_GTE" => Ok(Mode::GreaterOrEqual),
            "BRANCH_GT" => Ok(Mode::Greater),
            "BRANCH_EQ" => Ok(Mode::Equal),
            "BRANCH_NEQ" => Err(unsupported(format!("{label}: nodes_modes {name}"))),
            other => Err(invalid(format!("{label}: unknown node mode {other:?}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;

    // Leaf weights, grouped by node in file order (ONNX Runtime sorts by (tree, node, position)).
    let mut attached: Vec<(usize, u32, f64)> = Vec::with_capacity(weights.len());
    let mut classes_used = HashSet::new();
    let mut all_weights_positive = true;
    for position in 0..weights.len() {
        let key = (weight_tree_ids[position], weight_node_ids[position]);
        let index = *index_of.get(&key).ok_or_else(|| {
            invalid(format!("{label}: weight {position} names node {} of tree {}, which does not exist", key.1, key.0))
        })?;
        let class = weight_classes[position];
        let class = u32::try_from(class)
            .ok()
            .filter(|class| (*class as usize) < num_outputs)
            .ok_or_else(|| invalid(format!("{label}: weight {position} is for output {class} of {num_outputs}")))?;
        let value = weights[position];
        classes_used.insert(class);
        if value < 0.0 {
            all_weights_positive = false;
        }
        if modes[index] == Mode::Leaf {
            attached.push((index, class, value));
        }
    }
    attached.sort_by_key(|(index, _, _)| *index);
    let mut weight_start = vec![0usize; count + 1];
    for (index, _, _) in &attached {
        weight_start[index + 1] += 1;
    }
    for index in 0..count {
        weight_start[index + 1] += weight_start[index];
    }
    let leaf_weights = |index: usize| &attached[weight_start[index]..weight_start[index + 1]];
    for index in 0..count {
        if modes[index] == Mode::Leaf && leaf_weights(index).is_empty() {
            return Err(invalid(format!(
                "{label}: leaf {} of tree {} has no weight",
                node_ids[index], tree_ids[index]
            )));
        }
    }

    // Each tree's structure.
    let next_up = |threshold: f64| match precision {
        Precision::F32 => f64::from((threshold as f32).next_up()),
        Precision::F64 => threshold.next_up(),
    };
    let mut visited = vec![false; count];
    let mut templates: Vec<Vec<TemplateNode>> = Vec::with_capacity(roots.len());
    for root in &roots {
        let tree = tree_ids[*root];
        let child = |source: usize, id: i64| {
            index_of.get(&(tree, id)).copied().ok_or_else(|| {
                invalid(format!(
                    "{label}: node {} of tree {tree} points to node {id}, which does not exist",
                    node_ids[source]
                ))
            })
        };
        let mut template = vec![TemplateNode::Leaf { source: *root }];
        let mut stack = vec![(*root, 0usize)];
        while let Some((source, at)) = stack.pop() {
            if std::mem::replace(&mut visited[source], true) {
                return Err(invalid(format!(
                    "{label}: node {} of tree {tree} is reached twice (a cycle or a shared child)",
                    node_ids[source]
                )));
            }
            if modes[source] == Mode::Leaf {
                template[at] = TemplateNode::Leaf { source };
                continue;
            }
            let feature = u32::try_from(feature_ids[source])
                .ok()
                .filter(|feature| (*feature as usize) < num_features)
                .ok_or_else(|| {
                    invalid(format!(
                        "{label}: node {} of tree {tree} splits on feature {} but the model has {num_features}",
                        node_ids[source], feature_ids[source]
                    ))
                })?;
            let tracks_true = |index: usize| missing_tracks_true.get(index) == Some(&1);
            let true_child = child(source, true_ids[source])?;
            let false_child = child(source, false_ids[source])?;
            let threshold = thresholds[source];
            if threshold.is_nan() {
                return Err(invalid(format!("{label}: node {} of tree {tree} has a NaN threshold", node_ids[source])));
            }
            // The IR goes left iff x < threshold (or x's code is in the set). LEQ, LT and EQ send
            // their true child left; GTE and GT are the negations of LT and LEQ, so their true
            // child goes right. NaN fails every comparison: it takes the false child unless the
            // node's missing value tracks true.
            let (test, left_child, right_child, true_direction, missing_true) = match modes[source] {
                // `x <= +inf` holds for every number and `x > +inf` for none, so those splits
                // send every non-NaN value left; `x < next_up(+inf)` would wrongly send +inf
                // right. An empty category set sends every non-NaN value left.
                Mode::LessOrEqual | Mode::Greater if threshold == f64::INFINITY => {
                    let everything_left = SplitTest::CategoryIn { categories: Vec::new(), in_set: Direction::Right };
                    if modes[source] == Mode::LessOrEqual {
                        (everything_left, true_child, false_child, Direction::Left, tracks_true(source))
                    } else {
                        (everything_left, false_child, true_child, Direction::Right, tracks_true(source))
                    }
                }
                Mode::LessOrEqual => (
                    SplitTest::LessThan(next_up(threshold)),
                    true_child,
                    false_child,
                    Direction::Left,
                    tracks_true(source),
                ),
                Mode::Less => {
                    (SplitTest::LessThan(threshold), true_child, false_child, Direction::Left, tracks_true(source))
                }
                Mode::GreaterOrEqual => {
                    (SplitTest::LessThan(threshold), false_child, true_child, Direction::Right, tracks_true(source))
                }
                Mode::Greater => (
                    SplitTest::LessThan(next_up(threshold)),
                    false_child,
                    true_child,
                    Direction::Right,
                    tracks_true(source),
                ),
                // onnxmltools writes a categorical split (XGBoost, LightGBM) as a chain of EQ
                // nodes on one feature that share their true child, each chained through its
                // false child; the chain is one category-set split. NaN walks the chain and takes
                // the shared true child if any node of the chain tracks it there.
                Mode::Equal => {
                    let code_limit = match precision {
                        Precision::F32 => 16_777_216.0,
                        Precision::F64 => 2_147_483_648.0,
                    };
                    let mut categories = Vec::new();
                    let mut missing_true = false;
                    let mut current = source;
                    let end = loop {
                        let value = thresholds[current];
                        if !(value >= 0.0 && value < code_limit && value.fract() == 0.0) {
                            return Err(unsupported(format!(
                                "{label}: node {} of tree {tree} tests equality with {value}, which is not a category code",
                                node_ids[current]
                            )));
                        }
                        categories.push(value as u32);
                        missing_true |= tracks_true(current);
                        let next = child(current, false_ids[current])?;
                        let continues = modes[next] == Mode::Equal
                            && feature_ids[next] == feature_ids[source]
                            && !visited[next]
                            && index_of.get(&(tree, true_ids[next])) == Some(&true_child);
                        if !continues {
                            break next;
                        }
                        visited[next] = true;
                        current = next;
                    };
                    categories.sort_unstable();
                    categories.dedup();
                    (
                        SplitTest::CategoryIn { categories, in_set: Direction::Left },
                        true_child,
                        end,
                        Direction::Left,
                        missing_true,
                    )
                }
                // Leaves were placed above.
                Mode::Leaf => continue,
            };
            let missing = match (missing_true, true_direction) {
                (true, direction) => direction,
                (false, Direction::Left) => Direction::Right,
                (false, Direction::Right) => Direction::Left,
            };
            let left = template.len();
            template.push(TemplateNode::Leaf { source });
            let right = template.len();
            template.push(TemplateNode::Leaf { source });
            template[at] = TemplateNode::Split { feature, test, left: left as u32, right: right as u32, missing };
            stack.push((right_child, right));
            stack.push((left_child, left));
        }
        templates.push(template);
    }

    // How leaves become margins, and the margins the answer.
    let plan = if classifier {
        classifier_plan(
            &label,
            num_outputs,
            &base_values,
            post_transform,
            |class| class_presence(&templates, &leaf_weights, class),
            classes_used.len() == 1,
            all_weights_positive,
        )?
    } else {
        regressor_plan(&label, num_outputs, &base_values, post_transform)?
    };

    // Expand the templates into one tree per (tree, output).
    let budget = node_budget(count);
    let mut participates = vec![false; plan.num_outputs];
    let mut trees = Vec::new();
    let mut total_nodes = 0usize;
    for template in &templates {
        participates.fill(false);
        for entry in template {
            if let TemplateNode::Leaf { source } = entry {
                for output in contributions(plan.rule, leaf_weights(*source)) {
                    participates[output as usize] = true;
                }
            }
        }
        for (output, participating) in participates.iter().enumerate() {
            // Averaging divides by the number of trees, so every output keeps one tree per
            // source tree; a tree without weights for the output adds zero.
            let nodes = match (participating, aggregation) {
                (true, _) => template.len(),
                (false, Aggregation::Mean) => 1,
                (false, Aggregation::Sum) => continue,
            };
            total_nodes = total_nodes.saturating_add(nodes);
            if total_nodes > budget {
                return Err(unsupported(format!("{label} expands to more than {budget} nodes")));
            }
            if !participating {
                trees.push(Tree { nodes: vec![Node::Leaf { value: 0.0 }], output: output as u32, cover: None });
                continue;
            }
            let nodes = template
                .iter()
                .map(|entry| match entry {
                    TemplateNode::Leaf { source } => {
                        Node::Leaf { value: leaf_value(plan.rule, precision, leaf_weights(*source), output as u32) }
                    }
                    TemplateNode::Split { feature, test, left, right, missing } => Node::Split {
                        feature: *feature,
                        test: test.clone(),
                        left: *left,
                        right: *right,
                        missing: *missing,
                    },
                })
                .collect();
            trees.push(Tree { nodes, output: output as u32, cover: None });
        }
    }
    let ensemble = TreeEnsemble {
        trees,
        num_outputs: plan.num_outputs,
        base_margin: plan.base_margin,
        aggregation,
        precision,
        num_features,
    };
    Ok(Converted {
        body: ModelBody::Trees(ensemble),
        output: Output { transform: plan.transform, kind: plan.kind },
        probabilities_normalized: plan.normalized,
    })
}

struct Plan {
    rule: LeafRule,
    num_outputs: usize,
    base_margin: Vec<f64>,
    transform: Transform,
    kind: OutputKind,
    normalized: bool,
}

fn regressor_plan(
    label: &str,
    targets: usize,
    base_values: &[f64],
    post_transform: PostTransform,
) -> Result<Plan, ModelError> {
    let base_margin = match base_values.len() {
        0 => vec![0.0; targets],
        length if length == targets => base_values.to_vec(),
        length => return Err(invalid(format!("{label} has {length} base_values for {targets} targets"))),
    };
    // ONNX Runtime applies no post_transform but PROBIT to a single target.
    let (rule, transform) = if targets == 1 {
        (LeafRule::FirstWeight, Transform::Identity)
    } else {
        (LeafRule::PerClass, post_transform.elementwise())
    };
    Ok(Plan { rule, num_outputs: targets, base_margin, transform, kind: OutputKind::Value, normalized: false })
}

/// Whether class `class` has a weight on every leaf of some tree (so every row scores it), on no
/// leaf at all, or on some leaves only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Always,
    Never,
    Sometimes,
}

fn class_presence<'w>(
    templates: &[Vec<TemplateNode>],
    leaf_weights: &impl Fn(usize) -> &'w [(usize, u32, f64)],
    class: u32,
) -> Presence {
    let mut anywhere = false;
    for template in templates {
        let mut every_leaf = true;
        for entry in template {
            if let TemplateNode::Leaf { source } = entry {
                if leaf_weights(*source).iter().any(|(_, weight_class, _)| *weight_class == class) {
                    anywhere = true;
                } else {
                    every_leaf = false;
                }
            }
        }
        if every_leaf {
            return Presence::Always;
        }
    }
    if anywhere { Presence::Sometimes } else { Presence::Never }
}

fn classifier_plan(
    label: &str,
    classes: usize,
    base_values: &[f64],
    post_transform: PostTransform,
    presence: impl Fn(u32) -> Presence,
    single_weight_class: bool,
    all_weights_positive: bool,
) -> Result<Plan, ModelError> {
    if classes > 2 {
        if base_values.len() > classes {
            return Err(invalid(format!("{label} has {} base_values for {classes} classes", base_values.len())));
        }
        let mut base_margin = base_values.to_vec();
        base_margin.resize(classes, 0.0);
        return Ok(Plan {
            rule: LeafRule::PerClass,
            num_outputs: classes,
            base_margin,
            transform: post_transform.elementwise(),
            kind: OutputKind::ClassProbabilities,
            normalized: post_transform.is_softmax(),
        });
    }
    // `normalized`: whether onnxruntime's two scores sum to one.
    let probability = |rule, base: f64, transform, normalized| Plan {
        rule,
        num_outputs: 1,
        base_margin: vec![base],
        transform,
        kind: OutputKind::Probability,
        normalized,
    };
    let base_zero = base_values.first().copied().unwrap_or(0.0);
    match (presence(1), base_values.len()) {
        (_, length) if length > 2 => Err(invalid(format!("{label} has {length} base_values for 2 classes"))),
        (Presence::Sometimes, _) => Err(unsupported(format!(
            "{label}: class 1 has weights on only some leaves, so onnxruntime's output depends on the row"
        ))),
        // onnxruntime then replaces class 1's score by base_values[1] plus class 0's score,
        // dropping class 1's trees (XGBoost's multi:softprob with two classes comes out wrong).
        (_, 2) => Err(unsupported(format!(
            "{label}: two base_values for two classes, which onnxruntime scores without class 1's trees"
        ))),
        (Presence::Never, length) => {
            // Only class 0 is scored: onnxruntime reports [1 - s, s] or [-s, s] (binary case),
            // or [sigmoid(-s), sigmoid(s)] with LOGISTIC and mixed-sign weights.
            if !single_weight_class && length == 1 {
                return Err(unsupported(format!(
                    "{label}: one base value with weights for several classes but none reaching class 1"
                )));
            }
            if single_weight_class && all_weights_positive {
                Ok(probability(LeafRule::OneClass(0), base_zero, Transform::Identity, true))
            } else if post_transform == PostTransform::Logistic {
                Ok(probability(LeafRule::OneClass(0), base_zero, Transform::Sigmoid { scale: 1.0 }, true))
            } else {
                Ok(probability(LeafRule::OneClass(0), base_zero, Transform::Identity, false))
            }
        }
        (Presence::Always, _) => Ok(match post_transform {
            PostTransform::None => probability(LeafRule::OneClass(1), 0.0, Transform::Identity, false),
            PostTransform::Logistic => {
                probability(LeafRule::OneClass(1), 0.0, Transform::Sigmoid { scale: 1.0 }, false)
            }
            // softmax([s0 + b0, s1])[1] = sigmoid(s1 - s0 - b0)
            PostTransform::Softmax | PostTransform::SoftmaxZero => {
                probability(LeafRule::ClassDifference, -base_zero, Transform::Sigmoid { scale: 1.0 }, true)
            }
        }),
    }
}

/// The outputs a leaf adds to under `rule`.
fn contributions(rule: LeafRule, weights: &[(usize, u32, f64)]) -> impl Iterator<Item = u32> + '_ {
    weights.iter().enumerate().filter_map(move |(position, (_, class, _))| match rule {
        LeafRule::FirstWeight => (position == 0).then_some(0),
        LeafRule::PerClass => Some(*class),
        LeafRule::OneClass(wanted) => (*class == wanted).then_some(0),
        LeafRule::ClassDifference => (*class <= 1).then_some(0),
    })
}

/// The value a leaf adds to `output`, summed in the model's precision.
fn leaf_value(rule: LeafRule, precision: Precision, weights: &[(usize, u32, f64)], output: u32) -> f64 {
    let sum_of = |class: u32| match precision {
        Precision::F32 => f64::from(
            weights
                .iter()
                .filter(|(_, weight_class, _)| *weight_class == class)
                .fold(0.0f32, |sum, (_, _, value)| sum + *value as f32),
        ),
        Precision::F64 => weights
            .iter()
            .filter(|(_, weight_class, _)| *weight_class == class)
            .fold(0.0, |sum, (_, _, value)| sum + value),
    };
    match rule {
        LeafRule::FirstWeight => weights.first().map_or(0.0, |(_, _, value)| *value),
        LeafRule::PerClass => sum_of(output),
        LeafRule::OneClass(class) => sum_of(class),
        LeafRule::ClassDifference => match precision {
            Precision::F32 => f64::from(sum_of(1) as f32 - sum_of(0) as f32),
            Precision::F64 => sum_of(1) - sum_of(0),
        },
    }
}
