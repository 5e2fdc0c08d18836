"""Linux RAPL backend for harness.measure.telemetry: CPU package energy from the powercap sysfs tree.

Reads /sys/class/powercap/intel-rapl:N/energy_uj for each top-level "package-N" zone (Linux
Documentation/power/powercap/powercap.rst). The counter is in microjoules and wraps to zero
after max_energy_range_uj, which counter_delta handles. Sub-zones (core, uncore, dram) are
inside the package figure or outside "package" altogether, and "psys" overlaps the packages,
so only package zones are summed. intel-rapl-mmio zones repeat the package zone through
another interface on recent Intel parts and are skipped too, or a package would count twice.

Since Linux 5.10, energy_uj is readable by root only (CVE-2020-8694, "PLATYPUS"); an ordinary
user gets "permission denied", which becomes the row's reason.

RAPL has no instantaneous power sensor, clocks, temperature or throttle reasons: power traces
are the counter's slope between polls, and those other fields stay None with a note saying so.
"""

from __future__ import annotations

from pathlib import Path

from harness.measure.telemetry.base import Sample, TelemetryError

DEFAULT_ROOT = Path("/sys/class/powercap")


class RaplBackend:
    """The CPU packages of this machine, read through powercap."""

    name, reason = "rapl", None
    counter_source, trace_source, has_power_sensor = "rapl:package", "rapl:power_trace", False

    def __init__(self, root: str | Path | None = None):
        root = Path(root) if root is not None else DEFAULT_ROOT
        if not root.is_dir():
            raise TelemetryError(f"{root} not found")
        zones = sorted((z for z in root.glob("intel-rapl:*") if z.name.count(":") == 1),
                       key=lambda z: int(z.name.split(":")[1]))
        self.zones = [z for z in zones if _read_text(z / "name").startswith("package")]
        if not self.zones:
            raise TelemetryError(f"no RAPL package zones under {root}")
        self.labels = [_read_text(z / "name") for z in self.zones]
        self._range_j = [self._read_uj(z / "max_energy_range_uj") / 1e6 for z in self.zones]
        for z in self.zones:  # fail now, with the reason, rather than at every window
            self._read_uj(z / "energy_uj")
        self.notes = ["rapl: CPU package energy only; clocks, temperature and throttle are not read"]

    @staticmethod
    def _read_uj(path: Path) -> int:
        try:
            return int(path.read_text().strip())
        except PermissionError as e:
            raise TelemetryError(f"permission denied reading {path} (root only since Linux 5.10, "
                                 "CVE-2020-8694)") from e
        except (OSError, ValueError) as e:
            raise TelemetryError(f"cannot read {path}: {e}") from e

    def _counter(self, i: int, errors: list[str]) -> tuple[float, float] | None:
        try:
            return self._read_uj(self.zones[i] / "energy_uj") / 1e6, self._range_j[i]
        except TelemetryError as e:
            errors.append(f"{self.labels[i]}: {e}")
            return None

    # -- the Backend interface --------------------------------------------------------------

    def sample(self, i: int, t_s: float, errors: list[str]) -> Sample:
        counter = self._counter(i, errors)
        if counter is None:
            return Sample(t_s)
        return Sample(t_s, energy_j=counter[0], energy_range_j=counter[1])

    def energy_counter_j(self, i: int, errors: list[str]) -> tuple[float, float] | None:
        return self._counter(i, errors)

    def power_limit_w(self, i: int, errors: list[str]) -> float | None:
        # constraint_0 is the long-term limit (PL1), the one a sustained load settles at.
        path = self.zones[i] / "constraint_0_power_limit_uw"
        try:
            return self._read_uj(path) / 1e6
        except TelemetryError as e:
            errors.append(f"{self.labels[i]} power limit: {e}")
            return None

    def violation_s(self, i: int, errors: list[str]) -> dict[str, float | None]:
        return {}

    def close(self) -> None:
        pass


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
