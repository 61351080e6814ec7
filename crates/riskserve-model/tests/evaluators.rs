//! Every tree evaluator scores random models bit-identically to the reference walk, one row at a time and in batches, on rows that hit thresholds exactly and one ulp away, signed zeros, NaN, subnormals, huge values and infinities.

use riskserve_model::ir::{
    Aggregation, Direction, Feature, MissingRule, Model, ModelBody, Node, Output, OutputKind, Precision, SplitTest,
    Transform, Tree, TreeEnsemble,
};
use std::collections::BTreeSet;

use riskserve_model::{EvaluatorChoice, Format, Kernel, KernelChoice, Predictor};

/// xorshift64: deterministic, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Thresholds that trip quantisation: signed zeros, subnormals, the extremes, infinities, close neighbours.
fn tricky_thresholds(precision: Precision) -> Vec<f64> {
    match precision {
        Precision::F32 => vec![
            0.0,
            -0.0,
            f64::from(1e-40_f32),
            f64::from(-1e-40_f32),
            f64::from(f32::MIN_POSITIVE),
            f64::from(f32::MAX),
            f64::from(f32::MIN),
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.0,
            f64::from(1.0_f32.next_up()),
            f64::from(1.0_f32.next_down()),
        ],
        Precision::F64 => vec![
            0.0,
            -0.0,
            5e-324,
            -5e-324,
            1e-35_f32 as f64,
            (1e-35_f32 as f64).next_up(),
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.0,
            1.0_f64.next_up(),
            1.0_f64.next_down(),
        ],
    }
}

/// A threshold pool per feature: a few tricky values and `spread` random ones (exact in the precision).
fn threshold_pools(random: &mut Random, features: usize, spread: usize, precision: Precision) -> Vec<Vec<f64>> {
    (0..features)
        .map(|_| {
            let mut pool = tricky_thresholds(precision);
            pool.retain(|_| random.below(3) != 0);
            for _ in 0..spread {
                let value = (random.unit() - 0.5) * 20.0;
                pool.push(if precision == Precision::F32 { f64::from(value as f32) } else { value });
            }
            pool
        })
        .collect()
}

fn random_tree(
    random: &mut Random,
    pools: &[Vec<f64>],
    depth: usize,
    output: u32,
    categorical: bool,
    chain: bool,
) -> Tree {
    let mut nodes = vec![Node::Leaf { value: 0.0 }];
    let mut pending = vec![(0usize, 0usize)];
    while let Some((index, level)) = pending.pop() {
        let stop = level == depth || (level > 1 && random.below(5) == 0) || (chain && level > 0 && index % 2 == 1);
        if stop {
            nodes[index] = Node::Leaf { value: f64::from((random.unit() - 0.5) as f32) };
            continue;
        }
        let left = nodes.len();
        nodes.push(Node::Leaf { value: 0.0 });
        nodes.push(Node::Leaf { value: 0.0 });
        let feature = random.below(pools.len());
        let test = if categorical && random.below(4) == 0 {
            SplitTest::CategoryIn { categories: vec![1, 3], in_set: Direction::Left }
        } else {
            let pool = &pools[feature];
            SplitTest::LessThan(pool[random.below(pool.len())])
        };
        nodes[index] = Node::Split {
            feature: feature as u32,
            test,
            left: left as u32,
            right: left as u32 + 1,
            missing: if random.below(2) == 0 { Direction::Left } else { Direction::Right },
        };
        pending.push((left, level + 1));
        pending.push((left + 1, level + 1));
    }
    Tree { nodes, output, cover: None }
}

/// Row values: thresholds exactly and one ulp (of the precision) either side, and the usual suspects.
fn row_value(random: &mut Random, pool: &[f64], precision: Precision) -> f64 {
    let threshold = pool[random.below(pool.len())];
    match random.below(12) {
        0 => f64::NAN,
        1 => 0.0,
        2 => -0.0,
        3 => [1e-40, -1e-40, 5e-324, 1e-310, 1e300, -1e300, 3.5e38, f64::INFINITY, f64::NEG_INFINITY][random.below(9)],
        4 | 5 => threshold,
        6 | 7 => match precision {
            Precision::F32 => f64::from((threshold as f32).next_up()),
            Precision::F64 => threshold.next_up(),
        },
        8 | 9 => match precision {
            Precision::F32 => f64::from((threshold as f32).next_down()),
            Precision::F64 => threshold.next_down(),
        },
        _ => (random.unit() - 0.5) * 24.0,
    }
}

struct Shape {
    precision: Precision,
    features: usize,
    spread: usize,
    trees: usize,
    depth: usize,
    outputs: usize,
    aggregation: Aggregation,
    rules: bool,
    categorical: bool,
    chains: bool,
}

