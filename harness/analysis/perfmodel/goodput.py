"""Goodput at scale: interruptions grow with GPU count; checkpoints and restarts cost time.

    interruption rate per GPU  lambda = 466 / (54 days x 16,384 GPUs)   (Llama 3 paper s3.3.4:
                               466 job interruptions in a 54-day snapshot on 16,384 H100s,
                               419 unexpected + 47 planned) -> MTBF(16k) ~ 2.8 h
    MTBF(N)                    = 1 / (lambda x N)                   (independent failures)
    optimal interval           tau = sqrt(2 x delta x MTBF)          (Young 1974; Daly 2006,
                               first order)
    fraction lost              delta / tau  (writing checkpoints)
                             + (tau / 2 + R) / MTBF  (lost work since the last checkpoint, and
                               the restart R, per interruption)
    goodput                    1 - fraction lost (0 when the job cannot make progress)

The first-order formula assumes delta << MTBF; outside it (a whole gigawatt site as one job)
the result is flagged: the job makes little or no progress unless it recovers faster.
No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.analysis.projection import Range

LLAMA3_INTERRUPTIONS = 466
LLAMA3_DAYS = 54.0
LLAMA3_GPUS = 16_384
RATE_PER_GPU_HOUR = LLAMA3_INTERRUPTIONS / (LLAMA3_DAYS * 24.0 * LLAMA3_GPUS)
# Range: unexpected interruptions only (419) to 1.5x (older fleets, less burn-in): gwbench estimate.
RATE = Range(419 / 466 * RATE_PER_GPU_HOUR, RATE_PER_GPU_HOUR, 1.5 * RATE_PER_GPU_HOUR,
             "Llama 3 s3.3.4: 466 interruptions (419 unexpected) in 54 days on 16,384 GPUs")
# Checkpoint write (blocking part) and restart: not published by Llama 3. gwbench estimates:
# asynchronous / in-memory checkpoints block for seconds to a minute (Llama 3 checkpoints are
# 1 MB-4 GB per GPU on a 2-7 TB/s file system); restart = reschedule + init + load, minutes.
CHECKPOINT_S = Range(10.0, 30.0, 120.0, "gwbench estimate: blocking checkpoint write 10-120 s")
RESTART_S = Range(120.0, 300.0, 900.0, "gwbench estimate: restart (reschedule, init, load) 2-15 min")


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


def goodput(gpus: float, checkpoint_s: float = CHECKPOINT_S.mode, restart_s: float = RESTART_S.mode,
            rate_per_gpu_hour: float = RATE.mode) -> Goodput:
    mtbf_s = 3600.0 / (rate_per_gpu_hour * gpus)
    tau = math.sqrt(2.0 * checkpoint_s * mtbf_s)  # Young/Daly
    lost = checkpoint_s / tau + (tau / 2.0 + restart_s) / mtbf_s
    flag = ""
    if checkpoint_s > mtbf_s / 10 or lost >= 0.5:
        flag = (f"MTBF {mtbf_s / 60:.1f} min is too short for {checkpoint_s:g} s checkpoints and a "
                f"{restart_s:g} s restart: one synchronous job this size makes little progress "
                "(first-order Young/Daly outside its range)")
    return Goodput(gpus, mtbf_s / 3600.0, tau, checkpoint_s, restart_s, min(lost, 1.0),
                   max(0.0, 1.0 - lost), flag)


def goodput_range(gpus: float) -> tuple[Goodput, Goodput, Goodput]:
    """(pessimistic, point, optimistic) from the uncertain inputs' ends."""
    return (goodput(gpus, CHECKPOINT_S.high, RESTART_S.high, RATE.high),
            goodput(gpus),
            goodput(gpus, CHECKPOINT_S.low, RESTART_S.low, RATE.low))
