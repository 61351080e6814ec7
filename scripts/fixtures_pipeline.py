"""Writes fixtures/pipeline/calibration.json: scikit-learn's own sigmoid (Platt) and isotonic
calibrators, fitted on German Credit-like scores, with their answers on a grid of inputs, so that
the pipeline's calibration steps are checked against the library rather than a formula.

Run with the fixtures venv: scripts/fixtures_pipeline.py (no arguments); reruns are identical.
"""

import json
import pathlib

import numpy as np
import sklearn
from sklearn.calibration import _SigmoidCalibration
from sklearn.isotonic import IsotonicRegression

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "pipeline" / "calibration.json"


def main():
    rng = np.random.default_rng(20261128)
    # Margins of a model and labels drawn from a miscalibrated truth.
    margins = rng.normal(-0.8, 1.5, size=2000)
    truth = 1.0 / (1.0 + np.exp(-(0.7 * margins - 0.3)))
    labels = (rng.random(2000) < truth).astype(int)
    probabilities = 1.0 / (1.0 + np.exp(-margins))

    sigmoid = _SigmoidCalibration().fit(margins, labels)
    isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(probabilities, labels)

    grid_margins = np.concatenate([np.linspace(-6.0, 6.0, 97), [-30.0, 30.0]])
    grid_probabilities = 1.0 / (1.0 + np.exp(-grid_margins))
    fixture = {
        "library": f"scikit-learn {sklearn.__version__}",
        "platt": {"a": float(sigmoid.a_), "b": float(sigmoid.b_)},
        "isotonic": {
            "x": [float(v) for v in isotonic.X_thresholds_],
            "y": [float(v) for v in isotonic.y_thresholds_],
        },
        "margins": [float(v) for v in grid_margins],
        "platt_on_margin": [float(v) for v in sigmoid.predict(grid_margins)],
        "isotonic_on_probability": [float(v) for v in isotonic.predict(grid_probabilities)],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
