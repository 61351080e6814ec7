//! Imports LightGBM text models (`Booster.save_model`, lightgbm 2.x to 4.x) into the model representation.
//!
//! LightGBM's quirks are resolved here, once: `x <= threshold` becomes `x < next_up(threshold)` in
//! f64; the per-node missing type becomes the feature's [`MissingRule`] (all numeric splits of a
//! feature must agree, as LightGBM itself guarantees); negative children `c` are leaves `~c`;
//! category bitsets become sorted code lists that go left; `pandas_categorical` gives category
//! names. Every count in the file is checked against the text actually present before anything is
//! allocated from it.

use std::collections::HashMap;

use crate::error::{Format, ModelError};
use crate::ir::{
    Aggregation, Direction, Feature, FeatureKind, LIGHTGBM_ZERO_THRESHOLD, MAX_NODES_PER_TREE, MissingRule, Model,
    ModelBody, Node, Output, OutputKind, Precision, SplitTest, Transform, Tree, TreeEnsemble, UnknownCategory,
};

const FORMAT: Format = Format::Lightgbm;

/// The most category codes all categorical splits of one model may list together. LightGBM sends
/// at most `max_cat_threshold` (32 by default) categories left per split, so real models stay far
/// below this; the cap stops a hostile bitset (one text word, 32 codes) from expanding into memory.
const MAX_CATEGORIES_PER_MODEL: usize = 1 << 24;

/// The largest table (category lists × features) spent on matching `pandas_categorical` to
/// features when the simple in-order match does not apply.
const MAX_PANDAS_ALIGNMENT_CELLS: usize = 1 << 22;

/// Format versions this importer has been checked against (`version=` in the header).
const KNOWN_VERSIONS: [&str; 3] = ["v2", "v3", "v4"];

/// Keys of a tree block that only linear trees (`linear_tree=true`) write.
const LINEAR_TREE_KEYS: [&str; 4] = ["leaf_const", "leaf_coeff", "leaf_features", "num_features"];

fn malformed(message: impl Into<String>) -> ModelError {
    ModelError::malformed(FORMAT, message)
}

fn invalid(message: impl Into<String>) -> ModelError {
    ModelError::invalid(FORMAT, message)
}

fn unsupported(message: impl Into<String>) -> ModelError {
    ModelError::unsupported(FORMAT, message)
}

/// Loads a LightGBM text model. The result is validated.
pub fn load(bytes: &[u8]) -> Result<Model, ModelError> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        malformed(format!("the file is not UTF-8 text (invalid byte at offset {})", error.valid_up_to()))
    })?;
    let file = ModelFile::split(text)?;
    let header = Header::read(&file.header)?;
    if file.linear_tree_parameter {
        return Err(unsupported("linear trees (linear_tree) are not supported"));
    }
    if let Some(declared) = header.declared_tree_count
        && declared != file.trees.len()
    {
        return Err(invalid(format!(
            "tree_sizes lists {declared} trees but the file has {} Tree= blocks",
            file.trees.len()
        )));
    }
    if file.trees.is_empty() {
        return Err(invalid("the model has no trees"));
    }
    let num_outputs = header.trees_per_iteration;
    if num_outputs > file.trees.len() || file.trees.len() % num_outputs != 0 {
        return Err(invalid(format!(
            "{} trees is not a whole number of iterations of num_tree_per_iteration={num_outputs}",
            file.trees.len()
        )));
    }

    let mut usage = vec![FeatureUse::default(); header.feature_names.len()];
    let mut category_budget = MAX_CATEGORIES_PER_MODEL;
    let mut trees = Vec::with_capacity(file.trees.len());
    for (index, block) in file.trees.iter().enumerate() {
        let reader = TreeReader { index, fields: block };
        let nodes = reader.convert(&header.feature_names, &mut usage, &mut category_budget)?;
        let cover = reader.cover(nodes.len())?;
        trees.push(Tree { nodes, output: (index % num_outputs) as u32, cover });
    }

    let pandas_categories = match file.pandas_categorical {
        Some(line) => parse_pandas_categorical(line)?,
        None => Vec::new(),
    };
    let inputs = build_features(&header, &usage, pandas_categories)?;
    let num_features = inputs.len();
    let model = Model {
        inputs,
        preprocess: None,
        body: ModelBody::Trees(TreeEnsemble {
            trees,
            num_outputs,
            // LightGBM folds the initial score (boost_from_average) into the first tree.
            base_margin: vec![0.0; num_outputs],
            aggregation: if header.average_output { Aggregation::Mean } else { Aggregation::Sum },
            precision: Precision::F64,
            num_features,
        }),
        output: header.output,
        source: FORMAT,
    };
    model.validate()?;
    Ok(model)
}

/// `key=value` lines of one section of the file, each with its line number.
#[derive(Debug, Default)]
struct Fields<'a> {
    entries: HashMap<&'a str, (&'a str, usize)>,
}

impl<'a> Fields<'a> {
    /// Adds one line; `section` names where it is for the error on a repeated key.
    fn insert(&mut self, key: &'a str, value: &'a str, line: usize, section: &str) -> Result<(), ModelError> {
        if let Some((_, first)) = self.entries.insert(key, (value, line)) {
            return Err(malformed(format!("{section}: {key} appears twice (lines {first} and {line})")));
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.entries.get(key).map(|(value, _)| *value)
    }
}

/// The sections of a model file, still as text.
#[derive(Debug)]
struct ModelFile<'a> {
    header: Fields<'a>,
    trees: Vec<Fields<'a>>,
    /// The parameters block says `[linear_tree: 1]`.
    linear_tree_parameter: bool,
    /// The JSON after the last `pandas_categorical:`.
    pandas_categorical: Option<&'a str>,
}

impl<'a> ModelFile<'a> {
    fn split(text: &'a str) -> Result<ModelFile<'a>, ModelError> {
        let mut lines = text.lines().enumerate().map(|(index, line)| (index + 1, line.trim_end())).peekable();
        match lines.by_ref().find(|(_, line)| !line.is_empty()) {
            Some((_, "tree")) => {}
            Some((number, _)) => {
                return Err(malformed(format!("line {number}: a LightGBM text model starts with the line \"tree\"")));
            }
            None => return Err(malformed("the file is empty")),
        }

        let mut header = Fields::default();
        while let Some(&(number, line)) = lines.peek() {
            if line.starts_with("Tree=") || line == "end of trees" {
                break;
            }
            lines.next();
            if line.is_empty() {
                continue;
            }
            // A key without '=' (average_output) is a flag.
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            header.insert(key, value, number, "header")?;
        }

        let mut trees = Vec::new();
        let mut ended = false;
        while let Some((number, line)) = lines.next() {
            if line.is_empty() {
                continue;
            }
            if line == "end of trees" {
                ended = true;
                break;
            }
            let Some(label) = line.strip_prefix("Tree=") else {
                return Err(malformed(format!(
                    "line {number}: expected \"Tree=N\" or \"end of trees\", found {}",
                    shorten(line)
                )));
            };
            if label.parse::<usize>().ok() != Some(trees.len()) {
                return Err(malformed(format!(
                    "line {number}: expected \"Tree={}\", found {}",
                    trees.len(),
                    shorten(line)
                )));
            }
            let section = format!("tree {}", trees.len());
            let mut fields = Fields::default();
            while let Some(&(number, line)) = lines.peek() {
                if line.is_empty() || line.starts_with("Tree=") || line == "end of trees" {
                    break;
                }
                lines.next();
                let Some((key, value)) = line.split_once('=') else {
                    return Err(malformed(format!(
                        "line {number} ({section}): expected key=value, found {}",
                        shorten(line)
                    )));
                };
                fields.insert(key, value, number, &section)?;
            }
            trees.push(fields);
        }
        if !ended {
            return Err(malformed(format!(
                "the file ends after {} trees without \"end of trees\" (truncated?)",
                trees.len()
            )));
        }

        let mut linear_tree_parameter = false;
        let mut pandas_categorical = None;
        for (_, line) in lines {
            if let Some(value) = line.strip_prefix("[linear_tree:") {
                linear_tree_parameter = !matches!(value.trim_end_matches(']').trim(), "0" | "false");
            } else if let Some(json) = line.strip_prefix("pandas_categorical:") {
                // lightgbm's Python package reads the last such line.
                pandas_categorical = Some(json);
            }
        }
        Ok(ModelFile { header, trees, linear_tree_parameter, pandas_categorical })
    }
}

/// The header, read and checked.
#[derive(Debug)]
struct Header<'a> {
    trees_per_iteration: usize,
    feature_names: Vec<&'a str>,
    feature_infos: Vec<FeatureInfo>,
    /// What the objective makes of the margin.
    output: Output,
    average_output: bool,
    declared_tree_count: Option<usize>,
}

