//! Criterion benches of the evaluator on synthetic tree ensembles shaped like XGBoost and LightGBM models.
//!
//! The models are built directly in the model representation from a seeded generator, so the bench
//! needs no Python and no fixture files. Trees are grown on a pool of synthetic rows the way a
//! library grows them: each split picks a feature and a threshold among the values of the rows that
//! reach the node, so bench rows drawn from the same distribution spread over the leaves instead
//! of all running down one path.
//!
//! Models: (a) 100 trees of depth 6 and (b) 500 trees of depth 8, XGBoost-like (f32, `x < t`);
//! (c) 1,000 leaf-wise trees of 63 leaves, LightGBM-like (f64, `x <= t` as `x < next_up(t)`),
//! also with the missing-value rewrite a LightGBM file gives. Each is timed on one row (with a
//! reused scratch, cycling over 1,000 rows) and on a batch of 1,000 rows on one thread.
//!
//! Each model is timed with the reference walk (`/reference`), the quantised walk with the portable scalar kernel
//! (`/portable`) and the evaluator the compile step chooses with the widest kernel this CPU runs (`/auto`), in one
//! run.
//!
//! Run: `cargo bench -p riskserve-model --bench scoring -- --warm-up-time 1 --measurement-time 3`
//! Instructions (no timing): `RISKSERVE_COUNT_INSTRUCTIONS=b valgrind --tool=callgrind <bench binary>`, then
//! `callgrind_annotate --inclusive=yes` on the `reference_*` / `portable_*` / `auto_*` functions (bench/README.md).

use std::hint::black_box;

mod common;

use common::{NUM_FEATURES, Random, has_missing_values, synthetic_rows};
use criterion::{Criterion, Throughput, criterion_group};
use riskserve_model::error::Format;
use riskserve_model::ir::{
    Aggregation, Direction, Feature, MissingRule, Model, ModelBody, Node, Output, OutputKind, Precision, SplitTest,
    Transform, Tree, TreeEnsemble,
};
use riskserve_model::{EvaluatorChoice, Kernel, KernelChoice, Predictor, Scratch};

/// Rows the trees are grown on.
const POOL_ROWS: usize = 8192;
/// Rows of a batch, and rows the one-row bench cycles through.
const BATCH_ROWS: usize = 1000;
/// Chance that a leaf-wise split peels off a small group.
const PEEL_CHANCE: f64 = 0.85;
/// Fewest pool rows a leaf-wise leaf needs to be split (LightGBM's min_data_in_leaf, scaled).
const MIN_SPLIT_ROWS: usize = 20;

/// How a tree grows: level by level to a depth (XGBoost's default), or by splitting the most
/// populated leaf until it has a number of leaves (LightGBM's leaf-wise growth).
#[derive(Clone, Copy)]
enum Growth {
    DepthWise { max_depth: usize },
    LeafWise { num_leaves: usize },
}

/// A leaf of a tree being grown: its node index, depth and the pool rows that reach it.
struct OpenLeaf {
    node: usize,
    depth: usize,
    rows: Vec<u32>,
}

