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

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riskserve_model::error::Format;
use riskserve_model::ir::{
    Aggregation, Direction, Feature, Model, ModelBody, Node, Output, OutputKind, Precision, SplitTest, Transform, Tree,
    TreeEnsemble,
};
use riskserve_model::shap::Explainer;

const NUM_FEATURES: usize = 30;
const POOL_ROWS: usize = 4096;
const BENCH_ROWS: usize = 1000;

/// SplitMix64.
struct Random(u64);

impl Random {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.uniform() * bound as f64) as usize % bound.max(1)
    }

    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Credit-like columns: scores, amounts, counts, flags, ratios; features 1, 7, 13, 19, 25 have
/// 5-9 % missing values.
fn synthetic_rows(random: &mut Random, count: usize) -> Vec<f64> {
    let mut rows = Vec::with_capacity(count * NUM_FEATURES);
    for _ in 0..count {
        for feature in 0..NUM_FEATURES {
            let value = match feature % 5 {
                0 => 600.0 + 80.0 * random.normal(),
                1 => (8.0 + 1.2 * random.normal()).exp(),
                2 => random.below(12) as f64,
                3 => f64::from(u8::from(random.uniform() < 0.3)),
                _ => random.uniform(),
            };
            let missing = feature % 6 == 1 && random.uniform() < 0.05 + 0.01 * (feature % 5) as f64;
            rows.push(if missing { f64::NAN } else { value });
        }
    }
    rows
}

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
