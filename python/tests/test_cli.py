"""The `riskserve` command line as the package's console script (and `python -m riskserve`)."""

import json
import os
import shutil
import subprocess
import sys

import pandas as pd

import riskserve


def run(*args, **kwargs):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, **kwargs)


def test_console_script_is_installed_and_runs():
    script = shutil.which("riskserve")
    assert script is not None and script.startswith(sys.prefix), script
    answer = run(script, "--version")
    assert answer.returncode == 0 and answer.stdout.startswith("riskserve "), answer
    answer = run(script, "no-such-command")
    assert answer.returncode == 2 and "unrecognized subcommand" in answer.stderr


def test_score_through_the_cli_equals_local(root):
    folder = root / "examples/german-credit/xgboost"
    answer = run(sys.executable, "-m", "riskserve", "score", "--pipeline", str(folder / "pipeline.json"),
                 "--input", str(folder / "input.csv"), "--output-format", "json")
    assert answer.returncode == 0, answer.stderr
    lines = [json.loads(line) for line in answer.stdout.splitlines()]
    local = riskserve.load_pipeline(folder / "pipeline.json").predict(
        pd.read_csv(folder / "input.csv", dtype=str, keep_default_na=False))
    assert [line["probability"] for line in lines] == list(local["probability"])
    assert [line["grade"] for line in lines] == list(local["grade"])


def test_a_failing_command_exits_1(tmp_path):
    answer = run("riskserve", "score", "--model", str(tmp_path / "absent.json"), "--input", str(tmp_path / "x.csv"))
    assert answer.returncode == 1 and answer.stderr.startswith("error: ")


def test_the_cli_talks_to_the_embedded_server(server):
    environment = {**os.environ, "RISKSERVE_URL": server.url, "RISKSERVE_TOKEN": server.token}
    answer = run(shutil.which("riskserve"), "endpoint", "list", env=environment)
    assert answer.returncode == 0, answer.stderr
