"""Real OTLP backends: `agenttrace send` to the in-process receiver, to Arize Phoenix (directly and
through a rotel collector hop), and the docker-compose / collector configuration."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from otlp_receiver import OTLPReceiver

from agenttrace.analysis.viewer import PhoenixServer, ViewerError, find_phoenix

REPO = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("agenttrace")
SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=_env()
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> list[Path]:
    """Two AgentTrace files from the demo (distinct runs: backends keep span ids unique)."""
    files = []
    for name in ("first", "second", "third"):
        out = tmp_path_factory.mktemp(name)
        result = _cli("demo", "-o", str(out))
        assert result.returncode == 0, result.stderr
        files.append(out / "demo.jsonl")
    return files


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_send_puts_the_runs_on_the_wire(recorded, protocol: str, suffix: str) -> None:
    receiver = OTLPReceiver().start()
    try:
        endpoint = receiver.http_endpoint if protocol == "http/protobuf" else receiver.grpc_endpoint
        source = recorded[0].with_suffix(suffix)
        result = _cli(
            "send",
            str(source),
            "--endpoint",
            endpoint,
            "--protocol",
            protocol,
            "--service-name",
            "replayed-runs",
        )
        assert result.returncode == 0, result.stderr
        rows = _rows(recorded[0])
        expected = sum(1 + len(r["spans"]) + len(r["llm_steps"]) for r in rows)
        assert f"sent {expected} spans of {len(rows)} runs" in result.stdout
        spans = receiver.wait_for(expected)
    finally:
        receiver.stop()
    assert len(spans) == expected
    by_id = {s.span_id: s for s in spans}
    for row in rows:
        trace = [s for s in spans if s.trace_id == row["trace_id"]]
        (root,) = [s for s in trace if s.parent_span_id == ""]
        assert root.name == f"invoke_agent {row['metadata']['dataset_name']}-agent"
        assert root.attributes["agenttrace.prompt"] == row["prompt"]
        assert root.resource["service.name"] == "replayed-runs"
        for tool in row["spans"]:
            span = by_id[tool["span_id"]]
            assert (
                span.name == f"execute_tool {tool['tool_name']}" and span.kind == SPAN_KIND_INTERNAL
            )
            assert span.parent_span_id == root.span_id
            assert span.start_time_unix_nano == tool["start_ns"]
            assert (
                span.attributes["agenttrace.telemetry.max_rss_bytes"]
                == tool["telemetry"]["max_rss_bytes"]
            )
            assert span.attributes["openinference.span.kind"] == "TOOL"
        for step in row["llm_steps"]:
            span = by_id[step["step_id"]]
            assert span.kind == SPAN_KIND_CLIENT and span.name == f"chat {row['model']}"
            assert span.attributes["agenttrace.step.number"] == step["step_number"]


def test_send_to_nothing_fails_fast_and_clearly(recorded) -> None:
    started = time.monotonic()
    result = _cli("send", str(recorded[0]), "--endpoint", f"http://127.0.0.1:{_free_port()}")
    assert result.returncode == 1 and "cannot connect to" in result.stderr
    assert time.monotonic() - started < 15


def test_send_to_a_backend_that_never_answers_gives_up(recorded) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (in the kernel) and never answers
    try:
        started = time.monotonic()
        result = _cli(
            "send",
            str(recorded[0]),
            "--endpoint",
            f"http://127.0.0.1:{silent.getsockname()[1]}",
            "--timeout",
            "1",
        )
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert result.returncode == 1 and "did not accept the spans" in result.stderr
    assert elapsed < 30


def test_send_usage_errors(recorded) -> None:
    assert _cli("send").returncode == 2
    assert _cli("send", str(recorded[0]), "--protocol", "http/json").returncode == 2
    assert _cli("send", str(recorded[0]), "--header", "no-equals").returncode == 2


# --- Arize Phoenix, a real backend ---------------------------------------------------------------
# The pinned Phoenix in its cached venv, and the process around it: what `agenttrace view` uses.
Phoenix = PhoenixServer


def _phoenix_binary() -> Path:
    try:
        return find_phoenix(install=True)
    except ViewerError as error:
        if os.environ.get("CI"):  # CI promises a real backend: a missing one is a failure
            pytest.fail(str(error))
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory) -> Iterator[Phoenix]:
    binary = _phoenix_binary()
    running = Phoenix(binary, tmp_path_factory.mktemp("phoenix")).start()
    yield running
    running.stop()


def _check_in_phoenix(phoenix: Phoenix, project: str, rows: list[dict]) -> None:
    assert rows, "nothing to look for"
    for row in rows[:3]:
        expected = 1 + len(row["spans"]) + len(row["llm_steps"])
        spans = phoenix.spans(project, row["trace_id"], expected)
        assert len(spans) == expected, (project, row["trace_id"], len(spans))
        # Every span's kind as Phoenix shows it, one entry per span (not one per name).
        kinds = sorted((s["name"].split(" ")[0], s["span_kind"]) for s in spans)
        assert kinds == sorted(
            [("invoke_agent", "AGENT")]
            + [("chat", "LLM")] * len(row["llm_steps"])
            + [("execute_tool", "TOOL")] * len(row["spans"])
        )
        assert f"execute_tool {row['spans'][-1]['tool_name']}" in {s["name"] for s in spans}
        ids = {s["context"]["span_id"] for s in spans}
        assert {t["span_id"] for t in row["spans"]} <= ids


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_phoenix_receives_sent_runs(phoenix, recorded, protocol: str) -> None:
    source = recorded[0] if protocol == "http/protobuf" else recorded[1]
    endpoint = (
        phoenix.url if protocol == "http/protobuf" else f"http://127.0.0.1:{phoenix.grpc_port}"
    )
    project = f"send-{protocol.split('/')[0]}"
    result = _cli(
        "send", str(source), "--endpoint", endpoint, "--protocol", protocol, "--project", project
    )
    assert result.returncode == 0, result.stderr
    _check_in_phoenix(phoenix, project, _rows(source))


def _rotel_env() -> dict[str, str]:
    """rotel-agent embeds this Python's libpython; a Python not installed system-wide (pyenv)
    keeps it in its own LIBDIR, which the loader must be told about."""
    env = _env()
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            part for part in (libdir, env.get("LD_LIBRARY_PATH")) if part
        )
    return env


def test_phoenix_through_a_rotel_collector_hop(phoenix, recorded) -> None:
    import rotel

    binary = Path(rotel.__file__).parent / "rotel-agent"
    grpc_port, http_port = _free_port(), _free_port()
    collector = subprocess.Popen(
        [
            str(binary),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{grpc_port}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{http_port}",
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            f"http://127.0.0.1:{phoenix.grpc_port}",
            "--otlp-exporter-protocol",
            "grpc",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_rotel_env(),
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        result = _cli(
            "send",
            str(recorded[2]),
            "--endpoint",
            f"http://127.0.0.1:{http_port}",
            "--project",
            "through-rotel",
        )
        assert result.returncode == 0, result.stderr
        _check_in_phoenix(phoenix, "through-rotel", _rows(recorded[2]))
    finally:
        collector.terminate()
        collector.wait(timeout=20)


def test_live_export_to_phoenix(phoenix, tmp_path) -> None:
    env = _env() | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.url,
        "OTEL_RESOURCE_ATTRIBUTES": "openinference.project.name=live-demo",
    }
    result = subprocess.run(
        [str(SCRIPT), "demo", "-o", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    _check_in_phoenix(phoenix, "live-demo", _rows(tmp_path / "demo.jsonl"))


# --- docker-compose.yml and the collector configuration ----------------------------------------
def _compose_binary() -> Path:
    import compose

    return Path(compose.__file__).parent / "docker-compose"


def test_compose_file_is_valid_for_the_real_compose_binary(tmp_path) -> None:
    binary = _compose_binary()
    for profile in ([], ["--profile", "phoenix"]):
        result = subprocess.run(
            [str(binary), "-f", str(REPO / "docker-compose.yml"), *profile, "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((REPO / "docker-compose.yml").read_text().replace("ports:", "portz:", 1))
    assert (
        subprocess.run(
            [str(binary), "-f", str(broken), "config", "-q"], capture_output=True, timeout=60
        ).returncode
        == 1
    )
    services = subprocess.run(
        [
            str(binary),
            "-f",
            str(REPO / "docker-compose.yml"),
            "--profile",
            "phoenix",
            "config",
            "--services",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert sorted(services) == ["jaeger", "otel-collector", "phoenix"]


def test_collector_config_is_complete_and_agrees_with_compose_and_readme() -> None:
    config = yaml.safe_load((REPO / "collector-config" / "otel-collector.yaml").read_text())
    compose_file = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    service = config["service"]
    for name, pipeline in service["pipelines"].items():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                assert component in (config.get(section) or {}), f"{name}: {component} undefined"
    for extension in service.get("extensions", []):
        assert extension in config["extensions"]
    assert service["pipelines"]["traces"]["processors"][0] == "memory_limiter"
    assert {"memory_limiter", "batch"} <= set(config["processors"])
    assert "health_check" in config["extensions"]
    exporters = config["exporters"]
    jaeger_exporter = next(v for k, v in exporters.items() if k.split("/")[0] == "otlp_grpc")
    assert jaeger_exporter["endpoint"].split(":")[0] in compose_file["services"]
    published = {int(p.split(":")[0]) for p in compose_file["services"]["otel-collector"]["ports"]}
    receiver_ports = {
        int(proto["endpoint"].rsplit(":", 1)[1])
        for proto in config["receivers"]["otlp"]["protocols"].values()
    }
    assert receiver_ports <= published
    health_port = int(config["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1])
    assert health_port in published
    jaeger_ports = {int(p.split(":")[0]) for p in compose_file["services"]["jaeger"]["ports"]}
    assert 16686 in jaeger_ports
    mounted = compose_file["services"]["otel-collector"]["volumes"][0].split(":")[0]
    assert (REPO / mounted).resolve() == (
        REPO / "collector-config" / "otel-collector.yaml"
    ).resolve()
    readme = (REPO / "README.md").read_text()
    for port in sorted(receiver_ports | {16686}):
        assert re.search(rf"\b{port}\b", readme), f"README does not mention port {port}"
    for image in ("OTELCOL_VERSION", "JAEGER_VERSION", "PHOENIX_VERSION"):
        assert "${" + image + ":-" in (REPO / "docker-compose.yml").read_text()
