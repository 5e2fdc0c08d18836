"""What a run's run.json says about its device, in the words every reader prints.

run.json keeps `null` where a fact was not recorded (an imported log that names no GPU, an old
nvbandwidth file with no device list): data never holds a guess. A person reads "not recorded"
there, never Python's `None`; this module is the one place that wording lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NOT_RECORDED = "not recorded"


def device(meta: Mapping) -> Mapping[str, Any]:
    """run.json's `device` object, or an empty one."""
    d = meta.get("device")
    return d if isinstance(d, Mapping) else {}


def device_name(meta: Mapping) -> str | None:
    """The device's name as recorded (`NVIDIA H200`), or None."""
    name = device(meta).get("name")
    return str(name) if name not in (None, "") else None


def device_label(meta: Mapping) -> str:
    """The device's name, or "device name not recorded"."""
    return device_name(meta) or f"device name {NOT_RECORDED}"


def device_count_text(meta: Mapping) -> str:
    count = device(meta).get("count")
    return str(count) if count not in (None, "") else NOT_RECORDED