/// What `feature_infos` says about a feature's values in the training data.
#[derive(Debug, Clone, PartialEq)]
enum FeatureInfo {
    /// `none`: the feature was constant or absent; no split uses it.
    Unused,
    /// `[min:max]`.
    Range { min: f64, max: f64 },
    /// `c1:c2:...`: the category codes seen (-1 stands for missing).
    Categories { largest: i64 },
}

impl FeatureInfo {
    fn parse(text: &str, name: &str) -> Result<FeatureInfo, ModelError> {
        let bad = || {
            malformed(format!(
                "feature_infos of feature {name:?} is not none, [min:max] or c1:c2:..., found {}",
                shorten(text)
            ))
        };
        if text == "none" {
            return Ok(FeatureInfo::Unused);
        }
        if let Some(range) = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            let (min, max) = range.split_once(':').ok_or_else(bad)?;
            let min: f64 = min.parse().map_err(|_| bad())?;
            let max: f64 = max.parse().map_err(|_| bad())?;
            return Ok(FeatureInfo::Range { min, max });
        }
        let mut largest = i64::MIN;
        for code in text.split(':') {
            largest = largest.max(code.parse::<i64>().map_err(|_| bad())?);
        }
        Ok(FeatureInfo::Categories { largest })
    }
}

impl<'a> Header<'a> {
    fn read(fields: &Fields<'a>) -> Result<Header<'a>, ModelError> {
        let required = |key: &str| fields.get(key).ok_or_else(|| malformed(format!("the header has no {key}")));
        if let Some(version) = fields.get("version")
            && !KNOWN_VERSIONS.contains(&version)
        {
            return Err(unsupported(format!(
                "format version {} (this importer reads {})",
                shorten(version),
                KNOWN_VERSIONS.join(", ")
            )));
        }
        if fields.get("linear_tree").is_some_and(|value| !matches!(value, "0" | "false")) {
            return Err(unsupported("linear trees (linear_tree) are not supported"));
        }
        let num_class = parse_count("num_class", required("num_class")?)?;
        let trees_per_iteration = match fields.get("num_tree_per_iteration") {
            Some(value) => parse_count("num_tree_per_iteration", value)?,
            None => num_class,
        };
        if num_class == 0 || trees_per_iteration != num_class {
            return Err(invalid(format!(
                "num_class={num_class} and num_tree_per_iteration={trees_per_iteration}; \
                 both must be the same positive count"
            )));
        }
        let max_feature_index = required("max_feature_idx")?;
        let num_features = match max_feature_index.parse::<i64>() {
            Ok(-1) => Some(0),
            Ok(index) if index >= 0 => usize::try_from(index).ok().and_then(|index| index.checked_add(1)),
            _ => None,
        }
        .ok_or_else(|| {
            malformed(format!("max_feature_idx is not a feature index, found {}", shorten(max_feature_index)))
        })?;
        // Counting the names before trusting max_feature_idx keeps every allocation below sized by
        // the text.
        let feature_names: Vec<&str> = required("feature_names")?.split(' ').filter(|name| !name.is_empty()).collect();
        if feature_names.len() != num_features {
            return Err(invalid(format!(
                "feature_names has {} names but max_feature_idx={max_feature_index} declares {num_features} features",
                feature_names.len()
            )));
        }
        let mut positions = HashMap::with_capacity(feature_names.len());
        for (index, name) in feature_names.iter().enumerate() {
            if let Some(first) = positions.insert(*name, index) {
                return Err(invalid(format!("feature name {name:?} is used by features {first} and {index}")));
            }
        }
        let infos: Vec<&str> = required("feature_infos")?.split(' ').filter(|info| !info.is_empty()).collect();
        if infos.len() != num_features {
            return Err(invalid(format!("feature_infos has {} entries for {num_features} features", infos.len())));
        }
        let feature_infos = infos
            .iter()
            .zip(&feature_names)
            .map(|(info, name)| FeatureInfo::parse(info, name))
            .collect::<Result<_, _>>()?;
        let output = match fields.get("objective") {
            Some(objective) => parse_objective(objective, num_class)?,
            None => return Err(unsupported("the model names no objective (custom objectives are not supported)")),
        };
        let declared_tree_count = fields.get("tree_sizes").map(|sizes| sizes.split_ascii_whitespace().count());
        Ok(Header {
            trees_per_iteration,
            feature_names,
            feature_infos,
            output,
            average_output: fields.entries.contains_key("average_output"),
            declared_tree_count,
        })
    }
}

/// Reads the `objective=` line: a name, then `key:value` parameters (and `sqrt` for `reg_sqrt`).
fn parse_objective(text: &str, num_class: usize) -> Result<Output, ModelError> {
    let mut words = text.split_ascii_whitespace();
    let name = words.next().ok_or_else(|| malformed("objective is empty"))?;
    let mut parameters = HashMap::new();
    let mut square_root = false;
    for word in words {
        match word.split_once(':') {
            Some((key, value)) => {
                parameters.insert(key, value);
            }
            None if word == "sqrt" => square_root = true,
            None => {
                return Err(malformed(format!(
                    "objective {} has a parameter that is not key:value: {}",
                    shorten(name),
                    shorten(word)
                )));
            }
        }
    }
    let sigmoid = || -> Result<f64, ModelError> {
        let value =
            parameters.get("sigmoid").ok_or_else(|| malformed(format!("objective {name} has no sigmoid parameter")))?;
        match value.parse::<f64>() {
            Ok(scale) if scale.is_finite() && scale > 0.0 => Ok(scale),
            _ => Err(invalid(format!("objective {name} has sigmoid:{} (must be a positive number)", shorten(value)))),
        }
    };
    let single_output = |kind: &str| {
        if num_class == 1 {
            Ok(())
        } else {
            Err(invalid(format!("objective {name} is {kind} but num_class={num_class}")))
        }
    };
    let regression_family =
        matches!(name, "regression" | "regression_l2" | "regression_l1" | "huber" | "fair" | "quantile" | "mape");
    if square_root {
        // LightGBM trains on sqrt(label) and answers sign(x)·x², which no transform expresses.
        return Err(unsupported(format!("objective {name} with reg_sqrt (a square-root transformed label)")));
    }
    let (transform, kind) = match name {
        "binary" => {
            single_output("a binary classifier")?;
            (Transform::Sigmoid { scale: sigmoid()? }, OutputKind::Probability)
        }
        "cross_entropy" | "xentropy" => {
            single_output("a probability")?;
            (Transform::Sigmoid { scale: 1.0 }, OutputKind::Probability)
        }
        "multiclass" | "multiclassova" => {
            if num_class < 2 {
                return Err(invalid(format!("objective {name} needs at least 2 classes but num_class={num_class}")));
            }
            if let Some(declared) = parameters.get("num_class")
                && declared.parse::<usize>().ok() != Some(num_class)
            {
                return Err(invalid(format!(
                    "objective {name} says num_class:{} but the header says num_class={num_class}",
                    shorten(declared)
                )));
            }
            let transform =
                if name == "multiclass" { Transform::Softmax } else { Transform::Sigmoid { scale: sigmoid()? } };
            (transform, OutputKind::ClassProbabilities)
        }
        _ if regression_family => {
            single_output("a regression")?;
            (Transform::Identity, OutputKind::Value)
        }
        "poisson" | "gamma" | "tweedie" => {
            single_output("a regression")?;
            (Transform::Exp, OutputKind::Value)
        }
        other => return Err(unsupported(format!("objective {}", shorten(other)))),
    };
    Ok(Output { transform, kind })
}

/// LightGBM's missing types (bits 2-3 of `decision_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MissingType {
    /// NaN is read as 0.
    None,
    /// |x| <= 1e-35 (and NaN, read as 0) go the default direction.
    Zero,
    /// NaN goes the default direction.
    NaN,
}