/// Grows one tree on `pool`, choosing each split's threshold among the values that reach it.
fn grow_tree(random: &mut Random, pool: &[f64], growth: Growth, precision: Precision, leaf_scale: f64) -> Tree {
    let leaf_value = |random: &mut Random| {
        let value = leaf_scale * random.normal();
        if precision == Precision::F32 { f64::from(value as f32) } else { value }
    };
    let mut nodes = vec![Node::Leaf { value: 0.0 }];
    let mut open = vec![OpenLeaf { node: 0, depth: 0, rows: (0..(pool.len() / NUM_FEATURES) as u32).collect() }];
    let mut leaves = 1;
    let mut closed = Vec::new();
    loop {
        // Pick the next leaf to split, or stop.
        let pick = match growth {
            Growth::DepthWise { max_depth } => {
                // Breadth first; branches with few rows and a few others stop early, as
                // min_child_weight and gamma make them. Calibrated on the XGBoost models that
                // scripts/bench_peers.py trains: rows pass 5.99 (depth 6) and 7.78 (depth 8)
                // splits per tree.
                match open.iter().position(|leaf| leaf.depth < max_depth) {
                    Some(position) => {
                        let leaf = &open[position];
                        let stop = leaf.rows.len() < 20 || (leaf.depth >= 3 && random.uniform() < 0.01);
                        if stop {
                            closed.push(open.remove(position));
                            continue;
                        }
                        position
                    }
                    None => break,
                }
            }
            Growth::LeafWise { num_leaves } => {
                if leaves >= num_leaves {
                    break;
                }
                // Gain does not follow leaf size: small groups peeled off earlier are refined more
                // often than large leaves (weight size^-0.3), so most rows end in shallow leaves
                // and a few follow deep chains. Calibrated on the LightGBM model that
                // scripts/bench_peers.py trains: rows pass 4.8 splits per tree, trees are 14.2 deep on
                // average and 25 at most (here 4.7, 13.6 and 24).
                let splittable: Vec<usize> =
                    (0..open.len()).filter(|&index| open[index].rows.len() >= MIN_SPLIT_ROWS).collect();
                let weights: Vec<f64> =
                    splittable.iter().map(|&index| (open[index].rows.len() as f64).powf(-0.3)).collect();
                let mut target = random.uniform() * weights.iter().sum::<f64>();
                let mut chosen = None;
                for (&index, weight) in splittable.iter().zip(&weights) {
                    chosen = Some(index);
                    if target < *weight {
                        break;
                    }
                    target -= weight;
                }
                match chosen {
                    Some(chosen) => chosen,
                    None => break,
                }
            }
        };
        let leaf = open.swap_remove(pick);
        let quantiles = match growth {
            Growth::DepthWise { .. } => (0.1, 0.9),
            // Leaf-wise growth often peels a small group off a large leaf, which then splits
            // again: long chains that few rows follow (LightGBM's trees reach depth 20 and more
            // while most rows stop after four or five splits).
            Growth::LeafWise { .. } if random.uniform() < PEEL_CHANCE => {
                if random.uniform() < 0.5 {
                    (0.01, 0.08)
                } else {
                    (0.92, 0.99)
                }
            }
            Growth::LeafWise { .. } => (0.2, 0.8),
        };
        match choose_split(random, pool, &leaf.rows, precision, quantiles) {
            Some((feature, threshold)) => {
                let missing = if random.uniform() < 0.5 { Direction::Left } else { Direction::Right };
                let left_node = nodes.len();
                nodes.push(Node::Leaf { value: 0.0 });
                nodes.push(Node::Leaf { value: 0.0 });
                nodes[leaf.node] = Node::Split {
                    feature: feature as u32,
                    test: SplitTest::LessThan(threshold),
                    left: left_node as u32,
                    right: left_node as u32 + 1,
                    missing,
                };
                let (mut left_rows, mut right_rows) = (Vec::new(), Vec::new());
                for row in leaf.rows {
                    let value = pool[row as usize * NUM_FEATURES + feature];
                    let go_left = if value.is_nan() { missing == Direction::Left } else { value < threshold };
                    if go_left { left_rows.push(row) } else { right_rows.push(row) }
                }
                open.push(OpenLeaf { node: left_node, depth: leaf.depth + 1, rows: left_rows });
                open.push(OpenLeaf { node: left_node + 1, depth: leaf.depth + 1, rows: right_rows });
                leaves += 1;
            }
            None => closed.push(leaf),
        }
    }
    for leaf in open.iter().chain(&closed) {
        nodes[leaf.node] = Node::Leaf { value: leaf_value(random) };
    }
    Tree { nodes, output: 0, cover: None }
}