fn random_model(random: &mut Random, shape: &Shape) -> (Model, Vec<Vec<f64>>) {
    let pools = threshold_pools(random, shape.features, shape.spread, shape.precision);
    let trees = (0..shape.trees)
        .map(|index| {
            let chain = shape.chains && index % 3 == 0;
            random_tree(random, &pools, shape.depth, (index % shape.outputs) as u32, shape.categorical, chain)
        })
        .collect();
    let inputs = (0..shape.features)
        .map(|index| {
            let mut feature = Feature::numeric(format!("f{index}"));
            if shape.rules {
                feature.missing = [MissingRule::AsIs, MissingRule::NanAsZero, MissingRule::ZeroAsMissing][index % 3];
            }
            feature
        })
        .collect();
    let (transform, kind) = if shape.outputs == 1 {
        (Transform::Identity, OutputKind::Margin)
    } else {
        (Transform::Softmax, OutputKind::ClassProbabilities)
    };
    let model = Model {
        inputs,
        preprocess: None,
        body: ModelBody::Trees(TreeEnsemble {
            trees,
            num_outputs: shape.outputs,
            base_margin: (0..shape.outputs).map(|k| f64::from(k as f32) * 0.25 - 0.125).collect(),
            aggregation: shape.aggregation,
            precision: shape.precision,
            num_features: shape.features,
        }),
        output: Output { transform, kind },
        source: if shape.precision == Precision::F32 { Format::XgboostJson } else { Format::Lightgbm },
    };
    (model, pools)
}

/// Scores random rows of a random model of `shape` with every evaluator and kernel, one row at a time and in batches,
/// against the reference walk; adds the one-row walks the kernels used to `walks`.
fn check(random: &mut Random, shape: &Shape, expected_evaluator: &str, walks: &mut BTreeSet<&'static str>) {
    let (model, pools) = random_model(random, shape);
    let reference = Predictor::with_evaluator(model.clone(), EvaluatorChoice::Reference).expect("a valid model");
    // The quantised walk with every kernel this CPU runs, then the compile step's own choice.
    let mut predictors: Vec<Predictor> = Kernel::available()
        .into_iter()
        .map(|kernel| {
            let predictor =
                Predictor::with_kernel(model.clone(), EvaluatorChoice::Quantised, KernelChoice::Exactly(kernel))
                    .expect("a valid model");
            let report = predictor.compile_report().expect("a tree ensemble");
            assert_eq!(report.evaluator, expected_evaluator, "{report:?}");
            if expected_evaluator != "reference" {
                assert_eq!(report.kernel, kernel, "{report:?}");
                walks.insert(report.one_row_walk);
            }
            predictor
        })
        .collect();
    predictors.push(Predictor::new(model).expect("a valid model"));
    let rows: Vec<f64> = (0..300)
        .flat_map(|_| {
            (0..shape.features).map(|feature| row_value(random, &pools[feature], shape.precision)).collect::<Vec<_>>()
        })
        .collect();
    let values = reference.num_values();
    let mut expected = vec![0.0; 300 * values];
    let mut scratch = reference.scratch();
    for (row, out) in rows.chunks(shape.features).zip(expected.chunks_mut(values)) {
        reference.predict_row(row, &mut scratch, out).unwrap();
    }
    let same = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
    for predictor in &predictors {
        let report = predictor.compile_report().unwrap();
        let name = format!("{} ({:?}, {})", report.evaluator, report.kernel, report.one_row_walk);
        let mut scratch = predictor.scratch();
        let mut out = vec![0.0; values];
        for (index, row) in rows.chunks(shape.features).enumerate() {
            predictor.predict_row(row, &mut scratch, &mut out).unwrap();
            let wanted = &expected[index * values..(index + 1) * values];
            assert!(same(&out, wanted), "{name}, row {index} {row:?}: {out:?}, reference {wanted:?}");
        }
        for threads in [1, 3] {
            let mut batch = vec![0.0; expected.len()];
            predictor.predict_batch(&rows, &mut batch, threads).unwrap();
            let at = batch.iter().zip(&expected).position(|(a, b)| a.to_bits() != b.to_bits());
            assert!(at.is_none(), "{name}, batch on {threads} thread(s) differs at value {at:?}");
        }
    }
}

fn shape(precision: Precision) -> Shape {
    Shape {
        precision,
        features: 9,
        spread: 20,
        trees: 60,
        depth: 6,
        outputs: 1,
        aggregation: Aggregation::Sum,
        rules: false,
        categorical: false,
        chains: false,
    }
}

/// The one-row walks the kernels this CPU runs must have used: `scalar` (portable), `gather` (AVX2, and AVX-512 on
/// rows of more than 64 bin slots) and `lines` (AVX-512 on narrower rows).
fn assert_walks(walks: &BTreeSet<&'static str>, narrow_rows: bool) {
    let mut expected = BTreeSet::new();
    for kernel in Kernel::available() {
        expected.insert(match kernel {
            Kernel::Portable => "scalar",
            Kernel::Avx512 if narrow_rows => "lines",
            Kernel::Avx2 | Kernel::Avx512 => "gather",
        });
    }
    assert_eq!(walks, &expected, "kernels on this CPU: {:?}", Kernel::available());
}

