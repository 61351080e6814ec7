//! Tests of the ONNX importer on hand-built graphs: hostile and malformed files, refused
//! operators and attributes, and the conversion rules (branch modes, names, encoders).
//! Parity with onnxruntime on real skl2onnx and onnxmltools files is the fixture suite's job.

use prost::Message;

use super::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TensorTypeProto, TypeProto, ValueInfoProto, attribute_type, data_type,
};
use crate::error::ModelError;
use crate::ir::{Direction, FeatureKind, Model, ModelBody, Node, OutputKind, SplitTest, Transform, UnknownCategory};
use crate::{Format, Predictor, load_model};

fn attribute(name: &str) -> AttributeProto {
    AttributeProto { name: Some(name.into()), ..Default::default() }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto { ints: values.to_vec(), r#type: Some(attribute_type::INTS), ..attribute(name) }
}

fn floats(name: &str, values: &[f32]) -> AttributeProto {
    AttributeProto { floats: values.to_vec(), r#type: Some(attribute_type::FLOATS), ..attribute(name) }
}

fn strings(name: &str, values: &[&str]) -> AttributeProto {
    AttributeProto {
        strings: values.iter().map(|value| value.as_bytes().to_vec()).collect(),
        r#type: Some(attribute_type::STRINGS),
        ..attribute(name)
    }
}

fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto { s: Some(value.as_bytes().to_vec()), r#type: Some(attribute_type::STRING), ..attribute(name) }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto { i: Some(value), r#type: Some(attribute_type::INT), ..attribute(name) }
}

fn node(op_type: &str, domain: &str, inputs: &[&str], outputs: &[&str], attributes: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|name| (*name).into()).collect(),
        output: outputs.iter().map(|name| (*name).into()).collect(),
        name: None,
        op_type: Some(op_type.into()),
        attribute: attributes,
        domain: Some(domain.into()),
    }
}

fn ml(op_type: &str, inputs: &[&str], outputs: &[&str], attributes: Vec<AttributeProto>) -> NodeProto {
    node(op_type, "ai.onnx.ml", inputs, outputs, attributes)
}

fn tensor_input(name: &str, element_type: i32, columns: Option<i64>) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: Some(element_type),
                shape: Some(TensorShapeProto {
                    dim: vec![
                        Dimension { dim_value: None, dim_param: Some("N".into()) },
                        Dimension { dim_value: columns, dim_param: None },
                    ],
                }),
            }),
        }),
    }
}

fn integer_tensor(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(data_type::INT64),
        int64_data: values.to_vec(),
        name: Some(name.into()),
        ..Default::default()
    }
}

fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(data_type::FLOAT),
        float_data: values.to_vec(),
        name: Some(name.into()),
        ..Default::default()
    }
}

fn encode(nodes: Vec<NodeProto>, inputs: Vec<ValueInfoProto>, initializers: Vec<TensorProto>) -> Vec<u8> {
    let model = ModelProto {
        ir_version: Some(8),
        producer_name: Some("riskserve tests".into()),
        producer_version: None,
        graph: Some(GraphProto {
            node: nodes,
            name: Some("test".into()),
            initializer: initializers,
            input: inputs,
            output: vec![],
        }),
        opset_import: vec![
            OperatorSetIdProto { domain: Some(String::new()), version: Some(17) },
            OperatorSetIdProto { domain: Some("ai.onnx.ml".into()), version: Some(3) },
        ],
    };
    model.encode_to_vec()
}

/// A regressor of one tree: node 0 splits feature 0 at `threshold` with `mode`, true child 1
/// (leaf 10.0), false child 2 (leaf 20.0).
fn one_split_regressor(mode: &str, threshold: f32, tracks_true: i64) -> NodeProto {
    ml(
        "TreeEnsembleRegressor",
        &["X"],
        &["variable"],
        vec![
            int("n_targets", 1),
            ints("nodes_treeids", &[0, 0, 0]),
            ints("nodes_nodeids", &[0, 1, 2]),
            ints("nodes_featureids", &[0, 0, 0]),
            strings("nodes_modes", &[mode, "LEAF", "LEAF"]),
            floats("nodes_values", &[threshold, 0.0, 0.0]),
            ints("nodes_truenodeids", &[1, 0, 0]),
            ints("nodes_falsenodeids", &[2, 0, 0]),
            ints("nodes_missing_value_tracks_true", &[tracks_true, 0, 0]),
            ints("target_treeids", &[0, 0]),
            ints("target_nodeids", &[1, 2]),
            ints("target_ids", &[0, 0]),
            floats("target_weights", &[10.0, 20.0]),
        ],
    )
}

