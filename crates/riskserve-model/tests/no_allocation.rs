//! The one-row paths allocate nothing once their scratch exists: scoring (`Scratch`) and exact
//! explanations (`ExplainScratch`), counted by a global allocator.
#![allow(unsafe_code, reason = "a counting global allocator needs `unsafe impl GlobalAlloc`")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use riskserve_model::Predictor;
use riskserve_model::ir::{
    Aggregation, Direction, Feature, LinearModel, MissingRule, Model, ModelBody, Node, Output, OutputKind, Precision,
    SplitTest, Transform, Tree, TreeEnsemble,
};
use riskserve_model::shap::Explainer;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct CountingAllocator;

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with` because the thread-local may already be gone while a thread exits.
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// A tree of the given depth splitting on features in turn, deep enough for the general layout
/// when it is a chain.
fn tree(depth: u32, chain: bool, output: u32) -> Tree {
    let mut nodes = Vec::new();
    fn grow(nodes: &mut Vec<Node>, level: u32, depth: u32, chain: bool) -> u32 {
        let index = nodes.len() as u32;
        if level == depth {
            nodes.push(Node::Leaf { value: f64::from(level) * 0.125 });
            return index;
        }
        nodes.push(Node::Leaf { value: 0.0 });
        let left = if chain {
            let leaf = nodes.len() as u32;
            nodes.push(Node::Leaf { value: -0.5 });
            leaf
        } else {
            grow(nodes, level + 1, depth, chain)
        };
        let right = grow(nodes, level + 1, depth, chain);
        let test = if level == 2 {
            SplitTest::CategoryIn { categories: vec![1, 3], in_set: Direction::Left }
        } else {
            SplitTest::LessThan(0.5)
        };
        nodes[index as usize] = Node::Split { feature: level % 4, test, left, right, missing: Direction::Left };
        index
    }
    grow(&mut nodes, 0, depth, chain);
    Tree { nodes, output, cover: None }
}

fn ensemble(precision: Precision, outputs: usize) -> Model {
    let trees = (0..24).map(|index| tree(3 + index % 5, index % 3 == 0, (index as usize % outputs) as u32)).collect();
    Model {
        inputs: (0..4)
            .map(|index| Feature {
                name: format!("f{index}"),
                kind: riskserve_model::ir::FeatureKind::Numeric,
                missing: if index == 1 { MissingRule::NanAsZero } else { MissingRule::AsIs },
            })
            .collect(),
        preprocess: None,
        body: ModelBody::Trees(TreeEnsemble {
            trees,
            num_outputs: outputs,
            base_margin: vec![0.1; outputs],
            aggregation: Aggregation::Sum,
            precision,
            num_features: 4,
        }),
        output: Output {
            transform: if outputs == 1 { Transform::Sigmoid { scale: 1.0 } } else { Transform::Softmax },
            kind: if outputs == 1 { OutputKind::Probability } else { OutputKind::ClassProbabilities },
        },
        source: riskserve_model::Format::Model,
    }
}

fn linear() -> Model {
    Model {
        inputs: (0..3).map(|index| Feature::numeric(format!("x{index}"))).collect(),
        preprocess: None,
        body: ModelBody::Linear(LinearModel {
            num_features: 3,
            num_outputs: 1,
            coefficients: vec![0.5, -1.0, 2.0],
            intercepts: vec![0.25],
        }),
        output: Output { transform: Transform::Sigmoid { scale: 1.0 }, kind: OutputKind::Probability },
        source: riskserve_model::Format::Model,
    }
}

#[test]
fn scoring_one_row_allocates_nothing() {
    for model in [ensemble(Precision::F32, 1), ensemble(Precision::F64, 1), ensemble(Precision::F32, 3), linear()] {
        let predictor = Predictor::new(model).unwrap();
        let mut scratch = predictor.scratch();
        let mut out = vec![0.0; predictor.num_values()];
        let rows: Vec<Vec<f64>> = (0..16)
            .map(|index| {
                (0..predictor.num_inputs()).map(|column| ((index * 7 + column * 3) % 5) as f64 * 0.3).collect()
            })
            .collect();
        let mut rows = rows;
        rows[3][1] = f64::NAN;
        rows[5][2] = f64::NAN;
        let before = allocations();
        for row in &rows {
            predictor.predict_row(row, &mut scratch, &mut out).unwrap();
            if row.iter().all(|value| value.is_finite()) {
                assert!(out.iter().all(|value| value.is_finite()), "{out:?} for {row:?}");
            }
        }
        assert_eq!(allocations() - before, 0, "predict_row allocated");
    }
}

/// The ensemble with each node's cover: the number of leaves below it (weights as a library
/// records them: a parent's cover is its children's sum).
fn with_covers(mut model: Model) -> Model {
    fn leaves_below(nodes: &[Node], index: u32, cover: &mut [f64]) -> f64 {
        let count = match &nodes[index as usize] {
            Node::Leaf { .. } => 1.0,
            Node::Split { left, right, .. } => leaves_below(nodes, *left, cover) + leaves_below(nodes, *right, cover),
        };
        cover[index as usize] = count;
        count
    }
    if let ModelBody::Trees(ensemble) = &mut model.body {
        for tree in &mut ensemble.trees {
            let mut cover = vec![0.0; tree.nodes.len()];
            leaves_below(&tree.nodes, 0, &mut cover);
            tree.cover = Some(cover);
        }
    }
    model
}

#[test]
fn explaining_one_row_allocates_nothing() {
    for model in [
        with_covers(ensemble(Precision::F32, 1)),
        with_covers(ensemble(Precision::F64, 1)),
        with_covers(ensemble(Precision::F32, 3)),
        linear(),
    ] {
        let explainer = Explainer::new(&model).unwrap();
        let predictor = Predictor::new(Model {
            output: Output { transform: Transform::Identity, kind: OutputKind::Margin },
            ..model.clone()
        })
        .unwrap();
        let mut scratch = explainer.scratch();
        let mut predictor_scratch = predictor.scratch();
        let stride = explainer.num_features() + 1;
        let mut out = vec![0.0; explainer.num_groups() * stride];
        let mut margin = vec![0.0; predictor.num_values()];
        let mut rows: Vec<Vec<f64>> = (0..16)
            .map(|index| {
                (0..explainer.num_inputs()).map(|column| ((index * 7 + column * 3) % 5) as f64 * 0.3).collect()
            })
            .collect();
        rows[3][1] = f64::NAN;
        rows[5][2] = f64::NAN;
        for row in &rows {
            let before = allocations();
            explainer.explain_row(row, &mut scratch, &mut out).unwrap();
            assert_eq!(allocations() - before, 0, "explain_row allocated");
            // And the explanation is one: it sums to the margin.
            predictor.predict_row(row, &mut predictor_scratch, &mut margin).unwrap();
            for (group, margin) in margin.iter().enumerate().filter(|(_, margin)| margin.is_finite()) {
                let sum: f64 = out[group * stride..(group + 1) * stride].iter().sum();
                assert!((sum - margin).abs() < 1e-5, "{sum} vs {margin} for {row:?}");
            }
        }
    }
}

#[test]
fn the_allocation_counter_counts() {
    let before = allocations();
    let boxed = std::hint::black_box(Box::new([0u8; 64]));
    assert!(allocations() > before);
    drop(boxed);
}
