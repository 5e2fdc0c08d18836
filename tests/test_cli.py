"""The real `gwbench` CLI in subprocesses: end to end, bad input, interruption, resume."""

import contextlib
import json
import signal
import time

import pytest

from conftest import FAST, gwbench


def _run_dir(out):
    dirs = [d for d in out.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_quick_suite_end_to_end(tmp_path):
    r = gwbench("run", "--suite", "quick", "--device", "cpu", "--out", str(tmp_path), *FAST)
    assert r.returncode == 0, r.stderr
    run_dir = _run_dir(tmp_path)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "complete"
    assert meta["device"]["backend"] == "cpu"
    assert meta["timer_overhead_s"] < 1e-3
    rows = [json.loads(x) for x in (run_dir / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == meta["n_cases"]
    ok = [x for x in rows if x["status"] == "ok"]
    assert ok and all((x["tflops"] or x["gbps"] or 0) > 0 for x in ok)
    assert all(x["check"]["ok"] for x in ok if x.get("check"))
    assert {x["family"] for x in ok} >= {"gemm", "attention", "memory"}
    gemm_skips = {x["dtype"] for x in rows if x["status"] == "skipped" and x["family"] == "gemm"}
    assert gemm_skips == {"tf32", "fp8"}
    assert "gwbench summary" in r.stdout and str(run_dir) in r.stdout

    rep = gwbench("report", str(run_dir))
    assert rep.returncode == 0 and "| matmul |" in rep.stdout
    csv = gwbench("report", str(run_dir), "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("case_id,")
    js = gwbench("report", str(run_dir), "--format", "json")
    assert len(json.loads(js.stdout)["rows"]) == len(rows)


# In a subprocess, one of each kind (a run option, another command's, argparse's own); the
# rest of `run`'s options are checked in process below, where the same main() answers.
@pytest.mark.parametrize("args,message", [
    (["run", "--suite", "huge"], "unknown suite 'huge'"),
    (["list", "--suite", "nope"], "unknown suite"),
    (["report", "--format", "md", "/nonexistent/run"], "no such run folder"),
    (["run", "--bogus-flag"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    if args[0] == "run":
        args = [*args, "--out", str(tmp_path)]
    r = gwbench(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("args,message", [
    (["run", "--only", "gemmm"], "unknown family 'gemmm'"),
    (["run", "--dtype", "fp12"], "unknown dtype 'fp12'"),
    (["run", "--device", "tpu"], "unknown device 'tpu'"),
    (["run", "--data", "ones"], "--data 'ones'"),
    (["run", "--sustain", "-1"], "--sustain -1"),
    (["run", "--search", "--m-range", "9:1"], "--m-range '9:1'"),
    (["run", "--rep-ms", "0"], "--rep-ms"),
    (["run", "--attn-backend", ","], "--attn-backend: expected NAME[,NAME], got ','"),
    (["run", "--only", " "], "--only: expected NAME[,NAME]"),
    (["run", "--b-layout", "mk"], "--b-layout 'mk': choose from nk, kn"),
    (["run", "--fp8-out", "fp16"], "--fp8-out 'fp16'"),
    (["run", "--out-rewrite", "maybe"], "--out-rewrite: expected on, off or on,off"),
    (["run", "--search-stat", "p99"], "--search-stat 'p99'"),
    (["run", "--nccl-tests", "-g 8"], "'-g' is not one of nccl-tests'"),
    (["run", "--nccl-tests", "-b 8", "--iters", "3"], "--nccl-tests and --iters"),
    (["run", "--sizes", "1K:1G:+0"], "bad size '0'"),
    (["run", "--check-iters", "-1"], "--check-iters -1"),
    (["run", "--transfer-sizes", "1X"], "bad --transfer-sizes '1X'"),
    (["import", "mamf-finder", "x.log", "--nranks", "2"], "--collective and --nranks are nccl-tests'"),
])
def test_run_options_bad_input_in_process(tmp_path, capsys, args, message):
    """`run`'s options (case selection, timing, the GEMM method, nccl-tests flags) and import's,
    in process: the subprocess test above covers the CLI's framing."""
    from harness.cli import main

    if args[0] == "import":
        (tmp_path / "x.log").write_text("")
        args = [args[0], args[1], str(tmp_path / "x.log"), *args[3:]]
    # A type= check: argparse exits 2 itself.
    argparse_error = message.startswith(("--out-rewrite", "--attn-backend", "--only: expected"))
    with pytest.raises(SystemExit) if argparse_error else contextlib.nullcontext():
        assert main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cuda_requested_without_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    r = gwbench("run", "--device", "cuda", "--out", str(tmp_path))
    assert r.returncode == 2 and "no CUDA GPU" in r.stderr and "Traceback" not in r.stderr


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = gwbench("run", "--device", "cpu", "--out", str(blocker / "sub"), *FAST)
    assert r.returncode == 2 and "cannot write results" in r.stderr


def test_report_errors(tmp_path):
    r = gwbench("report", str(tmp_path))
    assert r.returncode == 2 and "not a gwbench run folder" in r.stderr
    ok = gwbench("run", "--device", "cpu", "--only", "gemm", "--dtype", "fp8",
                 "--out", str(tmp_path / "o"), *FAST)
    assert ok.returncode == 0, ok.stderr
    run_dir = _run_dir(tmp_path / "o")
    with open(run_dir / "rows.jsonl", "a") as f:
        f.write("garbage\n")
    bad = gwbench("report", str(run_dir))
    assert bad.returncode == 2 and "rows.jsonl:3: corrupt row" in bad.stderr


def test_list_prints_cases():
    r = gwbench("list", "--device", "cpu", "--only", "gemm")
    assert r.returncode == 0 and "gemm/matmul/bf16" in r.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_then_resume(tmp_path, sig):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # 12 small GEMMs of 0.2 s each: long enough to be stopped after the second, short to resume.
    args = [sys.executable, "-m", "harness", "run", "--device", "cpu", "--search", "--m-range", "64:768:64",
            "--n-range", "64", "--k-range", "64", "--dtype", "fp32", "--out", str(tmp_path), "--warmup-ms", "1",
            "--rep-ms", "200", "--idle", "0", "--no-projection"]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    rows_file = None
    while time.time() < deadline:
        dirs = [d for d in tmp_path.iterdir() if d.is_dir()]
        if dirs and (dirs[0] / "rows.jsonl").exists():
            rows_file = dirs[0] / "rows.jsonl"
            if len(rows_file.read_text().splitlines()) >= 2:
                break
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    run_dir = rows_file.parent
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "interrupted"
    before = [json.loads(x) for x in rows_file.read_text().splitlines()]
    assert 2 <= len(before) < meta["n_cases"]

    r = gwbench("run", "--resume", str(run_dir), "--no-projection")
    failed = [x for x in map(json.loads, rows_file.read_text().splitlines()) if x["status"] != "ok"]
    assert r.returncode == 0, (failed, r.stderr)
    after = [json.loads(x) for x in rows_file.read_text().splitlines()]
    ids = [x["case_id"] for x in after]
    assert len(ids) == len(set(ids)) == meta["n_cases"]
    assert after[: len(before)] == before  # finished rows untouched, not repeated
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    again = gwbench("run", "--resume", str(run_dir))
    assert again.returncode == 2 and "already complete" in again.stderr


def test_search_reports_best_shape(tmp_path):
    r = gwbench("run", "--device", "cpu", "--search", "--m-range", "128:256:128", "--n-range", "128",
                "--k-range", "128", "--dtype", "fp32", "--out", str(tmp_path), *FAST)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (_run_dir(tmp_path) / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {x["params"]["m"] for x in rows} == {128, 256}
    best = max(rows, key=lambda x: x["tflops_mean"])  # ranked by the mean, as mamf-finder
    p = best["params"]
    assert f"search fp32 (b_layout=nk out_rewrite=True): best {p['m']}x{p['n']}x{p['k']}" in r.stdout
    assert "TFLOP/s mean (ranked by mean;" in r.stdout


# Bad input, in-process (the CLI's own main): the same contract, no subprocess.
@pytest.mark.parametrize("args,message", [
    (["run", "--device", "cuda:²"], "bad device 'cuda:²'"),
    (["run", "--out", ""], "--out: expected a folder, got an empty name"),
    (["import", "nccl-tests", "all_reduce_perf.log", "--out", " "], "--out: expected a folder"),
    (["publish", "results", "--out", ""], "--out: expected a folder"),
    (["project", "--hardware", "H100", "--power", "1e300W"], "power must be positive and at most 1 PW"),
    (["project", "--hardware", "H100", "--power", "1W"], "1 W of facility power buys 0.00063 H100 SXM"),
    (["project", "--hardware", "H100", "--days", "1e300"], "--days must be positive and at most 36500"),
    (["project", "--hardware", "H100", "--days", "nan"], "--days must be positive"),
    (["project", "--hardware", "H100", "--accelerators", "1e308"], "--accelerators must be positive: 1 to 1e+09"),
    (["project", "--hardware", "H100", "--seed", "-1"], "--seed must be in 0..2^32-1"),
    (["project", "--hardware", "H100", "--pue", "1e300"], "--pue must be >= 1 and <= 5"),
    (["project", "--hardware", "H100", "--network-w", "1e300"], "--network-w must be >= 0 and <= 10000"),
    (["project", "--hardware", "H100", "--model", "405b", "--job-gpus", "1e9"], "--job-gpus: expected an integer"),
    (["model", "--hardware", "H100", "--gpus", "0"], "--gpus: must be in [1, 1e+08], got 0"),
    (["model", "--hardware", "H100", "--seq", "99999999999"], "--seq: must be in [1, 1.34218e+08]"),
    (["specs", "--hardware-file", "DEEP"], "not a hardware table (nested too deeply)"),
])
def test_bad_input_in_process_is_one_line_exit_2(tmp_path, capsys, args, message):
    from harness.cli import main

    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    args = [str(deep) if a == "DEEP" else a for a in args]
    if args[0] == "run":
        args += ["--device", "cpu"] if "--device" not in args else []
        args += [] if "--out" in args else ["--out", str(tmp_path)]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_list_takes_every_flag_that_shapes_a_case(capsys):
    """`gwbench list` shows what `gwbench run` with the same flags would run: the attention
    backends and the collectives' sizes (gwbench's or nccl-tests' own) included."""
    from harness.cli import main

    assert main(["list", "--device", "cpu", "--only", "attention,collectives", "--attn-backend", "sdpa-math",
                 "--sizes", "1K:4K:4"]) == 0
    ids = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:]]
    assert ids and all("/sdpa-math/" in i for i in ids if i.startswith("attention/"))
    sizes = {i.split("size_bytes=")[1] for i in ids if i.startswith("collectives/")}
    assert sizes == {"1024", "4096"}
    assert main(["list", "--device", "cpu", "--only", "collectives", "--nccl-tests", "-b 1K -e 1K"]) == 0
    assert {ln.split("size_bytes=")[1].split()[0] for ln in capsys.readouterr().out.splitlines()[1:]} == {"1024"}