fn float_model(nodes: Vec<NodeProto>, columns: i64) -> Vec<u8> {
    encode(nodes, vec![tensor_input("X", data_type::FLOAT, Some(columns))], vec![])
}

fn load(bytes: &[u8]) -> Result<Model, ModelError> {
    load_model(bytes, Some(Format::Onnx))
}

fn error_of(bytes: &[u8]) -> String {
    match load(bytes) {
        Ok(_) => panic!("the model loaded"),
        Err(error) => error.to_string(),
    }
}

/// Replaces the attribute called `name` of the first node.
fn with_attribute(mut node: NodeProto, replacement: AttributeProto) -> NodeProto {
    node.attribute.retain(|attribute| attribute.name != replacement.name);
    node.attribute.push(replacement);
    node
}

fn single_tree(model: &Model) -> &[Node] {
    match &model.body {
        ModelBody::Trees(ensemble) => &ensemble.trees[0].nodes,
        other => panic!("not trees: {other:?}"),
    }
}

#[test]
fn garbage_and_empty_files_are_malformed() {
    for bytes in [&[0x08, 0xff, 0xff][..], &[0x0a, 0x80][..], &b"\x08\x07\x3a\x05\x0a\x10\x00\x00\x00"[..]] {
        assert!(matches!(load(bytes), Err(ModelError::Malformed { format: Format::Onnx, .. })), "{bytes:?}");
    }
    let no_graph = ModelProto { ir_version: Some(8), ..Default::default() }.encode_to_vec();
    assert!(error_of(&no_graph).contains("the file has no graph"));
}

#[test]
fn unsupported_operators_are_all_named_once() {
    let nodes = vec![
        node("MatMul", "", &["X", "W"], &["a"], vec![]),
        node("Relu", "", &["a"], &["b"], vec![]),
        node("MatMul", "", &["b", "W"], &["c"], vec![]),
        node("FusedGemm", "com.microsoft", &["c"], &["d"], vec![]),
        one_split_regressor("BRANCH_LEQ", 0.5, 0),
    ];
    let message = error_of(&float_model(nodes, 1));
    assert!(message.contains("unsupported operators: MatMul, Relu, com.microsoft.FusedGemm"), "{message}");
}

#[test]
fn attribute_arrays_of_different_lengths_are_invalid() {
    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), ints("nodes_featureids", &[0, 0]));
    let message = error_of(&float_model(vec![tree], 1));
    assert!(message.contains("nodes_treeids has 3 entries but nodes_featureids has 2"), "{message}");

    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), floats("target_weights", &[1.0]));
    let message = error_of(&float_model(vec![tree], 1));
    assert!(message.contains("target_treeids has 2 entries but target_weights has 1"), "{message}");
}

#[test]
fn child_ids_outside_the_tree_are_invalid() {
    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), ints("nodes_falsenodeids", &[7, 0, 0]));
    let message = error_of(&float_model(vec![tree], 1));
    assert!(message.contains("points to node 7, which does not exist"), "{message}");

    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), ints("target_nodeids", &[1, 9]));
    let message = error_of(&float_model(vec![tree], 1));
    assert!(message.contains("names node 9 of tree 0, which does not exist"), "{message}");
}

#[test]
fn cycles_and_shared_children_in_a_tree_are_invalid() {
    // Node 0's false child is node 0 itself.
    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), ints("nodes_falsenodeids", &[0, 0, 0]));
    assert!(error_of(&float_model(vec![tree], 1)).contains("node 0 of tree 0 is reached twice"));
    // Both children are node 1.
    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), ints("nodes_falsenodeids", &[1, 0, 0]));
    assert!(error_of(&float_model(vec![tree], 1)).contains("node 1 of tree 0 is reached twice"));
}

#[test]
fn trees_must_be_contiguous_and_node_ids_unique() {
    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), ints("nodes_nodeids", &[0, 1, 1]));
    assert!(error_of(&float_model(vec![tree], 1)).contains("node 1 of tree 0 appears twice"));
    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), ints("nodes_treeids", &[0, 1, 0]));
    assert!(error_of(&float_model(vec![tree], 1)).contains("the nodes of tree 0 are not contiguous"));
}