/// A feature and threshold that splits `rows` into two non-empty sides, with the threshold at a
/// random quantile (between `low` and `high`) of the feature's values among those rows. XGBoost-like models
/// (F32) split `x < t` with `t` an f32 data value; LightGBM-like (F64) split `x <= t`, imported
/// as `x < next_up(t)`.
fn choose_split(
    random: &mut Random,
    pool: &[f64],
    rows: &[u32],
    precision: Precision,
    (low, high): (f64, f64),
) -> Option<(usize, f64)> {
    for _ in 0..10 {
        let feature = random.below(NUM_FEATURES);
        let mut values: Vec<f64> = rows
            .iter()
            .map(|&row| pool[row as usize * NUM_FEATURES + feature])
            .filter(|value| !value.is_nan())
            .map(|value| if precision == Precision::F32 { f64::from(value as f32) } else { value })
            .collect();
        if values.len() < 2 {
            continue;
        }
        let quantile = low + (high - low) * random.uniform();
        let at = ((values.len() - 1) as f64 * quantile) as usize;
        // Selection instead of a sort keeps building the 1,600 trees to a few seconds.
        let (_, &mut value, _) = values.select_nth_unstable_by(at, f64::total_cmp);
        let threshold = match precision {
            Precision::F32 => {
                // Not the minimum, so the left side (`x < t`) is non-empty.
                let minimum = values.iter().copied().fold(f64::INFINITY, f64::min);
                if value > minimum {
                    value
                } else {
                    match values.iter().copied().filter(|v| *v > minimum).reduce(f64::min) {
                        Some(above) => above,
                        None => continue,
                    }
                }
            }
            Precision::F64 => {
                // Not the maximum, so the right side (`x > t`) is non-empty.
                let maximum = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let below = if value < maximum {
                    value
                } else {
                    match values.iter().copied().filter(|v| *v < maximum).reduce(f64::max) {
                        Some(below) => below,
                        None => continue,
                    }
                };
                below.next_up()
            }
        };
        return Some((feature, threshold));
    }
    None
}

fn ensemble_model(random: &mut Random, pool: &[f64], num_trees: usize, growth: Growth, precision: Precision) -> Model {
    // Leaf values shrink with the number of trees, as the learning rate is usually chosen, so the
    // summed margin stays in a range where the probability is not saturated.
    let leaf_scale = 1.0 / (num_trees as f64).sqrt();
    let trees = (0..num_trees).map(|_| grow_tree(random, pool, growth, precision, leaf_scale)).collect();
    let source = match precision {
        Precision::F32 => Format::XgboostJson,
        Precision::F64 => Format::Lightgbm,
    };
    Model {
        inputs: (0..NUM_FEATURES).map(|index| Feature::numeric(format!("f{index}"))).collect(),
        preprocess: None,
        body: ModelBody::Trees(TreeEnsemble {
            trees,
            num_outputs: 1,
            base_margin: vec![0.0],
            aggregation: Aggregation::Sum,
            precision,
            num_features: NUM_FEATURES,
        }),
        output: Output { transform: Transform::Sigmoid { scale: 1.0 }, kind: OutputKind::Probability },
        source,
    }
}

/// Mean number of splits a row passes through per tree, and how many leaves of the model the rows
/// reach, to show that the trees are exercised broadly (printed once per model).
fn describe(name: &str, model: &Model, rows: &[f64]) -> f64 {
    let ModelBody::Trees(ensemble) = &model.body else { return 0.0 };
    let (mut splits, mut reached, mut total_leaves, mut total_nodes, mut deepest, mut depths) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    for tree in &ensemble.trees {
        total_nodes += tree.nodes.len();
        total_leaves += tree.nodes.iter().filter(|node| matches!(node, Node::Leaf { .. })).count();
        let depth = tree.depth();
        deepest = deepest.max(depth);
        depths += depth;
        let mut hit = vec![false; tree.nodes.len()];
        for row in rows.chunks(NUM_FEATURES) {
            let mut index = 0usize;
            while let Node::Split { feature, test: SplitTest::LessThan(threshold), left, right, missing } =
                &tree.nodes[index]
            {
                let value = row[*feature as usize];
                let value = if ensemble.precision == Precision::F32 { f64::from(value as f32) } else { value };
                let go_left = if value.is_nan() { *missing == Direction::Left } else { value < *threshold };
                index = if go_left { *left } else { *right } as usize;
                splits += 1;
            }
            hit[index] = true;
        }
        reached += hit.iter().filter(|hit| **hit).count();
    }
    let num_rows = rows.len() / NUM_FEATURES;
    eprintln!(
        "{name}: {} trees, {total_nodes} nodes, {total_leaves} leaves, tree depth {:.2} on average, deepest \
         {deepest}; bench rows pass {:.2} splits per tree on average and reach {reached} distinct leaves",
        ensemble.trees.len(),
        depths as f64 / ensemble.trees.len() as f64,
        splits as f64 / (num_rows * ensemble.trees.len()) as f64,
    );
    splits as f64 / num_rows as f64
}

