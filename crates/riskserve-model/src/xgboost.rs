//! Importer for XGBoost models saved as JSON or UBJSON (`save_model`, xgboost 1.7 through 3.2).
//!
//! Both formats decode into one document tree ([`crate::ubjson::Value`]); [`convert`] turns that
//! tree into the model representation once. XGBoost scores in f32: a split sends `x` left iff
//! `x < threshold`, a leaf's value is its `split_conditions` entry, leaves are summed in tree order
//! onto the base margin, and `base_score` is mapped to the margin with the objective's link
//! function exactly as xgboost 3.2 does it (in f32).

use crate::error::{Format, ModelError};
use crate::ir::{
    Aggregation, Direction, Feature, FeatureKind, MAX_NODES_PER_TREE, MissingRule, Model, ModelBody, Node, Output,
    OutputKind, Precision, SplitTest, Transform, Tree, TreeEnsemble, UnknownCategory,
};
use crate::ubjson::{self, Array, FromNumber, Object, Value};

/// The most input features accepted, so that a forged `num_feature` cannot make the importer
/// allocate gigabytes of feature descriptions.
pub const MAX_FEATURES: usize = 1 << 20;

/// The most outputs (classes or targets) accepted, for the same reason.
pub const MAX_OUTPUTS: usize = 1 << 16;

/// Loads a model written by `save_model("m.json")`.
pub fn load_json(bytes: &[u8]) -> Result<Model, ModelError> {
    let document = json::parse(bytes).map_err(|error| ModelError::malformed(Format::XgboostJson, error.to_string()))?;
    convert(&document, Format::XgboostJson)
}

/// Loads a model written by `save_model("m.ubj")`.
pub fn load_ubj(bytes: &[u8]) -> Result<Model, ModelError> {
    let document =
        ubjson::decode(bytes).map_err(|error| ModelError::malformed(Format::XgboostUbj, error.to_string()))?;
    convert(&document, Format::XgboostUbj)
}

/// What an objective does with the margin, and how `base_score` becomes a margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Objective {
    /// `binary:logistic`: a probability through the sigmoid.
    Logistic,
    /// `reg:logistic`: the same link, answered as a regression value.
    LogisticRegression,
    /// `binary:logitraw`: the raw margin.
    LogitRaw,
    /// `binary:hinge`: class 1 iff the margin is positive.
    Hinge,
    /// `multi:softprob`: class probabilities through softmax.
    SoftProbability,
    /// `multi:softmax`: the index of the largest margin.
    SoftMax,
    /// Regression objectives whose prediction is the margin itself.
    Identity,
    /// Log-link regression objectives (`count:poisson`, `reg:gamma`, `reg:tweedie`).
    Exponential,
}

impl Objective {
    fn from_name(name: &str) -> Option<Objective> {
        Some(match name {
            "binary:logistic" => Objective::Logistic,
            "reg:logistic" => Objective::LogisticRegression,
            "binary:logitraw" => Objective::LogitRaw,
            "binary:hinge" => Objective::Hinge,
            "multi:softprob" => Objective::SoftProbability,
            "multi:softmax" => Objective::SoftMax,
            "reg:squarederror"
            | "reg:linear"
            | "reg:squaredlogerror"
            | "reg:pseudohubererror"
            | "reg:absoluteerror"
            | "reg:quantileerror" => Objective::Identity,
            "count:poisson" | "reg:gamma" | "reg:tweedie" => Objective::Exponential,
            _ => return None,
        })
    }

    /// XGBoost's `ProbToMargin` for one `base_score` entry, in f32 as xgboost 3.2 computes it.
    fn base_margin(self, name: &str, base_score: f32) -> Result<f32, String> {
        match self {
            Objective::Logistic | Objective::LogisticRegression => {
                if !(0.0..=1.0).contains(&base_score) {
                    return Err(format!("base_score {base_score} is not a probability, as {name} needs"));
                }
                // xgboost 3.2 clamps to [kRtEps, 1 - kRtEps] (kRtEps = 1e-6) and takes
                // -log(1/p - 1) in f32; the clamp is a no-op for every value older versions
                // accepted.
                let probability = base_score.clamp(1e-6, 1.0 - 1e-6);
                Ok(-(1.0 / probability - 1.0).ln())
            }
            Objective::Exponential => {
                if base_score.is_nan() || base_score <= 0.0 {
                    return Err(format!("base_score {base_score} is not positive, as {name} needs"));
                }
                Ok(base_score.ln())
            }
            // binary:logitraw has taken base_score as a margin since xgboost 1.4.
            Objective::LogitRaw
            | Objective::Hinge
            | Objective::SoftProbability
            | Objective::SoftMax
            | Objective::Identity => Ok(base_score),
        }
    }

    fn output(self, groups: usize) -> Output {
        let (transform, kind) = match self {
            Objective::Logistic if groups == 1 => (Transform::Sigmoid { scale: 1.0 }, OutputKind::Probability),
            // Multi-label binary:logistic: one independent probability per target.
            Objective::Logistic => (Transform::Sigmoid { scale: 1.0 }, OutputKind::ClassProbabilities),
            Objective::LogisticRegression => (Transform::Sigmoid { scale: 1.0 }, OutputKind::Value),
            Objective::LogitRaw => (Transform::Identity, OutputKind::Margin),
            Objective::Hinge => (Transform::Identity, OutputKind::ClassLabel),
            Objective::SoftProbability => (Transform::Softmax, OutputKind::ClassProbabilities),
            // The class is the argmax of the margin itself, as xgboost takes it: a softmax first
            // could round two close margins to the same probability.
            Objective::SoftMax => (Transform::Identity, OutputKind::ClassLabel),
            Objective::Identity => (Transform::Identity, OutputKind::Value),
            Objective::Exponential => (Transform::Exp, OutputKind::Value),
        };
        Output { transform, kind }
    }
}