impl MissingType {
    fn name(self) -> &'static str {
        match self {
            MissingType::None => "None",
            MissingType::Zero => "Zero",
            MissingType::NaN => "NaN",
        }
    }

    fn rule(self) -> MissingRule {
        match self {
            // NaN goes where 0 goes through each split's missing direction instead.
            MissingType::None => MissingRule::AsIs,
            MissingType::Zero => MissingRule::ZeroAsMissing,
            MissingType::NaN => MissingRule::AsIs,
        }
    }
}

/// How the trees use one feature, with the first place each use was seen (tree, node).
#[derive(Debug, Clone, Default)]
struct FeatureUse {
    numeric: Option<(MissingType, usize, usize)>,
    categorical: Option<(usize, usize)>,
    /// The largest code any categorical split on the feature lists.
    largest_code: Option<u32>,
}

/// One `Tree=N` block.
struct TreeReader<'a, 'b> {
    index: usize,
    fields: &'b Fields<'a>,
}

impl<'a> TreeReader<'a, '_> {
    fn text(&self, key: &str) -> Result<&'a str, ModelError> {
        self.fields.get(key).ok_or_else(|| malformed(format!("tree {}: {key} is missing", self.index)))
    }

    fn count(&self, key: &str) -> Result<usize, ModelError> {
        let text = self.text(key)?;
        text.parse()
            .map_err(|_| malformed(format!("tree {}: {key} is not a count, found {}", self.index, shorten(text))))
    }

    /// The whitespace-separated values of `key`, which must number `expected`. The vector is
    /// sized by the text, never by `expected`.
    fn values<T: std::str::FromStr>(&self, key: &str, expected: usize, what: &str) -> Result<Vec<T>, ModelError> {
        let text = self.text(key)?;
        let values = text
            .split_ascii_whitespace()
            .enumerate()
            .map(|(position, word)| {
                word.parse().map_err(|_| {
                    malformed(format!("tree {}: {key}[{position}] is not {what}, found {}", self.index, shorten(word)))
                })
            })
            .collect::<Result<Vec<T>, _>>()?;
        if values.len() != expected {
            return Err(invalid(format!(
                "tree {}: {key} has {} values but {expected} are expected",
                self.index,
                values.len()
            )));
        }
        Ok(values)
    }

    /// Each node's training cover, indexed like the converted nodes: `internal_count` then
    /// `leaf_count` (the data counts LightGBM's own TreeSHAP weighs branches by). `None` for a
    /// constant tree (which needs none) or a file without the counts.
    fn cover(&self, num_nodes: usize) -> Result<Option<Vec<f64>>, ModelError> {
        let internal = num_nodes / 2;
        if internal == 0 || self.fields.get("internal_count").is_none() || self.fields.get("leaf_count").is_none() {
            return Ok(None);
        }
        let mut cover: Vec<f64> = self.values("internal_count", internal, "a count")?;
        cover.extend(self.values::<f64>("leaf_count", num_nodes - internal, "a count")?);
        if let Some(position) = cover.iter().position(|count| !(count.is_finite() && *count >= 0.0)) {
            return Err(invalid(format!(
                "tree {}: a data count (node {position}) is negative or not finite",
                self.index
            )));
        }
        Ok(Some(cover))
    }

    /// Converts the block into nodes: LightGBM's internal nodes first (so node `i` keeps index
    /// `i`), then its leaves (leaf `j` at `internal + j`).
    fn convert(
        &self,
        feature_names: &[&str],
        usage: &mut [FeatureUse],
        category_budget: &mut usize,
    ) -> Result<Vec<Node>, ModelError> {
        let tree = self.index;
        if self.fields.get("is_linear").is_some_and(|value| value.trim() != "0")
            || LINEAR_TREE_KEYS.iter().any(|key| self.fields.get(key).is_some())
        {
            return Err(unsupported(format!("tree {tree} is a linear tree (linear_tree)")));
        }
        let num_leaves = self.count("num_leaves")?;
        if num_leaves == 0 {
            return Err(invalid(format!("tree {tree}: num_leaves is 0")));
        }
        if num_leaves > MAX_NODES_PER_TREE / 2 {
            return Err(invalid(format!("tree {tree}: num_leaves={num_leaves} is more than supported")));
        }
        let leaf_values: Vec<f64> = self.values("leaf_value", num_leaves, "a number")?;
        if let Some(position) = leaf_values.iter().position(|value| !value.is_finite()) {
            return Err(invalid(format!("tree {tree}: leaf_value[{position}] is not finite")));
        }
        let leaves = leaf_values.iter().map(|value| Node::Leaf { value: *value });
        if num_leaves == 1 {
            // A constant tree: LightGBM writes empty split arrays, or none at all.
            return Ok(leaves.collect());
        }
        let internal = num_leaves - 1;
        let split_features: Vec<i64> = self.values("split_feature", internal, "a feature index")?;
        let thresholds: Vec<f64> = self.values("threshold", internal, "a number")?;
        let decision_types: Vec<i64> = self.values("decision_type", internal, "an integer")?;
        let left_children: Vec<i64> = self.values("left_child", internal, "a node index")?;
        let right_children: Vec<i64> = self.values("right_child", internal, "a node index")?;
        let (category_words, category_sets) = self.category_sets(internal)?;
        let mut set_used_by: Vec<Option<usize>> = vec![None; category_sets.len()];

        // Maps a LightGBM child reference to a node index of the converted tree.
        let child = |field: &str, node: usize, reference: i64| -> Result<u32, ModelError> {
            let index = if reference >= 0 {
                usize::try_from(reference).ok().filter(|index| *index < internal)
            } else {
                usize::try_from(!reference).ok().filter(|leaf| *leaf < num_leaves).map(|leaf| internal + leaf)
            };
            index.map(|index| index as u32).ok_or_else(|| {
                invalid(format!(
                    "tree {tree}: {field}[{node}] is {reference}, \
                     outside the tree's {internal} nodes and {num_leaves} leaves"
                ))
            })
        };

        let mut nodes = Vec::with_capacity(internal + num_leaves);
        for node in 0..internal {
            let feature = usize::try_from(split_features[node])
                .ok()
                .filter(|feature| *feature < feature_names.len())
                .ok_or_else(|| {
                let count = feature_names.len();
                invalid(format!(
                    "tree {tree}: split_feature[{node}] is {}, but the model has {count} features",
                    split_features[node]
                ))
            })?;
            let decision_type = decision_types[node];
            if !(0..16).contains(&decision_type) {
                return Err(invalid(format!(
                    "tree {tree}: decision_type[{node}] is {decision_type}, not a LightGBM decision type"
                )));
            }
            let categorical = decision_type & 1 != 0;
            let default_left = decision_type & 2 != 0;
            let missing_type = match (decision_type >> 2) & 3 {
                0 => MissingType::None,
                1 => MissingType::Zero,
                2 => MissingType::NaN,
                _ => {
                    return Err(invalid(format!(
                        "tree {tree}: decision_type[{node}] is {decision_type}, with missing type 3"
                    )));
                }
            };
            let mut left = child("left_child", node, left_children[node])?;
            let mut right = child("right_child", node, right_children[node])?;
            let threshold = thresholds[node];
            let name = feature_names[feature];
            let usage = &mut usage[feature];
            let (test, missing) = if categorical {
                // The threshold of a categorical split is the index of its category set.
                let set = Some(threshold)
                    .filter(|index| index.fract() == 0.0 && *index >= 0.0 && *index < category_sets.len() as f64)
                    .map(|index| index as usize)
                    .ok_or_else(|| {
                        let sets = category_sets.len();
                        invalid(format!(
                            "tree {tree}: threshold[{node}] of a categorical split is {threshold}, \
                             not one of the tree's {sets} category sets (num_cat)"
                        ))
                    })?;
                if let Some(other) = set_used_by[set].replace(node) {
                    return Err(invalid(format!("tree {tree}: nodes {other} and {node} share category set {set}")));
                }
                if usage.numeric.is_some() {
                    return Err(mixed_use(name, usage, tree, node));
                }
                usage.categorical.get_or_insert((tree, node));
                let categories = bitset_codes(&category_words[category_sets[set].clone()], category_budget)
                    .map_err(|message| invalid(format!("tree {tree}: category set {set} of node {node}: {message}")))?;
                if let Some(largest) = categories.last() {
                    usage.largest_code = Some(usage.largest_code.map_or(*largest, |code| code.max(*largest)));
                }
                // LightGBM sends NaN and negative values right, and the set's categories left.
                (SplitTest::CategoryIn { categories, in_set: Direction::Left }, Direction::Right)
            } else {
                if threshold.is_nan() {
                    return Err(invalid(format!("tree {tree}: threshold[{node}] is NaN")));
                }
                if usage.categorical.is_some() {
                    return Err(mixed_use(name, usage, tree, node));
                }
                match usage.numeric {
                    None => usage.numeric = Some((missing_type, tree, node)),
                    Some((first, first_tree, first_node)) if first != missing_type => {
                        return Err(unsupported(format!(
                            "feature {name:?} has missing type {} in tree {first_tree} node {first_node} \
                             but {} in tree {tree} node {node}; riskserve needs one missing type per feature",
                            first.name(),
                            missing_type.name()
                        )));
                    }
                    Some(_) => {}
                }
                let missing = if default_left { Direction::Left } else { Direction::Right };
                let (test, missing) = match numeric_bound(threshold) {
                    Some(bound) => (SplitTest::LessThan(bound), missing),
                    None => {
                        // x <= +inf sends every number left, which no `x < t` does for +inf:
                        // swap the children and send every number right with `x < -inf`.
                        std::mem::swap(&mut left, &mut right);
                        let missing = if default_left { Direction::Right } else { Direction::Left };
                        (SplitTest::LessThan(f64::NEG_INFINITY), missing)
                    }
                };
                // Missing type None reads NaN as 0: send NaN wherever 0 goes at this split, so
                // the feature needs no rewrite before scoring (batches then take the block path).
                let missing = match (missing_type, &test) {
                    (MissingType::None, SplitTest::LessThan(bound)) => {
                        if 0.0 < *bound {
                            Direction::Left
                        } else {
                            Direction::Right
                        }
                    }
                    _ => missing,
                };
                (test, missing)
            };
            nodes.push(Node::Split { feature: feature as u32, test, left, right, missing });
        }
        nodes.extend(leaves);
        check_reachability(tree, internal, &nodes)?;
        Ok(nodes)
    }

    /// The tree's category bitsets: the words of `cat_threshold` and, per set, its range of
    /// words from `cat_boundaries`.
    fn category_sets(&self, internal: usize) -> Result<(Vec<u32>, Vec<std::ops::Range<usize>>), ModelError> {
        let tree = self.index;
        let num_sets = self.count("num_cat")?;
        if num_sets == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        // Each categorical split has its own set, so there are at most as many sets as splits.
        if num_sets > internal {
            return Err(invalid(format!("tree {tree}: num_cat={num_sets} but the tree has {internal} splits")));
        }
        let words: Vec<u32> = self.values(
            "cat_threshold",
            self.text("cat_threshold")?.split_ascii_whitespace().count(),
            "a 32-bit word",
        )?;
        let boundaries: Vec<usize> = self.values("cat_boundaries", num_sets + 1, "a word index")?;
        if boundaries.first() != Some(&0)
            || boundaries.last() != Some(&words.len())
            || boundaries.windows(2).any(|pair| pair[0] > pair[1])
        {
            return Err(invalid(format!(
                "tree {tree}: cat_boundaries must rise from 0 to the {} words of cat_threshold",
                words.len()
            )));
        }
        let ranges = boundaries.windows(2).map(|pair| pair[0]..pair[1]).collect();
        Ok((words, ranges))
    }
}