#[test]
fn leaves_without_weights_and_features_out_of_range_are_invalid() {
    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), ints("target_nodeids", &[1, 1]));
    assert!(error_of(&float_model(vec![tree], 1)).contains("leaf 2 of tree 0 has no weight"));
    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), ints("nodes_featureids", &[3, 0, 0]));
    assert!(error_of(&float_model(vec![tree], 2)).contains("splits on feature 3 but the model has 2"));
    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", f32::NAN, 0), int("n_targets", 1));
    assert!(error_of(&float_model(vec![tree], 1)).contains("NaN threshold"));
}

#[test]
fn unsupported_attribute_values_are_named() {
    for (replacement, expected) in [
        (string("post_transform", "PROBIT"), "post_transform PROBIT"),
        (string("aggregate_function", "MIN"), "aggregate_function MIN"),
        (strings("nodes_modes", &["BRANCH_NEQ", "LEAF", "LEAF"]), "nodes_modes BRANCH_NEQ"),
    ] {
        let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), replacement);
        let error = load(&float_model(vec![tree], 1)).unwrap_err();
        assert!(matches!(error, ModelError::Unsupported { .. }), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
    }
    let tree = with_attribute(
        one_split_regressor("BRANCH_LEQ", 0.5, 0),
        strings("nodes_modes", &["SIDEWAYS", "LEAF", "LEAF"]),
    );
    assert!(error_of(&float_model(vec![tree], 1)).contains("unknown node mode \"SIDEWAYS\""));
}

