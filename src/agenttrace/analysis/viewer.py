"""A local trace UI for AgentTrace files, without Docker: Arize Phoenix, run as a process.

Jaeger (docker-compose.yml) needs a container engine that many machines lack. Phoenix is a
trace UI that installs from the package index and speaks OTLP, so `agenttrace view` can start
one, send a file's runs to it, and print where to look. Phoenix pulls about 160 packages (some
600 MB) with pins of its own, so it never goes into the user's environment: a `phoenix` found
on PATH is used as it is, else the pinned version is installed, once, into its own virtual
environment in the user's cache directory (with `uv` when present, else `venv` and pip).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

#: The Phoenix release installed on demand (its API and span model are what the tests read).
PHOENIX_VERSION = "20.26.1"
_COMPLETE = ".agenttrace-complete"  # written last: a half-made environment is made again


class ViewerError(RuntimeError):
    """Phoenix could not be installed or started: said in one line."""


def cache_environment() -> Path:
    """Where the pinned Phoenix lives: `$AGENTTRACE_PHOENIX_VENV`, else the user cache."""
    configured = os.environ.get("AGENTTRACE_PHOENIX_VENV")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "agenttrace" / f"phoenix-{PHOENIX_VERSION}"


def find_phoenix(
    *, install: bool = True, say: Callable[[str], Any] = lambda _: None, timeout: float = 900
) -> Path:
    """The `phoenix` executable: the cached pinned one, one on PATH, or a fresh install."""
    venv = cache_environment()
    cached = venv / "bin" / "phoenix"
    if cached.exists() and ((venv / _COMPLETE).exists() or "AGENTTRACE_PHOENIX_VENV" in os.environ):
        return cached
    on_path = shutil.which("phoenix")
    if on_path:
        return Path(on_path)
    if not install:
        raise ViewerError(f"Phoenix is not installed (looked in {venv} and on PATH)")
    say(f"installing Phoenix {PHOENIX_VERSION} into {venv} (once; about 600 MB)...")
    shutil.rmtree(venv, ignore_errors=True)
    uv = shutil.which("uv")
    python = venv / "bin" / "python"
    steps = (
        [[uv, "venv", "-q", "-p", sys.executable, str(venv)]]
        + [[uv, "pip", "install", "-q", "-p", str(python), f"arize-phoenix=={PHOENIX_VERSION}"]]
        if uv
        else [[sys.executable, "-m", "venv", str(venv)]]
        + [[str(python), "-m", "pip", "install", "-q", f"arize-phoenix=={PHOENIX_VERSION}"]]
    )
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=timeout)
    except (subprocess.SubprocessError, OSError) as error:
        shutil.rmtree(venv, ignore_errors=True)
        detail = getattr(error, "stderr", b"") or b""
        last = detail.decode(errors="replace").strip().splitlines()[-1:] or [str(error)]
        raise ViewerError(f"Phoenix could not be installed: {last[0]}") from None
    (venv / _COMPLETE).touch()
    return cached


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PhoenixServer:
    """A Phoenix process on loopback, stopped by its PID (`with PhoenixServer(...) as ui:`)."""

    def __init__(
        self,
        binary: Path,
        workdir: Path,
        *,
        port: int | None = None,
        grpc_port: int | None = None,
        ready_timeout: float = 120,
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def otlp_endpoint(self) -> str:
        return f"{self.url}/v1/traces"

    def start(self) -> PhoenixServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))},
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(self.grpc_port),
            "PHOENIX_WORKING_DIR": str(self.workdir),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        }
        log_path = self.workdir / "phoenix.log"
        self._log = open(log_path, "wb")  # noqa: SIM115 - open for the process's life
        self.process = subprocess.Popen(
            [str(self.binary), "serve"], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
                self.stop()
                raise ViewerError(f"Phoenix exited while starting: {tail[0] if tail else '?'}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise ViewerError(f"Phoenix did not answer on {self.url} within {self.ready_timeout:g} s")

    def spans(self, project: str, trace_id: str, expected: int, timeout: float = 30) -> list[Any]:
        """The spans of one trace in one project, once `expected` of them have landed."""
        deadline = time.monotonic() + timeout
        found: list[Any] = []
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"{self.url}/v1/projects/{project}/spans?trace_id={trace_id}", timeout=5
                ) as response:
                    found = json.loads(response.read())["data"]
            except (OSError, ValueError, KeyError):
                found = []  # 404 until the project's first span lands
            if len(found) >= expected:
                return found
            time.sleep(0.3)
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # by the PID we started
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> PhoenixServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