#[test]
fn shallow_trees_in_both_precisions() {
    let mut random = Random(0x0DDB_1A5E_5BAD_5EED);
    let mut walks = BTreeSet::new();
    for precision in [Precision::F32, Precision::F64] {
        for _ in 0..4 {
            check(&mut random, &shape(precision), "quantised-u8", &mut walks);
        }
    }
    assert_walks(&walks, true);
}

#[test]
fn rows_too_wide_for_registers_take_the_gather_kernel() {
    let mut random = Random(0x005E_ED0F_3713_u64);
    let mut walks = BTreeSet::new();
    for precision in [Precision::F32, Precision::F64] {
        // 32 features are 65 bin slots, one more than two AVX-512 registers of u16 hold.
        check(&mut random, &Shape { features: 32, trees: 70, ..shape(precision) }, "quantised-u8", &mut walks);
        let many_cuts = Shape { features: 34, spread: 400, trees: 400, depth: 8, ..shape(precision) };
        check(&mut random, &many_cuts, "quantised-u16", &mut walks);
    }
    assert_walks(&walks, false);
    // 31 features (63 slots) still fit.
    let mut walks = BTreeSet::new();
    check(&mut random, &Shape { features: 31, ..shape(Precision::F32) }, "quantised-u8", &mut walks);
    assert_walks(&walks, true);
}

#[test]
fn deep_and_unbalanced_trees_take_the_general_layout() {
    let mut random = Random(0xC0FF_EE00_1234_5678);
    let mut walks = BTreeSet::new();
    for precision in [Precision::F32, Precision::F64] {
        for _ in 0..3 {
            // Some of these trees have more leaves than u8 bins index (the leaf index shares the rank field).
            let chains = Shape { depth: 14, chains: true, trees: 40, ..shape(precision) };
            check(&mut random, &chains, "quantised-u16", &mut walks);
            check(&mut random, &Shape { spread: 3, ..chains }, "quantised-u16", &mut walks);
        }
    }
    assert_walks(&walks, true);
}

#[test]
fn many_thresholds_per_feature_take_wide_bins() {
    let mut random = Random(0xFEED_FACE_CAFE_BEEF);
    let mut walks = BTreeSet::new();
    for precision in [Precision::F32, Precision::F64] {
        let wide = Shape { features: 3, spread: 400, trees: 300, depth: 8, ..shape(precision) };
        check(&mut random, &wide, "quantised-u16", &mut walks);
        // 129 to 254 thresholds a feature: the line kernel's table compares 16 fences (f32) or two registers of 8
        // (f64) before the group of 16 cuts.
        let fenced = Shape { features: 3, spread: 200, trees: 300, depth: 8, ..shape(precision) };
        check(&mut random, &fenced, "quantised-u8", &mut walks);
    }
    assert_walks(&walks, true);
}

#[test]
fn ranks_past_16_bit_split_words_take_the_line_kernels_wide_words() {
    let mut random = Random(0x0B16_B00B_50DD_BA11);
    let mut walks = BTreeSet::new();
    // Over 1,023 distinct thresholds on a feature: a rank no longer fits a 16-bit split word beside its slot, so
    // the line kernel takes 32-bit words.
    for precision in [Precision::F32, Precision::F64] {
        let wide = Shape { features: 3, spread: 3000, trees: 300, depth: 8, ..shape(precision) };
        check(&mut random, &wide, "quantised-u16", &mut walks);
    }
    assert_walks(&walks, true);
}

#[test]
fn several_outputs_means_and_missing_rules() {
    let mut random = Random(0x1234_5678_9ABC_DEF1);
    let mut walks = BTreeSet::new();
    for precision in [Precision::F32, Precision::F64] {
        let multi = Shape { outputs: 3, aggregation: Aggregation::Mean, rules: true, depth: 9, ..shape(precision) };
        check(&mut random, &multi, "quantised-u8", &mut walks);
        let mean = Shape { aggregation: Aggregation::Mean, depth: 8, ..shape(precision) };
        check(&mut random, &mean, "quantised-u8", &mut walks);
        let rules = Shape { rules: true, chains: true, depth: 12, ..shape(precision) };
        check(&mut random, &rules, "quantised-u16", &mut walks);
        let narrow = Shape { rules: true, chains: true, depth: 7, ..shape(precision) };
        check(&mut random, &narrow, "quantised-u8", &mut walks);
    }
    assert_walks(&walks, true);
}

#[test]
fn categorical_splits_keep_the_reference_walk() {
    let mut random = Random(0xABCD_EF01_2345_6789);
    let mut walks = BTreeSet::new();
    for precision in [Precision::F32, Precision::F64] {
        check(&mut random, &Shape { categorical: true, ..shape(precision) }, "reference", &mut walks);
    }
    assert!(walks.is_empty());
}