/// The evaluators each model is timed with, side by side in one run: the reference walk (the evaluator before the
/// compile step), the quantised walk with the portable scalar kernel, and what the compile step chooses by itself
/// (on a CPU with AVX-512 or AVX2, the quantised walk with that kernel).
const CHOICES: [(&str, EvaluatorChoice, KernelChoice); 3] = [
    ("reference", EvaluatorChoice::Reference, KernelChoice::Auto),
    ("portable", EvaluatorChoice::Auto, KernelChoice::Exactly(Kernel::Portable)),
    ("auto", EvaluatorChoice::Auto, KernelChoice::Auto),
];

fn bench_model(criterion: &mut Criterion, name: &str, model: Model, rows: &[f64]) {
    describe(name, &model, rows);
    let predictors: Vec<(&str, Predictor)> = CHOICES
        .iter()
        .map(|(label, choice, kernel)| {
            let predictor =
                Predictor::with_kernel(model.clone(), *choice, *kernel).expect("the synthetic model is valid");
            let report = predictor.compile_report().expect("a tree ensemble");
            eprintln!(
                "{name}/{label}: {} with the {} kernel ({:.1} B per node, compiled in {:.1} ms; {})",
                report.evaluator,
                report.kernel.name(),
                report.bytes_per_node,
                report.compile_micros as f64 / 1e3,
                report.reason
            );
            (*label, predictor)
        })
        .collect();
    let num_rows = rows.len() / NUM_FEATURES;
    let mut group = criterion.benchmark_group(name);

    group.throughput(Throughput::Elements(1));
    for (label, predictor) in &predictors {
        let mut scratch = predictor.scratch();
        let mut out = vec![0.0; predictor.num_values()];
        let mut next = 0usize;
        group.bench_function(format!("one_row/{label}"), |bencher| {
            bencher.iter(|| {
                // Cycle through the rows, so branch prediction cannot learn a single row's path.
                let row = &rows[next * NUM_FEATURES..(next + 1) * NUM_FEATURES];
                next = (next + 1) % num_rows;
                predictor.predict_row(black_box(row), &mut scratch, &mut out).expect("the row has the model's width");
                black_box(out[0])
            })
        });
    }

    // A batch of the larger models takes tens of milliseconds: fewer samples keep the run short.
    group.sample_size(30);
    group.throughput(Throughput::Elements(num_rows as u64));
    for (label, predictor) in &predictors {
        let mut batch_out = vec![0.0; num_rows * predictor.num_values()];
        group.bench_function(format!("batch_1000/{label}"), |bencher| {
            bencher.iter(|| {
                predictor.predict_batch(black_box(rows), &mut batch_out, 1).expect("the rows have the model's width");
                black_box(batch_out[0])
            })
        });
    }
    group.finish();
}

type BatchPass = fn(&Predictor, &[f64], &mut [f64]);
type OneRowPass = fn(&Predictor, &[f64], &mut Scratch, &mut [f64]);

