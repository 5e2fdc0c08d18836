"""`gwbench list`: the suites and the cases each would run on this device."""

from __future__ import annotations

import argparse

from harness.commands.common import add_case_selection, add_layer_shapes, layer_shape_config
from harness.core.cases import SUITES

NAME = "list"
HELP = "list the cases of a suite (per family) on a device"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_case_selection(p)
    add_layer_shapes(p)


def main(args: argparse.Namespace) -> int:
    from harness import runner
    from harness.measure import device

    from harness.analysis.nccl_tests import run_options

    coll = run_options(args.nccl_tests_flags, sizes=args.sizes)
    cfg = runner.RunConfig(suite=args.suite, only=args.only, device=args.device,
                           dtypes=args.dtypes, search=args.search, m_range=args.m_range,
                           n_range=args.n_range, k_range=args.k_range, b_layout=args.b_layout,
                           out_rewrite=args.out_rewrite, fp8_out=args.fp8_out,
                           transfer_sizes=args.transfer_sizes, attn_backends=args.attn_backends,
                           coll_sizes=coll["sizes"], **layer_shape_config(args))
    cfg.validate()
    dev = device.resolve(cfg.device)
    cases = runner.expand(cfg, runner.make_context(cfg, dev))
    print(f"suites: {', '.join(SUITES)}; suite {cfg.suite} on {dev.backend}: {len(cases)} cases")
    for c in cases:
        print(f"  {c.id}" + (f"  ({c.label})" if c.label else ""))
    return 0