#[test]
fn attributes_of_the_wrong_declared_type_are_malformed() {
    let wrong =
        AttributeProto { ints: vec![0, 0, 0], r#type: Some(attribute_type::FLOATS), ..attribute("nodes_treeids") };
    let tree = with_attribute(one_split_regressor("BRANCH_LEQ", 0.5, 0), wrong);
    let error = load(&float_model(vec![tree], 1)).unwrap_err();
    assert!(matches!(error, ModelError::Malformed { .. }), "{error}");
    assert!(
        error.to_string().contains("attribute nodes_treeids of TreeEnsembleRegressor node 0 has type 6, expected INTS")
    );
}

#[test]
fn tensors_claiming_more_elements_than_they_hold_are_invalid() {
    let nodes = vec![
        ml("ArrayFeatureExtractor", &["X", "indices"], &["picked"], vec![]),
        one_split_regressor("BRANCH_LEQ", 0.5, 0),
    ];
    let mut nodes = nodes;
    nodes[1].input = vec!["picked".into()];
    let huge = integer_tensor("indices", &[1 << 40, 1 << 40], &[0]);
    let bytes = encode(nodes.clone(), vec![tensor_input("X", data_type::FLOAT, Some(2))], vec![huge]);
    assert!(error_of(&bytes).contains("claims more elements than can exist"));
    let large = integer_tensor("indices", &[1 << 40], &[0]);
    let bytes = encode(nodes.clone(), vec![tensor_input("X", data_type::FLOAT, Some(2))], vec![large]);
    assert!(error_of(&bytes).contains("claims 1099511627776 elements but holds 1"));
    let raw = TensorProto { raw_data: Some(vec![0; 12]), int64_data: vec![], ..integer_tensor("indices", &[2], &[]) };
    let bytes = encode(nodes.clone(), vec![tensor_input("X", data_type::FLOAT, Some(2))], vec![raw]);
    assert!(error_of(&bytes).contains("claims 2 elements but holds 12 bytes of data"));
    let outside = integer_tensor("indices", &[1], &[5]);
    let bytes = encode(nodes, vec![tensor_input("X", data_type::FLOAT, Some(2))], vec![outside]);
    assert!(error_of(&bytes).contains("extracts column 5 of 2"));
}

#[test]
fn graph_cycles_and_missing_values_are_invalid() {
    let mut tree = one_split_regressor("BRANCH_LEQ", 0.5, 0);
    tree.input = vec!["b".into()];
    let nodes =
        vec![node("Identity", "", &["b"], &["a"], vec![]), node("Identity", "", &["a"], &["b"], vec![]), tree.clone()];
    assert!(error_of(&float_model(nodes, 1)).contains("the graph has a cycle"));
    let nodes = vec![node("Identity", "", &["nowhere"], &["b"], vec![]), tree];
    assert!(error_of(&float_model(nodes, 1)).contains("value \"nowhere\" read by Identity node 0 is never produced"));
}

#[test]
fn graphs_need_exactly_one_model_operator() {
    let nodes = vec![node("Identity", "", &["X"], &["Y"], vec![])];
    assert!(error_of(&float_model(nodes, 1)).contains("the graph has no model operator"));
    let mut second = one_split_regressor("BRANCH_LEQ", 0.5, 0);
    second.output = vec!["other".into()];
    let nodes = vec![one_split_regressor("BRANCH_LEQ", 0.5, 0), second];
    assert!(error_of(&float_model(nodes, 1)).contains("the graph has several model operators"));
}

#[test]
fn operators_that_change_the_scores_after_the_model_are_refused() {
    let constant = float_tensor("two", &[], &[2.0]);
    let nodes =
        vec![one_split_regressor("BRANCH_LEQ", 0.5, 0), node("Mul", "", &["variable", "two"], &["scaled"], vec![])];
    let bytes = encode(nodes, vec![tensor_input("X", data_type::FLOAT, Some(1))], vec![constant]);
    assert!(error_of(&bytes).contains("Mul node 1 changes the model's scores"));
    // Multiplying by one, as onnxmltools does for LightGBM, changes nothing.
    let constant = float_tensor("one", &[], &[1.0]);
    let nodes =
        vec![one_split_regressor("BRANCH_LEQ", 0.5, 0), node("Mul", "", &["variable", "one"], &["scaled"], vec![])];
    let bytes = encode(nodes, vec![tensor_input("X", data_type::FLOAT, Some(1))], vec![constant]);
    load(&bytes).unwrap();
}

#[test]
fn inputs_need_a_fixed_number_of_columns() {
    let bytes = encode(
        vec![one_split_regressor("BRANCH_LEQ", 0.5, 0)],
        vec![tensor_input("X", data_type::FLOAT, None)],
        vec![],
    );
    assert!(error_of(&bytes).contains("input \"X\" has no fixed number of columns"));
    let bytes = encode(
        vec![one_split_regressor("BRANCH_LEQ", 0.5, 0)],
        vec![tensor_input("X", data_type::BOOL, Some(1))],
        vec![],
    );
    assert!(error_of(&bytes).contains("input \"X\" has element type 9"));
}

#[test]
fn branch_modes_become_less_than_splits_in_f32() {
    let threshold = 0.1f32;
    let cases = [
        ("BRANCH_LEQ", threshold.next_up(), (10.0, 20.0)),
        ("BRANCH_LT", threshold, (10.0, 20.0)),
        ("BRANCH_GTE", threshold, (20.0, 10.0)),
        ("BRANCH_GT", threshold.next_up(), (20.0, 10.0)),
    ];
    for (mode, expected, (left_value, right_value)) in cases {
        for tracks_true in [0, 1] {
            let model = load(&float_model(vec![one_split_regressor(mode, threshold, tracks_true)], 1)).unwrap();
            assert!(model.preprocess.is_none(), "a plain float tree ensemble needs no feature program");
            let nodes = single_tree(&model);
            let Node::Split { test, left, right, missing, .. } = &nodes[0] else {
                panic!("{mode}: root is not a split")
            };
            assert_eq!(*test, SplitTest::LessThan(f64::from(expected)), "{mode}");
            assert_eq!(nodes[*left as usize], Node::Leaf { value: left_value }, "{mode}");
            assert_eq!(nodes[*right as usize], Node::Leaf { value: right_value }, "{mode}");
            // NaN takes the true child (value 10) exactly when the missing value tracks true.
            let true_side = if left_value == 10.0 { Direction::Left } else { Direction::Right };
            let false_side = if left_value == 10.0 { Direction::Right } else { Direction::Left };
            assert_eq!(*missing, if tracks_true == 1 { true_side } else { false_side }, "{mode} tracks {tracks_true}");
        }
    }
}

#[test]
fn comparisons_with_infinity_keep_infinite_inputs_on_the_right_side() {
    for mode in ["BRANCH_LEQ", "BRANCH_GT"] {
        let model = load(&float_model(vec![one_split_regressor(mode, f32::INFINITY, 0)], 1)).unwrap();
        let Node::Split { test, .. } = &single_tree(&model)[0] else { panic!("root is not a split") };
        assert_eq!(*test, SplitTest::CategoryIn { categories: vec![], in_set: Direction::Right }, "{mode}");
        let predictor = Predictor::new(model).unwrap();
        let mut scratch = predictor.scratch();
        let mut out = [0.0];
        predictor.predict_row(&[f64::INFINITY], &mut scratch, &mut out).unwrap();
        // x <= +inf holds for +inf (true child, 10); x > +inf does not (false child, 20).
        assert_eq!(out[0], if mode == "BRANCH_LEQ" { 10.0 } else { 20.0 }, "{mode}");
    }
}

#[test]
fn column_names_follow_the_inputs() {
    let mut tree = one_split_regressor("BRANCH_LEQ", 0.5, 0);
    tree.input = vec!["joined".into()];
    let nodes = vec![
        ml(
            "OneHotEncoder",
            &["color"],
            &["encoded"],
            vec![strings("cats_strings", &["red", "blue", "red"]), int("zeros", 1)],
        ),
        node("Reshape", "", &["encoded", "shape"], &["flat"], vec![]),
        node("Concat", "", &["wide", "age", "flat"], &["joined"], vec![int("axis", 1)]),
        tree,
    ];
    let inputs = vec![
        tensor_input("wide", data_type::FLOAT, Some(2)),
        tensor_input("age", data_type::FLOAT, Some(1)),
        tensor_input("color", data_type::STRING, Some(1)),
    ];
    let bytes = encode(nodes, inputs, vec![integer_tensor("shape", &[2], &[-1, 3])]);
    let model = load(&bytes).unwrap();
    let names: Vec<&str> = model.inputs.iter().map(|feature| feature.name.as_str()).collect();
    assert_eq!(names, ["wide_0", "wide_1", "age", "color"]);
    assert_eq!(
        model.inputs[3].kind,
        FeatureKind::Categorical {
            categories: Some(vec!["red".into(), "blue".into()]),
            unknown: UnknownCategory::Missing
        }
    );
    assert_eq!(model.num_body_features(), 6);
    // "red" is listed twice; onnxruntime keeps its last position (2).
    let predictor = Predictor::new(model.clone()).unwrap();
    let program = model.preprocess.as_ref().unwrap();
    let mut scratch = vec![0.0; program.scratch_len()];
    let mut features = vec![0.0; 6];
    for (code, expected) in [(0.0, [0.0, 0.0, 1.0]), (1.0, [0.0, 1.0, 0.0]), (f64::NAN, [0.0, 0.0, 0.0])] {
        program.apply(&[1.0, 2.0, 3.0, code], &mut scratch, &mut features);
        assert_eq!(features[3..], expected, "code {code}");
    }
    assert_eq!(predictor.num_inputs(), 4);
}

#[test]
fn a_one_hot_encoder_without_zeros_refuses_unknown_strings() {
    let mut tree = one_split_regressor("BRANCH_LEQ", 0.5, 0);
    tree.input = vec!["encoded".into()];
    let nodes = vec![
        ml("OneHotEncoder", &["color"], &["encoded"], vec![strings("cats_strings", &["a", "b"]), int("zeros", 0)]),
        tree,
    ];
    let bytes = encode(nodes, vec![tensor_input("color", data_type::STRING, Some(1))], vec![]);
    // The one-hot output is [N, 1, 2]; the tree reads a rank-3 tensor, which is refused...
    assert!(error_of(&bytes).contains("reads a tensor of rank 3"));
    // ...until it is flattened.
    let mut tree = one_split_regressor("BRANCH_LEQ", 0.5, 0);
    tree.input = vec!["flat".into()];
    let nodes = vec![
        ml("OneHotEncoder", &["color"], &["encoded"], vec![strings("cats_strings", &["a", "b"]), int("zeros", 0)]),
        node("Flatten", "", &["encoded"], &["flat"], vec![]),
        tree,
    ];
    let model = load(&encode(nodes, vec![tensor_input("color", data_type::STRING, Some(1))], vec![])).unwrap();
    assert!(matches!(&model.inputs[0].kind, FeatureKind::Categorical { unknown: UnknownCategory::Error, .. }));
}

#[test]
fn binary_classifiers_report_the_positive_class() {
    // Gradient boosting as skl2onnx writes it: one weight column (class 0), mixed signs, LOGISTIC.
    let classifier = |weights: [f32; 2], post_transform: &str, class_ids: [i64; 2]| {
        ml(
            "TreeEnsembleClassifier",
            &["X"],
            &["label", "probabilities"],
            vec![
                ints("classlabels_int64s", &[0, 1]),
                ints("nodes_treeids", &[0, 0, 0]),
                ints("nodes_nodeids", &[0, 1, 2]),
                ints("nodes_featureids", &[0, 0, 0]),
                strings("nodes_modes", &["BRANCH_LEQ", "LEAF", "LEAF"]),
                floats("nodes_values", &[0.5, 0.0, 0.0]),
                ints("nodes_truenodeids", &[1, 0, 0]),
                ints("nodes_falsenodeids", &[2, 0, 0]),
                ints("class_treeids", &[0, 0]),
                ints("class_nodeids", &[1, 2]),
                ints("class_ids", &class_ids),
                floats("class_weights", &weights),
                string("post_transform", post_transform),
            ],
        )
    };
    let model = load(&float_model(vec![classifier([-0.5, 0.5], "LOGISTIC", [0, 0])], 1)).unwrap();
    assert_eq!(model.output.transform, Transform::Sigmoid { scale: 1.0 });
    assert_eq!(model.output.kind, OutputKind::Probability);
    // All weights non-negative (a random forest): onnxruntime reports [1 - s, s] even with LOGISTIC.
    let model = load(&float_model(vec![classifier([0.25, 0.75], "LOGISTIC", [0, 0])], 1)).unwrap();
    assert_eq!(model.output.transform, Transform::Identity);
    // Class 1 on only one leaf: onnxruntime's answer would depend on the row.
    let message = error_of(&float_model(vec![classifier([0.25, 0.75], "LOGISTIC", [0, 1])], 1));
    assert!(message.contains("class 1 has weights on only some leaves"), "{message}");
}

#[test]
fn linear_classifiers_with_softmax_over_two_classes_become_a_sigmoid_of_the_difference() {
    let classifier = ml(
        "LinearClassifier",
        &["X"],
        &["label", "probabilities"],
        vec![
            ints("classlabels_ints", &[0, 1]),
            floats("coefficients", &[1.0, 2.0, 4.0, 8.0]),
            floats("intercepts", &[0.5, 0.25]),
            string("post_transform", "SOFTMAX"),
        ],
    );
    let model = load(&float_model(vec![classifier], 2)).unwrap();
    let ModelBody::Linear(linear) = &model.body else { panic!("not linear") };
    assert_eq!(linear.coefficients, [3.0, 6.0]);
    assert_eq!(linear.intercepts, [-0.25]);
    assert_eq!(model.output.transform, Transform::Sigmoid { scale: 1.0 });
    // onnxruntime feeds a linear model f32 values, so the program rounds the inputs.
    let program = model.preprocess.as_ref().expect("a linear model rounds its inputs to f32");
    let mut scratch = vec![0.0; program.scratch_len()];
    let mut features = [0.0; 2];
    program.apply(&[0.1, 0.2], &mut scratch, &mut features);
    assert_eq!(features, [f64::from(0.1f32), f64::from(0.2f32)]);
}

#[test]
fn mutated_files_never_panic() {
    let mut tree = one_split_regressor("BRANCH_GTE", 0.5, 1);
    tree.input = vec!["scaled".into()];
    let nodes = vec![
        ml("Scaler", &["X"], &["scaled"], vec![floats("offset", &[0.5, 1.0]), floats("scale", &[2.0, 3.0])]),
        tree,
    ];
    let original = float_model(nodes, 2);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut bytes = original.clone();
        for _ in 0..1 + next() % 4 {
            let position = (next() % bytes.len() as u64) as usize;
            bytes[position] = next() as u8;
        }
        if next() % 5 == 0 {
            bytes.truncate((next() % bytes.len() as u64) as usize);
        }
        if let Ok(model) = load(&bytes) {
            let predictor = Predictor::new(model).unwrap();
            let mut scratch = predictor.scratch();
            let mut out = vec![0.0; predictor.num_values()];
            let row = vec![0.25; predictor.num_inputs()];
            predictor.predict_row(&row, &mut scratch, &mut out).unwrap();
        }
    }
}

