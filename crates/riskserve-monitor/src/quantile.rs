//! Quantile bin edges exactly as numpy computes them, and the bin a value falls in.
//!
//! The rule (the Python reference applies the same one, `scripts/monitor_reference.py::bin_edges`):
//! 1. sort the baseline's non-missing values; for k = 1..B−1 take `numpy.quantile(values, k / B, method="linear")`
//!    (position `(n − 1)·q`, interpolated with numpy's `_lerp`, bit for bit);
//! 2. `numpy.unique` the candidates (duplicate edges collapse);
//! 3. walk the edges upwards and keep one only if its bin `(previous kept edge, edge]` holds at least one baseline
//!    value; then drop trailing edges while the top bin `(last edge, +∞)` would be empty.
//!
//! Bins are closed on the right, `(e[i−1], e[i]]`, with `(−∞, e[0]]` first and `(e[m−1], +∞)` last: the bin of x is
//! the number of edges strictly below x (`numpy.searchsorted(edges, x, side="left")`). So every bin of the baseline
//! holds at least one value, and ties (a spike of zeros) stay in one bin instead of splitting across edges.

/// `numpy.quantile(sorted, q, method="linear")` for sorted, non-empty, finite values and q in [0, 1].
pub fn quantile_linear(sorted: &[f64], q: f64) -> f64 {
    let Some(&last) = sorted.last() else {
        return f64::NAN;
    };
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * q;
    if virtual_index >= (n - 1) as f64 || virtual_index.is_nan() {
        return last;
    }
    if virtual_index <= 0.0 {
        return sorted[0];
    }
    let previous = virtual_index.floor();
    let index = previous as usize;
    let gamma = virtual_index - previous;
    let (a, b) = (sorted[index], sorted[index + 1]);
    let difference = b - a;
    // numpy's `_lerp`: from the nearer end, so the result is monotone in gamma and exact at both ends.
    if gamma >= 0.5 { b - difference * (1.0 - gamma) } else { a + difference * gamma }
}

/// The bin edges of `bins` quantile bins over sorted finite values (the rule in the module documentation).
pub fn quantile_edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    if sorted.is_empty() || bins < 2 {
        return Vec::new();
    }
    let mut candidates: Vec<f64> =
        (1..bins).map(|k| quantile_linear(sorted, k as f64 / bins as f64)).filter(|e| e.is_finite()).collect();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let at_most = |edge: f64| sorted.partition_point(|&v| v <= edge);
    let mut edges = Vec::with_capacity(candidates.len());
    let mut below = 0;
    for edge in candidates {
        let count = at_most(edge);
        if count > below {
            edges.push(edge);
            below = count;
        }
    }
    while let Some(&last) = edges.last() {
        if at_most(last) == sorted.len() {
            edges.pop();
        } else {
            break;
        }
    }
    edges
}

/// The bin of a finite value: the number of edges strictly below it.
pub fn bin_of(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|&e| e < x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_collapse_and_every_bin_is_occupied() {
        let mut values = vec![0.0; 60];
        values.extend((1..=40).map(f64::from));
        let edges = quantile_edges(&values, 10);
        assert_eq!(edges[0], 0.0);
        let mut counts = vec![0; edges.len() + 1];
        for &v in &values {
            counts[bin_of(&edges, v)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 0), "{edges:?} {counts:?}");
        assert_eq!(counts[0], 60);
        assert!(quantile_edges(&[5.0; 10], 10).is_empty());
        assert!(quantile_edges(&[], 10).is_empty());
    }

    #[test]
    fn linear_quantile_matches_numpy_examples() {
        // numpy.quantile([1, 2, 3, 4], [0.1, 0.5, 0.9]) = [1.3, 2.5, 3.7]
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_linear(&v, 0.5), 2.5);
        assert!((quantile_linear(&v, 0.1) - 1.3).abs() < 1e-15);
        assert!((quantile_linear(&v, 0.9) - 3.7).abs() < 1e-15);
    }
}