/// Turns a decoded document into the model representation. Every error names the field (and the
/// tree and node) that is wrong.
fn convert(document: &Value<'_>, format: Format) -> Result<Model, ModelError> {
    let reader = Reader { format };
    let root = reader.object(document, "the document")?;
    let learner = reader.object(reader.member(root, "learner", "the document")?, "learner")?;
    let parameters_path = "learner.learner_model_param";
    let parameters = reader.object(reader.member(learner, "learner_model_param", "learner")?, parameters_path)?;
    let num_features = reader
        .count(reader.member(parameters, "num_feature", parameters_path)?, "learner.learner_model_param.num_feature")?;
    if num_features > MAX_FEATURES {
        return Err(reader
            .unsupported(format!("num_feature {num_features} is more than the {MAX_FEATURES} features supported")));
    }
    let num_class = match parameters.get("num_class") {
        Some(value) => reader.count(value, "learner.learner_model_param.num_class")?,
        None => 0,
    };
    let num_target = match parameters.get("num_target") {
        Some(value) => reader.count(value, "learner.learner_model_param.num_target")?,
        None => 1,
    };

    let objective_object = reader.object(reader.member(learner, "objective", "learner")?, "learner.objective")?;
    let objective_name =
        reader.string(reader.member(objective_object, "name", "learner.objective")?, "learner.objective.name")?;
    let objective = Objective::from_name(objective_name)
        .ok_or_else(|| reader.unsupported(format!("objective {objective_name} is not supported")))?;

    // XGBoost's output groups: one per class for multi-class objectives, else one per target.
    let groups = match objective {
        Objective::SoftProbability | Objective::SoftMax => {
            if num_class < 2 {
                return Err(reader.invalid(format!("{objective_name} needs num_class of at least 2, not {num_class}")));
            }
            num_class
        }
        _ => {
            if num_class > 1 {
                return Err(
                    reader.invalid(format!("num_class {num_class} does not go with objective {objective_name}"))
                );
            }
            num_target.max(1)
        }
    };
    if groups > MAX_OUTPUTS {
        return Err(reader.unsupported(format!("{groups} outputs is more than the {MAX_OUTPUTS} supported")));
    }
    if objective == Objective::Hinge && groups != 1 {
        return Err(reader.unsupported(format!("binary:hinge with {groups} targets")));
    }

    let base_score = base_score(&reader, reader.member(parameters, "base_score", parameters_path)?, groups)?;
    let mut base_margin = Vec::with_capacity(groups + 1);
    for score in base_score {
        let margin = objective.base_margin(objective_name, score).map_err(|message| reader.invalid(message))?;
        base_margin.push(f64::from(margin));
    }
    // binary:hinge answers class 1 iff the margin is positive: a constant zero margin for class 0
    // beside the real one makes the first-largest argmax give exactly that (a tie is class 0).
    let (num_outputs, tree_output_offset) = if objective == Objective::Hinge {
        base_margin.insert(0, 0.0);
        (2, 1)
    } else {
        (groups, 0)
    };

    let booster_path = "learner.gradient_booster";
    let booster = reader.object(reader.member(learner, "gradient_booster", "learner")?, booster_path)?;
    let booster_name = reader.string(reader.member(booster, "name", booster_path)?, "learner.gradient_booster.name")?;
    let (trees_model, model_path, weights) = match booster_name {
        "gbtree" => (reader.member(booster, "model", booster_path)?, "learner.gradient_booster.model", None),
        "dart" => {
            let gbtree =
                reader.object(reader.member(booster, "gbtree", booster_path)?, "learner.gradient_booster.gbtree")?;
            let weights: Vec<f32> = reader.numbers(
                reader.member(booster, "weight_drop", booster_path)?,
                "learner.gradient_booster.weight_drop",
            )?;
            (
                reader.member(gbtree, "model", "learner.gradient_booster.gbtree")?,
                "learner.gradient_booster.gbtree.model",
                Some(weights),
            )
        }
        "gblinear" => {
            return Err(
                reader.unsupported("booster gblinear (a linear booster) is not supported, only gbtree and dart")
            );
        }
        other => return Err(reader.unsupported(format!("booster {other} is not supported, only gbtree and dart"))),
    };
    let trees_model = reader.object(trees_model, model_path)?;
    let trees_path = format!("{model_path}.trees");
    let tree_values = reader.array(reader.member(trees_model, "trees", model_path)?, &trees_path)?;
    let tree_values = tree_values
        .values()
        .ok_or_else(|| reader.malformed(format!("{trees_path} holds numbers, not tree objects")))?;
    let declared_trees = {
        let parameters_path = format!("{model_path}.gbtree_model_param");
        let parameters =
            reader.object(reader.member(trees_model, "gbtree_model_param", model_path)?, &parameters_path)?;
        reader
            .count(reader.member(parameters, "num_trees", &parameters_path)?, &format!("{parameters_path}.num_trees"))?
    };
    if declared_trees != tree_values.len() {
        return Err(reader
            .invalid(format!("num_trees says {declared_trees} but {trees_path} holds {} trees", tree_values.len())));
    }
    let tree_info_path = format!("{model_path}.tree_info");
    let tree_info: Vec<i64> = reader.numbers(reader.member(trees_model, "tree_info", model_path)?, &tree_info_path)?;
    if tree_info.len() != tree_values.len() {
        return Err(reader.invalid(format!(
            "{tree_info_path} has {} entries for {} trees",
            tree_info.len(),
            tree_values.len()
        )));
    }
    if let Some(weights) = &weights
        && weights.len() != tree_values.len()
    {
        return Err(reader.invalid(format!(
            "weight_drop has {} entries for {} trees",
            weights.len(),
            tree_values.len()
        )));
    }

    let mut trees = Vec::with_capacity(tree_values.len());
    for (index, (tree_value, group)) in tree_values.iter().zip(&tree_info).enumerate() {
        let group = usize::try_from(*group).ok().filter(|group| *group < groups).ok_or_else(|| {
            reader.invalid(format!("{tree_info_path}[{index}] is {group} but the model has {groups} outputs"))
        })?;
        let weight = weights.as_ref().map(|weights| weights[index]);
        let path = format!("{trees_path}[{index}]");
        let tree = reader.object(tree_value, &path)?;
        let (nodes, cover) = convert_tree(&reader, tree, index, &path, num_features, weight)?;
        trees.push(Tree { nodes, output: (group + tree_output_offset) as u32, cover });
    }

    let inputs = features(&reader, learner, trees_model, model_path, num_features)?;
    Ok(Model {
        inputs,
        preprocess: None,
        body: ModelBody::Trees(TreeEnsemble {
            trees,
            num_outputs,
            base_margin,
            aggregation: Aggregation::Sum,
            precision: Precision::F32,
            num_features,
        }),
        output: objective.output(groups),
        source: format,
    })
}

/// Reads `base_score` in every form XGBoost has written it: a string (`"5E-1"`, fitted values
/// such as `"4.2333335E-1"` since 2.0), a bracketed vector (`"[5E-1]"`, one entry per output for
/// multi-class and multi-target models, since 3.1), or a plain number. Returns one f32 per output.
fn base_score(reader: &Reader, value: &Value<'_>, groups: usize) -> Result<Vec<f32>, ModelError> {
    let path = "learner.learner_model_param.base_score";
    let scores: Vec<f32> = match value {
        Value::String(text) => {
            let text = text.trim();
            let list = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']'));
            let entries: Vec<&str> = match list {
                Some(inner) => inner.split(',').map(str::trim).collect(),
                None => vec![text],
            };
            let mut scores = Vec::with_capacity(entries.len());
            for entry in entries {
                if !ubjson::is_number_literal(entry) {
                    return Err(
                        reader.malformed(format!("{path} {text:?} is not a number or a bracketed list of numbers"))
                    );
                }
                scores.push(
                    entry.parse::<f32>().map_err(|_| reader.malformed(format!("{path} {text:?} is not a number")))?,
                );
            }
            scores
        }
        Value::Number(number) => {
            vec![number.to_f32().ok_or_else(|| reader.malformed(format!("{path} is not a number")))?]
        }
        Value::Array(_) => reader.numbers(value, path)?,
        other => return Err(reader.malformed(format!("{path} is {}, not a number", other.kind()))),
    };
    if let Some(bad) = scores.iter().find(|score| !score.is_finite()) {
        return Err(reader.invalid(format!("{path} {bad} is not finite")));
    }
    match scores.len() {
        1 => Ok(vec![scores[0]; groups]),
        count if count == groups => Ok(scores),
        count => Err(reader.invalid(format!("{path} has {count} values for {groups} outputs"))),
    }
}

/// Marks a node not reached (yet) while walking a tree.
const UNREACHED: u32 = u32::MAX;

