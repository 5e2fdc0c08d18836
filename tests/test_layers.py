"""The package's layers, held by tests: which layer may import which, no import circles, and no
torch below the measuring layers.

    core        cases, stats, flops, models, specs, the row, the store      (no torch)
    measure     device, timing, context, dist, CuPy loader, telemetry/      (core)
    analysis    projection, performance model, nccl-tests, compare, peaks   (core; no torch)
    benchmarks  the families                                                (core, measure)
    present     report, HTML, compare, publish, figures, progress           (core, analysis; no torch)
    run         the run loop (harness/runner.py)                            (all of the above)
    cli         cli.py, commands/, __main__                                 (anything)
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "harness"

ALLOWED = {
    "core": {"core"},
    "measure": {"core", "measure"},
    "analysis": {"core", "analysis"},
    "benchmarks": {"core", "measure", "benchmarks"},
    "present": {"core", "analysis", "present"},
    "run": {"core", "measure", "benchmarks", "present", "run"},
    "cli": {"core", "measure", "analysis", "benchmarks", "present", "run", "cli", "root"},
    "root": {"root", "core", "present"},
}
TORCH_FREE = ("core", "analysis", "present")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    if parts[1] == "data":  # package data (the hardware table): no code, read by core/specs.py
        return "core"
    if parts[1] in ("core", "measure", "analysis", "benchmarks", "present"):
        return parts[1]
    if parts[1] == "runner":
        return "run"
    if parts[1] in ("cli", "commands", "__main__"):
        return "cli"
    raise AssertionError(f"{module}: in no layer; add it to tests/test_layers.py")


def imports(module: str) -> set[str]:
    """Every harness module `module` imports, at the top or inside a function."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports are not used in this package
                raise AssertionError(f"{module}: relative import; use absolute harness.* names")
            base = node.module or ""
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        out |= {n for n in names if n == "harness" or n.startswith("harness.")}
    return {n for n in out if n in MODULES} - {module}


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_is_in_a_layer():
    assert {layer(m) for m in MODULES} <= set(ALLOWED)
    assert {"harness.core.row", "harness.core.store", "harness.measure.telemetry.base",
            "harness.benchmarks.base", "harness.analysis.perfmodel.step",
            "harness.present.report"} <= set(MODULES)


def test_no_module_imports_from_a_layer_above_it():
    bad = [f"{m} ({layer(m)}) imports {t} ({layer(t)})"
           for m, targets in GRAPH.items() for t in targets if layer(t) not in ALLOWED[layer(m)]]
    assert not bad, "\n".join(sorted(bad))


def test_no_import_circles():
    """Depth-first search over every import (function-level ones too): a circle is a defect
    even where a late import keeps it from failing at start-up."""
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                circles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not circles, "\n".join(circles)


def test_layer_rules_catch_a_violation():
    """The checker itself: an edge from core to measure is refused, one from measure to core is not."""
    assert "measure" not in ALLOWED[layer("harness.core.row")]
    assert "core" in ALLOWED[layer("harness.measure.device")]
    assert "harness.measure.device" in GRAPH["harness.runner"]  # function-level imports are seen too
    assert "harness.measure.telemetry" in GRAPH["harness.runner"]


@pytest.mark.parametrize("layer_name", TORCH_FREE)
def test_layer_imports_without_torch(layer_name):
    """Import every module of the layer in a fresh interpreter: torch (and CuPy) stay unloaded."""
    mods = sorted(m for m in MODULES if layer(m) == layer_name)
    code = ("import importlib, json, sys\n"
            f"for m in {mods!r}:\n    importlib.import_module(m)\n"
            "print(json.dumps(sorted(k for k in ('torch', 'cupy') if k in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], f"{layer_name} imports torch"