/// Scores the rows once as a batch and once row by row with each evaluator, each pass in a function of its own so
/// that `callgrind_annotate --inclusive=yes` gives its instructions (see bench/README.md).
fn count_instructions(model: Model, rows: &[f64]) {
    let num_rows = rows.len() / NUM_FEATURES;
    for (label, choice, kernel) in CHOICES {
        let predictor = Predictor::with_kernel(model.clone(), choice, kernel).expect("the synthetic model is valid");
        let mut out = vec![0.0; num_rows * predictor.num_values()];
        let mut scratch = predictor.scratch();
        let (batch, one_row): (BatchPass, OneRowPass) = match label {
            "reference" => (reference_batch, reference_one_row),
            "portable" => (portable_batch, portable_one_row),
            _ => (auto_batch, auto_one_row),
        };
        batch(&predictor, rows, &mut out);
        one_row(&predictor, rows, &mut scratch, &mut out);
        let report = predictor.compile_report().expect("trees");
        eprintln!("{label}: {} {} {}", report.evaluator, report.kernel.name(), black_box(out[0]));
    }
}

#[inline(always)]
fn batch_pass(predictor: &Predictor, rows: &[f64], out: &mut [f64]) {
    predictor.predict_batch(black_box(rows), out, 1).expect("the rows have the model's width");
}

#[inline(always)]
fn one_row_pass(predictor: &Predictor, rows: &[f64], scratch: &mut Scratch, out: &mut [f64]) {
    let values = predictor.num_values();
    for (row, out) in rows.chunks(NUM_FEATURES).zip(out.chunks_mut(values)) {
        predictor.predict_row(black_box(row), scratch, out).expect("the row has the model's width");
    }
}

#[inline(never)]
fn reference_batch(predictor: &Predictor, rows: &[f64], out: &mut [f64]) {
    // Distinct bodies, so that the linker does not fold the wrappers into one.
    black_box(1u8);
    batch_pass(predictor, rows, out)
}

#[inline(never)]
fn portable_batch(predictor: &Predictor, rows: &[f64], out: &mut [f64]) {
    // Distinct bodies, so that the linker does not fold the wrappers into one.
    black_box(5u8);
    batch_pass(predictor, rows, out)
}

#[inline(never)]
fn portable_one_row(predictor: &Predictor, rows: &[f64], scratch: &mut Scratch, out: &mut [f64]) {
    // Distinct bodies, so that the linker does not fold the wrappers into one.
    black_box(6u8);
    one_row_pass(predictor, rows, scratch, out)
}

#[inline(never)]
fn auto_batch(predictor: &Predictor, rows: &[f64], out: &mut [f64]) {
    // Distinct bodies, so that the linker does not fold the wrappers into one.
    black_box(2u8);
    batch_pass(predictor, rows, out)
}

#[inline(never)]
fn reference_one_row(predictor: &Predictor, rows: &[f64], scratch: &mut Scratch, out: &mut [f64]) {
    // Distinct bodies, so that the linker does not fold the wrappers into one.
    black_box(3u8);
    one_row_pass(predictor, rows, scratch, out)
}

#[inline(never)]
fn auto_one_row(predictor: &Predictor, rows: &[f64], scratch: &mut Scratch, out: &mut [f64]) {
    // Distinct bodies, so that the linker does not fold the wrappers into one.
    black_box(4u8);
    one_row_pass(predictor, rows, scratch, out)
}

