"""Goodput at scale: interruptions grow with GPU count; checkpoints and restarts cost time.

    interruption rate per GPU  lambda (onerun.toml: Llama 3's 419 unexpected interruptions in
                               54 days on 16,384 H100, with Meta's RSC rates as the range)
    MTBF(N)                    = 1 / (lambda x N)                   (independent failures)
    checkpoint write           delta = 14 B x params / (storage per GPU x N)   (onerun.toml:
                               Adam state; Llama 3's storage bandwidth per GPU)
    optimal interval           tau = sqrt(2 x delta x MTBF)          (Young 1974; Daly 2006,
                               first order)
    fraction lost              delta / tau  (writing checkpoints)
                             + (tau / 2 + R) / MTBF  (lost work since the last checkpoint, and
                               the restart R, per interruption; R from onerun.toml)
    goodput                    1 - fraction lost (0 when the job cannot make progress)

Every input is read from harness/data/onerun.toml, the table the largest-single-run answer
(analysis/onerun.py) uses: `gwbench model` and `gwbench project` give one goodput for one job.
The first-order formula assumes delta << MTBF; outside it (a whole gigawatt site as one job)
the result is flagged: the job makes little or no progress unless it recovers faster.
No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.analysis.projection import Range
from harness.core import sourced

_TABLE = sourced.load("onerun")


def _range(key: str) -> Range:
    f = _TABLE.figure(key)
    return Range(f.low, f.mode, f.high, f.source)


RATE = _range("interruption_rate_per_gpu_hour")
RESTART_S = _range("restart_s")
STORAGE_GBPS = _range("storage_gbps_per_gpu")  # per GPU: storage grows with the cluster
CHECKPOINT_BYTES_PER_PARAM = _TABLE.figure("checkpoint_bytes_per_param").mode


def checkpoint_s(params: float, gpus: float, storage_gbps: float = STORAGE_GBPS.mode) -> float:
    """The blocking checkpoint write of a model of `params` parameters over `gpus` GPUs' storage."""
    return CHECKPOINT_BYTES_PER_PARAM * params / (storage_gbps * 1e9 * max(gpus, 1.0))


@dataclass(frozen=True)
class Goodput:
    gpus: float
    mtbf_h: float
    interval_s: float
    checkpoint_s: float
    restart_s: float
    lost: float
    goodput: float
    flag: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def goodput(gpus: float, checkpoint_s: float, restart_s: float = RESTART_S.mode,
            rate_per_gpu_hour: float = RATE.mode) -> Goodput:
    mtbf_s = 3600.0 / (rate_per_gpu_hour * gpus)
    tau = math.sqrt(2.0 * checkpoint_s * mtbf_s)  # Young/Daly
    lost = checkpoint_s / tau + (tau / 2.0 + restart_s) / mtbf_s
    flag = ""
    if checkpoint_s > mtbf_s / 10 or lost >= 0.5:
        flag = (f"MTBF {mtbf_s / 60:.1f} min is too short for {checkpoint_s:.3g} s checkpoints and a "
                f"{restart_s:g} s restart: one synchronous job this size makes little progress "
                "(first-order Young/Daly outside its range)")
    return Goodput(gpus, mtbf_s / 3600.0, tau, checkpoint_s, restart_s, min(lost, 1.0),
                   max(0.0, 1.0 - lost), flag)


def of_model(gpus: float, params: float) -> Goodput:
    """One job of a `params`-parameter model on `gpus` GPUs, every input at its mode."""
    return goodput(gpus, checkpoint_s(params, gpus))


def goodput_range(gpus: float, params: float) -> tuple[Goodput, Goodput, Goodput]:
    """(pessimistic, point, optimistic) from the uncertain inputs' ends (slow storage, slow
    restarts, a high failure rate; and the opposite)."""
    return (goodput(gpus, checkpoint_s(params, gpus, STORAGE_GBPS.low), RESTART_S.high, RATE.high),
            of_model(gpus, params),
            goodput(gpus, checkpoint_s(params, gpus, STORAGE_GBPS.high), RESTART_S.low, RATE.low))
