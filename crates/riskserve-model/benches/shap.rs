//! Criterion benches of exact TreeSHAP ([`Explainer::explain_row`]) on synthetic XGBoost-like
//! ensembles: (a) 100 trees of depth 6 and (b) 500 trees of depth 8, f32, 30 features, five of
//! them with missing values, as in the scoring bench and scripts/bench_shap.sh.
//!
//! Trees are grown on a pool of synthetic rows: each split takes a threshold among the values of
//! the rows that reach it, and each node's cover is the number of pool rows that reach it, so
//! rows drawn from the same distribution follow realistic paths and the cover ratios are real.
//!
//! Run: `cargo bench -p riskserve-model --bench shap -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

mod common;

use common::{NUM_FEATURES, Random, synthetic_rows};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riskserve_model::error::Format;
use riskserve_model::ir::{
    Aggregation, Direction, Feature, Model, ModelBody, Node, Output, OutputKind, Precision, SplitTest, Transform, Tree,
    TreeEnsemble,
};
use riskserve_model::shap::Explainer;

const POOL_ROWS: usize = 4096;
const BENCH_ROWS: usize = 1000;

/// Grows a depth-wise tree to `max_depth` on `pool`; nodes with fewer than 8 rows stop early.
fn grow_tree(random: &mut Random, pool: &[f64], max_depth: usize) -> Tree {
    let mut nodes = Vec::new();
    let mut cover = Vec::new();
    let all_rows: Vec<u32> = (0..(pool.len() / NUM_FEATURES) as u32).collect();
    grow(random, pool, &all_rows, 0, max_depth, &mut nodes, &mut cover);
    Tree { nodes, output: 0, cover: Some(cover) }
}

fn grow(
    random: &mut Random,
    pool: &[f64],
    rows: &[u32],
    depth: usize,
    max_depth: usize,
    nodes: &mut Vec<Node>,
    cover: &mut Vec<f64>,
) -> u32 {
    let index = nodes.len() as u32;
    nodes.push(Node::Leaf { value: f64::from((0.3 * random.normal()) as f32) });
    cover.push(rows.len() as f64);
    if depth == max_depth || rows.len() < 8 {
        return index;
    }
    let feature = random.below(NUM_FEATURES);
    let values: Vec<f64> =
        rows.iter().map(|row| pool[*row as usize * NUM_FEATURES + feature]).filter(|v| !v.is_nan()).collect();
    if values.is_empty() {
        return index;
    }
    let threshold = f64::from(values[random.below(values.len())] as f32);
    let missing = if random.uniform() < 0.5 { Direction::Left } else { Direction::Right };
    let (mut left_rows, mut right_rows) = (Vec::new(), Vec::new());
    for row in rows {
        let value = pool[*row as usize * NUM_FEATURES + feature] as f32;
        let left = if value.is_nan() { missing == Direction::Left } else { f64::from(value) < threshold };
        if left { left_rows.push(*row) } else { right_rows.push(*row) }
    }
    if left_rows.is_empty() || right_rows.is_empty() {
        return index;
    }
    let left = grow(random, pool, &left_rows, depth + 1, max_depth, nodes, cover);
    let right = grow(random, pool, &right_rows, depth + 1, max_depth, nodes, cover);
    nodes[index as usize] =
        Node::Split { feature: feature as u32, test: SplitTest::LessThan(threshold), left, right, missing };
    index
}

fn model(trees: usize, max_depth: usize, seed: u64) -> Model {
    let mut random = Random(seed);
    let pool = synthetic_rows(&mut random, POOL_ROWS);
    Model {
        inputs: (0..NUM_FEATURES).map(|index| Feature::numeric(format!("f{index}"))).collect(),
        preprocess: None,
        body: ModelBody::Trees(TreeEnsemble {
            trees: (0..trees).map(|_| grow_tree(&mut random, &pool, max_depth)).collect(),
            num_outputs: 1,
            base_margin: vec![-0.5],
            aggregation: Aggregation::Sum,
            precision: Precision::F32,
            num_features: NUM_FEATURES,
        }),
        output: Output { transform: Transform::Sigmoid { scale: 1.0 }, kind: OutputKind::Probability },
        source: Format::Model,
    }
}

fn bench_explainer(c: &mut Criterion) {
    let rows = synthetic_rows(&mut Random(7), BENCH_ROWS);
    for (name, trees, depth, seed) in [("a_100_trees_depth_6", 100, 6, 1), ("b_500_trees_depth_8", 500, 8, 2)] {
        let explainer = Explainer::new(&model(trees, depth, seed)).expect("the synthetic model is explainable");
        let mut scratch = explainer.scratch();
        let mut out = vec![0.0; explainer.num_groups() * (explainer.num_features() + 1)];
        let mut group = c.benchmark_group("tree_shap");
        group.throughput(Throughput::Elements(1));
        let mut next = 0;
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                let row = &rows[next * NUM_FEATURES..(next + 1) * NUM_FEATURES];
                next = (next + 1) % BENCH_ROWS;
                explainer.explain_row(black_box(row), &mut scratch, &mut out).expect("a row of 30 values");
                black_box(out[0])
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_explainer);
criterion_main!(benches);
