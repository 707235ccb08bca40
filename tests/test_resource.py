"""The Resource: the SDK's OS and runtime detectors, never the command line, paths or user."""

from __future__ import annotations

import sys

from opentelemetry.sdk.resources import OsResourceDetector

from agenttrace._resource import detect


def test_os_and_runtime_come_from_the_sdk_detectors() -> None:
    attributes = detect()
    assert {k: attributes[k] for k in ("os.type", "os.version")} == dict(
        OsResourceDetector().detect().attributes
    )
    assert attributes["process.runtime.version"].startswith(f"{sys.version_info[0]}.")


def test_nothing_that_identifies_the_user_or_the_command_line() -> None:
    """The SDK's process detector also reports these; a published dataset must not carry them."""
    keys = set(detect())
    assert not {
        k for k in keys if k.startswith("process.") and not k.startswith("process.runtime.")
    }
