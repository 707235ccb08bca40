"""Resource attributes describing where a run happened: host, OS, Python runtime, hardware.

These become the row's platform and hardware metadata. Each is read once per `configure()`; a
failure to read one leaves it out rather than failing configuration.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any

from opentelemetry.exporter.agenttrace import semconv

from agenttrace.version import __version__

# host.arch values of the OpenTelemetry conventions, by platform.machine().
_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "x86",
    "i686": "x86",
    "ppc64le": "ppc64",
    "s390x": "s390x",
}


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _hardware() -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    model = _cpu_model()
    if model:
        attributes[semconv.HOST_CPU_MODEL_NAME] = model
    logical = os.cpu_count()
    if logical:
        attributes[semconv.HOST_CPU_LOGICAL_COUNT] = logical
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
        if physical:
            attributes[semconv.HOST_CPU_PHYSICAL_COUNT] = physical
        attributes[semconv.HOST_MEMORY_TOTAL_BYTES] = int(psutil.virtual_memory().total)
    except Exception:  # psutil missing or unsupported platform: leave the figures out
        pass
    return attributes


def detect() -> dict[str, Any]:
    """Host, OS, runtime and hardware attributes of this process."""
    machine = platform.machine().lower()
    attributes: dict[str, Any] = {
        "host.name": socket.gethostname(),
        "host.arch": _ARCH.get(machine, machine),
        "os.type": sys.platform if sys.platform != "win32" else "windows",
        "os.description": platform.platform(),
        "os.version": platform.release(),
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "process.runtime.description": sys.version,
        "telemetry.distro.name": "agenttrace",
        "telemetry.distro.version": __version__,
    }
    attributes.update(_hardware())
    return attributes