/// The `t` of the representation's `x < t` that sends left exactly the numbers LightGBM sends
/// left at `x <= threshold`, or `None` for a threshold of +inf (every number goes left).
///
/// LightGBM's dense-row reader drops values with |x| <= kZeroThreshold, so they reach the trees as
/// 0: a tiny number must go where 0 goes. Thresholds between -kZeroThreshold and kZeroThreshold
/// are exactly what LightGBM writes for splits at zero.
fn numeric_bound(threshold: f64) -> Option<f64> {
    if threshold == f64::INFINITY {
        None
    } else if threshold >= 0.0 {
        // 0 goes left, and so do the tiny numbers read as 0.
        Some(threshold.max(LIGHTGBM_ZERO_THRESHOLD).next_up())
    } else if threshold >= -LIGHTGBM_ZERO_THRESHOLD {
        // 0 goes right, and so do the tiny numbers read as 0: only x < -kZeroThreshold goes left.
        Some(-LIGHTGBM_ZERO_THRESHOLD)
    } else {
        Some(threshold.next_up())
    }
}

fn mixed_use(name: &str, usage: &FeatureUse, tree: usize, node: usize) -> ModelError {
    let (numeric_tree, numeric_node) = usage.numeric.map_or((tree, node), |(_, tree, node)| (tree, node));
    let (categorical_tree, categorical_node) = usage.categorical.unwrap_or((tree, node));
    invalid(format!(
        "feature {name:?} has a numeric split (tree {numeric_tree} node {numeric_node}) \
         and a categorical split (tree {categorical_tree} node {categorical_node})"
    ))
}

impl FeatureUse {
    fn is_used(&self) -> bool {
        self.numeric.is_some() || self.categorical.is_some()
    }
}

/// The codes whose bits are set, in increasing order; `budget` is what the model may still list.
fn bitset_codes(words: &[u32], budget: &mut usize) -> Result<Vec<u32>, String> {
    let count: usize = words.iter().map(|word| word.count_ones() as usize).sum();
    if count > *budget {
        return Err(format!(
            "lists {count} categories, more than the {MAX_CATEGORIES_PER_MODEL} a model may list in all"
        ));
    }
    *budget -= count;
    let mut codes = Vec::with_capacity(count);
    for (position, word) in words.iter().enumerate() {
        let mut bits = *word;
        while bits != 0 {
            let bit = bits.trailing_zeros();
            // Words without set bits cost no budget, so a code can still be far out: LightGBM
            // reads categories as `int`.
            let code = u32::try_from(position)
                .ok()
                .and_then(|position| position.checked_mul(32))
                .and_then(|base| base.checked_add(bit))
                .filter(|code| *code < i32::MAX as u32)
                .ok_or_else(|| format!("has a category code beyond {}", i32::MAX))?;
            codes.push(code);
            bits &= bits - 1;
        }
    }
    Ok(codes)
}

