"""riskserve's Python package against the libraries' own predict, one thread each, alternating peers over rounds.

Models (trained here on synthetic data with missing values): (a) XGBoost 100 trees of depth 6, (b) LightGBM 500
trees of 31 leaves, (c) scikit-learn RandomForestClassifier 100 trees of depth 10 through skl2onnx. Each peer scores
batches of 1,000 rows and one row per call; riskserve's `load_model(...).predict` answers a DataFrame (as users call
it) and, separately, a numpy array (`as_frame=False`). Prints a Markdown table of medians and ratios."""

import argparse
import platform
import statistics
import time

import numpy as np

import riskserve


def measure(call, seconds):
    call()
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        call()
        calls += 1
        now = time.perf_counter()
        if now >= deadline:
            return (now - start) / calls


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()

    import lightgbm as lgb
    import sklearn
    import xgboost as xgb
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(2)
    features = 30
    X = rng.normal(size=(20_000, features))
    y = (X[:, 0] + X[:, 1] * X[:, 2] - X[:, 3] + rng.normal(size=len(X)) > 0).astype(int)
    X_missing = X.copy()
    X_missing[:, :5][rng.random((len(X), 5)) < 0.1] = np.nan
    test = np.ascontiguousarray(X_missing[:1000])
    clean_test = np.ascontiguousarray(X[:1000])

    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "nthread": 1, "eta": 0.1},
                        xgb.DMatrix(X_missing, label=y), 100)
    lgbm = lgb.train({"objective": "binary", "num_leaves": 31, "verbose": -1, "num_threads": 1},
                     lgb.Dataset(X_missing, label=y), 500)
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, n_jobs=1, random_state=0).fit(X[:5000], y[:5000])
    test32 = test.astype(np.float32)

    cases = [
        ("(a) XGBoost 100 trees, depth 6", "xgboost inplace_predict", riskserve.load_model(booster), test,
         lambda rows: booster.inplace_predict(rows)),
        ("(b) LightGBM 500 trees, 31 leaves", "lightgbm predict(num_threads=1)", riskserve.load_model(lgbm), test,
         lambda rows: lgbm.predict(rows, num_threads=1)),
        ("(c) scikit-learn RandomForest 100 trees, depth 10 (ONNX)", "sklearn predict_proba",
         riskserve.load_model(forest), clean_test, lambda rows: forest.predict_proba(rows)[:, 1]),
    ]
    print(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {args.rounds} rounds of {args.seconds} s per "
          f"peer and mode, alternating; one thread each. {platform.processor() or platform.machine()}, "
          f"load average {open('/proc/loadavg').read().split()[:3]}. xgboost {xgb.__version__}, lightgbm "
          f"{lgb.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}, Python "
          f"{platform.python_version()}.\n")
    print("| model | peer | µs per batch of 1,000 (median) | µs per one-row call (median) | library ÷ riskserve "
          "(batch) | library ÷ riskserve (one row) | max abs diff vs library |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    del test32
    for name, library, model, rows, peer in cases:
        expected = np.asarray(peer(rows), dtype=np.float64)
        difference = float(np.max(np.abs(model.predict(rows)["probability"].to_numpy() - expected)))
        one = np.ascontiguousarray(rows[:1])
        peers = {
            "riskserve predict → DataFrame": (lambda r: model.predict(r)),
            "riskserve predict(as_frame=False)": (lambda r: model.predict(r, as_frame=False)),
            library: peer,
        }
        times = {key: {"batch": [], "one": []} for key in peers}
        for _ in range(args.rounds):
            for key, call in peers.items():
                times[key]["batch"].append(measure(lambda: call(rows), args.seconds))
                times[key]["one"].append(measure(lambda: call(one), args.seconds))
        medians = {key: {mode: statistics.median(values) * 1e6 for mode, values in modes.items()}
                   for key, modes in times.items()}
        base = medians[library]
        for key in peers:
            m = medians[key]
            ratio = "-" if key == library else f"{base['batch'] / m['batch']:.2f}×"
            ratio_one = "-" if key == library else f"{base['one'] / m['one']:.2f}×"
            diff = f"{difference:.1e}" if key.startswith("riskserve predict →") else "-"
            print(f"| {name} | {key} | {m['batch']:,.1f} | {m['one']:,.2f} | {ratio} | {ratio_one} | {diff} |")
        assert difference <= (1e-6 if "ONNX" not in name else 1e-5), (name, difference)


if __name__ == "__main__":
    main()
