#!/usr/bin/env python3
"""Writes fixtures/monitor/reference.json: the monitoring statistics of seeded data sets as the real libraries compute
them (scikit-learn's roc_auc_score and brier_score_loss, scipy's ks_2samp, binomtest and beta.ppf, fairlearn's
MetricFrame, demographic_parity_ratio and equalized_odds_difference; PSI/CSI from the formula in numpy with the same
binning and epsilon as riskserve-monitor). crates/riskserve-monitor/tests/reference.rs compares every value.

The main case (100,000 baseline rows and 100,000 current rows) is not stored: both sides generate it from the same
seeds with splitmix64 and only +, -, *, /, sqrt and floor (all correctly rounded in IEEE 754), so the rows are bit
for bit the same in Python and Rust; the fixture keeps its first rows so the test can check that first. The edge cases
are small and their rows are stored.

    bash scripts/monitor_reference.sh
"""

import json
import math
import pathlib
import sys

import fairlearn
import numpy as np
import pandas as pd
import scipy
import sklearn
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from scipy.stats import beta, binomtest, ks_2samp
from sklearn.metrics import brier_score_loss, roc_auc_score

EPSILON = 1e-4
ALPHA = 0.05
MASK = (1 << 64) - 1


class SplitMix64:
    """splitmix64 (Steele, Lea, Flood 2014); uniform() = top 53 bits · 2⁻⁵³, exact in any language."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next_u64() >> 11) * (1.0 / 9007199254740992.0)


MAIN_SPEC = {
    "features": [
        {"name": "income", "kind": "numeric"},
        {"name": "utilisation", "kind": "numeric"},
        {"name": "age", "kind": "numeric"},
        {"name": "inquiries", "kind": "numeric"},
        {"name": "region", "kind": "categorical"},
        {"name": "channel", "kind": "categorical"},
    ],
    "bins": 10,
    "grades": ["A", "B", "C", "D", "E", "F", "X"],
}


def main_row(rng, current):
    """One row of the main case; crates/riskserve-monitor/tests/reference.rs has the same function (`main_row`)."""
    u = [rng.uniform() for _ in range(12)]
    income = 20000.0 + 80000.0 * ((u[0] + u[1] + u[2]) / 3.0)
    if current:
        income = income + 6000.0
    if current:
        utilisation = u[3] * math.sqrt(u[3]) if u[4] >= 0.08 else None
    else:
        utilisation = u[3] * u[3] if u[4] >= 0.05 else None
    age = math.floor(18.0 + (55.0 if current else 60.0) * u[5])
    inquiries = math.floor(u[6] * u[6] * (10.0 if current else 8.0))
    if current:
        region = "north" if u[7] < 0.35 else "south" if u[7] < 0.6 else "east" if u[7] < 0.85 else "west" if u[7] < 0.97 else "island"
        channel = None if u[8] < 0.05 else "branch" if u[8] < 0.4 else "online" if u[8] < 0.8 else "broker"
    else:
        region = "north" if u[7] < 0.4 else "south" if u[7] < 0.7 else "east" if u[7] < 0.9 else "west"
        channel = None if u[8] < 0.03 else "branch" if u[8] < 0.5 else "online" if u[8] < 0.8 else "broker"
    used = utilisation if utilisation is not None else 0.5
    z = (inquiries / 8.0 - 0.3) * 2.0 + (used - 0.4) * 1.5 - (income - 60000.0) / 40000.0 + (u[9] - 0.5)
    t = 0.5 + 0.5 * z / (1.0 + abs(z))
    p = 0.04 + 0.5 * (t * t * t)
    # A grid of 1/4096 gives the scores ties, as points-based scores have.
    p = math.floor(p * 4096.0) / 4096.0
    truth = min(1.0, p * 1.15) if current else p
    bad = u[10] < truth
    grade = "A" if p < 0.06 else "B" if p < 0.09 else "C" if p < 0.13 else "D" if p < 0.2 else "E" if p < 0.3 else "F"
    attribute = "group_a" if u[11] < 0.5 else "group_b" if u[11] < 0.8 else "group_c"
    approved = p < (0.10 if attribute == "group_c" else 0.12)
    return [[income, utilisation, float(age), float(inquiries), region, channel], p, grade, bad, attribute, approved]


def main_rows(seed, n, current):
    rng = SplitMix64(seed)
    return [main_row(rng, current) for _ in range(n)]


# --- the binning rule (crates/riskserve-monitor/src/quantile.rs) ---------------------------------------------------


def bin_edges(values, bins):
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if n == 0 or bins < 2:
        return []
    q = np.array([k / bins for k in range(1, bins)])
    candidates = np.unique(np.quantile(v, q, method="linear"))
    kept, below = [], 0
    for edge in candidates:
        count = int(np.searchsorted(v, edge, side="right"))
        if count > below:
            kept.append(float(edge))
            below = count
    while kept and int(np.searchsorted(v, kept[-1], side="right")) == n:
        kept.pop()
    return kept


def is_missing(x):
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def numeric_baseline(column, bins):
    finite = [x for x in column if not is_missing(x)]
    edges = bin_edges(finite, bins)
    counts = np.bincount(np.searchsorted(np.array(edges), np.array(finite, dtype=np.float64), side="left"),
                         minlength=len(edges) + 1) if finite else np.zeros(len(edges) + 1, dtype=np.int64)
    return {
        "kind": "numeric",
        "edges": edges,
        "counts": [int(c) for c in counts],
        "missing": len(column) - len(finite),
        "min": float(min(finite)) if finite else None,
        "max": float(max(finite)) if finite else None,
    }


def categorical_baseline(column):
    present = [x for x in column if not is_missing(x)]
    categories = sorted(set(present))
    return {
        "kind": "categorical",
        "categories": categories,
        "counts": [present.count(c) for c in categories] if len(present) < 5000 else
        [int(x) for x in pd.Series(present).value_counts().reindex(categories).to_numpy()],
        "missing": len(column) - len(present),
    }


def stability(expected_counts, actual_counts, expected_rows, actual_rows):
    e_counts = np.asarray(expected_counts, dtype=np.float64)
    a_counts = np.asarray(actual_counts, dtype=np.float64)
    e = np.where(e_counts == 0, EPSILON, e_counts / expected_rows)
    a = np.where(a_counts == 0, EPSILON, a_counts / actual_rows)
    return float(np.sum((a - e) * np.log(a / e)))


def drift(base, rows, spec):
    n = len(rows)
    out = {"rows": n}
    if n == 0:
        out["score_psi"] = None
        out["features"] = [{"name": f["name"], "csi": None} for f in spec["features"]]
        return out
    base_rows = base["rows"]

    def numeric_counts(column, b):
        finite = np.array([x for x in column if not is_missing(x)], dtype=np.float64)
        bins = np.bincount(np.searchsorted(np.array(b["edges"]), finite, side="left"), minlength=len(b["edges"]) + 1) \
            if len(finite) else np.zeros(len(b["edges"]) + 1, dtype=np.int64)
        return list(bins) + [n - len(finite)], finite

    scores = [r[1] for r in rows]
    actual, _ = numeric_counts(scores, base["score"])
    out["score_psi"] = stability(base["score"]["counts"] + [base["score"]["missing"]], actual, base_rows, n)
    features = []
    for i, feature in enumerate(spec["features"]):
        b = base["features"][i]
        column = [r[0][i] for r in rows]
        entry = {"name": feature["name"]}
        if feature["kind"] == "numeric":
            actual, finite = numeric_counts(column, b)
            entry["csi"] = stability(b["counts"] + [b["missing"]], actual, base_rows, n)
            entry["missing_rate"] = (n - len(finite)) / n
            entry["below_min_rate"] = int(np.sum(finite < b["min"])) / n if b["min"] is not None else 0.0
            entry["above_max_rate"] = int(np.sum(finite > b["max"])) / n if b["max"] is not None else 0.0
        else:
            present = pd.Series([x for x in column if not is_missing(x)], dtype=object)
            counts = present.value_counts()
            actual = [int(counts.get(c, 0)) for c in b["categories"]]
            unseen = len(present) - sum(actual)
            missing = n - len(present)
            entry["csi"] = stability(b["counts"] + [0, b["missing"]], actual + [unseen, missing], base_rows, n)
            entry["missing_rate"] = missing / n
            entry["unseen_rate"] = unseen / n
        features.append(entry)
    out["features"] = features
    return out


def baseline(rows, spec):
    out = {"rows": len(rows), "features": []}
    for i, feature in enumerate(spec["features"]):
        column = [r[0][i] for r in rows]
        if feature["kind"] == "numeric":
            entry = numeric_baseline(column, spec["bins"])
        else:
            entry = categorical_baseline(column)
        entry["name"] = feature["name"]
        out["features"].append(entry)
    out["score"] = numeric_baseline([r[1] for r in rows], spec["bins"])
    grades = []
    for grade in spec["grades"]:
        inside = [r for r in rows if r[2] == grade]
        labelled = [r for r in inside if r[3] is not None]
        bad = sum(1 for r in labelled if r[3])
        grades.append({"grade": grade, "rows": len(inside), "with_outcome": len(labelled), "bad": bad,
                       "bad_rate": bad / len(labelled) if labelled else None})
    out["grades"] = grades
    return out


def calibration(name, probabilities, outcomes):
    n = len(probabilities)
    k = int(sum(outcomes))
    if n == 0:
        return {"grade": name, "rows": 0, "bad": 0, "mean_predicted": None, "interval_lower": None,
                "interval_upper": None, "p_value": None, "breach": False}
    # math.fsum: the exactly rounded sum, which the crate's compensated sum reproduces.
    mean = min(1.0, max(0.0, math.fsum(probabilities) / n))
    p_value = float(binomtest(k, n, mean).pvalue)
    return {
        "grade": name,
        "rows": n,
        "bad": k,
        "observed_bad_rate": k / n,
        "mean_predicted": mean,
        "interval_lower": float(beta.ppf(ALPHA / 2, k + 0.5, n - k + 0.5)),
        "interval_upper": float(beta.ppf(1 - ALPHA / 2, k + 0.5, n - k + 0.5)),
        "p_value": p_value,
        "breach": p_value < ALPHA,
    }


def outcomes(rows, spec):
    labelled = [r for r in rows if r[3] is not None and r[1] is not None]
    y = np.array([1 if r[3] else 0 for r in labelled], dtype=np.int64)
    p = np.array([r[1] for r in labelled], dtype=np.float64)
    out = {"rows": len(labelled), "bad": int(y.sum()) if len(y) else 0}
    if len(labelled) and 0 < y.sum() < len(y):
        auc = float(roc_auc_score(y, p))
        out["auc"] = auc
        out["gini"] = 2 * auc - 1
        out["ks"] = float(ks_2samp(p[y == 1], p[y == 0]).statistic)
    else:
        out["auc"] = out["gini"] = out["ks"] = None
    out["brier"] = float(brier_score_loss(y, p, pos_label=1)) if len(labelled) and 0 < y.sum() < len(y) else (
        float(np.mean((p - y) ** 2)) if len(labelled) else None)
    out["overall"] = calibration("all", [r[1] for r in labelled], [r[3] for r in labelled])
    out["grades"] = [calibration(g, [r[1] for r in labelled if r[2] == g], [r[3] for r in labelled if r[2] == g])
                     for g in spec["grades"]]
    out["fairness"] = fairness(labelled)
    return out


def fairness(labelled):
    decided = [r for r in labelled if r[4] is not None and r[5] is not None]
    if not decided:
        return {"rows": 0, "groups": []}
    # Positive = favourable: y_true = 1 for a good outcome, y_pred = 1 for an approval.
    good = np.array([0 if r[3] else 1 for r in decided])
    approved = np.array([1 if r[5] else 0 for r in decided])
    group = pd.Series([r[4] for r in decided])
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": lambda t, p: true_positive_rate(t, p, pos_label=1),
            "false_positive_rate": lambda t, p: false_positive_rate(t, p, pos_label=1),
        },
        y_true=good,
        y_pred=approved,
        sensitive_features=group,
    )
    by_group = frame.by_group
    names = sorted(by_group.index)
    rates = {g: float(by_group.loc[g, "selection_rate"]) for g in names}
    reference = max(names, key=lambda g: (rates[g], [-ord(c) for c in g]))
    reference = sorted([g for g in names if rates[g] == rates[reference]])[0]
    groups = []
    for g in names:
        groups.append({
            "group": g,
            "selection_rate": rates[g],
            "true_positive_rate": float(by_group.loc[g, "true_positive_rate"]),
            "false_positive_rate": float(by_group.loc[g, "false_positive_rate"]),
            "adverse_impact_ratio": rates[g] / rates[reference] if rates[reference] > 0 else None,
        })
    tpr = [x["true_positive_rate"] for x in groups]
    fpr = [x["false_positive_rate"] for x in groups]
    return {
        "rows": len(decided),
        "reference_group": reference,
        "groups": groups,
        "demographic_parity_ratio": float(demographic_parity_ratio(good, approved, sensitive_features=group)),
        "demographic_parity_difference": float(demographic_parity_difference(good, approved, sensitive_features=group)),
        "equalized_odds_difference": float(equalized_odds_difference(good, approved, sensitive_features=group)),
        "true_positive_rate_gap": max(tpr) - min(tpr),
        "false_positive_rate_gap": max(fpr) - min(fpr),
    }


def expected(spec, base_rows, current_rows):
    base = baseline(base_rows, spec)
    return {"baseline": base, "drift": drift(base, current_rows, spec), "outcome": outcomes(current_rows, spec)}


# --- edge cases (rows stored) ----------------------------------------------------------------------------------------


def small_rows(seed, n, spec, make):
    rng = SplitMix64(seed)
    return [make(rng, i) for i in range(n)]


def round6(x):
    # Six decimals keep the JSON small; the values are then exactly what both sides read.
    return float(f"{x:.6f}")


EDGE_SPEC = {
    "features": [{"name": "x", "kind": "numeric"}, {"name": "spike", "kind": "numeric"},
                 {"name": "c", "kind": "categorical"}, {"name": "empty", "kind": "numeric"}],
    "bins": 10,
    "grades": ["A", "B", "C", "D"],
}


def edge_base(rng, i):
    u = [rng.uniform() for _ in range(6)]
    p = round6(0.02 + 0.4 * u[3])
    grade = "A" if p < 0.1 else "B" if p < 0.2 else "C"
    return [[round6(u[0] * 100), 0.0 if u[1] < 0.6 else float(math.floor(u[1] * 20)), "k" + str(int(u[2] * 4)), None],
            p, grade, u[4] < p, "m" if u[5] < 0.5 else "f", p < 0.15]


def edge_cases():
    cases = []
    base = small_rows(11, 2000, EDGE_SPEC, edge_base)

    # Current data in a narrow range: most bins empty; one category only; the empty baseline feature now has values.
    def narrow(rng, i):
        u = [rng.uniform() for _ in range(4)]
        p = round6(0.05 + 0.01 * u[1])
        return [[round6(40 + u[0] * 5), 0.0, "k1", round6(u[2])], p, "A", u[3] < p, "m" if i % 2 else "f", True]
    cases.append(("empty_bins", EDGE_SPEC, base, small_rows(12, 300, EDGE_SPEC, narrow)))

    # One class only: every outcome good, then every outcome bad.
    def only_good(rng, i):
        row = edge_base(rng, i)
        row[3] = False
        return row
    cases.append(("one_class_good", EDGE_SPEC, base, small_rows(13, 200, EDGE_SPEC, only_good)))

    def only_bad(rng, i):
        row = edge_base(rng, i)
        row[3] = True
        return row
    cases.append(("one_class_bad", EDGE_SPEC, base, small_rows(14, 200, EDGE_SPEC, only_bad)))

    # Every feature missing in the current data, scores missing for half the rows (those stay out of outcomes).
    def all_missing(rng, i):
        row = edge_base(rng, i)
        row[0] = [None, None, None, None]
        if i % 2:
            row[1] = None
        return row
    cases.append(("all_missing", EDGE_SPEC, base, small_rows(15, 200, EDGE_SPEC, all_missing)))

    # Grades with 1 row (all bad), with 0 rows (D), with every row bad or none; ties of three score values.
    def tiny(rng, i):
        row = edge_base(rng, i)
        u = rng.uniform()
        row[1] = [0.1, 0.2, 0.3][int(u * 3)]
        if i == 0:
            row[2], row[3] = "A", True
        elif i < 40:
            row[2], row[3] = "B", True
        else:
            row[2] = "C"
        return row
    cases.append(("tiny_grades_and_ties", EDGE_SPEC, base, small_rows(16, 400, EDGE_SPEC, tiny)))

    cases.append(("no_rows", EDGE_SPEC, base, []))
    return cases


def special_functions():
    """scipy's values of the special functions on a grid, counts up to ten million included."""
    from scipy.special import betainc, gammaln
    from scipy.stats import binom
    out = []
    for z in [0.5, 1.0, 1.5, 2.5, 3.0, 7.3, 14.9, 15.0, 15.5, 100.25, 1e4 + 0.5, 1e6 + 0.5, 1e7]:
        out.append({"function": "ln_gamma", "args": [z], "value": float(gammaln(z))})
    shapes = [(0.5, 0.5), (0.5, 10.5), (2.0, 3.0), (10.5, 1000.5), (100.5, 20.5), (5e3 + 0.5, 5e4 + 0.5),
              (0.5, 1e6 + 0.5), (1e6 + 0.5, 0.5), (3e5 + 0.5, 7e6 + 0.5)]
    for a, b in shapes:
        mean = a / (a + b)
        for x in sorted({mean * 0.5, mean * 0.9, mean, min(0.999, mean * 1.1), 1e-3, 0.5}):
            value = float(betainc(a, b, x))
            if value > 0:
                out.append({"function": "beta_inc", "args": [a, b, x], "value": value})
        for q in [1e-6, 0.025, 0.5, 0.975, 1 - 1e-6]:
            out.append({"function": "beta_ppf", "args": [q, a, b], "value": float(beta.ppf(q, a, b))})
    for n, p in [(10, 0.3), (1000, 0.01), (35409, 0.0477), (10**6, 0.2), (10**7, 0.001)]:
        mean = int(n * p)
        for k in sorted({0, 1, max(0, mean // 2), mean, mean + int(3 * math.sqrt(n * p)) + 1, min(n, 2 * mean + 5)}):
            out.append({"function": "binomial_pmf", "args": [k, n, p], "value": float(binom.pmf(k, n, p))})
            out.append({"function": "binomial_cdf", "args": [k, n, p], "value": float(binom.cdf(k, n, p))})
            out.append({"function": "binomial_sf", "args": [k, n, p], "value": float(binom.sf(k, n, p))})
            out.append({"function": "binomial_test", "args": [k, n, p], "value": float(binomtest(k, n, p).pvalue)})
    return [entry for entry in out if entry["value"] > 0 and math.isfinite(entry["value"])]


def main():
    out_path = pathlib.Path(sys.argv[1])
    main_case = {"baseline_seed": 20261204, "current_seed": 20261205, "rows": 100_000}
    base_rows = main_rows(main_case["baseline_seed"], main_case["rows"], False)
    current_rows = main_rows(main_case["current_seed"], main_case["rows"], True)
    cases = [{
        "name": "main",
        "spec": MAIN_SPEC,
        "generated": main_case,
        "first_rows": {"baseline": base_rows[:3], "current": current_rows[:3]},
        "expected": expected(MAIN_SPEC, base_rows, current_rows),
    }]
    for name, spec, base, current in edge_cases():
        cases.append({"name": name, "spec": spec, "baseline_rows": base, "current_rows": current,
                      "expected": expected(spec, base, current)})
    document = {
        "generator": "scripts/monitor_reference.py",
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
                     "scikit-learn": sklearn.__version__, "pandas": pd.__version__, "fairlearn": fairlearn.__version__},
        "conventions": {"epsilon": EPSILON, "alpha": ALPHA, "bins": "numpy.quantile linear at k/B, unique, empty bins dropped",
                        "binomtest_p": "mean predicted probability of the grade (math.fsum / n)",
                        "fairness_positive": "y_true = good outcome, y_pred = approved"},
        "cases": cases,
        "special": special_functions(),
    }
    out_path.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"wrote {out_path} ({out_path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