/// Checks that every node and leaf is reached exactly once from the root, naming the LightGBM
/// field that breaks it (the representation's own check would only name converted indices).
fn check_reachability(tree: usize, internal: usize, nodes: &[Node]) -> Result<(), ModelError> {
    let describe = |index: u32| {
        let index = index as usize;
        if index < internal { format!("node {index}") } else { format!("leaf {}", index - internal) }
    };
    let mut seen = vec![false; nodes.len()];
    seen[0] = true;
    let mut stack = vec![0u32];
    let mut reached = 1;
    while let Some(index) = stack.pop() {
        if let Some(Node::Split { left, right, .. }) = nodes.get(index as usize) {
            for (field, child) in [("left_child", *left), ("right_child", *right)] {
                let slot = &mut seen[child as usize];
                if *slot {
                    return Err(invalid(format!(
                        "tree {tree}: {field}[{index}] leads to {} a second time (a cycle or a shared child)",
                        describe(child)
                    )));
                }
                *slot = true;
                reached += 1;
                stack.push(child);
            }
        }
    }
    if reached != nodes.len() {
        let first = seen.iter().position(|seen| !seen).unwrap_or(0) as u32;
        return Err(invalid(format!(
            "tree {tree}: {} of {} nodes and leaves are not reachable from the root, {} among them",
            nodes.len() - reached,
            nodes.len(),
            describe(first)
        )));
    }
    Ok(())
}

fn parse_count(key: &str, text: &str) -> Result<usize, ModelError> {
    text.parse().map_err(|_| malformed(format!("{key} is not a count, found {}", shorten(text))))
}

/// The category lists of `pandas_categorical:` (one per pandas `category` column, in column
/// order), as the strings a caller sends.
fn parse_pandas_categorical(json: &str) -> Result<Vec<Vec<String>>, ModelError> {
    let value: serde_json::Value = serde_json::from_str(json.trim())
        .map_err(|error| malformed(format!("pandas_categorical is not JSON: {error}")))?;
    let lists = match value {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Array(lists) => lists,
        _ => return Err(malformed("pandas_categorical is not a list of category lists")),
    };
    lists
        .into_iter()
        .enumerate()
        .map(|(list_index, list)| {
            let serde_json::Value::Array(values) = list else {
                return Err(malformed(format!("pandas_categorical[{list_index}] is not a list")));
            };
            let mut names = Vec::with_capacity(values.len());
            let mut seen = HashMap::with_capacity(values.len());
            for (code, value) in values.into_iter().enumerate() {
                // The text pandas shows for a category: str() of the Python value.
                let name = match value {
                    serde_json::Value::String(text) => text,
                    serde_json::Value::Number(number) => number.to_string(),
                    serde_json::Value::Bool(true) => "True".to_string(),
                    serde_json::Value::Bool(false) => "False".to_string(),
                    _ => {
                        return Err(malformed(format!(
                            "pandas_categorical[{list_index}][{code}] is not a string, number or boolean"
                        )));
                    }
                };
                if let Some(first) = seen.insert(name.clone(), code) {
                    return Err(invalid(format!(
                        "pandas_categorical[{list_index}] lists category {name:?} twice (codes {first} and {code})"
                    )));
                }
                names.push(name);
            }
            Ok(names)
        })
        .collect()
}

/// The model's inputs: names, kinds (categorical when a split or `feature_infos` says so, with
/// names from `pandas_categorical`), and missing rules from the numeric splits.
fn build_features(
    header: &Header<'_>,
    usage: &[FeatureUse],
    pandas_categories: Vec<Vec<String>>,
) -> Result<Vec<Feature>, ModelError> {
    let categorical: Vec<bool> = usage
        .iter()
        .zip(&header.feature_infos)
        .map(|(usage, info)| usage.categorical.is_some() || matches!(info, FeatureInfo::Categories { .. }))
        .collect();
    let owners = align_pandas_categories(header, usage, &categorical, &pandas_categories)?;
    let mut names_of: Vec<Option<Vec<String>>> = vec![None; usage.len()];
    for (list, feature) in pandas_categories.into_iter().zip(owners) {
        names_of[feature] = Some(list);
    }
    Ok(header
        .feature_names
        .iter()
        .zip(usage)
        .zip(categorical)
        .zip(names_of)
        .map(|(((name, usage), categorical), names)| {
            let kind = if categorical || names.is_some() {
                // LightGBM's Python package turns a category it does not know into NaN.
                FeatureKind::Categorical { categories: names, unknown: UnknownCategory::Missing }
            } else {
                FeatureKind::Numeric
            };
            let missing = usage.numeric.map_or(MissingRule::AsIs, |(missing_type, _, _)| missing_type.rule());
            Feature { name: name.to_string(), kind, missing }
        })
        .collect())
}

/// Which feature each `pandas_categorical` list belongs to. The lists follow the DataFrame's
/// `category` columns in order, but the file does not say which columns those were: ordered
/// categories train as numeric codes, integer columns can be declared categorical, and constant
/// columns are `none`. The in-order match onto the categorical features is taken when it fits.
/// Otherwise the order-preserving matches that fit every list's codes and put the most lists on
/// categorical features are considered, and the file is refused unless they all agree on every
/// feature that a split reads (where a list lands among unused features changes no prediction).
fn align_pandas_categories(
    header: &Header<'_>,
    usage: &[FeatureUse],
    categorical: &[bool],
    lists: &[Vec<String>],
) -> Result<Vec<usize>, ModelError> {
    if lists.is_empty() {
        return Ok(Vec::new());
    }
    // 0: cannot hold the list; 1: can, as a numeric or unused feature; 2: can, as a categorical one.
    let fits = |list: usize, feature: usize| -> u32 {
        let size = lists[list].len() as i64;
        let codes_fit = usage[feature].largest_code.is_none_or(|code| i64::from(code) < size);
        match (&header.feature_infos[feature], categorical[feature]) {
            (_, true) if !codes_fit => 0,
            (FeatureInfo::Categories { largest }, true) => u32::from(*largest < size) * 2,
            (_, true) => 2,
            (FeatureInfo::Unused, false) => 1,
            (FeatureInfo::Range { min, max }, false) => {
                u32::from(*min >= 0.0 && min.fract() == 0.0 && max.fract() == 0.0 && *max < size as f64)
            }
            (FeatureInfo::Categories { .. }, false) => 0,
        }
    };
    let categorical_features: Vec<usize> = (0..usage.len()).filter(|feature| categorical[*feature]).collect();
    if categorical_features.len() == lists.len()
        && categorical_features.iter().enumerate().all(|(list, feature)| fits(list, *feature) == 2)
    {
        return Ok(categorical_features);
    }
    let num_lists = lists.len();
    let num_features = usage.len();
    let describe = || {
        let names: Vec<&str> = categorical_features.iter().map(|feature| header.feature_names[*feature]).collect();
        format!(
            "pandas_categorical has {num_lists} category lists (sizes {}) \
             but the model's categorical features are [{}]",
            lists.iter().map(|list| list.len().to_string()).collect::<Vec<_>>().join(", "),
            names.join(", ")
        )
    };
    if num_lists > num_features {
        return Err(invalid(describe()));
    }
    let width = num_features + 1;
    if (num_lists + 1).saturating_mul(width) > MAX_PANDAS_ALIGNMENT_CELLS {
        return Err(unsupported(format!("{}; too many to match to features", describe())));
    }
    let cell = |list: usize, feature: usize| list * width + feature;
    let better = |a: Option<u32>, b: Option<u32>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    // prefix[cell(j, i)]: the best score placing lists ..j onto features ..i (None: impossible);
    // suffix[cell(j, i)]: the same for lists j.. onto features i...
    let mut prefix: Vec<Option<u32>> = vec![None; (num_lists + 1) * width];
    let mut suffix: Vec<Option<u32>> = vec![None; (num_lists + 1) * width];
    for i in 0..width {
        prefix[cell(0, i)] = Some(0);
        suffix[cell(num_lists, i)] = Some(0);
    }
    for j in 1..=num_lists {
        for i in 1..width {
            let fit = fits(j - 1, i - 1);
            let take = if fit == 0 { None } else { prefix[cell(j - 1, i - 1)].map(|score| score + fit) };
            prefix[cell(j, i)] = better(prefix[cell(j, i - 1)], take);
        }
    }
    for j in (0..num_lists).rev() {
        for i in (0..num_features).rev() {
            let fit = fits(j, i);
            let take = if fit == 0 { None } else { suffix[cell(j + 1, i + 1)].map(|score| score + fit) };
            suffix[cell(j, i)] = better(suffix[cell(j, i + 1)], take);
        }
    }
    let Some(best) = suffix[cell(0, 0)] else {
        return Err(invalid(format!("{}; no features in order can hold them", describe())));
    };
    // Every feature a split reads must get the same list (or none) in every best match.
    for feature in (0..num_features).filter(|feature| usage[*feature].is_used()) {
        let sum = |a: Option<u32>, b: Option<u32>| a.zip(b).map(|(a, b)| a + b);
        let mut outcomes = (0..num_lists).filter(|list| {
            let fit = fits(*list, feature);
            fit != 0
                && sum(prefix[cell(*list, feature)], suffix[cell(list + 1, feature + 1)]).map(|score| score + fit)
                    == Some(best)
        });
        let gets_list = outcomes.next();
        let another_list = outcomes.next().is_some();
        let gets_none =
            (0..=num_lists).any(|list| sum(prefix[cell(list, feature)], suffix[cell(list, feature + 1)]) == Some(best));
        if another_list || (gets_list.is_some() && gets_none) {
            return Err(unsupported(format!(
                "{}; cannot tell whether feature {:?} is one of them",
                describe(),
                header.feature_names[feature]
            )));
        }
    }
    // Any best match then gives the same model; take the one that places each list earliest.
    let mut owners = Vec::with_capacity(num_lists);
    let (mut list, mut remaining) = (0, best);
    for feature in 0..num_features {
        if list == num_lists {
            break;
        }
        let fit = fits(list, feature);
        if fit != 0 && suffix[cell(list + 1, feature + 1)].is_some_and(|score| score + fit == remaining) {
            owners.push(feature);
            remaining -= fit;
            list += 1;
        }
    }
    Ok(owners)
}