/// Converts one tree. Nodes are renumbered in breadth-first order from the root; nodes no path
/// reaches are dropped (pruning leaves deleted nodes in the arrays, `tree_param.num_deleted`).
/// Also returns each node's cover (`sum_hessian`, for TreeSHAP) when the file has it.
fn convert_tree(
    reader: &Reader,
    tree: &Object<'_>,
    index: usize,
    path: &str,
    num_features: usize,
    weight: Option<f32>,
) -> Result<(Vec<Node>, Option<Vec<f64>>), ModelError> {
    let invalid = |message: String| reader.invalid(format!("tree {index}: {message}"));
    let field = |name: &str| reader.member(tree, name, path);
    let field_path = |name: &str| format!("{path}.{name}");

    let tree_parameters = reader.object(field("tree_param")?, &field_path("tree_param"))?;
    let declared_nodes = reader.count(
        reader.member(tree_parameters, "num_nodes", &field_path("tree_param"))?,
        &field_path("tree_param.num_nodes"),
    )?;
    if let Some(size) = tree_parameters.get("size_leaf_vector") {
        let size = reader.count(size, &field_path("tree_param.size_leaf_vector"))?;
        if size > 1 {
            return Err(reader.unsupported(format!(
                "tree {index} has vector leaves of size {size} (multi_strategy multi_output_tree)"
            )));
        }
    }
    if let Some(id) = tree.get("id") {
        let id = reader.count(id, &field_path("id"))?;
        if id != index {
            return Err(invalid(format!("has id {id} at position {index}")));
        }
    }

    let left: Vec<i64> = reader.numbers(field("left_children")?, &field_path("left_children"))?;
    let right: Vec<i64> = reader.numbers(field("right_children")?, &field_path("right_children"))?;
    let split_indices: Vec<i64> = reader.numbers(field("split_indices")?, &field_path("split_indices"))?;
    let conditions: Vec<f32> = reader.numbers(field("split_conditions")?, &field_path("split_conditions"))?;
    let default_left: Vec<u8> = reader.numbers(field("default_left")?, &field_path("default_left"))?;
    // Models from before categorical support have no split_type: every split is numerical.
    let split_type: Option<Vec<u8>> = match tree.get("split_type") {
        Some(value) => Some(reader.numbers(value, &field_path("split_type"))?),
        None => None,
    };

    // Only TreeSHAP reads the cover, so a file without it still scores.
    let sum_hessian: Option<Vec<f32>> = match tree.get("sum_hessian") {
        Some(value) => Some(reader.numbers(value, &field_path("sum_hessian"))?),
        None => None,
    };

    let count = left.len();
    if declared_nodes != count {
        return Err(invalid(format!(
            "tree_param.num_nodes says {declared_nodes} but left_children has {count} entries"
        )));
    }
    if count == 0 {
        return Err(invalid("has no nodes".into()));
    }
    if count > MAX_NODES_PER_TREE {
        return Err(invalid(format!("has {count} nodes, more than {MAX_NODES_PER_TREE}")));
    }
    let lengths = [
        ("right_children", right.len()),
        ("split_indices", split_indices.len()),
        ("split_conditions", conditions.len()),
        ("default_left", default_left.len()),
        ("split_type", split_type.as_ref().map_or(count, Vec::len)),
        ("sum_hessian", sum_hessian.as_ref().map_or(count, Vec::len)),
    ];
    for (name, length) in lengths {
        if length != count {
            return Err(invalid(format!("{name} has {length} entries but left_children has {count}")));
        }
    }
    let category_sets = if split_type.as_ref().is_some_and(|types| types.contains(&1)) {
        category_sets(reader, tree, index, path, count)?
    } else {
        Vec::new()
    };

    // Walk from the root, numbering nodes as they are reached; a node reached twice means a cycle
    // or a shared child.
    let mut new_index = vec![UNREACHED; count];
    let mut order = Vec::with_capacity(count);
    new_index[0] = 0;
    order.push(0usize);
    let mut cursor = 0;
    while let Some(&node) = order.get(cursor) {
        cursor += 1;
        match (left[node], right[node]) {
            (-1, -1) => {}
            (-1, _) | (_, -1) => {
                return Err(invalid(format!("node {node} has one child (left {}, right {})", left[node], right[node])));
            }
            (left_child, right_child) => {
                for child in [left_child, right_child] {
                    let slot =
                        usize::try_from(child).ok().and_then(|child| new_index.get_mut(child)).ok_or_else(|| {
                            invalid(format!("node {node} has child {child} outside the tree of {count} nodes"))
                        })?;
                    if *slot != UNREACHED {
                        return Err(invalid(format!(
                            "node {child} is reached twice, again from node {node} (a cycle or a shared child)"
                        )));
                    }
                    *slot = order.len() as u32;
                    order.push(child as usize);
                }
            }
        }
    }

    let mut nodes = Vec::with_capacity(order.len());
    for &node in &order {
        if left[node] == -1 {
            let mut value = conditions[node];
            // DART scales each tree's output by its weight in f32 (`prediction * w`), which
            // scaling every leaf reproduces exactly.
            if let Some(weight) = weight {
                value *= weight;
            }
            if !value.is_finite() {
                return Err(invalid(format!("leaf {node} has a value that is not finite")));
            }
            nodes.push(Node::Leaf { value: f64::from(value) });
            continue;
        }
        let feature = split_indices[node];
        let feature =
            u32::try_from(feature).ok().filter(|feature| (*feature as usize) < num_features).ok_or_else(|| {
                invalid(format!("node {node} splits on feature {feature} but the model has {num_features} features"))
            })?;
        let test = match split_type.as_ref().map_or(0, |types| types[node]) {
            0 => {
                let threshold = conditions[node];
                if threshold.is_nan() {
                    return Err(invalid(format!("node {node} has a NaN threshold")));
                }
                SplitTest::LessThan(f64::from(threshold))
            }
            // XGBoost sends a category in the node's set right; anything else that is not
            // missing, including negative values and values of 2^24 or more, goes left.
            1 => SplitTest::CategoryIn {
                categories: category_sets.get(node).cloned().flatten().unwrap_or_default(),
                in_set: Direction::Right,
            },
            other => return Err(invalid(format!("node {node} has split_type {other}, not 0 or 1"))),
        };
        nodes.push(Node::Split {
            feature,
            test,
            left: new_index[left[node] as usize],
            right: new_index[right[node] as usize],
            missing: if default_left[node] != 0 { Direction::Left } else { Direction::Right },
        });
    }
    let cover = sum_hessian.map(|sums| order.iter().map(|&node| f64::from(sums[node])).collect());
    Ok((nodes, cover))
}

/// The category set of each categorical node, from the CSR-style `categories`,
/// `categories_nodes`, `categories_segments` and `categories_sizes`; sorted and deduplicated.
fn category_sets(
    reader: &Reader,
    tree: &Object<'_>,
    index: usize,
    path: &str,
    count: usize,
) -> Result<Vec<Option<Vec<u32>>>, ModelError> {
    let invalid = |message: String| reader.invalid(format!("tree {index}: {message}"));
    let numbers = |name: &str| -> Result<Vec<i64>, ModelError> {
        reader.numbers(reader.member(tree, name, path)?, &format!("{path}.{name}"))
    };
    let categories = numbers("categories")?;
    let nodes = numbers("categories_nodes")?;
    let segments = numbers("categories_segments")?;
    let sizes = numbers("categories_sizes")?;
    if segments.len() != nodes.len() || sizes.len() != nodes.len() {
        return Err(invalid(format!(
            "categories_nodes has {} entries, categories_segments {} and categories_sizes {}",
            nodes.len(),
            segments.len(),
            sizes.len()
        )));
    }
    let mut sets: Vec<Option<Vec<u32>>> = vec![None; count];
    for ((node, segment), size) in nodes.iter().zip(&segments).zip(&sizes) {
        let slot = usize::try_from(*node)
            .ok()
            .and_then(|node| sets.get_mut(node))
            .ok_or_else(|| invalid(format!("categories_nodes names node {node} outside the tree of {count} nodes")))?;
        if slot.is_some() {
            return Err(invalid(format!("categories_nodes names node {node} twice")));
        }
        let range = usize::try_from(*segment)
            .ok()
            .zip(usize::try_from(*size).ok())
            .and_then(|(start, size)| Some(start..start.checked_add(size)?))
            .filter(|range| range.end <= categories.len())
            .ok_or_else(|| {
                invalid(format!(
                    "node {node}'s categories (segment {segment}, size {size}) lie outside the {} categories",
                    categories.len()
                ))
            })?;
        let mut set = Vec::with_capacity(range.len());
        for category in &categories[range] {
            set.push(
                u32::try_from(*category).map_err(|_| {
                    invalid(format!("node {node} has category {category}, which is not a category code"))
                })?,
            );
        }
        set.sort_unstable();
        set.dedup();
        *slot = Some(set);
    }
    Ok(sets)
}