#[test]
fn concatenating_a_value_with_itself_cannot_grow_without_bound() {
    let mut nodes = Vec::new();
    let mut previous = "X".to_string();
    for step in 0..40 {
        let next = format!("doubled{step}");
        nodes.push(node("Concat", "", &[&previous, &previous], &[&next], vec![int("axis", 1)]));
        previous = next;
    }
    let mut tree = one_split_regressor("BRANCH_LEQ", 0.5, 0);
    tree.input = vec![previous];
    nodes.push(tree);
    let message = error_of(&float_model(nodes, 1));
    assert!(message.contains("builds rows of more than 1048576 values"), "{message}");
}

#[test]
fn gather_selects_constant_columns() {
    let mut tree = one_split_regressor("BRANCH_LEQ", 0.5, 0);
    tree.input = vec!["picked".into()];
    let nodes = vec![node("Gather", "", &["X", "columns"], &["picked"], vec![int("axis", 1)]), tree];
    let bytes = encode(
        nodes.clone(),
        vec![tensor_input("X", data_type::FLOAT, Some(3))],
        vec![integer_tensor("columns", &[2], &[-1, 0])],
    );
    let model = load(&bytes).unwrap();
    assert_eq!(model.num_body_features(), 2);
    let program = model.preprocess.as_ref().expect("selecting columns needs a program");
    let mut scratch = vec![0.0; program.scratch_len()];
    let mut features = [0.0; 2];
    program.apply(&[1.0, 2.0, 3.0], &mut scratch, &mut features);
    assert_eq!(features, [3.0, 1.0]);
    let bytes =
        encode(nodes, vec![tensor_input("X", data_type::FLOAT, Some(3))], vec![integer_tensor("columns", &[1], &[3])]);
    assert!(error_of(&bytes).contains("gathers column 3 of 3"));
}