/// The bench models, in order: (name, model). `only` keeps the models whose name starts with it.
fn models(only: Option<&str>) -> (Vec<(&'static str, Model)>, Vec<f64>) {
    let mut random = Random(0x5EED_2026);
    let pool = synthetic_rows(&mut random, POOL_ROWS);
    let rows = synthetic_rows(&mut random, BATCH_ROWS);
    let wanted = |name: &str| only.is_none_or(|only| name.starts_with(only));
    let mut models = Vec::new();

    // Models are always grown (the generator's sequence decides their shapes), but kept only when wanted.
    let model = ensemble_model(&mut random, &pool, 100, Growth::DepthWise { max_depth: 6 }, Precision::F32);
    models.push(("a_xgboost_100_trees_depth_6", model));
    if !wanted("b") && !wanted("c") {
        return (models.into_iter().filter(|(name, _)| wanted(name)).collect(), rows);
    }

    let model = ensemble_model(&mut random, &pool, 500, Growth::DepthWise { max_depth: 8 }, Precision::F32);
    models.push(("b_xgboost_500_trees_depth_8", model));
    if !wanted("c") {
        return (models.into_iter().filter(|(name, _)| wanted(name)).collect(), rows);
    }

    let model = ensemble_model(&mut random, &pool, 1000, Growth::LeafWise { num_leaves: 63 }, Precision::F64);
    // LightGBM gives features without missing values in training the missing type None (NaN
    // scores as 0), which the importer turns into `MissingRule::NanAsZero`; that model, the one
    // a real file gives, is measured too because a rewrite rule changes the evaluator's path.
    let mut imported = model.clone();
    for (index, feature) in imported.inputs.iter_mut().enumerate() {
        if !has_missing_values(index) {
            feature.missing = MissingRule::NanAsZero;
        }
    }
    models.push(("c_lightgbm_1000_trees_63_leaves", model));
    models.push(("c_lightgbm_1000_trees_63_leaves_nan_as_zero", imported));
    (models.into_iter().filter(|(name, _)| wanted(name)).collect(), rows)
}

fn scoring(criterion: &mut Criterion) {
    let (models, rows) = models(None);
    for (name, model) in models {
        bench_model(criterion, name, model, &rows);
    }
}

criterion_group!(benches, scoring);

/// `RISKSERVE_COUNT_INSTRUCTIONS=b cargo bench ...` (under callgrind) scores one model's rows once with each
/// evaluator instead of timing anything; otherwise the criterion benches run.
fn main() {
    #[cfg(target_os = "linux")]
    if let Ok(only) = std::env::var("RISKSERVE_STEP_INSTRUCTIONS") {
        single_step::run(&only);
        return;
    }
    if let Ok(only) = std::env::var("RISKSERVE_COUNT_INSTRUCTIONS") {
        let (models, rows) = models(Some(&only));
        let (name, model) = models.into_iter().next().expect("RISKSERVE_COUNT_INSTRUCTIONS names a model: a, b or c");
        let _ = describe(name, &model, &rows);
        count_instructions(model, &rows);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// Instructions of the AVX-512 kernels, which valgrind cannot run: `RISKSERVE_STEP_INSTRUCTIONS=b <bench binary>`
/// runs itself again as a child under `ptrace`, and single-steps the child through each pass it marks (SIGUSR1 at
/// the start, SIGUSR2 at the end), one trap per user-mode instruction the CPU retires, on the real CPU with every
/// kernel it has. Counts are exact and repeatable; a marked empty pass gives the markers' own instructions, which
/// are taken off. `RISKSERVE_STEP_ROWS` (default 10; about 40,000 steps a second) is how many bench rows each pass
/// scores.
#[cfg(target_os = "linux")]
mod single_step {
    use super::*;
    use nix::sys::ptrace;
    use nix::sys::signal::{Signal, raise};
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::Pid;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    /// The variable that tells the child it is the one being stepped.
    const CHILD: &str = "RISKSERVE_STEPPED_CHILD";

    /// The evaluators stepped through: those of the criterion bench and each SIMD kernel forced.
    const STEPPED: [(&str, EvaluatorChoice, KernelChoice); 5] = [
        ("reference", EvaluatorChoice::Reference, KernelChoice::Auto),
        ("portable", EvaluatorChoice::Auto, KernelChoice::Exactly(Kernel::Portable)),
        ("avx2", EvaluatorChoice::Auto, KernelChoice::Exactly(Kernel::Avx2)),
        ("avx512", EvaluatorChoice::Auto, KernelChoice::Exactly(Kernel::Avx512)),
        ("auto", EvaluatorChoice::Auto, KernelChoice::Auto),
    ];

    pub fn run(only: &str) {
        if std::env::var_os(CHILD).is_some() { stepped_child(only) } else { tracer() }
    }

    /// The child: waits to be traced, then scores each pass between its two markers and names the pass on stdout.
    fn stepped_child(only: &str) {
        while !traced() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let rows_wanted: usize =
            std::env::var("RISKSERVE_STEP_ROWS").ok().and_then(|rows| rows.parse().ok()).unwrap_or(10);
        let (name, model, rows) = match std::env::var("RISKSERVE_STEP_MODEL") {
            // A trained model file and its rows (a CSV file with a header, as scripts/bench_peers.sh writes them).
            Ok(path) => {
                let bytes = std::fs::read(&path).expect("RISKSERVE_STEP_MODEL is a readable model file");
                let model = riskserve_model::load_model(&bytes, None).expect("RISKSERVE_STEP_MODEL is a model");
                let csv = std::env::var("RISKSERVE_STEP_CSV").expect("RISKSERVE_STEP_CSV names the model's rows");
                let mut reader = csv::Reader::from_path(csv).expect("RISKSERVE_STEP_CSV is a readable CSV file");
                let rows: Vec<f64> = reader
                    .records()
                    .flat_map(|record| {
                        let record = record.expect("a CSV record");
                        record.iter().map(|cell| cell.parse().unwrap_or(f64::NAN)).collect::<Vec<f64>>()
                    })
                    .collect();
                (only.to_string(), model, rows)
            }
            Err(_) => {
                let (models, rows) = models(Some(only));
                let (name, model) =
                    models.into_iter().next().expect("RISKSERVE_STEP_INSTRUCTIONS names a model: a, b or c");
                (name.to_string(), model, rows)
            }
        };
        let name = name.as_str();
        assert_eq!(model.inputs.len(), NUM_FEATURES, "the rows have {NUM_FEATURES} features");
        let rows = &rows[..rows_wanted.min(rows.len() / NUM_FEATURES) * NUM_FEATURES];
        let num_rows = rows.len() / NUM_FEATURES;
        let ModelBody::Trees(ensemble) = &model.body else { panic!("the bench models are tree ensembles") };
        println!("model {name} {} {num_rows} {}", ensemble.trees.len(), describe(name, &model, rows));
        marked("markers", || ());
        // `RISKSERVE_STEP_EVALUATORS=portable,auto` steps through only those.
        let wanted = std::env::var("RISKSERVE_STEP_EVALUATORS").ok();
        let wanted = |label: &str| wanted.as_deref().is_none_or(|wanted| wanted.split(',').any(|name| name == label));
        for (label, choice, kernel) in STEPPED.into_iter().filter(|(label, ..)| wanted(label)) {
            let predictor = Predictor::with_kernel(model.clone(), choice, kernel).expect("the model compiles");
            let report = predictor.compile_report().expect("trees");
            let mut out = vec![0.0; num_rows * predictor.num_values()];
            let mut scratch = predictor.scratch();
            // Unmarked first passes, so that the marked ones step through warm code.
            batch_pass(&predictor, rows, &mut out);
            one_row_pass(&predictor, rows, &mut scratch, &mut out);
            let evaluator =
                format!("{} {} {} {}", report.evaluator, report.kernel.name(), report.one_row_walk, report.batch_walk);
            marked(&format!("{label} batch {evaluator}"), || batch_pass(&predictor, rows, &mut out));
            marked(&format!("{label} one_row {evaluator}"), || one_row_pass(&predictor, rows, &mut scratch, &mut out));
            black_box(&out);
        }
    }

    /// Where the child's executable is mapped: the start of its mapping at file offset 0.
    fn load_base(pid: Pid) -> u64 {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("the child's executable");
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("the child's mappings");
        maps.lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let start = fields[0].split('-').next()?;
                (fields.get(5).is_some_and(|path| std::path::Path::new(path) == exe) && fields[2] == "00000000")
                    .then(|| u64::from_str_radix(start, 16).ok())?
            })
            .unwrap_or_else(|| panic!("no mapping of {} at offset 0 in:\n{maps}", exe.display()))
    }

    /// Whether a tracer is attached (`TracerPid` in `/proc/self/status`).
    fn traced() -> bool {
        std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
            status.lines().any(|line| line.strip_prefix("TracerPid:").is_some_and(|pid| pid.trim() != "0"))
        })
    }

    /// Names a pass, then runs it between the start and end markers.
    fn marked(name: &str, pass: impl FnOnce()) {
        println!("pass {name}");
        raise(Signal::SIGUSR1).expect("the start marker");
        pass();
        raise(Signal::SIGUSR2).expect("the end marker");
    }

    /// The tracer: starts the child, seizes it, counts the single steps of each marked pass and prints the table.
    fn tracer() {
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env(CHILD, "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the stepped child starts");
        let pid = Pid::from_raw(child.id() as i32);
        ptrace::seize(pid, ptrace::Options::PTRACE_O_EXITKILL).expect("ptrace may seize our own child");
        // `RISKSERVE_STEP_PROFILE=N`: where the instructions of the Nth marked pass are, as `address count` lines on
        // stderr (addresses as `objdump -d` of this binary gives them), for reading beside the disassembly.
        let profiled: Option<usize> = std::env::var("RISKSERVE_STEP_PROFILE").ok().and_then(|pass| pass.parse().ok());
        let base = profiled.map(|_| load_base(pid));
        let mut profile = std::collections::BTreeMap::<u64, u64>::new();
        let mut counts = Vec::new();
        let mut steps: Option<u64> = None;
        loop {
            match waitpid(pid, None).expect("waitpid on the child") {
                WaitStatus::Stopped(_, Signal::SIGUSR1) => {
                    steps = Some(0);
                    ptrace::step(pid, None).expect("single step");
                }
                WaitStatus::Stopped(_, Signal::SIGTRAP) if steps.is_some() => {
                    *steps.as_mut().expect("counting") += 1;
                    if let (Some(pass), Some(base)) = (profiled, base)
                        && pass == counts.len()
                    {
                        let address = ptrace::getregs(pid).expect("the child's registers").rip;
                        *profile.entry(address.wrapping_sub(base)).or_default() += 1;
                    }
                    ptrace::step(pid, None).expect("single step");
                }
                WaitStatus::Stopped(_, Signal::SIGUSR2) => {
                    counts.push(steps.take().expect("an end marker after a start marker"));
                    ptrace::cont(pid, None).expect("continue");
                }
                WaitStatus::Stopped(_, signal) => ptrace::cont(pid, Some(signal)).expect("continue"),
                WaitStatus::Exited(_, 0) => break,
                other => panic!("the stepped child ended badly: {other:?}"),
            }
        }
        for (address, count) in &profile {
            eprintln!("{address:x} {count}");
        }
        // Read once the child has exited: it writes a few hundred bytes, far below what the pipe holds.
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let lines: Vec<String> = stdout.lines().map(|line| line.expect("the child's stdout")).collect();
        // The child was reaped by the `waitpid` that saw it exit.
        drop(child);
        let header = lines.iter().find_map(|line| line.strip_prefix("model ")).expect("the child names its model");
        let fields: Vec<&str> = header.split(' ').collect();
        let (name, trees, num_rows, splits): (&str, f64, f64, f64) = (
            fields[0],
            fields[1].parse().expect("trees"),
            fields[2].parse().expect("rows"),
            fields[3].parse().expect("splits per row"),
        );
        let passes: Vec<&str> = lines.iter().filter_map(|line| line.strip_prefix("pass ")).collect();
        assert_eq!(passes.len(), counts.len(), "one count per marked pass");
        let markers = counts[0];
        println!("| model | path | evaluator (kernel, walk) | instructions per row | per tree | per split passed |");
        println!("| --- | --- | --- | ---: | ---: | ---: |");
        for (pass, count) in passes.iter().zip(&counts).skip(1) {
            let words: Vec<&str> = pass.split(' ').collect();
            let per_row = (count - markers) as f64 / num_rows;
            let walk = if words[1] == "batch" { words[5] } else { words[4] };
            println!(
                "| {} | {} | {} ({}, {}) | {per_row:.0} | {:.1} | {:.2} |",
                &name[..1],
                words[1],
                words[2],
                words[3],
                walk,
                per_row / trees,
                per_row / splits,
            );
        }
    }
}