/// The model's inputs: names from `feature_names` (XGBoost's `f0`, `f1`... when absent), kinds
/// from `feature_types`, and for categorical features the category strings that xgboost 3.x
/// stores in the booster's `cats` (code `i` is the string at position `i`). XGBoost refuses a
/// category outside the stored ones ("Found a category not in the training set").
fn features(
    reader: &Reader,
    learner: &Object<'_>,
    trees_model: &Object<'_>,
    model_path: &str,
    num_features: usize,
) -> Result<Vec<Feature>, ModelError> {
    let strings = |name: &str| -> Result<Vec<String>, ModelError> {
        let Some(value) = learner.get(name) else {
            return Ok(Vec::new());
        };
        let path = format!("learner.{name}");
        let array = reader.array(value, &path)?;
        if array.is_empty() {
            return Ok(Vec::new());
        }
        let values = array.values().ok_or_else(|| reader.malformed(format!("{path} holds numbers, not strings")))?;
        let strings = values
            .iter()
            .enumerate()
            .map(|(position, value)| reader.string(value, &format!("{path}[{position}]")).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        if strings.len() != num_features {
            return Err(reader.invalid(format!("{path} has {} entries for {num_features} features", strings.len())));
        }
        Ok(strings)
    };
    let names = strings("feature_names")?;
    let types = strings("feature_types")?;
    let mut categories = match trees_model.get("cats") {
        Some(cats) => stored_categories(reader, cats, &format!("{model_path}.cats"), num_features)?,
        None => Vec::new(),
    };

    let mut seen = std::collections::HashSet::with_capacity(names.len());
    if let Some(duplicate) = names.iter().find(|name| !seen.insert(name.as_str())) {
        return Err(reader.invalid(format!("feature name {duplicate:?} appears twice")));
    }
    let mut features = Vec::with_capacity(num_features);
    for index in 0..num_features {
        let name = names.get(index).cloned().unwrap_or_else(|| format!("f{index}"));
        let kind = match types.get(index).map(String::as_str) {
            None | Some("q" | "float" | "int" | "i") => FeatureKind::Numeric,
            Some("c") => FeatureKind::Categorical {
                categories: categories.get_mut(index).and_then(Option::take),
                unknown: UnknownCategory::Error,
            },
            Some(other) => {
                return Err(reader.unsupported(format!("feature {name:?} has feature type {other:?}")));
            }
        };
        features.push(Feature { name, kind, missing: MissingRule::AsIs });
    }
    Ok(features)
}

/// The category strings xgboost 3.x stores per feature in `cats.enc`: strings as UTF-8 bytes with
/// `offsets`, or numbers with a `type` code (9-16: int8, uint8, int16, uint16, int32, uint32,
/// int64, uint64; 7 and 8: float32 and float64). `None` for a feature without stored categories.
fn stored_categories(
    reader: &Reader,
    cats: &Value<'_>,
    path: &str,
    num_features: usize,
) -> Result<Vec<Option<Vec<String>>>, ModelError> {
    let cats = reader.object(cats, path)?;
    let Some(encodings) = cats.get("enc") else {
        return Ok(Vec::new());
    };
    let encodings_path = format!("{path}.enc");
    let encodings = reader.array(encodings, &encodings_path)?;
    if encodings.is_empty() {
        return Ok(Vec::new());
    }
    let encodings =
        encodings.values().ok_or_else(|| reader.malformed(format!("{encodings_path} holds numbers, not objects")))?;
    if encodings.len() != num_features {
        return Err(
            reader.invalid(format!("{encodings_path} has {} entries for {num_features} features", encodings.len()))
        );
    }
    let mut all = Vec::with_capacity(encodings.len());
    for (feature, encoding) in encodings.iter().enumerate() {
        let path = format!("{encodings_path}[{feature}]");
        let encoding = reader.object(encoding, &path)?;
        let values_path = format!("{path}.values");
        let values = reader.member(encoding, "values", &path)?;
        let names: Vec<String> = if let Some(offsets) = encoding.get("offsets") {
            let offsets: Vec<i64> = reader.numbers(offsets, &format!("{path}.offsets"))?;
            // UBJSON stores the bytes as int8: take each as its unsigned bit pattern.
            let bytes: Vec<u8> =
                reader.numbers::<i64>(values, &values_path)?.into_iter().map(|byte| byte as u8).collect();
            if offsets.is_empty() {
                Vec::new()
            } else {
                let mut names = Vec::with_capacity(offsets.len() - 1);
                for pair in offsets.windows(2) {
                    let range = usize::try_from(pair[0])
                        .ok()
                        .zip(usize::try_from(pair[1]).ok())
                        .filter(|(start, end)| start <= end && *end <= bytes.len())
                        .ok_or_else(|| {
                            reader.invalid(format!("{path}.offsets {pair:?} lie outside the {} bytes", bytes.len()))
                        })?;
                    let name = std::str::from_utf8(&bytes[range.0..range.1]).map_err(|_| {
                        reader.malformed(format!("{path}: category {} is not valid UTF-8", names.len()))
                    })?;
                    names.push(name.to_owned());
                }
                names
            }
        } else {
            let type_code = reader.count(reader.member(encoding, "type", &path)?, &format!("{path}.type"))?;
            match type_code {
                7 | 8 => {
                    reader.numbers::<f64>(values, &values_path)?.into_iter().map(|value| value.to_string()).collect()
                }
                9 | 11 | 13 | 15 => {
                    reader.numbers::<i64>(values, &values_path)?.into_iter().map(|value| value.to_string()).collect()
                }
                // Unsigned categories are written with the signed type of their width.
                10 => unsigned_names(reader.numbers::<i64>(values, &values_path)?, 8),
                12 => unsigned_names(reader.numbers::<i64>(values, &values_path)?, 16),
                14 => unsigned_names(reader.numbers::<i64>(values, &values_path)?, 32),
                16 => unsigned_names(reader.numbers::<i64>(values, &values_path)?, 64),
                other => return Err(reader.unsupported(format!("{path} has category type {other}"))),
            }
        };
        let mut seen = std::collections::HashSet::with_capacity(names.len());
        if let Some(duplicate) = names.iter().find(|name| !seen.insert(name.as_str())) {
            return Err(reader.invalid(format!("feature {feature} lists category {duplicate:?} twice")));
        }
        all.push((!names.is_empty()).then_some(names));
    }
    Ok(all)
}

fn unsigned_names(values: Vec<i64>, bits: u32) -> Vec<String> {
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    values.into_iter().map(|value| (value as u64 & mask).to_string()).collect()
}

/// Typed access to the document, with errors that name the path of the field.
struct Reader {
    format: Format,
}

impl Reader {
    fn malformed(&self, message: impl Into<String>) -> ModelError {
        ModelError::malformed(self.format, message)
    }

    fn invalid(&self, message: impl Into<String>) -> ModelError {
        ModelError::invalid(self.format, message)
    }

    fn unsupported(&self, message: impl Into<String>) -> ModelError {
        ModelError::unsupported(self.format, message)
    }

    fn member<'v, 'a>(&self, object: &'v Object<'a>, key: &str, path: &str) -> Result<&'v Value<'a>, ModelError> {
        object.get(key).ok_or_else(|| self.malformed(format!("{path} has no {key}")))
    }

    fn object<'v, 'a>(&self, value: &'v Value<'a>, path: &str) -> Result<&'v Object<'a>, ModelError> {
        value.as_object().ok_or_else(|| self.malformed(format!("{path} is {}, not an object", value.kind())))
    }

    fn array<'v, 'a>(&self, value: &'v Value<'a>, path: &str) -> Result<&'v Array<'a>, ModelError> {
        value.as_array().ok_or_else(|| self.malformed(format!("{path} is {}, not an array", value.kind())))
    }

    fn string<'v>(&self, value: &'v Value<'_>, path: &str) -> Result<&'v str, ModelError> {
        value.as_str().ok_or_else(|| self.malformed(format!("{path} is {}, not a string", value.kind())))
    }

    fn numbers<T: FromNumber>(&self, value: &Value<'_>, path: &str) -> Result<Vec<T>, ModelError> {
        self.array(value, path)?
            .to_numbers()
            .map_err(|error| self.malformed(format!("{path}: {error}, not a number of the expected type")))
    }

    /// A count such as `num_feature`: XGBoost writes these as strings (`"12"`); numbers are
    /// accepted too.
    fn count(&self, value: &Value<'_>, path: &str) -> Result<usize, ModelError> {
        let parsed = match value {
            Value::String(text) => text.trim().parse::<u64>().ok(),
            Value::Number(number) => number.to_i64().and_then(|value| u64::try_from(value).ok()),
            other => return Err(self.malformed(format!("{path} is {}, not a count", other.kind()))),
        };
        parsed
            .and_then(|count| usize::try_from(count).ok())
            .ok_or_else(|| self.malformed(format!("{path} is not a non-negative integer")))
    }
}

/// A JSON reader into the same document tree as the UBJSON decoder. Arrays that hold only
/// numbers are kept as text and parsed when read, so the arrays the importer never reads
/// (`loss_changes`, `base_weights`, `parents`) cost one scan and no allocation.
mod json {
    use std::borrow::Cow;

    use crate::ubjson::{Array, DecodeError, MAX_DEPTH, Number, Object, Value, number_literal_length};

    pub fn parse(bytes: &[u8]) -> Result<Value<'_>, DecodeError> {
        let text = std::str::from_utf8(bytes).map_err(|error| DecodeError {
            offset: error.valid_up_to(),
            message: "the file is not valid UTF-8".into(),
        })?;
        let mut parser = Parser { text, bytes: text.as_bytes(), position: 0, depth: 0 };
        if text.starts_with('\u{feff}') {
            parser.position = '\u{feff}'.len_utf8();
        }
        parser.skip_whitespace();
        let value = parser.value()?;
        parser.skip_whitespace();
        if parser.position != bytes.len() {
            return Err(parser.error("unexpected text after the document"));
        }
        Ok(value)
    }

    struct Parser<'a> {
        text: &'a str,
        bytes: &'a [u8],
        position: usize,
        depth: usize,
    }

    impl<'a> Parser<'a> {
        fn error(&self, message: impl Into<String>) -> DecodeError {
            DecodeError { offset: self.position, message: message.into() }
        }

        fn peek(&self) -> Option<u8> {
            self.bytes.get(self.position).copied()
        }

        fn skip_whitespace(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.position += 1;
            }
        }

        fn expect_literal(&mut self, literal: &str) -> Result<(), DecodeError> {
            if self.text[self.position..].starts_with(literal) {
                self.position += literal.len();
                Ok(())
            } else {
                Err(self.error("unexpected character"))
            }
        }

        fn value(&mut self) -> Result<Value<'a>, DecodeError> {
            match self.peek() {
                None => Err(self.error("the document ends early")),
                Some(b'{') => self.nested(Self::object),
                Some(b'[') => self.nested(Self::array),
                Some(b'"') => Ok(Value::String(self.string()?)),
                Some(b't') => self.expect_literal("true").map(|()| Value::Bool(true)),
                Some(b'f') => self.expect_literal("false").map(|()| Value::Bool(false)),
                Some(b'n') => self.expect_literal("null").map(|()| Value::Null),
                Some(b'-' | b'0'..=b'9' | b'N' | b'I') => Ok(Value::Number(Number::Text(self.number()?))),
                Some(_) => Err(self.error("unexpected character")),
            }
        }

        fn nested(&mut self, body: fn(&mut Self) -> Result<Value<'a>, DecodeError>) -> Result<Value<'a>, DecodeError> {
            if self.depth >= MAX_DEPTH {
                return Err(self.error(format!("containers nest more than {MAX_DEPTH} deep")));
            }
            self.depth += 1;
            let value = body(self)?;
            self.depth -= 1;
            Ok(value)
        }

        /// A number literal, or XGBoost's `NaN`, `Infinity` and `-Infinity`.
        fn number(&mut self) -> Result<&'a str, DecodeError> {
            let rest = &self.bytes[self.position..];
            let length = number_literal_length(rest)
                .or_else(|| {
                    ["NaN", "Infinity", "-Infinity"]
                        .into_iter()
                        .find(|literal| rest.starts_with(literal.as_bytes()))
                        .map(str::len)
                })
                .ok_or_else(|| self.error("malformed number"))?;
            // Number literals are ASCII, so both ends are character boundaries.
            let literal = &self.text[self.position..self.position + length];
            self.position += length;
            Ok(literal)
        }

        fn string(&mut self) -> Result<Cow<'a, str>, DecodeError> {
            self.position += 1;
            let start = self.position;
            loop {
                let Some(byte) = self.peek() else {
                    return Err(self.error("a string is not closed"));
                };
                match byte {
                    b'"' => {
                        let text = &self.text[start..self.position];
                        self.position += 1;
                        return Ok(Cow::Borrowed(text));
                    }
                    b'\\' => {
                        // Escapes are rare in model files: only then is the string copied.
                        let text = self.text[start..self.position].to_owned();
                        return self.string_after_escape(text);
                    }
                    0x00..=0x1f => return Err(self.error("a control character in a string")),
                    _ => self.position += 1,
                }
            }
        }

        /// Continues a string from its first escape (the parser stands on the backslash),
        /// accumulating into `text`.
        fn string_after_escape(&mut self, mut text: String) -> Result<Cow<'a, str>, DecodeError> {
            let mut start = self.position;
            loop {
                let Some(byte) = self.peek() else {
                    return Err(self.error("a string is not closed"));
                };
                match byte {
                    b'"' => {
                        text.push_str(&self.text[start..self.position]);
                        self.position += 1;
                        return Ok(Cow::Owned(text));
                    }
                    b'\\' => {
                        text.push_str(&self.text[start..self.position]);
                        self.position += 1;
                        text.push(self.escape()?);
                        start = self.position;
                    }
                    0x00..=0x1f => return Err(self.error("a control character in a string")),
                    _ => self.position += 1,
                }
            }
        }

        /// The character an escape sequence stands for; the backslash has been read.
        fn escape(&mut self) -> Result<char, DecodeError> {
            let Some(byte) = self.peek() else {
                return Err(self.error("a string is not closed"));
            };
            self.position += 1;
            Ok(match byte {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let first = self.hex4()?;
                    if (0xd800..0xdc00).contains(&first) {
                        if !self.text[self.position..].starts_with("\\u") {
                            return Err(self.error("a lone surrogate in a string"));
                        }
                        self.position += 2;
                        let second = self.hex4()?;
                        if !(0xdc00..0xe000).contains(&second) {
                            return Err(self.error("a lone surrogate in a string"));
                        }
                        let code = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
                        char::from_u32(code).ok_or_else(|| self.error("an invalid escape"))?
                    } else {
                        char::from_u32(first).ok_or_else(|| self.error("a lone surrogate in a string"))?
                    }
                }
                _ => return Err(self.error("an invalid escape")),
            })
        }

        fn hex4(&mut self) -> Result<u32, DecodeError> {
            let digits =
                self.bytes.get(self.position..self.position + 4).ok_or_else(|| self.error("a string is not closed"))?;
            let text = std::str::from_utf8(digits).map_err(|_| self.error("an invalid \\u escape"))?;
            if !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return Err(self.error("an invalid \\u escape"));
            }
            let value = u32::from_str_radix(text, 16).map_err(|_| self.error("an invalid \\u escape"))?;
            self.position += 4;
            Ok(value)
        }

        fn array(&mut self) -> Result<Value<'a>, DecodeError> {
            self.position += 1;
            self.skip_whitespace();
            if self.peek() == Some(b']') {
                self.position += 1;
                return Ok(Value::Array(Array::Values(Vec::new())));
            }
            let start = self.position;
            if let Some((end, len)) = self.number_run() {
                return Ok(Value::Array(Array::NumberText { text: &self.text[start..end], len }));
            }
            self.position = start;
            let mut values = Vec::new();
            loop {
                values.push(self.value()?);
                self.skip_whitespace();
                match self.peek() {
                    Some(b',') => {
                        self.position += 1;
                        self.skip_whitespace();
                    }
                    Some(b']') => {
                        self.position += 1;
                        return Ok(Value::Array(Array::Values(values)));
                    }
                    None => return Err(self.error("an array is not closed")),
                    Some(_) => return Err(self.error("expected ',' or ']' in an array")),
                }
            }
        }

        /// Scans an array made only of numbers; on success the parser stands after the closing
        /// bracket and the answer is where the elements end and how many there are. On anything
        /// else it answers `None` and the caller parses the array element by element.
        fn number_run(&mut self) -> Option<(usize, usize)> {
            let mut len = 0;
            loop {
                if !matches!(self.peek(), Some(b'-' | b'0'..=b'9' | b'N' | b'I')) {
                    return None;
                }
                self.number().ok()?;
                len += 1;
                let end = self.position;
                self.skip_whitespace();
                match self.peek() {
                    Some(b',') => {
                        self.position += 1;
                        self.skip_whitespace();
                    }
                    Some(b']') => {
                        self.position += 1;
                        return Some((end, len));
                    }
                    _ => return None,
                }
            }
        }

        fn object(&mut self) -> Result<Value<'a>, DecodeError> {
            self.position += 1;
            let mut members = Vec::new();
            self.skip_whitespace();
            if self.peek() == Some(b'}') {
                self.position += 1;
                return Ok(Value::Object(Object { members }));
            }
            loop {
                self.skip_whitespace();
                if self.peek() != Some(b'"') {
                    return Err(self.error("expected a quoted key in an object"));
                }
                let key = self.string()?;
                self.skip_whitespace();
                if self.peek() != Some(b':') {
                    return Err(self.error("expected ':' after an object key"));
                }
                self.position += 1;
                self.skip_whitespace();
                members.push((key, self.value()?));
                self.skip_whitespace();
                match self.peek() {
                    Some(b',') => self.position += 1,
                    Some(b'}') => {
                        self.position += 1;
                        return Ok(Value::Object(Object { members }));
                    }
                    None => return Err(self.error("an object is not closed")),
                    Some(_) => return Err(self.error("expected ',' or '}' in an object")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::*;

    /// A small valid binary:logistic model: two features, two trees.
    fn model() -> Json {
        json!({
            "version": [3, 2, 0],
            "learner": {
                "attributes": {},
                "feature_names": ["income", "debt"],
                "feature_types": ["float", "float"],
                "learner_model_param": {
                    "base_score": "[4.2E-1]", "boost_from_average": "1", "num_class": "0",
                    "num_feature": "2", "num_target": "1"
                },
                "objective": {"name": "binary:logistic", "reg_loss_param": {"scale_pos_weight": "1"}},
                "gradient_booster": {
                    "name": "gbtree",
                    "model": {
                        "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": "2"},
                        "iteration_indptr": [0, 1, 2],
                        "tree_info": [0, 0],
                        "trees": [tree(0), tree(1)]
                    }
                }
            }
        })
    }

    /// Root splits on feature 0 at 0.5 (missing goes left); the right child splits on feature 1.
    fn tree(id: usize) -> Json {
        json!({
            "id": id,
            "tree_param": {"num_deleted": "0", "num_feature": "2", "num_nodes": "5", "size_leaf_vector": "1"},
            "left_children": [1, -1, 3, -1, -1],
            "right_children": [2, -1, 4, -1, -1],
            "parents": [2147483647, 0, 0, 2, 2],
            "split_indices": [0, 0, 1, 0, 0],
            "split_conditions": [0.5, -0.25, 1.5, 0.125, 0.75],
            "split_type": [0, 0, 0, 0, 0],
            "default_left": [1, 0, 0, 0, 0],
            "base_weights": [0.0, 0.0, 0.0, 0.0, 0.0],
            "loss_changes": [1.0, 0.0, 1.0, 0.0, 0.0],
            "sum_hessian": [10.0, 5.0, 5.0, 2.0, 3.0],
            "categories": [], "categories_nodes": [], "categories_segments": [], "categories_sizes": []
        })
    }

    fn load(document: &Json) -> Result<Model, ModelError> {
        let model = load_json(document.to_string().as_bytes())?;
        model.validate()?;
        Ok(model)
    }

    fn ensemble(model: &Model) -> &TreeEnsemble {
        match &model.body {
            ModelBody::Trees(ensemble) => ensemble,
            other => panic!("not trees: {other:?}"),
        }
    }

    fn tree_field<'a>(document: &'a mut Json, tree: usize, field: &str) -> &'a mut Json {
        &mut document["learner"]["gradient_booster"]["model"]["trees"][tree][field]
    }

    /// A test-only UBJSON encoder with XGBoost's habits: int64 lengths, optimized arrays for
    /// numbers (float32 when any element has a fraction, else int32).
    fn to_ubjson(value: &Json, out: &mut Vec<u8>) {
        fn length(out: &mut Vec<u8>, length: usize) {
            out.push(b'L');
            out.extend_from_slice(&(length as i64).to_be_bytes());
        }
        match value {
            Json::Null => out.push(b'Z'),
            Json::Bool(flag) => out.push(if *flag { b'T' } else { b'F' }),
            Json::Number(number) => match number.as_i64() {
                Some(integer) => {
                    out.push(b'L');
                    out.extend_from_slice(&integer.to_be_bytes());
                }
                None => {
                    out.push(b'd');
                    out.extend_from_slice(&(number.as_f64().unwrap() as f32).to_be_bytes());
                }
            },
            Json::String(text) => {
                out.push(b'S');
                length(out, text.len());
                out.extend_from_slice(text.as_bytes());
            }
            Json::Array(items) if !items.is_empty() && items.iter().all(Json::is_number) => {
                let floats = items.iter().any(|item| !item.is_i64());
                out.extend_from_slice(&[b'[', b'$', if floats { b'd' } else { b'l' }, b'#']);
                length(out, items.len());
                for item in items {
                    if floats {
                        out.extend_from_slice(&(item.as_f64().unwrap() as f32).to_be_bytes());
                    } else {
                        out.extend_from_slice(&(item.as_i64().unwrap() as i32).to_be_bytes());
                    }
                }
            }
            Json::Array(items) => {
                out.push(b'[');
                for item in items {
                    to_ubjson(item, out);
                }
                out.push(b']');
            }
            Json::Object(members) => {
                out.push(b'{');
                for (key, item) in members {
                    length(out, key.len());
                    out.extend_from_slice(key.as_bytes());
                    to_ubjson(item, out);
                }
                out.push(b'}');
            }
        }
    }

    fn ubjson_bytes(value: &Json) -> Vec<u8> {
        let mut out = Vec::new();
        to_ubjson(value, &mut out);
        out
    }

    #[test]
    fn reads_a_small_model() {
        let model = load(&model()).unwrap();
        assert_eq!(model.inputs, vec![Feature::numeric("income"), Feature::numeric("debt")]);
        assert_eq!(
            model.output,
            Output { transform: Transform::Sigmoid { scale: 1.0 }, kind: OutputKind::Probability }
        );
        let ensemble = ensemble(&model);
        assert_eq!(ensemble.precision, Precision::F32);
        assert_eq!(ensemble.trees.len(), 2);
        assert_eq!(ensemble.base_margin, vec![f64::from(-(1.0f32 / 0.42f32 - 1.0).ln())]);
        let nodes = &ensemble.trees[0].nodes;
        assert_eq!(
            nodes[0],
            Node::Split { feature: 0, test: SplitTest::LessThan(0.5), left: 1, right: 2, missing: Direction::Left }
        );
        assert_eq!(nodes[1], Node::Leaf { value: -0.25 });
        assert_eq!(
            nodes[2],
            Node::Split { feature: 1, test: SplitTest::LessThan(1.5), left: 3, right: 4, missing: Direction::Right }
        );
        assert_eq!(nodes[4], Node::Leaf { value: 0.75 });
    }

    #[test]
    fn json_and_ubjson_give_the_same_model() {
        let mut document = model();
        *tree_field(&mut document, 1, "split_conditions") = json!([0.1, -0.3, 1.7, 0.2, 0.9]);
        let from_json = load(&document).unwrap();
        let from_ubjson = load_ubj(&ubjson_bytes(&document)).unwrap();
        assert_eq!(from_ubjson.body, from_json.body);
        assert_eq!(from_ubjson.inputs, from_json.inputs);
        // 0.1 is read straight into f32, as XGBoost wrote it.
        let ModelBody::Trees(ensemble) = &from_json.body else { unreachable!() };
        assert_eq!(
            ensemble.trees[1].nodes[0],
            Node::Split {
                feature: 0,
                test: SplitTest::LessThan(f64::from(0.1f32)),
                left: 1,
                right: 2,
                missing: Direction::Left
            }
        );
    }

    #[test]
    fn base_score_in_every_form() {
        let logit = |p: f32| f64::from(-(1.0f32 / p - 1.0).ln());
        for (written, expected) in [
            (json!("5E-1"), 0.0),
            (json!("[5E-1]"), 0.0),
            (json!("4.2E-1"), logit(0.42)),
            (json!(" [ 4.2E-1 ] "), logit(0.42)),
            (json!(0.42), logit(0.42)),
            (json!("1E0"), logit(1.0 - 1e-6)),
        ] {
            let mut document = model();
            document["learner"]["learner_model_param"]["base_score"] = written.clone();
            assert_eq!(ensemble(&load(&document).unwrap()).base_margin, vec![expected], "{written}");
        }
        // Multi-class: a scalar is shared by every class, a vector gives one margin per class.
        let mut document = model();
        document["learner"]["objective"] = json!({"name": "multi:softprob"});
        document["learner"]["learner_model_param"]["num_class"] = json!("3");
        document["learner"]["gradient_booster"]["model"]["tree_info"] = json!([0, 2]);
        document["learner"]["learner_model_param"]["base_score"] = json!("5E-1");
        assert_eq!(ensemble(&load(&document).unwrap()).base_margin, vec![0.5, 0.5, 0.5]);
        document["learner"]["learner_model_param"]["base_score"] = json!("[1E-1,-2E-1,3E-1]");
        let model = load(&document).unwrap();
        assert_eq!(ensemble(&model).base_margin, vec![f64::from(0.1f32), f64::from(-0.2f32), f64::from(0.3f32)]);
        assert_eq!(ensemble(&model).trees[1].output, 2);
        assert_eq!(model.output.kind, OutputKind::ClassProbabilities);
        // Log-link objectives start from log(base_score).
        let mut document = model_with_objective("count:poisson");
        document["learner"]["learner_model_param"]["base_score"] = json!("[2.5E0]");
        assert_eq!(ensemble(&load(&document).unwrap()).base_margin, vec![f64::from(2.5f32.ln())]);
    }

    fn model_with_objective(name: &str) -> Json {
        let mut document = model();
        document["learner"]["objective"] = json!({"name": name});
        document
    }

    #[test]
    fn objectives_map_to_outputs() {
        let cases = [
            ("binary:logitraw", Transform::Identity, OutputKind::Margin),
            ("reg:logistic", Transform::Sigmoid { scale: 1.0 }, OutputKind::Value),
            ("reg:squarederror", Transform::Identity, OutputKind::Value),
            ("reg:pseudohubererror", Transform::Identity, OutputKind::Value),
            ("reg:absoluteerror", Transform::Identity, OutputKind::Value),
            ("count:poisson", Transform::Exp, OutputKind::Value),
            ("reg:gamma", Transform::Exp, OutputKind::Value),
            ("reg:tweedie", Transform::Exp, OutputKind::Value),
            ("binary:hinge", Transform::Identity, OutputKind::ClassLabel),
        ];
        for (name, transform, kind) in cases {
            let model = load(&model_with_objective(name)).unwrap();
            assert_eq!(model.output, Output { transform, kind }, "{name}");
        }
        // binary:hinge: a zero margin for class 0 beside the real one.
        let model = load(&model_with_objective("binary:hinge")).unwrap();
        assert_eq!(ensemble(&model).base_margin, vec![0.0, f64::from(0.42f32)]);
        assert!(ensemble(&model).trees.iter().all(|tree| tree.output == 1));
    }

    #[test]
    fn dart_scales_leaves_by_tree_weight() {
        let mut document = model();
        let trees = document["learner"]["gradient_booster"]["model"].take();
        document["learner"]["gradient_booster"] =
            json!({"name": "dart", "gbtree": {"name": "gbtree", "model": trees}, "weight_drop": [1.0, 0.3]});
        let model = load(&document).unwrap();
        assert_eq!(ensemble(&model).trees[0].nodes[1], Node::Leaf { value: -0.25 });
        assert_eq!(ensemble(&model).trees[1].nodes[1], Node::Leaf { value: f64::from(-0.25f32 * 0.3f32) });
    }

    #[test]
    fn drops_nodes_that_pruning_deleted() {
        let mut document = model();
        let tree = &mut document["learner"]["gradient_booster"]["model"]["trees"][0];
        tree["tree_param"]["num_nodes"] = json!("7");
        tree["tree_param"]["num_deleted"] = json!("2");
        tree["left_children"] = json!([1, -1, 3, -1, -1, -1, -1]);
        tree["right_children"] = json!([2, -1, 4, -1, -1, -1, -1]);
        tree["split_indices"] = json!([0, 0, 1, 0, 0, 2147483647, 2147483647]);
        tree["split_conditions"] = json!([0.5, -0.25, 1.5, 0.125, 0.75, 0.0, 0.0]);
        tree["split_type"] = json!([0, 0, 0, 0, 0, 0, 0]);
        tree["default_left"] = json!([1, 0, 0, 0, 0, 0, 0]);
        tree["sum_hessian"] = json!([10.0, 4.0, 6.0, 2.5, 3.5, 0.0, 0.0]);
        let model = load(&document).unwrap();
        assert_eq!(ensemble(&model).trees[0].nodes.len(), 5);
        assert_eq!(ensemble(&model).trees[0].cover, Some(vec![10.0, 4.0, 6.0, 2.5, 3.5]));
    }

    #[test]
    fn covers_are_read_when_present() {
        let mut document = model();
        let model = load(&document).unwrap();
        assert_eq!(ensemble(&model).trees[0].cover, Some(vec![10.0, 5.0, 5.0, 2.0, 3.0]));
        let tree = &mut document["learner"]["gradient_booster"]["model"]["trees"][0];
        tree.as_object_mut().unwrap().remove("sum_hessian");
        let model = load(&document).unwrap();
        assert_eq!(ensemble(&model).trees[0].cover, None);
    }

    #[test]
    fn categorical_splits_and_stored_categories() {
        let mut document = model();
        document["learner"]["feature_types"] = json!(["float", "c"]);
        document["learner"]["gradient_booster"]["model"]["cats"] = json!({
            "enc": [
                {"offsets": [], "values": []},
                {"offsets": [0, 3, 8, 9], "values": [114, 101, 100, 103, 114, 101, 101, 110, 120]}
            ],
            "feature_segments": [0, 0, 3],
            "sorted_idx": [1, 0, 2]
        });
        let tree = tree_field(&mut document, 0, "split_type");
        *tree = json!([0, 0, 1, 0, 0]);
        *tree_field(&mut document, 0, "categories") = json!([2, 0, 2]);
        *tree_field(&mut document, 0, "categories_nodes") = json!([2]);
        *tree_field(&mut document, 0, "categories_segments") = json!([0]);
        *tree_field(&mut document, 0, "categories_sizes") = json!([3]);
        let model = load(&document).unwrap();
        assert_eq!(
            model.inputs[1].kind,
            FeatureKind::Categorical {
                categories: Some(vec!["red".into(), "green".into(), "x".into()]),
                unknown: UnknownCategory::Error
            }
        );
        assert_eq!(
            ensemble(&model).trees[0].nodes[2],
            Node::Split {
                feature: 1,
                test: SplitTest::CategoryIn { categories: vec![0, 2], in_set: Direction::Right },
                left: 3,
                right: 4,
                missing: Direction::Right
            }
        );
        // Integer categories carry a type code; unsigned ones are written with the signed type.
        document["learner"]["gradient_booster"]["model"]["cats"]["enc"][1] =
            json!({"type": 10, "values": [1, -56, -1]});
        let model = load(&document).unwrap();
        assert_eq!(
            model.inputs[1].kind,
            FeatureKind::Categorical {
                categories: Some(vec!["1".into(), "200".into(), "255".into()]),
                unknown: UnknownCategory::Error
            }
        );
        // Without stored categories the input holds codes.
        document["learner"]["gradient_booster"]["model"]["cats"] =
            json!({"enc": [], "feature_segments": [], "sorted_idx": []});
        let model = load(&document).unwrap();
        assert_eq!(
            model.inputs[1].kind,
            FeatureKind::Categorical { categories: None, unknown: UnknownCategory::Error }
        );
    }

    #[test]
    fn feature_names_default_to_xgboost_names() {
        let mut document = model();
        document["learner"]["feature_names"] = json!([]);
        document["learner"]["feature_types"] = json!([]);
        let model = load(&document).unwrap();
        assert_eq!(model.inputs, vec![Feature::numeric("f0"), Feature::numeric("f1")]);
    }

    /// Hand-made hostile documents: each must fail with the expected kind of error and a message
    /// that names the problem.
    #[test]
    fn hostile_models_are_refused_with_precise_errors() {
        type Edit = fn(&mut Json);
        let cases: Vec<(&str, Edit, &str, &str)> = vec![
            (
                "arrays disagree",
                |d| *tree_field(d, 1, "split_conditions") = json!([0.5, 1.0]),
                "invalid",
                "tree 1: split_conditions has 2 entries but left_children has 5",
            ),
            (
                "num_nodes claim",
                |d| tree_field(d, 0, "tree_param")["num_nodes"] = json!("4000000000"),
                "invalid",
                "num_nodes says 4000000000",
            ),
            (
                "child out of range",
                |d| *tree_field(d, 0, "right_children") = json!([9, -1, 4, -1, -1]),
                "invalid",
                "node 0 has child 9 outside the tree of 5 nodes",
            ),
            (
                "negative child",
                |d| *tree_field(d, 0, "right_children") = json!([-7, -1, 4, -1, -1]),
                "invalid",
                "node 0 has child -7 outside",
            ),
            (
                "cycle",
                |d| *tree_field(d, 0, "left_children") = json!([1, -1, 0, -1, -1]),
                "invalid",
                "node 0 is reached twice",
            ),
            (
                "shared child",
                |d| *tree_field(d, 0, "left_children") = json!([1, -1, 1, -1, -1]),
                "invalid",
                "node 1 is reached twice",
            ),
            (
                "one child",
                |d| *tree_field(d, 0, "left_children") = json!([1, -1, -1, -1, -1]),
                "invalid",
                "node 2 has one child",
            ),
            (
                "feature beyond num_feature",
                |d| *tree_field(d, 1, "split_indices") = json!([0, 0, 2, 0, 0]),
                "invalid",
                "tree 1: node 2 splits on feature 2 but the model has 2 features",
            ),
            (
                "NaN threshold",
                |d| *tree_field(d, 0, "split_conditions") = json!([0.5, -0.25, "NaN-placeholder", 0.125, 0.75]),
                "malformed",
                "split_conditions: element 2 is a string",
            ),
            (
                "absurd num_trees",
                |d| {
                    d["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_trees"] =
                        json!("1000000000000")
                },
                "invalid",
                "num_trees says 1000000000000 but",
            ),
            (
                "tree_info length",
                |d| d["learner"]["gradient_booster"]["model"]["tree_info"] = json!([0]),
                "invalid",
                "tree_info has 1 entries for 2 trees",
            ),
            (
                "tree_info output",
                |d| d["learner"]["gradient_booster"]["model"]["tree_info"] = json!([0, 3]),
                "invalid",
                "tree_info[1] is 3 but the model has 1 outputs",
            ),
            (
                "wrong type for an array",
                |d| *tree_field(d, 0, "left_children") = json!("1,2"),
                "malformed",
                "trees[0].left_children is a string, not an array",
            ),
            (
                "wrong element type",
                |d| *tree_field(d, 0, "left_children") = json!([1, "x", 3, -1, -1]),
                "malformed",
                "left_children: element 1 is a string",
            ),
            (
                "fractional child",
                |d| *tree_field(d, 0, "left_children") = json!([1.5, -1, 3, -1, -1]),
                "malformed",
                "left_children: element 0 is out of range",
            ),
            (
                "missing field",
                |d| {
                    tree_field(d, 0, "default_left").take();
                    d["learner"]["gradient_booster"]["model"]["trees"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("default_left");
                },
                "malformed",
                "trees[0] has no default_left",
            ),
            (
                "learner is not an object",
                |d| d["learner"] = json!([1, 2]),
                "malformed",
                "learner is an array, not an object",
            ),
            (
                "num_feature not a count",
                |d| d["learner"]["learner_model_param"]["num_feature"] = json!("-3"),
                "malformed",
                "num_feature is not a non-negative integer",
            ),
            (
                "absurd num_feature",
                |d| d["learner"]["learner_model_param"]["num_feature"] = json!("99999999999"),
                "unsupported",
                "num_feature 99999999999 is more than",
            ),
            (
                "absurd num_class",
                |d| {
                    d["learner"]["objective"] = json!({"name": "multi:softprob"});
                    d["learner"]["learner_model_param"]["num_class"] = json!("4000000000");
                },
                "unsupported",
                "4000000000 outputs is more than",
            ),
            (
                "multi-class with one class",
                |d| d["learner"]["objective"] = json!({"name": "multi:softmax"}),
                "invalid",
                "multi:softmax needs num_class of at least 2",
            ),
            (
                "unsupported objective",
                |d| d["learner"]["objective"] = json!({"name": "rank:pairwise"}),
                "unsupported",
                "objective rank:pairwise is not supported",
            ),
            (
                "gblinear",
                |d| {
                    d["learner"]["gradient_booster"] =
                        json!({"name": "gblinear", "model": {"weights": [0.1, 0.2, 0.3]}})
                },
                "unsupported",
                "gblinear",
            ),
            (
                "vector leaves",
                |d| tree_field(d, 0, "tree_param")["size_leaf_vector"] = json!("2"),
                "unsupported",
                "multi_output_tree",
            ),
            (
                "base_score not a probability",
                |d| d["learner"]["learner_model_param"]["base_score"] = json!("[1.5E0]"),
                "invalid",
                "base_score 1.5 is not a probability",
            ),
            (
                "base_score garbage",
                |d| d["learner"]["learner_model_param"]["base_score"] = json!("[0.5;0.5]"),
                "malformed",
                "base_score \"[0.5;0.5]\" is not a number",
            ),
            (
                "base_score vector length",
                |d| d["learner"]["learner_model_param"]["base_score"] = json!("[5E-1,5E-1]"),
                "invalid",
                "base_score has 2 values for 1 outputs",
            ),
            (
                "feature names length",
                |d| d["learner"]["feature_names"] = json!(["a"]),
                "invalid",
                "feature_names has 1 entries for 2 features",
            ),
            (
                "duplicate feature names",
                |d| d["learner"]["feature_names"] = json!(["a", "a"]),
                "invalid",
                "feature name \"a\" appears twice",
            ),
            (
                "unknown feature type",
                |d| d["learner"]["feature_types"] = json!(["float", "weird"]),
                "unsupported",
                "feature type \"weird\"",
            ),
            (
                "split_type",
                |d| *tree_field(d, 0, "split_type") = json!([0, 0, 7, 0, 0]),
                "invalid",
                "node 2 has split_type 7",
            ),
            (
                "category segment outside",
                |d| {
                    *tree_field(d, 0, "split_type") = json!([1, 0, 0, 0, 0]);
                    *tree_field(d, 0, "categories") = json!([1]);
                    *tree_field(d, 0, "categories_nodes") = json!([0]);
                    *tree_field(d, 0, "categories_segments") = json!([0]);
                    *tree_field(d, 0, "categories_sizes") = json!([5]);
                },
                "invalid",
                "node 0's categories (segment 0, size 5) lie outside the 1 categories",
            ),
            (
                "negative category",
                |d| {
                    *tree_field(d, 0, "split_type") = json!([1, 0, 0, 0, 0]);
                    *tree_field(d, 0, "categories") = json!([-4]);
                    *tree_field(d, 0, "categories_nodes") = json!([0]);
                    *tree_field(d, 0, "categories_segments") = json!([0]);
                    *tree_field(d, 0, "categories_sizes") = json!([1]);
                },
                "invalid",
                "node 0 has category -4",
            ),
            (
                "categories node outside",
                |d| {
                    *tree_field(d, 0, "split_type") = json!([1, 0, 0, 0, 0]);
                    *tree_field(d, 0, "categories") = json!([1]);
                    *tree_field(d, 0, "categories_nodes") = json!([40]);
                    *tree_field(d, 0, "categories_segments") = json!([0]);
                    *tree_field(d, 0, "categories_sizes") = json!([1]);
                },
                "invalid",
                "categories_nodes names node 40 outside",
            ),
            ("tree id", |d| tree_field(d, 1, "id").clone_from(&json!(7)), "invalid", "tree 1: has id 7 at position 1"),
            (
                "dart weights",
                |d| {
                    let trees = d["learner"]["gradient_booster"]["model"].take();
                    d["learner"]["gradient_booster"] =
                        json!({"name": "dart", "gbtree": {"model": trees}, "weight_drop": [1.0]});
                },
                "invalid",
                "weight_drop has 1 entries for 2 trees",
            ),
        ];
        for (name, edit, kind, expected) in cases {
            let mut document = model();
            edit(&mut document);
            let error = load(&document).expect_err(name);
            let found_kind = match &error {
                ModelError::Malformed { .. } => "malformed",
                ModelError::Invalid { .. } => "invalid",
                ModelError::Unsupported { .. } => "unsupported",
                ModelError::UnknownFormat(_) => "unknown format",
            };
            assert_eq!(found_kind, kind, "{name}: {error}");
            assert!(error.to_string().contains(expected), "{name}: {error}");
            // The same document as UBJSON fails the same way.
            let ubjson_error = load_ubj(&ubjson_bytes(&document)).expect_err(name);
            assert_eq!(ubjson_error.to_string().replace("xgboost-ubj", "xgboost-json"), error.to_string(), "{name}");
        }
    }

    /// Non-finite numbers can only be written in JSON with XGBoost's own spellings.
    #[test]
    fn non_finite_numbers_are_refused() {
        let text = model().to_string();
        let nan_threshold = text.replacen("[0.5,-0.25,1.5,0.125,0.75]", "[0.5,-0.25,NaN,0.125,0.75]", 1);
        let error = load_json(nan_threshold.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("tree 0: node 2 has a NaN threshold"), "{error}");
        let infinite_leaf = text.replacen("[0.5,-0.25,1.5,0.125,0.75]", "[0.5,-Infinity,1.5,0.125,0.75]", 1);
        let error = load_json(infinite_leaf.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("tree 0: leaf 1 has a value that is not finite"), "{error}");
    }

    #[test]
    fn broken_files_are_malformed() {
        let text = model().to_string();
        // Cut right after a key's colon, where a value must follow, whatever order serde_json
        // writes the keys in (its `preserve_order` feature depends on the other crates in the build).
        let cut = text[..text.len() / 2].rfind("\":").expect("a key in the first half") + 2;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (text.as_bytes()[..cut].to_vec(), "ends early"),
            (b"{\"learner\": 1,}".to_vec(), "expected a quoted key"),
            (b"{\"a\": [1, 2,]}".to_vec(), "unexpected character"),
            (b"{\"a\": 01}".to_vec(), "expected ',' or '}'"),
            (b"{\"a\": \"\\q\"}".to_vec(), "an invalid escape"),
            (b"{\"a\": \"\\ud800\"}".to_vec(), "lone surrogate"),
            (b"{\"a\": \"x\ny\"}".to_vec(), "control character"),
            (b"{\"a\": 1} x".to_vec(), "after the document"),
            (vec![b'{', b'"', b'a', b'"', b':', 0xff, b'}'], "not valid UTF-8"),
            ([b"{\"a\":".as_slice(), &[b'['; 100], &[b']'; 100], b"}"].concat(), "nest more than 64 deep"),
            (b"[]".to_vec(), "the document is an array, not an object"),
        ];
        for (bytes, expected) in cases {
            let error = load_json(&bytes).unwrap_err();
            assert!(matches!(error, ModelError::Malformed { .. }), "{error}");
            assert!(error.to_string().contains(expected), "{}: {error}", String::from_utf8_lossy(&bytes));
        }
        let ubjson = ubjson_bytes(&model());
        for cut in [1, ubjson.len() / 3, ubjson.len() - 1] {
            let error = load_ubj(&ubjson[..cut]).unwrap_err();
            assert!(matches!(error, ModelError::Malformed { .. }), "{error}");
        }
    }

    #[test]
    fn json_strings_with_escapes() {
        let mut document = model();
        document["learner"]["feature_names"] = json!(["caf\u{e9} \"tab\"\t", "\u{1F600}/x"]);
        let text = document.to_string().replace("/x", "\\/x").replace('\u{1F600}', "\\ud83d\\ude00");
        let model = load_json(text.as_bytes()).unwrap();
        assert_eq!(model.inputs[0].name, "caf\u{e9} \"tab\"\t");
        assert_eq!(model.inputs[1].name, "\u{1F600}/x");
    }
}
