"""The public surface: one documented way to do each thing, old names that warn, a user's own
TracerProvider, and the scope name both layers take from `semconv`."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.agenttrace import semconv as exporter_semconv
from opentelemetry.exporter.agenttrace._assembler import TraceAssembler
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agenttrace
from agenttrace import _invocations, _settings

DOCUMENTED = {
    "ContextThreadPoolExecutor",
    "__version__",
    "agent",
    "agent_run",
    "configure",
    "current_agent_run",
    "current_invocation",
    "current_tool_call",
    "instrument_openai",
    "llm",
    "llm_call",
    "load",
    "propagate",
    "semconv",
    "set_run_metadata",
    "shutdown",
    "tool",
    "tool_call",
    "tools",
    "uninstrument_openai",
    "using_call_id",
}

# Old top-level name -> the object it must still resolve to, and a word the warning must name.
DEPRECATED = {
    "AgentRun": ("agenttrace.types", "AgentRun", "agenttrace.types.AgentRun"),
    "LLMCall": ("agenttrace.types", "LLMCall", "agenttrace.types.LLMCall"),
    "ToolCall": ("agenttrace.types", "ToolCall", "agenttrace.types.ToolCall"),
    "StepRecord": ("agenttrace.types", "StepRecord", "agenttrace.types.StepRecord"),
    "ToolCallRecord": ("agenttrace.types", "ToolCallRecord", "agenttrace.types.ToolCallRecord"),
    "run": ("agenttrace.tools", "run", "agenttrace.tools.run"),
    "Popen": ("agenttrace.tools", "Popen", "agenttrace.tools.Popen"),
    "build_resource": ("agenttrace._configure", "build_resource", "configure("),
    "Telemetry": ("agenttrace._telemetry", "Telemetry", "internal"),
    "maxrss_to_bytes": ("agenttrace._telemetry", "maxrss_to_bytes", "internal"),
}


def _scope(span: ReadableSpan) -> str | None:
    return span.instrumentation_scope.name if span.instrumentation_scope else None


@pytest.fixture
def own_provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A TracerProvider of the test's own (never the global one), and what it exported."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    agenttrace.configure()  # back to the global provider for the tests that follow
    _settings.replace(None)
    provider.shutdown()


def test_all_is_exactly_the_documented_set() -> None:
    assert set(agenttrace.__all__) == DOCUMENTED
    assert len(agenttrace.__all__) == len(DOCUMENTED)  # no name listed twice
    for name in agenttrace.__all__:
        assert hasattr(agenttrace, name), name
        if name not in ("semconv", "tools", "__version__"):
            assert name in (agenttrace.__doc__ or ""), f"{name} is not in the module docstring"


def test_public_names_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in agenttrace.__all__:
            getattr(agenttrace, name)
        exec("from agenttrace import *", {})


@pytest.mark.parametrize("name", sorted(DEPRECATED))
def test_deprecated_name_warns_names_its_replacement_and_still_works(name: str) -> None:
    module, attribute, replacement = DEPRECATED[name]
    assert name not in agenttrace.__all__
    with pytest.warns(DeprecationWarning, match=f"agenttrace.{name} is deprecated") as caught:
        value = getattr(agenttrace, name)
    assert replacement in str(caught[0].message)
    assert caught[0].filename == __file__  # blamed on the caller, not on agenttrace
    assert value is getattr(importlib.import_module(module), attribute)


def test_deprecated_run_still_runs_a_subprocess() -> None:
    with pytest.warns(DeprecationWarning, match="agenttrace.tools.run"):
        run = agenttrace.run
    done = run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True)
    assert done.stdout == "ok\n"


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        agenttrace.no_such_thing  # noqa: B018


def test_types_holds_the_classes_behind_the_functions() -> None:
    from agenttrace import types

    assert set(types.__all__) == {"AgentRun", "LLMCall", "StepRecord", "ToolCall", "ToolCallRecord"}
    run = agenttrace.agent_run("a")
    run.finish()
    assert isinstance(run, types.AgentRun)


def test_import_agenttrace_semconv_works_in_a_fresh_interpreter() -> None:
    code = (
        "import agenttrace.semconv, sys\n"
        "from opentelemetry.exporter.agenttrace import semconv as s\n"
        "assert agenttrace.semconv.RUN_SPAN_COUNT == s.RUN_SPAN_COUNT\n"
        "assert agenttrace.semconv.INSTRUMENTATION_SCOPE == s.INSTRUMENTATION_SCOPE\n"
        "assert sys.modules['agenttrace.semconv'] is agenttrace.semconv\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_semconv_re_exports_every_key() -> None:
    semconv = importlib.import_module("agenttrace.semconv")
    keys = {name for name in vars(exporter_semconv) if name.isupper()}
    assert keys and all(getattr(semconv, k) == getattr(exporter_semconv, k) for k in keys)
    assert agenttrace.semconv is semconv


def test_a_users_own_tracer_provider_receives_the_spans(
    own_provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = own_provider
    global_before = trace.get_tracer_provider()
    returned = agenttrace.configure(tracer_provider=provider)

    @agenttrace.tool
    def echo(word: str) -> str:
        return word

    with agenttrace.agent_run("mine"):
        echo("hi")

    assert returned is provider
    assert trace.get_tracer_provider() is global_before  # the global provider is left alone
    names = sorted(span.name for span in exporter.get_finished_spans())
    assert names == ["execute_tool echo", "invoke_agent mine"]
    assert {_scope(span) for span in exporter.get_finished_spans()} == {
        exporter_semconv.INSTRUMENTATION_SCOPE
    }


def test_configure_again_without_a_provider_goes_back_to_the_global_one(
    own_provider: tuple[TracerProvider, InMemorySpanExporter],
    configure_spans: Callable[..., Any],
) -> None:
    provider, exporter = own_provider
    configure_spans()  # our processors on the global provider first
    agenttrace.configure(tracer_provider=provider)
    spans = configure_spans()  # and back: they are not added a second time
    with agenttrace.agent_run("global"):
        pass
    assert exporter.get_finished_spans() == ()
    assert [span.name for span in spans.all()] == ["invoke_agent global"]  # once, not twice


def test_configure_rejects_a_provider_it_cannot_add_processors_to() -> None:
    with pytest.raises(TypeError, match="SDK TracerProvider"):
        agenttrace.configure(tracer_provider=trace.NoOpTracerProvider())  # type: ignore[arg-type]  # the wrong type under test


def test_the_scope_name_comes_from_semconv(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both layers read the scope name from semconv: renamed there, it is renamed everywhere."""
    monkeypatch.setattr(exporter_semconv, "INSTRUMENTATION_SCOPE", "renamed.scope")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(_invocations, "_provider", provider)
    monkeypatch.setattr(_invocations, "_cached", None)
    with agenttrace.agent_run("renamed"), agenttrace.tool_call("inner"):
        pass
    _invocations._cached = None  # not the renamed scope's tracer for the tests that follow
    provider.shutdown()
    tool, root = exporter.get_finished_spans()
    assert {_scope(tool), _scope(root)} == {"renamed.scope"}
    rows: list[dict[str, Any]] = []
    assembler = TraceAssembler(rows.append)
    assembler.on_end(root)  # the root first: whole only once its counted tool span is here
    assert rows == []
    assembler.on_end(tool)  # counted because its scope is semconv's
    assert len(rows) == 1
    assert not rows[0]["metadata"].get("incomplete")
