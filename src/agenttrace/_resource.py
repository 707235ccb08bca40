"""Resource attributes describing where a run happened: host, OS, Python runtime, hardware.

These become the row's platform and hardware metadata. Each is read once per `configure()`; a
failure to read one leaves it out rather than failing configuration.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
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


# What the SDK's process detector reports that a dataset must not carry: the executable's host
# path, the command line (it may hold secrets), the user and pids.
_RUNTIME_KEYS = ("process.runtime.name", "process.runtime.version", "process.runtime.description")


def _sdk_detected() -> dict[str, Any]:
    """OS and runtime attributes from the SDK's own detectors (each may fail: then left out)."""
    from opentelemetry.sdk.resources import OsResourceDetector, ProcessResourceDetector

    attributes: dict[str, Any] = {}
    with contextlib.suppress(Exception):  # a detector that fails leaves its attributes out
        attributes.update(OsResourceDetector().detect().attributes)
    with contextlib.suppress(Exception):
        process = ProcessResourceDetector().detect().attributes
        attributes.update({key: process[key] for key in _RUNTIME_KEYS if key in process})
    return attributes


def detect() -> dict[str, Any]:
    """Host, OS, runtime and hardware attributes of this process.

    OS and runtime come from the SDK's detectors; host name and architecture (the SDK's host
    detector is private), the OS description and the hardware figures are read here.
    """
    machine = platform.machine().lower()
    attributes: dict[str, Any] = {
        "host.name": socket.gethostname(),
        "host.arch": _ARCH.get(machine, machine),
        "os.description": platform.platform(),
        "telemetry.distro.name": "agenttrace",
        "telemetry.distro.version": __version__,
    }
    attributes.update(_sdk_detected())
    attributes.update(_hardware())
    return attributes
