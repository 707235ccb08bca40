"""Take docs/phoenix-run.png: a real demo run, sent live to Phoenix, shot with headless Chromium.

    uv run python docs/screenshot.py [--phoenix PATH] [--out docs/phoenix-run.png]

Needs Phoenix in its own venv (the test suite's, in ~/.cache/agenttrace/phoenix-<version>, made by
`uv run pytest tests/test_backends.py`) and Chromium (`apt-get install -y --no-install-recommends
chromium`). Everything runs on loopback; the Phoenix it starts is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROJECT = "agenttrace-demo"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agenttrace"
    installed = sorted(cache.glob("phoenix-*/bin/phoenix"))
    parser.add_argument("--phoenix", default=str(installed[-1]) if installed else "phoenix")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--out", default=str(REPO / "docs" / "phoenix-run.png"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="agenttrace-shot-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    phoenix_env = env | {
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(_free_port()),
        "PHOENIX_WORKING_DIR": str(work / "phoenix"),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
    }
    phoenix = subprocess.Popen(
        [args.phoenix, "serve"],
        env=phoenix_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        demo_env = env | {
            "OTEL_EXPORTER_OTLP_ENDPOINT": base,
            "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={PROJECT}",
        }
        agenttrace = Path(sys.executable).with_name("agenttrace")
        subprocess.run(
            [str(agenttrace), "demo", "-o", str(work / "demo")],
            env=demo_env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        rows = [
            json.loads(line) for line in (work / "demo" / "demo.jsonl").read_text().splitlines()
        ]
        trace_id = rows[5]["trace_id"]  # the NL2Bash task that takes a wrong turn first
        project_id = None
        for _ in range(60):
            projects = {p["name"]: p["id"] for p in _get(f"{base}/v1/projects")["data"]}
            project_id = projects.get(PROJECT)
            if project_id:
                break
            time.sleep(0.5)
        time.sleep(2)
        url = f"{base}/projects/{project_id}/traces/{trace_id}"
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                args.chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                f"--user-data-dir={work / 'chromium'}",
                "--window-size=1600,1000",
                "--virtual-time-budget=15000",
                "--hide-scrollbars",
                f"--screenshot={args.out}",
                url,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
        print(f"{args.out}: {url}")
    finally:
        phoenix.terminate()
        phoenix.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
