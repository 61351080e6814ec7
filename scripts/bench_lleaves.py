"""lleaves for scripts/bench_peers.py, run in its own virtual environment (see scripts/requirements-lleaves.txt).

Compiles a LightGBM text model with lleaves (LLVM through llvmlite; the object file is cached), then either prints
the predictions of the rows (`--mode predict`) or times batches of all rows or one-row calls for `--seconds`, the
same way bench_peers.py times every peer, and prints {"rows_per_second": ...} as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import lleaves
import numpy as np


def time_calls(call, rows_per_call: int, seconds: float, cycle: int) -> float:
    call(0)
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(16):
            call(calls % cycle)
            calls += 1
        now = time.perf_counter()
        if now >= deadline:
            return calls * rows_per_call / (now - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--cache", required=True, help="where lleaves keeps the compiled object file")
    parser.add_argument("--rows", required=True, help="a .npy file of float64 rows")
    parser.add_argument("--mode", choices=["predict", "batch", "one_row"], required=True)
    parser.add_argument("--seconds", type=float, default=2.0)
    arguments = parser.parse_args()

    model = lleaves.Model(model_file=arguments.model)
    started = time.perf_counter()
    model.compile(cache=arguments.cache)
    compile_seconds = time.perf_counter() - started
    rows = np.ascontiguousarray(np.load(arguments.rows), dtype=np.float64)
    if arguments.mode == "predict":
        answer = {"predictions": np.asarray(model.predict(rows, n_jobs=1)).reshape(-1).tolist()}
    elif arguments.mode == "batch":
        answer = {"rows_per_second": time_calls(lambda _: model.predict(rows, n_jobs=1), len(rows), arguments.seconds, 1)}
    else:
        singles = [rows[index : index + 1] for index in range(len(rows))]
        rate = time_calls(lambda index: model.predict(singles[index], n_jobs=1), 1, arguments.seconds, len(singles))
        answer = {"rows_per_second": rate}
    answer["compile_or_load_seconds"] = compile_seconds
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
