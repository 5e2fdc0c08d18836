"""Every CUDA source in kernels/ compiles with nvcc (where nvcc exists) and exports the
entry points the memory family launches; on a GPU, through CuPy's NVRTC too."""

import re
import shutil
import subprocess

import pytest

from harness.measure import cupy_kernels as kernels_cupy
from harness.benchmarks import memory

NVCC = shutil.which("nvcc")
SOURCES = kernels_cupy.sources()
ENTRY_POINTS = {
    "stream.cu": [f"{op}_{t}" for op in memory.STREAM_OPS for t in ("f32", "f64")],
    "peak.cu": ["fma_f32", "fma_f16x2"],
}


def test_sources_found_and_known():
    names = sorted(p.name for p in SOURCES)
    assert names == sorted(ENTRY_POINTS), names  # a new .cu file needs its entry points listed here
    assert kernels_cupy.source_path("stream.cu").read_text().startswith("// STREAM")


def test_block_and_chain_constants_match_the_sources():
    stream = kernels_cupy.source_path("stream.cu").read_text()
    peak = kernels_cupy.source_path("peak.cu").read_text()
    assert f"#define STREAM_BLOCK {memory.STREAM_BLOCK}" in stream
    assert f"#define STREAM_UNROLL {memory.STREAM_UNROLL}" in stream
    assert f"#define PEAK_ACC {memory.PEAK_ACC}" in peak


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
@pytest.mark.parametrize("arch", ["sm_90", "sm_80"])
@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_nvcc_compiles_to_ptx(src, arch, tmp_path):
    out = tmp_path / (src.stem + ".ptx")
    r = subprocess.run([NVCC, "-std=c++17", f"-arch={arch}", "-ptx", str(src), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    ptx = out.read_text()
    entries = set(re.findall(r"\.entry\s+(\w+)\(", ptx))
    assert set(ENTRY_POINTS[src.name]) <= entries
    if src.name == "stream.cu":
        # The point of the hand-written kernels: 16-byte vector loads in the fp32 ones.
        assert re.search(r"ld\.global(\.nc)?\.v4\.f32", ptx)
        assert re.search(r"ld\.global(\.nc)?\.v2\.f64", ptx)
    else:
        assert "fma.rn.f16x2" in ptx and "fma.rn.f32" in ptx


@pytest.mark.gpu
@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_nvrtc_compiles_through_cupy(src):
    pytest.importorskip("cupy")
    fns = kernels_cupy.load(src.name, 0, tuple(ENTRY_POINTS[src.name]))
    assert set(fns) == set(ENTRY_POINTS[src.name])