/// A piece of the file for an error message, cut short when long.
fn shorten(text: &str) -> String {
    const LIMIT: usize = 60;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small model as lightgbm 4.x writes it: a numeric split with missing type NaN (default
    /// left) on `age`, and a categorical split on `color` whose set is {1, 3}.
    const MODEL: &str = "tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=1
objective=binary sigmoid:1
feature_names=age color
feature_infos=[18:90] -1:0:1:2:3
tree_sizes=400

Tree=0
num_leaves=3
num_cat=1
split_feature=0 1
split_gain=10 5
threshold=30.5 0
decision_type=10 9
left_child=-1 -2
right_child=1 -3
leaf_value=-0.5 0.25 0.75
leaf_weight=1 1 1
leaf_count=10 10 10
internal_value=0 0
internal_weight=3 2
internal_count=30 20
cat_boundaries=0 1
cat_threshold=10
is_linear=0
shrinkage=1


end of trees

feature_importances:
age=1
color=1

parameters:
[boosting: gbdt]
[linear_tree: 0]
end of parameters

pandas_categorical:[[\"red\", \"green\", \"blue\", \"white\"]]
";

    fn load_text(text: &str) -> Result<Model, ModelError> {
        load(text.as_bytes())
    }

    /// The model with the first occurrence of `from` replaced by `to`.
    fn edited(from: &str, to: &str) -> String {
        assert!(MODEL.contains(from), "the test model has no {from:?}");
        MODEL.replacen(from, to, 1)
    }

    fn trees(model: &Model) -> &TreeEnsemble {
        match &model.body {
            ModelBody::Trees(ensemble) => ensemble,
            other => panic!("not trees: {other:?}"),
        }
    }

    #[test]
    fn covers_are_the_data_counts_of_nodes_then_leaves() {
        let model = load_text(MODEL).unwrap();
        assert_eq!(trees(&model).trees[0].cover, Some(vec![30.0, 20.0, 10.0, 10.0, 10.0]));
        let without = load_text(&edited("internal_count=30 20\n", "")).unwrap();
        assert_eq!(trees(&without).trees[0].cover, None);
        let error = load_text(&edited("leaf_count=10 10 10", "leaf_count=10 -1 10")).unwrap_err();
        assert!(error.to_string().contains("tree 0: a data count (node 3) is negative"), "{error}");
    }

    #[test]
    fn imports_splits_leaves_features_and_objective() {
        let model = load_text(MODEL).unwrap();
        assert_eq!(model.source, Format::Lightgbm);
        assert_eq!(
            model.output,
            Output { transform: Transform::Sigmoid { scale: 1.0 }, kind: OutputKind::Probability }
        );
        assert_eq!(
            model.inputs[0],
            Feature { name: "age".into(), kind: FeatureKind::Numeric, missing: MissingRule::AsIs }
        );
        let names = ["red", "green", "blue", "white"].map(String::from).to_vec();
        assert_eq!(
            model.inputs[1],
            Feature {
                name: "color".into(),
                kind: FeatureKind::Categorical { categories: Some(names), unknown: UnknownCategory::Missing },
                missing: MissingRule::AsIs,
            }
        );
        let ensemble = trees(&model);
        assert_eq!(ensemble.precision, Precision::F64);
        assert_eq!(ensemble.aggregation, Aggregation::Sum);
        assert_eq!(ensemble.base_margin, vec![0.0]);
        // Internal nodes keep their indices; leaf j follows at 2 + j.
        assert_eq!(
            ensemble.trees[0].nodes,
            vec![
                Node::Split {
                    feature: 0,
                    test: SplitTest::LessThan(30.5f64.next_up()),
                    left: 2,
                    right: 1,
                    missing: Direction::Left
                },
                Node::Split {
                    feature: 1,
                    test: SplitTest::CategoryIn { categories: vec![1, 3], in_set: Direction::Left },
                    left: 3,
                    right: 4,
                    missing: Direction::Right
                },
                Node::Leaf { value: -0.5 },
                Node::Leaf { value: 0.25 },
                Node::Leaf { value: 0.75 },
            ]
        );
    }

    #[test]
    fn missing_types_become_feature_rules() {
        for (decision_type, rule, missing) in [
            // Missing type None: NaN goes where 0 goes (the test model's first split is
            // `x <= 30.5`, so left), whatever the default-left bit says.
            ("0", MissingRule::AsIs, Direction::Left),
            ("2", MissingRule::AsIs, Direction::Left),
            ("4", MissingRule::ZeroAsMissing, Direction::Right),
            ("6", MissingRule::ZeroAsMissing, Direction::Left),
            ("8", MissingRule::AsIs, Direction::Right),
        ] {
            let model = load_text(&edited("decision_type=10 9", &format!("decision_type={decision_type} 9"))).unwrap();
            assert_eq!(model.inputs[0].missing, rule, "decision_type {decision_type}");
            let Node::Split { missing: actual, .. } = &trees(&model).trees[0].nodes[0] else { panic!() };
            assert_eq!(*actual, missing, "decision_type {decision_type}");
        }
    }

    #[test]
    fn thresholds_send_tiny_values_where_zero_goes() {
        let zero = LIGHTGBM_ZERO_THRESHOLD;
        assert_eq!(numeric_bound(1.5), Some(1.5f64.next_up()));
        assert_eq!(numeric_bound(-1.5), Some((-1.5f64).next_up()));
        assert_eq!(numeric_bound(zero), Some(zero.next_up()));
        assert_eq!(numeric_bound(0.0), Some(zero.next_up()));
        assert_eq!(numeric_bound(-zero), Some(-zero));
        assert_eq!(numeric_bound(f64::NEG_INFINITY), Some(f64::NEG_INFINITY.next_up()));
        assert_eq!(numeric_bound(f64::INFINITY), None);
    }

    #[test]
    fn an_infinite_threshold_sends_every_number_left() {
        let model = load_text(&edited("threshold=30.5 0", "threshold=inf 0")).unwrap();
        // The children swap and `x < -inf` sends every number to the (new) right: LightGBM's left.
        assert_eq!(
            trees(&model).trees[0].nodes[0],
            Node::Split {
                feature: 0,
                test: SplitTest::LessThan(f64::NEG_INFINITY),
                left: 1,
                right: 2,
                missing: Direction::Right
            }
        );
    }

    #[test]
    fn a_single_leaf_tree_has_only_its_value() {
        let single = "Tree=1\nnum_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\n\
                      left_child=\nright_child=\nleaf_value=0.125\nleaf_weight=\nleaf_count=\ninternal_value=\n\
                      internal_weight=\ninternal_count=\nis_linear=0\nshrinkage=1\n\n\nend of trees";
        let text = edited("end of trees", single).replacen("tree_sizes=400", "tree_sizes=400 200", 1);
        let model = load_text(&text).unwrap();
        assert_eq!(trees(&model).trees[1].nodes, vec![Node::Leaf { value: 0.125 }]);
    }

    #[test]
    fn objectives_choose_transform_and_output() {
        for (objective, transform, kind) in [
            ("binary sigmoid:2.5", Transform::Sigmoid { scale: 2.5 }, OutputKind::Probability),
            ("cross_entropy", Transform::Sigmoid { scale: 1.0 }, OutputKind::Probability),
            ("xentropy", Transform::Sigmoid { scale: 1.0 }, OutputKind::Probability),
            ("regression", Transform::Identity, OutputKind::Value),
            ("regression_l1", Transform::Identity, OutputKind::Value),
            ("huber", Transform::Identity, OutputKind::Value),
            ("fair", Transform::Identity, OutputKind::Value),
            ("quantile", Transform::Identity, OutputKind::Value),
            ("mape", Transform::Identity, OutputKind::Value),
            ("poisson", Transform::Exp, OutputKind::Value),
            ("gamma", Transform::Exp, OutputKind::Value),
            ("tweedie tweedie_variance_power:1.5", Transform::Exp, OutputKind::Value),
        ] {
            let model = load_text(&edited("objective=binary sigmoid:1", &format!("objective={objective}"))).unwrap();
            assert_eq!(model.output, Output { transform, kind }, "{objective}");
        }
    }

    #[test]
    fn multiclass_trees_take_turns_and_average_output_means() {
        let second = MODEL.split("Tree=0\n").nth(1).unwrap().split("end of trees").next().unwrap();
        let text = edited("end of trees", &format!("Tree=1\n{second}end of trees"))
            .replacen("num_class=1", "num_class=2", 1)
            .replacen("num_tree_per_iteration=1", "num_tree_per_iteration=2", 1)
            .replacen("tree_sizes=400", "tree_sizes=400 400", 1)
            .replacen("objective=binary sigmoid:1", "objective=multiclassova num_class:2 sigmoid:1.5", 1)
            .replacen("tree_sizes", "average_output\ntree_sizes", 1);
        let model = load_text(&text).unwrap();
        let ensemble = trees(&model);
        assert_eq!(ensemble.trees.iter().map(|tree| tree.output).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(ensemble.num_outputs, 2);
        assert_eq!(ensemble.aggregation, Aggregation::Mean);
        assert_eq!(
            model.output,
            Output { transform: Transform::Sigmoid { scale: 1.5 }, kind: OutputKind::ClassProbabilities }
        );
        let softmax = load_text(&text.replacen("multiclassova num_class:2 sigmoid:1.5", "multiclass num_class:2", 1));
        assert_eq!(softmax.unwrap().output.transform, Transform::Softmax);
    }

    #[test]
    fn pandas_lists_skip_integer_categorical_features_and_follow_ordered_ones() {
        // `code` is an integer column declared categorical (codes up to 40), `grade` an ordered
        // pandas category trained as numeric codes 0..3: the lists belong to color and grade.
        let text = MODEL
            .replacen("max_feature_idx=1", "max_feature_idx=3", 1)
            .replacen("feature_names=age color", "feature_names=age color code grade", 1)
            .replacen("feature_infos=[18:90] -1:0:1:2:3", "feature_infos=[18:90] -1:0:1:2:3 0:7:40 [0:3]", 1)
            .replacen(
                "pandas_categorical:[[\"red\", \"green\", \"blue\", \"white\"]]",
                "pandas_categorical:[[\"red\", \"green\", \"blue\", \"white\"], [\"A\", \"B\", \"C\", \"D\"]]",
                1,
            );
        let model = load_text(&text).unwrap();
        let kinds: Vec<&FeatureKind> = model.inputs.iter().map(|feature| &feature.kind).collect();
        let named = |names: &[&str]| FeatureKind::Categorical {
            categories: Some(names.iter().map(|name| name.to_string()).collect()),
            unknown: UnknownCategory::Missing,
        };
        assert_eq!(*kinds[1], named(&["red", "green", "blue", "white"]));
        assert_eq!(*kinds[2], FeatureKind::Categorical { categories: None, unknown: UnknownCategory::Missing });
        assert_eq!(*kinds[3], named(&["A", "B", "C", "D"]));
        // Numbers and booleans are named as pandas prints them.
        let numbers =
            load_text(&MODEL.replacen("[[\"red\", \"green\", \"blue\", \"white\"]]", "[[10, 2.5, true, \"x\"]]", 1))
                .unwrap();
        assert_eq!(numbers.inputs[1].kind, named(&["10", "2.5", "True", "x"]));
    }

    #[test]
    fn pandas_lists_that_could_belong_to_several_features_are_refused() {
        // Two categorical features with codes below 4 and one list of 4 names: which one?
        let text = MODEL
            .replacen("max_feature_idx=1", "max_feature_idx=2", 1)
            .replacen("feature_names=age color", "feature_names=age color other", 1)
            .replacen("feature_infos=[18:90] -1:0:1:2:3", "feature_infos=[18:90] -1:0:1:2:3 0:1:2", 1)
            .replacen("split_feature=0 1", "split_feature=2 1", 1)
            .replacen("decision_type=10 9", "decision_type=9 9", 1)
            .replacen("threshold=30.5 0", "threshold=1 0", 1)
            .replacen("num_cat=1", "num_cat=2", 1)
            .replacen("cat_boundaries=0 1", "cat_boundaries=0 1 2", 1)
            .replacen("cat_threshold=10", "cat_threshold=10 3", 1);
        let error = load_text(&text).unwrap_err().to_string();
        assert!(error.contains("cannot tell whether feature"), "{error}");
    }

    /// Each edit of the model must fail with a message containing the substring.
    #[test]
    fn malformed_models_are_refused_naming_the_problem() {
        let cases: &[(&str, &str, &str)] = &[
            ("tree\nversion", "forest\nversion", "starts with the line \"tree\""),
            ("version=v4", "version=v9", "format version \"v9\""),
            ("num_class=1\n", "", "the header has no num_class"),
            ("num_class=1", "num_class=many", "num_class is not a count"),
            ("num_tree_per_iteration=1", "num_tree_per_iteration=3", "num_tree_per_iteration=3"),
            ("max_feature_idx=1", "max_feature_idx=5", "feature_names has 2 names but max_feature_idx=5"),
            ("max_feature_idx=1", "max_feature_idx=-7", "max_feature_idx is not a feature index"),
            ("feature_names=age color", "feature_names=age age", "feature name \"age\" is used by features 0 and 1"),
            ("feature_infos=[18:90] -1:0:1:2:3", "feature_infos=[18:90]", "feature_infos has 1 entries for 2"),
            ("feature_infos=[18:90]", "feature_infos=[18;90]", "feature_infos of feature \"age\""),
            ("objective=binary sigmoid:1", "objective=lambdarank", "objective \"lambdarank\""),
            ("objective=binary sigmoid:1", "objective=regression sqrt", "reg_sqrt"),
            ("objective=binary sigmoid:1", "objective=binary", "objective binary has no sigmoid parameter"),
            ("objective=binary sigmoid:1", "objective=binary sigmoid:-1", "sigmoid:\"-1\""),
            ("objective=binary sigmoid:1\n", "", "names no objective"),
            ("objective=binary sigmoid:1", "objective=multiclass num_class:1", "needs at least 2 classes"),
            ("tree_sizes=400", "tree_sizes=400 400", "tree_sizes lists 2 trees but the file has 1"),
            ("Tree=0", "Tree=7", "expected \"Tree=0\""),
            ("num_leaves=3\n", "", "tree 0: num_leaves is missing"),
            ("num_leaves=3", "num_leaves=4", "tree 0: leaf_value has 3 values but 4 are expected"),
            ("num_leaves=3", "num_leaves=2", "tree 0: leaf_value has 3 values but 2 are expected"),
            ("num_leaves=3", "num_leaves=0", "tree 0: num_leaves is 0"),
            ("num_leaves=3", "num_leaves=99999999999999999999999", "tree 0: num_leaves is not a count"),
            ("num_leaves=3", "num_leaves=4000000000", "tree 0: num_leaves=4000000000 is more than supported"),
            ("num_leaves=3", "num_leaves=3\nnum_leaves=3", "tree 0: num_leaves appears twice"),
            ("split_feature=0 1", "split_feature=0 2", "tree 0: split_feature[1] is 2, but the model has 2 features"),
            ("split_feature=0 1", "split_feature=0 -1", "tree 0: split_feature[1] is -1"),
            ("split_feature=0 1", "split_feature=0 x", "tree 0: split_feature[1] is not a feature index"),
            ("split_feature=0 1", "split_feature=0", "tree 0: split_feature has 1 values but 2 are expected"),
            ("threshold=30.5 0", "threshold=nan 0", "tree 0: threshold[0] is NaN"),
            ("threshold=30.5 0", "threshold=30.5 1", "tree 0: threshold[1] of a categorical split is 1"),
            ("threshold=30.5 0", "threshold=30.5 0.5", "tree 0: threshold[1] of a categorical split is 0.5"),
            ("decision_type=10 9", "decision_type=14 9", "tree 0: decision_type[0] is 14, with missing type 3"),
            ("decision_type=10 9", "decision_type=10 64", "tree 0: decision_type[1] is 64"),
            ("decision_type=10 9", "decision_type=9 9", "threshold[0] of a categorical split is 30.5"),
            (
                "left_child=-1 -2",
                "left_child=-1 5",
                "tree 0: left_child[1] is 5, outside the tree's 2 nodes and 3 leaves",
            ),
            ("left_child=-1 -2", "left_child=-1 -9", "tree 0: left_child[1] is -9"),
            ("left_child=-1 -2", "left_child=-1 0", "tree 0: left_child[1] leads to node 0 a second time"),
            ("right_child=1 -3", "right_child=1 -2", "tree 0: right_child[1] leads to leaf 1 a second time"),
            ("left_child=-1 -2", "left_child=-3 -2", "right_child[1] leads to leaf 2 a second time"),
            ("leaf_value=-0.5 0.25 0.75", "leaf_value=-0.5 inf 0.75", "tree 0: leaf_value[1] is not finite"),
            ("leaf_value=-0.5 0.25 0.75", "leaf_value=-0.5 0.25 zero", "tree 0: leaf_value[2] is not a number"),
            ("num_cat=1", "num_cat=1000000", "tree 0: num_cat=1000000 but the tree has 2 splits"),
            ("num_cat=1", "num_cat=0", "not one of the tree's 0 category sets"),
            ("cat_boundaries=0 1", "cat_boundaries=0 5", "tree 0: cat_boundaries must rise from 0"),
            ("cat_boundaries=0 1", "cat_boundaries=0", "tree 0: cat_boundaries has 1 values but 2"),
            ("cat_boundaries=0 1\n", "", "tree 0: cat_boundaries is missing"),
            ("cat_threshold=10", "cat_threshold=4294967296", "tree 0: cat_threshold[0] is not a 32-bit word"),
            ("is_linear=0", "is_linear=1", "linear_tree"),
            ("is_linear=0", "is_linear=0\nleaf_coeff=1", "linear_tree"),
            ("[linear_tree: 0]", "[linear_tree: 1]", "linear_tree"),
            ("tree_sizes=400", "linear_tree=1\ntree_sizes=400", "linear_tree"),
            ("shrinkage=1\n", "shrinkage=1\nnonsense\n", "line 31 (tree 0): expected key=value"),
            ("end of trees", "end of forests", "expected \"Tree=N\" or \"end of trees\""),
            ("pandas_categorical:[[", "pandas_categorical:[(", "pandas_categorical is not JSON"),
            ("pandas_categorical:[[", "pandas_categorical:{\"a\": [[", "pandas_categorical is not JSON"),
            ("\"red\", \"green\"", "\"red\", \"red\"", "lists category \"red\" twice"),
            ("[[\"red\"", "[[null", "pandas_categorical[0][0] is not a string"),
            ("[[\"red\", \"green\", \"blue\", \"white\"]]", "[[\"red\"]]", "no features in order can hold them"),
        ];
        for (from, to, expected) in cases {
            let error = match load_text(&edited(from, to)) {
                Ok(_) => panic!("{from:?} -> {to:?} loaded"),
                Err(error) => error.to_string(),
            };
            assert!(error.contains(expected), "{from:?} -> {to:?}: {error:?} lacks {expected:?}");
            assert!(!error.ends_with('.'), "{error}");
        }
    }

    #[test]
    fn every_truncation_is_an_error_and_never_a_panic() {
        let cut_model = MODEL.find("end of trees").unwrap();
        for length in 0..MODEL.len() {
            let result = load(&MODEL.as_bytes()[..length]);
            if length <= cut_model {
                assert!(result.is_err(), "a file cut at {length} bytes loaded");
            }
        }
        assert!(load(b"tree\n").unwrap_err().to_string().contains("without \"end of trees\""));
        assert!(load(b"").unwrap_err().to_string().contains("the file is empty"));
        assert!(load(b"tree\xff\n").unwrap_err().to_string().contains("not UTF-8"));
    }

    #[test]
    fn mixed_missing_types_are_refused_naming_the_feature() {
        let second = MODEL.split("Tree=0\n").nth(1).unwrap().split("end of trees").next().unwrap();
        let text = edited(
            "end of trees",
            &format!("Tree=1\n{}end of trees", second.replacen("decision_type=10", "decision_type=2", 1)),
        )
        .replacen("tree_sizes=400", "tree_sizes=400 400", 1);
        let error = load_text(&text).unwrap_err().to_string();
        assert!(
            error.contains("feature \"age\" has missing type NaN in tree 0 node 0 but None in tree 1 node 0"),
            "{error}"
        );
    }

    #[test]
    fn a_feature_split_both_ways_is_refused() {
        let text = edited("split_feature=0 1", "split_feature=1 1").replacen("threshold=30.5 0", "threshold=2.5 0", 1);
        let error = load_text(&text).unwrap_err().to_string();
        assert!(
            error.contains("feature \"color\" has a numeric split (tree 0 node 0) and a categorical split"),
            "{error}"
        );
    }

    #[test]
    fn category_bitsets_list_codes_within_the_budget() {
        let mut budget = 5;
        assert_eq!(bitset_codes(&[0b1010, 0, 1 << 31], &mut budget), Ok(vec![1, 3, 95]));
        assert_eq!(budget, 2);
        let error = bitset_codes(&[u32::MAX], &mut budget).unwrap_err();
        assert!(error.contains("lists 32 categories"), "{error}");
    }
}
