"""The hardware table: sourced figures, dense peaks, name lookup, refusal of malformed files."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import pytest

from harness.core import specs
from harness.commands import specs as specs_cmd
from harness.core.errors import UsageError

ACCELERATORS = ("v100", "a100", "h100", "h200", "gh200", "b200", "gb200", "b300", "gb300",
                "rubin", "rubin-ultra", "mi300x", "mi355x")
SYSTEMS = ("dgx-a100", "dgx-h100", "dgx-h200", "dgx-b200", "gb200-nvl72", "gb300-nvl72",
           "vera-rubin-nvl144", "rubin-ultra-nvl576")


def run_cli(module, argv: list[str]) -> int:
    """What harness/cli.py does with a command module: UsageError -> message on stderr, exit 2."""
    parser = argparse.ArgumentParser(prog=f"gwbench {module.NAME}")
    module.add_arguments(parser)
    try:
        return module.main(parser.parse_args(argv))
    except UsageError as exc:
        print(f"gwbench: error: {exc}", file=sys.stderr)
        return 2


@pytest.fixture(scope="module")
def table() -> specs.HardwareTable:
    return specs.load()


def test_every_required_entry_is_present(table):
    assert set(ACCELERATORS) <= set(table.accelerators)
    assert set(SYSTEMS) <= set(table.systems)


def _figures(node, path=""):
    if isinstance(node, dict):
        if "value" in node:
            yield path, node
        for k, v in node.items():
            yield from _figures(v, f"{path}.{k}")


def test_every_figure_in_the_file_has_a_source():
    raw = tomllib.loads(specs.default_path().read_text())
    figures = list(_figures(raw))
    assert len(figures) > 100
    for path, fig in figures:
        assert isinstance(fig.get("source"), str) and fig["source"].strip(), path


def test_peaks_are_dense_not_sparse(table):
    # docs/sources.md: H100 "1979 TFLOPS BF16" is the sparse figure; dense is 989.
    assert table.lookup("h100").peak("bf16").value == 989
    assert table.lookup("h100").peak("fp8").value == 1979
    assert table.lookup("b200").peak("bf16").value == 2250
    assert table.lookup("gb300").peak("fp4").value == 15000
    for acc in table.accelerators.values():
        for dtype, mamf in acc.mamf_tflops.items():  # achievable is always below the dense peak
            assert mamf.value < acc.peak(dtype).value, (acc.key, dtype)


@pytest.mark.parametrize("reported, key", [
    ("NVIDIA H200", "h200"),
    ("NVIDIA H100 80GB HBM3", "h100"),
    ("NVIDIA A100-SXM4-80GB", "a100"),
    ("NVIDIA GH200 480GB", "gh200"),
    ("NVIDIA B200", "b200"),
    ("nvidia  h200", "h200"),  # case and spacing do not matter
    ("GB300 NVL72", "gb300"),  # a system name gives its accelerator
    ("AMD Instinct MI300X", "mi300x"),
])
def test_lookup_maps_reported_names(reported, key):
    assert specs.lookup(reported).key == key


def test_variants_with_other_clocks_are_not_aliased(table):
    with pytest.raises(UsageError, match="closest: H100 SXM"):
        table.lookup("NVIDIA H100 PCIe")


def test_unknown_name_is_one_line_with_suggestions(table):
    with pytest.raises(UsageError) as err:
        table.lookup("H1000")
    msg = str(err.value)
    assert "\n" not in msg and "closest:" in msg and "H100 SXM" in msg


def test_missing_dtype_is_a_usage_error(table):
    with pytest.raises(UsageError, match="no fp4 peak"):
        table.lookup("h100").peak("fp4")


def test_system_power_per_gpu_matches_reference(table):
    dgx = table.systems["dgx-h100"]
    assert dgx.watts_per_gpu == pytest.approx(1275)
    assert dgx.watts_per_gpu / table.accelerators["h100"].tdp_w.value == pytest.approx(1.82, abs=0.01)
    assert table.systems["vera-rubin-nvl144"].gpu_count == 72  # packages, not the 144 dies


def test_preliminary_entries_are_marked(table):
    assert table.accelerators["rubin"].preliminary and table.accelerators["rubin-ultra"].preliminary
    assert not table.accelerators["h100"].preliminary


# ---------------------------------------------------------------- malformed files

GOOD = """
schema_version = 1
[accelerators.x1]
name = "X1"
vendor = "V"
year = 2024
status = "shipping"
aliases = ["Vendor X1"]
dense_tflops.bf16 = { value = 100, source = "datasheet" }
"""


@pytest.mark.parametrize("text, match", [
    (GOOD.replace(', source = "datasheet"', ""), "missing source"),
    (GOOD.replace("value = 100", "value = -1"), "positive number"),
    (GOOD.replace("dense_tflops.bf16", "dense_tflops.bf17"), "unknown dtypes bf17"),
    (GOOD.replace('status = "shipping"', 'status = "rumoured"'), "status"),
    (GOOD + 'tdp_w = { value = 1, source = "s", souce = "typo" }\n', "unknown keys souce"),
    (GOOD + 'system = "nope"\n', "no system 'nope'"),
    (GOOD.replace("schema_version = 1", "schema_version = 9"), "schema_version"),
    (GOOD.replace('name = "X1"', 'name = "X1'), "not valid TOML"),
    (GOOD + '[accelerators.x2]\nname = "X2"\nvendor = "V"\nyear = 2024\nstatus = "shipping"\n'
            'aliases = ["Vendor X1"]\ndense_tflops.bf16 = { value = 1, source = "s" }\n', "used by both"),
])
def test_malformed_file_is_a_one_line_usage_error(tmp_path, text, match):
    path = tmp_path / "hw.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=match) as err:
        specs.load(path)
    assert "\n" not in str(err.value) and "hw.toml" in str(err.value)


def test_a_good_small_file_loads(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text(GOOD)
    assert specs.load(path).lookup("vendor x1").peak("bf16").value == 100


# ---------------------------------------------------------------- `gwbench specs`


def test_specs_command_lists_everything(capsys):
    assert run_cli(specs_cmd, []) == 0
    out = capsys.readouterr().out
    assert "H100 SXM" in out and "GB300 NVL72" in out and "dense" in out


def test_specs_command_shows_sources_of_one_entry(capsys):
    assert run_cli(specs_cmd, ["NVIDIA H200", "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "| dense bf16 TFLOP/s | 989 |" in out and "sparsity" in out


def test_specs_command_json(capsys):
    assert run_cli(specs_cmd, ["--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {a["key"] for a in data["accelerators"]} >= set(ACCELERATORS)


@pytest.mark.parametrize("argv", [["H1000"], ["--hardware-file", "/nonexistent/hw.toml"]])
def test_specs_command_bad_input_exits_2(capsys, argv):
    assert run_cli(specs_cmd, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gwbench: error: ") and err.count("\n") == 1


def test_specs_command_malformed_file_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("schema_version = 1\n[accelerators.x\n")
    assert run_cli(specs_cmd, ["--hardware-file", str(path)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_default_table_path_is_packaged():
    assert specs.default_path() == Path(specs.__file__).parents[1] / "data" / "hardware.toml"


def test_specs_entry_says_what_ref_means(capsys):
    assert run_cli(specs_cmd, ["H200"]) == 0
    out = capsys.readouterr().out
    assert "REF = docs/sources.md" in out and "`gwbench specs h200 --sources`" in out
    assert "mamf = mamf-finder's results" in out


def test_specs_sources_quote_whole_sentences(capsys):
    """The H200 lines of docs/sources.md come out whole: a wrapped sentence naming it on one line
    keeps its other lines (the capacity note once printed "reports" then its closing line)."""
    assert run_cli(specs_cmd, ["H200", "--sources"]) == 0
    out = capsys.readouterr().out
    note = ('HBM "GB" in the vendors\' tables reads as GiB on the device: the H200 "141 GB" reports\n'
            "150,109,880,320 bytes through `torch.cuda.get_device_properties().total_memory` (0.99 × 141 GiB;\n"
            "`results/h200-*/run.json`).")
    assert note in out
    assert "| GPU | BF16 TFLOP/s |" in out  # a table row comes with its header


def test_sources_for_takes_items_whole_and_names_as_words():
    from harness.present.specs import sources_for

    h200 = specs.load().find("H200")
    text = ("# title\n\n## A\n\n| GPU | x |\n|---|---|\n| H200 SXM | 1 |\n| GH200 | 2 |\n\n"
            "- first item about H200, wrapped\n  onto a second line.\n- an item about GH200 only.\n\n"
            "A paragraph that wraps\nand names H200 on its second line.\n\n## B\n\nNothing here.\n")
    out = sources_for(h200, text)
    assert "- first item about H200, wrapped\n  onto a second line." in out
    assert "A paragraph that wraps\nand names H200 on its second line." in out
    assert "| GPU | x |\n|---|---|\n| H200 SXM | 1 |" in out
    assert "GH200" not in out and "## B" not in out
