"""pytest-benchmark: the one-run answer at 1 GW and 10 GW (target: printed in under 5 s on 2 cores,
layout search included; measured here, not asserted). Run:
.venv/bin/python -m pytest tests/bench_onerun.py --benchmark-enable

Two measurements: `gwbench project` in-process with the layout cache emptied before every round
(the work the command does: projection, cost, fixed point on the model size, coarse layout
search, Monte Carlo), and the real command in a fresh interpreter (imports included)."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from contextlib import redirect_stdout

import pytest

from harness.analysis import onerun
from harness.commands import project as project_cmd
from tests.conftest import ROOT

ARGV = ["--hardware", "GB300", "--power", "1GW,10GW"]


def _project() -> str:
    parser = argparse.ArgumentParser(prog="gwbench project")
    project_cmd.add_arguments(parser)
    out = io.StringIO()
    with redirect_stdout(out):
        project_cmd.main(parser.parse_args(ARGV))
    return out.getvalue()


@pytest.mark.parametrize("hardware", ["H100", "GB300", "Rubin"])
def test_one_run_1gw_10gw_in_process(benchmark, hardware):
    ARGV[1] = hardware
    text = benchmark.pedantic(_project, setup=onerun.layout_curve.cache_clear, rounds=3, iterations=1)
    assert "Largest single synchronous run" in text and "binding limit" in text


def test_one_run_1gw_10gw_command(benchmark):
    def run() -> str:
        return subprocess.run([sys.executable, "-m", "harness", "project", "--hardware", "GB300", "--power",
                               "1GW,10GW"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    text = benchmark.pedantic(run, rounds=3, iterations=1)
    assert "binding limit" in text
