"""Replay backend: recorded or synthetic power traces played back as if they were devices."""

from __future__ import annotations

import bisect
import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.measure.telemetry.base import TRACE_COLUMNS, NoCounters, Sample


class ReplayBackend(NoCounters):
    """Plays recorded or synthetic power traces back as if they were devices.

    For tests and for re-deriving summaries offline (Zeus keeps a replay monitor for the same
    reason). Each track is {"t_s": [...], "power_w": [...]} plus optional "clock_sm_mhz",
    "temp_c"; times are relative to `origin` (default: the first poll). A poll returns the
    recorded point in effect then, tagged with its index, so polling faster than the recording
    yields the original points after de-duplication. There is no energy counter.
    """

    name, counter_source, trace_source, has_power_sensor = "replay", None, "replay:power_trace", True

    def __init__(self, tracks: Mapping[str, Mapping[str, Sequence[float | None]]],
                 origin: float | None = None):
        self.labels, self.reason, self.notes = list(tracks), None, []
        self._tracks = [dict(track) for track in tracks.values()]
        self._origin = origin

    @classmethod
    def from_csv(cls, path: str | Path, origin: float | None = None) -> ReplayBackend:
        """Replay a run trace written by Telemetry.start_run_trace."""
        tracks: dict[str, dict[str, list[float | None]]] = {}
        with open(path, newline="") as f:
            for rec in csv.DictReader(f):
                if not rec["power_w"]:
                    continue
                track = tracks.setdefault(rec["device"], {k: [] for k in TRACE_COLUMNS if k != "device"})
                for key in track:
                    track[key].append(float(rec[key]) if rec[key] else None)
        return cls(tracks, origin)

    def sample(self, i: int, t_s: float, errors: list[str]) -> Sample:
        if self._origin is None:
            self._origin = t_s
        track = self._tracks[i]
        k = bisect.bisect_right(track["t_s"], t_s - self._origin) - 1
        if k < 0:
            errors.append(f"{self.labels[i]}: poll before the replayed trace starts")
            return Sample(t_s)

        def at(key: str) -> float | None:
            values = track.get(key)
            return None if values is None else values[k]

        return Sample(t_s, power_w=at("power_w"), power_ts_us=k, clock_sm_mhz=at("clock_sm_mhz"),
                      temp_c=at("temp_c"))