#[test]
fn chains_of_equality_nodes_become_one_category_split() {
    // onnxmltools' categorical split: node 0 (x == 1) and node 1 (x == 4) share true child 2;
    // node 1's false child 3 is the "not in the set" side. Node 1 tracks missing values.
    let tree = ml(
        "TreeEnsembleRegressor",
        &["X"],
        &["variable"],
        vec![
            int("n_targets", 1),
            ints("nodes_treeids", &[0, 0, 0, 0]),
            ints("nodes_nodeids", &[0, 1, 2, 3]),
            ints("nodes_featureids", &[0, 0, 0, 0]),
            strings("nodes_modes", &["BRANCH_EQ", "BRANCH_EQ", "LEAF", "LEAF"]),
            floats("nodes_values", &[4.0, 1.0, 0.0, 0.0]),
            ints("nodes_truenodeids", &[2, 2, 0, 0]),
            ints("nodes_falsenodeids", &[1, 3, 0, 0]),
            ints("nodes_missing_value_tracks_true", &[0, 1, 0, 0]),
            ints("target_treeids", &[0, 0]),
            ints("target_nodeids", &[2, 3]),
            ints("target_ids", &[0, 0]),
            floats("target_weights", &[10.0, 20.0]),
        ],
    );
    let model = load(&float_model(vec![tree.clone()], 1)).unwrap();
    let nodes = single_tree(&model);
    assert_eq!(nodes.len(), 3);
    let Node::Split { test, left, right, missing, .. } = &nodes[0] else { panic!("root is not a split") };
    assert_eq!(*test, SplitTest::CategoryIn { categories: vec![1, 4], in_set: Direction::Left });
    assert_eq!(*missing, Direction::Left);
    assert_eq!(
        (&nodes[*left as usize], &nodes[*right as usize]),
        (&Node::Leaf { value: 10.0 }, &Node::Leaf { value: 20.0 })
    );
    let tree = with_attribute(tree, floats("nodes_values", &[4.5, 1.0, 0.0, 0.0]));
    assert!(error_of(&float_model(vec![tree], 1)).contains("tests equality with 4.5, which is not a category code"));
}

#[test]
fn dividing_one_by_the_scores_is_refused() {
    let constant = float_tensor("one", &[], &[1.0]);
    let nodes =
        vec![one_split_regressor("BRANCH_LEQ", 0.5, 0), node("Div", "", &["one", "variable"], &["inverse"], vec![])];
    let bytes = encode(nodes, vec![tensor_input("X", data_type::FLOAT, Some(1))], vec![constant]);
    assert!(error_of(&bytes).contains("Div node 1 changes the model's scores"));
}
