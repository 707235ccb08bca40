"""Spans on the OTLP wire (HTTP/protobuf and gRPC) to an in-process receiver, and OTEL_* variables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from opentelemetry import trace
from opentelemetry.exporter.agenttrace._rows import tool_input_of
from opentelemetry.sdk.trace import TracerProvider
from otlp_receiver import OTLPReceiver

from agenttrace import semconv
from agenttrace._configure import build_resource

SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
STATUS_ERROR = 2


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    running = OTLPReceiver().start()
    yield running
    running.stop()


# A small agent, shared by the in-process and subprocess tests.
AGENT_SOURCE = textwrap.dedent(
    """
    import sys
    import agenttrace

    @agenttrace.tool(name="bash")
    def bash(command):
        return agenttrace.tools.run(["bash", "-c", command], capture_output=True, text=True).stdout

    @agenttrace.tool(name="final_answer")
    def final_answer(answer):
        if answer == "boom":
            raise RuntimeError("bad answer")
        return answer

    @agenttrace.llm(model="qwen3-8b")
    def model_step(messages):
        return "use bash"

    @agenttrace.agent(name="nl2bash", metadata={"dataset_name": "nl2bash", "task_id": 4})
    def run(prompt):
        model_step([{"role": "user", "content": prompt}])
        with agenttrace.using_call_id("call_1"):
            out = bash(command="echo hello")
        try:
            final_answer(answer="boom")
        except RuntimeError:
            pass
        return out
    """
)


def _check_run(spans) -> None:
    by_name = {s.name: s for s in spans}
    assert set(by_name) >= {
        "invoke_agent nl2bash",
        "chat qwen3-8b",
        "execute_tool bash",
        "execute_tool final_answer",
    }
    root = by_name["invoke_agent nl2bash"]
    chat = by_name["chat qwen3-8b"]
    bash = by_name["execute_tool bash"]
    failed = by_name["execute_tool final_answer"]
    assert root.parent_span_id == "" and root.kind == SPAN_KIND_INTERNAL
    assert chat.kind == SPAN_KIND_CLIENT and bash.kind == SPAN_KIND_INTERNAL
    for child in (chat, bash, failed):
        assert child.parent_span_id == root.span_id
        assert child.trace_id == root.trace_id
    assert root.attributes["gen_ai.agent.name"] == "nl2bash"
    assert root.attributes["agenttrace.metadata.task_id"] == 4
    assert root.attributes["openinference.span.kind"] == "AGENT"
    assert chat.attributes["gen_ai.request.model"] == "qwen3-8b"
    assert chat.attributes["agenttrace.step.number"] == 1
    assert bash.attributes["gen_ai.tool.call.id"] == "call_1"
    assert bash.attributes["gen_ai.tool.call.result"] == "hello\n"
    assert json.loads(bash.attributes["gen_ai.tool.call.arguments"]) == {"command": "echo hello"}
    # The release's input form travels as the arguments JSON, rebuilt by whoever makes rows.
    assert tool_input_of(bash.attributes) == "kwargs={'command': 'echo hello'}"
    for key in semconv.TELEMETRY_KEYS:
        assert key in bash.attributes
    assert failed.status_code == STATUS_ERROR
    assert failed.attributes["agenttrace.tool.exit_code"] == 1
    resource = root.resource
    for key in (
        "host.name",
        "host.arch",
        "os.type",
        "os.description",
        "process.runtime.name",
        "process.runtime.version",
        "host.cpu.model.name",
        "agenttrace.host.cpu.logical_count",
        "agenttrace.host.memory.total_bytes",
        "telemetry.sdk.name",
        "service.name",
    ):
        assert key in resource, key


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_live_export_reaches_the_wire(receiver, configure_spans, protocol: str) -> None:
    endpoint = receiver.http_endpoint if protocol == "http/protobuf" else receiver.grpc_endpoint
    configure_spans(otlp_endpoint=endpoint, otlp_protocol=protocol)
    namespace: dict = {}
    exec(AGENT_SOURCE, namespace)  # noqa: S102 - the shared test agent
    namespace["run"]("say hello")
    cast(TracerProvider, trace.get_tracer_provider()).force_flush()
    spans = receiver.wait_for(4)
    assert {s.transport for s in spans} == {"http" if protocol == "http/protobuf" else "grpc"}
    _check_run(spans)


def _subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    env.update(extra)
    return env


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_otel_environment_variables_and_flush_at_exit(receiver, protocol: str) -> None:
    endpoint = receiver.http_endpoint if protocol == "http/protobuf" else receiver.grpc_endpoint
    script = AGENT_SOURCE + "\nagenttrace.configure()\nrun('say hello')\n"  # no explicit flush
    env = _subprocess_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_HEADERS="x-team=agenttrace,authorization=Bearer%20t0ken",
        OTEL_SERVICE_NAME="my-agent",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=lab,team=systems",
        OTEL_BSP_SCHEDULE_DELAY="60000",  # only the exit flush can deliver the spans in time
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    spans = receiver.wait_for(4)
    _check_run(spans)
    resource = spans[0].resource
    assert resource["service.name"] == "my-agent"
    assert resource["deployment.environment.name"] == "lab" and resource["team"] == "systems"
    assert any(h.get("x-team") == "agenttrace" for h in receiver.headers)


def test_sigterm_flushes_before_dying(receiver) -> None:
    script = AGENT_SOURCE + textwrap.dedent(
        """
        import time
        agenttrace.configure()
        run('say hello')
        print('ready', flush=True)
        time.sleep(60)
        """
    )
    env = _subprocess_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_endpoint,
        OTEL_BSP_SCHEDULE_DELAY="60000",
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        assert receiver.spans == []  # still batched in the child
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == -signal.SIGTERM  # it still dies of SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
    _check_run(receiver.wait_for(4))


def test_configure_adds_to_an_existing_provider() -> None:
    script = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import agenttrace

        users = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "users-app"}))
        provider.add_span_processor(SimpleSpanProcessor(users))
        trace.set_tracer_provider(provider)

        ours = InMemorySpanExporter()
        returned = agenttrace.configure(span_processors=[SimpleSpanProcessor(ours)])
        assert returned is provider and trace.get_tracer_provider() is provider

        @agenttrace.tool
        def t():
            return 1
        t()
        assert [s.name for s in users.get_finished_spans()] == ["execute_tool t"]
        assert [s.name for s in ours.get_finished_spans()] == ["execute_tool t"]
        assert ours.get_finished_spans()[0].resource.attributes["service.name"] == "users-app"

        # configure() again replaces what the first call added: no doubled spans
        again = InMemorySpanExporter()
        agenttrace.configure(span_processors=[SimpleSpanProcessor(again)])
        t()
        assert len(ours.get_finished_spans()) == 1
        assert len(again.get_finished_spans()) == 1
        assert len(users.get_finished_spans()) == 2
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=_subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_sdk_disabled_means_no_provider() -> None:
    script = (
        "import agenttrace\n"
        "from opentelemetry import trace\n"
        "assert agenttrace.configure() is None\n"
        "@agenttrace.tool\n"
        "def t(): return 5\n"
        "assert t() == 5\n"
        "assert not hasattr(trace.get_tracer_provider(), 'add_span_processor')\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=_subprocess_env(OTEL_SDK_DISABLED="true"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_unsupported_protocol_is_a_clear_error(configure_spans) -> None:
    with pytest.raises(ValueError, match="unsupported OTLP protocol 'http/json'"):
        configure_spans(otlp_endpoint="http://127.0.0.1:1", otlp_protocol="http/json")


def test_build_resource_precedence(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-env-attrs,team=a")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    resource = build_resource(attributes={"team": "b"})
    assert resource.attributes["service.name"] == "from-env-attrs"
    assert resource.attributes["team"] == "b"  # explicit beats OTEL_RESOURCE_ATTRIBUTES
    monkeypatch.setenv("OTEL_SERVICE_NAME", "svc")
    assert build_resource().attributes["service.name"] == "svc"
    # as in the SDK's Resource.create, a name given in code beats the environment
    assert build_resource(service_name="code").attributes["service.name"] == "code"
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    assert build_resource().attributes["service.name"] == "agenttrace"
    assert (
        build_resource(service_name="x", service_version="1.2").attributes["service.version"]
        == "1.2"
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_backend_down_neither_breaks_nor_hangs_the_agent(protocol: str) -> None:
    script = AGENT_SOURCE + textwrap.dedent(
        """
        import sys, time
        agenttrace.configure(otlp_endpoint=sys.argv[1], otlp_protocol=sys.argv[2], otlp_timeout=2)
        started = time.monotonic()
        assert run('say hello') == 'hello\\n'
        print(f"run {time.monotonic() - started:.3f}", flush=True)
        """
    )
    endpoint = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", script, endpoint, protocol],
        env=_subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.split()[1]) < 1.0  # export is off the agent's path
    assert elapsed < 20  # shutdown gives up on the dead backend in bounded time


def test_malformed_environment_falls_back_in_decorated_code_but_configure_raises() -> None:
    script = textwrap.dedent(
        """
        import agenttrace
        @agenttrace.tool
        def t():
            return 7
        assert t() == 7  # the decorated call is not broken by the bad variable
        try:
            agenttrace.configure()
        except ValueError as exc:
            print("configure:", exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=_subprocess_env(AGENTTRACE_MAX_VALUE_LENGTH="lots"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "AGENTTRACE_MAX_VALUE_LENGTH must be a whole number" in out.stdout
    assert "using the default settings" in out.stderr


@pytest.mark.parametrize(
    "choice", ["none", "console", "agenttrace", "otlp,console", "otlp_proto_http"]
)
def test_otel_traces_exporter_chooses_the_exporters(receiver, tmp_path, choice: str) -> None:
    output = tmp_path / "runs.jsonl"
    script = AGENT_SOURCE + "\nagenttrace.configure()\nrun('say hello')\n"
    env = _subprocess_env(
        OTEL_TRACES_EXPORTER=choice,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_endpoint,
        AGENTTRACE_OUTPUT=str(output) if choice == "agenttrace" else "",
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    time.sleep(0.5)
    sent = len(receiver.spans)
    printed = '"name": "invoke_agent nl2bash"' in out.stdout
    assert (sent > 0) == ("otlp" in choice)
    assert printed == ("console" in choice)
    assert output.exists() == (choice == "agenttrace")


def test_the_sdks_protocol_specific_exporter_name_pins_the_protocol(receiver) -> None:
    # `otlp_proto_grpc` is the SDK's name for OTLP over gRPC: no protocol variable needed.
    script = AGENT_SOURCE + "\nagenttrace.configure()\nrun('say hello')\n"
    env = _subprocess_env(
        OTEL_TRACES_EXPORTER="otlp_proto_grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    time.sleep(0.5)
    assert any(span.name.startswith("invoke_agent") for span in receiver.spans)


def test_otel_traces_exporter_finds_any_installed_exporter_in_the_sdks_registry(
    tmp_path: Path,
) -> None:
    # A distribution of our own, installed the way pip installs one (a module plus a dist-info
    # with an `opentelemetry_traces_exporter` entry point), chosen by name as under the SDK.
    (tmp_path / "names_exporter.py").write_text(
        textwrap.dedent(
            """
            import os
            from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

            class NamesExporter(SpanExporter):
                def export(self, spans):
                    with open(os.environ["NAMES_FILE"], "a") as f:
                        f.writelines(span.name + "\\n" for span in spans)
                    return SpanExportResult.SUCCESS
            """
        )
    )
    dist = tmp_path / "names_exporter-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: names-exporter\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[opentelemetry_traces_exporter]\nnames = names_exporter:NamesExporter\n"
    )
    names_file = tmp_path / "names.txt"
    script = AGENT_SOURCE + "\nagenttrace.configure()\nrun('say hello')\n"
    env = _subprocess_env(
        OTEL_TRACES_EXPORTER="names",
        NAMES_FILE=str(names_file),
        PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "invoke_agent nl2bash" in names_file.read_text().splitlines()

    env["OTEL_TRACES_EXPORTER"] = "nosuch"
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert "OTEL_TRACES_EXPORTER='nosuch': no span exporter of that name" in out.stderr
    assert "names" in out.stderr.splitlines()[-1]  # the installed ones are listed
