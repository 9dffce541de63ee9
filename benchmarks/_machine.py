"""What every benchmark reports about where it ran, and how its tables mark a target."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

__all__ = ["header", "load_average", "machine_info", "met"]


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, where the platform has them."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def machine_info() -> dict[str, Any]:
    """The machine the numbers come from."""
    return {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "load_average_1_5_15": load_average(),
    }


def header(title: str, results: dict[str, Any]) -> str:
    """The first line of a benchmark's output: the machine, the load before and after, quick or not."""
    m = results["machine"]
    load = m["load_average_1_5_15"]
    after = results.get("load_average_after")
    return (
        f"[bold]{title}[/] - {m['cpu_count']} CPUs, {m['implementation']} {m['python']}, {m['processor']}"
        + (f", load average {load[0]:.2f} before" if load else "")
        + (f", {after[0]:.2f} after" if after else "")
        + (" [yellow](quick)[/]" if results.get("quick") else "")
    )


def met(ok: bool) -> str:
    """A table cell saying whether a target was met."""
    return "[green]yes[/]" if ok else "[red]NO[/]"
