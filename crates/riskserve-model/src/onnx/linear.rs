//! Converts ONNX-ML `LinearClassifier` and `LinearRegressor` nodes into a [`LinearModel`],
//! reproducing what ONNX Runtime reports.
//!
//! ONNX Runtime computes `scores = X · coefficientsᵀ + intercepts` in `f32` (the importer rounds
//! the features to `f32` first), then:
//! - a classifier with one score row and two labels reports `[1 - s, s]` with `s` the raw score,
//!   whatever `post_transform` says (only `PROBIT` would apply);
//! - a classifier with two score rows applies `post_transform` to both, so the positive
//!   probability is `sigmoid(s1)` with `LOGISTIC` and `sigmoid(s1 - s0)` with `SOFTMAX`;
//! - a regressor with one target ignores `post_transform`, and uses `intercepts` only when there
//!   is one per target.

use super::attributes::NodeView;
use super::errors::{invalid, unsupported};
use super::trees::{Converted, PostTransform};
use crate::error::ModelError;
use crate::ir::{LinearModel, ModelBody, Output, OutputKind, Transform};

pub(super) fn convert(node: NodeView, num_features: usize) -> Result<Converted, ModelError> {
    let label = node.label();
    let coefficients: Vec<f64> = node.floats("coefficients")?.iter().map(|value| f64::from(*value)).collect();
    let intercepts: Vec<f64> = node.floats("intercepts")?.iter().map(|value| f64::from(*value)).collect();
    let post_transform = PostTransform::parse(&node)?;
    let rows = |count: usize| -> Result<(), ModelError> {
        if Some(coefficients.len()) != count.checked_mul(num_features) {
            return Err(invalid(format!(
                "{label} has {} coefficients for {count} outputs of {num_features} features",
                coefficients.len()
            )));
        }
        Ok(())
    };
    let row = |index: usize| coefficients[index * num_features..(index + 1) * num_features].to_vec();
    let linear = |coefficients: Vec<f64>, intercepts: Vec<f64>| {
        let num_outputs = intercepts.len();
        ModelBody::Linear(LinearModel { num_features, num_outputs, coefficients, intercepts })
    };

    if node.op_type() == "LinearRegressor" {
        let targets = node.int("targets")?.unwrap_or(1);
        let targets = usize::try_from(targets)
            .ok()
            .filter(|targets| *targets >= 1)
            .ok_or_else(|| invalid(format!("{label}: targets is {targets}")))?;
        rows(targets)?;
        let intercepts = if intercepts.len() == targets { intercepts } else { vec![0.0; targets] };
        let transform = if targets == 1 { Transform::Identity } else { post_transform.elementwise() };
        return Ok(Converted {
            body: linear(coefficients, intercepts),
            output: Output { transform, kind: OutputKind::Value },
            probabilities_normalized: false,
        });
    }

    let integers = node.ints("classlabels_ints")?.len();
    let strings = node.strings("classlabels_strings")?.len();
    if integers > 0 && strings > 0 {
        return Err(invalid(format!("{label} has both classlabels_ints and classlabels_strings")));
    }
    let labels = integers.max(strings);
    let scores = intercepts.len();
    if scores == 0 {
        return Err(invalid(format!("{label} has no intercepts")));
    }
    rows(scores)?;
    let probability = |coefficients, intercept, transform, normalized| Converted {
        body: linear(coefficients, vec![intercept]),
        output: Output { transform, kind: OutputKind::Probability },
        probabilities_normalized: normalized,
    };
    match (scores, labels) {
        (1, 2) => Ok(probability(coefficients.clone(), intercepts[0], Transform::Identity, false)),
        (2, 2) => Ok(match post_transform {
            PostTransform::None => probability(row(1), intercepts[1], Transform::Identity, false),
            PostTransform::Logistic => {
                // sigmoid(-s) + sigmoid(s) = 1: skl2onnx writes a binary logistic regression as
                // the rows (-w, w) and intercepts (-b, b).
                let symmetric =
                    row(0).iter().zip(row(1)).all(|(zero, one)| *zero == -one) && intercepts[0] == -intercepts[1];
                probability(row(1), intercepts[1], Transform::Sigmoid { scale: 1.0 }, symmetric)
            }
            // softmax([s0, s1])[1] = sigmoid(s1 - s0)
            PostTransform::Softmax | PostTransform::SoftmaxZero => {
                let difference = row(1).iter().zip(row(0)).map(|(one, zero)| one - zero).collect();
                probability(difference, intercepts[1] - intercepts[0], Transform::Sigmoid { scale: 1.0 }, true)
            }
        }),
        (scores, labels) if scores > 2 && labels == scores => Ok(Converted {
            body: linear(coefficients, intercepts),
            output: Output { transform: post_transform.elementwise(), kind: OutputKind::ClassProbabilities },
            probabilities_normalized: post_transform.is_softmax(),
        }),
        (scores, labels) => Err(unsupported(format!("{label} has {scores} score rows for {labels} class labels"))),
    }
}
