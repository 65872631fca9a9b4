"""Facts about the machine a benchmark ran on: cores, memory, load, date and library versions."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("numpy", "scipy", "pandas", "networkx", "pyomo", "highspy", "dask", "distributed")


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def machine_facts() -> dict[str, object]:
    """Cores, memory (GB), CPU model, load average, UTC date and package versions."""
    facts: dict[str, object] = {
        "cores": _cores(),
        "memory_gb": _memory_gb(),
        "cpu": _cpu_model(),
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    try:
        facts["load_avg"] = "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        facts["load_avg"] = "n/a"
    for pkg in PACKAGES:
        try:
            facts[pkg] = version(pkg)
        except PackageNotFoundError:
            facts[pkg] = "not installed"
    return facts


def machine_line(facts: dict[str, object] | None = None) -> str:
    """One line for a table row or header: ``2 cores, 24.0 GB, <cpu>``."""
    f = facts or machine_facts()
    return f"{f['cores']} cores, {f['memory_gb']} GB, {f['cpu']}"


if __name__ == "__main__":  # pragma: no cover
    for key, value in machine_facts().items():
        print(f"{key}: {value}")
