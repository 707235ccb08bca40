"""What lands on spans: arguments, results, exit codes, metadata, content switch, bounds, redaction."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from opentelemetry.exporter.agenttrace._rows import tool_input_of

import agenttrace
from agenttrace import _content, semconv


def test_arguments_as_json_and_release_repr(spans) -> None:
    @agenttrace.tool(name="bash")
    def bash(command: str, timeout: int = 30) -> str:
        return f"ran {command}"

    bash(command="ls -la")
    bash("pwd", timeout=5)
    by_keyword, positional = sorted(spans.named("execute_tool bash"), key=lambda s: s.start_time)
    assert json.loads(by_keyword.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]) == {
        "command": "ls -la"
    }
    assert tool_input_of(by_keyword.attributes) == "kwargs={'command': 'ls -la'}"
    assert by_keyword.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "ran ls -la"
    assert by_keyword.attributes[semconv.TOOL_EXIT_CODE] == 0
    assert json.loads(positional.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]) == {
        "command": "pwd",
        "timeout": 5,
    }
    assert tool_input_of(positional.attributes) == "args=('pwd',), kwargs={'timeout': 5}"


def test_var_positional_arguments_are_named(spans) -> None:
    @agenttrace.tool
    def total(*numbers: int) -> int:
        return sum(numbers)

    assert total(1, 2, 3) == 6
    span = spans.one("execute_tool total")
    assert json.loads(span.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"numbers": [1, 2, 3]}
    assert span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "6"


def test_structured_result_is_json(spans) -> None:
    @agenttrace.tool
    def stat() -> dict:
        return {"size": 3, "names": ["a", "b"]}

    stat()
    assert json.loads(
        spans.one("execute_tool stat").attributes[semconv.GEN_AI_TOOL_CALL_RESULT]
    ) == {
        "size": 3,
        "names": ["a", "b"],
    }


def test_exit_code_from_called_process_error_and_explicit(spans) -> None:
    @agenttrace.tool
    def strict() -> None:
        raise subprocess.CalledProcessError(3, ["false"])

    with pytest.raises(subprocess.CalledProcessError):
        strict()
    with agenttrace.tool_call("bash", {"command": "x"}) as call:
        call.set_exit_code(127)
    assert spans.one("execute_tool strict").attributes[semconv.TOOL_EXIT_CODE] == 3
    assert spans.one("execute_tool bash").attributes[semconv.TOOL_EXIT_CODE] == 127


def test_run_metadata_static_and_dynamic(spans) -> None:
    @agenttrace.agent(
        name="nl2bash", metadata={"dataset_name": "nl2bash", "dataset_split": "train"}
    )
    def run(task: str, task_id: int) -> str:
        agenttrace.set_run_metadata(
            task_id=task_id, run_id="run-1", temperature=0.6, tags=["a", "b"]
        )
        return "answer"

    run("find big files", 12)
    root = spans.one("invoke_agent nl2bash")
    attrs = root.attributes
    assert attrs["agenttrace.metadata.dataset_name"] == "nl2bash"
    assert attrs["agenttrace.metadata.dataset_split"] == "train"
    assert attrs["agenttrace.metadata.task_id"] == 12
    assert attrs["agenttrace.metadata.run_id"] == "run-1"
    assert attrs["agenttrace.metadata.temperature"] == 0.6
    assert json.loads(attrs["agenttrace.metadata_json.tags"]) == ["a", "b"]
    assert attrs[semconv.PROMPT] == "find big files"
    output = json.loads(attrs[semconv.GEN_AI_OUTPUT_MESSAGES])
    assert output[0]["parts"][0]["content"] == "answer"


def test_llm_decorator_records_openai_style_completion(spans) -> None:
    completion = {
        "id": "chatcmpl-1",
        "model": "qwen3-8b-q4",
        "choices": [
            {
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "I should list files.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "bash", "arguments": '{"command": "ls"}'},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 20,
            "completion_tokens_details": {"reasoning_tokens": 12},
        },
    }

    @agenttrace.llm
    def create(model: str, messages: list) -> dict:
        return completion

    create(
        model="qwen3-8b",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "list"}],
    )
    span = spans.one("chat qwen3-8b")
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "qwen3-8b-q4"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 50
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 20
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 12
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    output = json.loads(attrs[semconv.GEN_AI_OUTPUT_MESSAGES])
    assert output[0]["parts"] == [
        {"type": "reasoning", "content": "I should list files."},
        {"type": "tool_call", "name": "bash", "id": "call_1", "arguments": {"command": "ls"}},
    ]
    inputs = json.loads(attrs[semconv.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["system", "user"]


def test_content_off_by_argument(configure_spans) -> None:
    spans = configure_spans(capture_content=False)

    @agenttrace.tool
    def secret_tool(command: str) -> str:
        return "output"

    @agenttrace.agent
    def run(prompt: str) -> str:
        return secret_tool(command="cat /etc/passwd")

    run("the prompt")
    tool = spans.one("execute_tool secret_tool")
    root = spans.one("invoke_agent run")
    for key in (
        semconv.GEN_AI_TOOL_CALL_ARGUMENTS,
        semconv.TOOL_INPUT_REPR,
        semconv.TOOL_POSITIONAL_ARGS,
        semconv.GEN_AI_TOOL_CALL_RESULT,
    ):
        assert key not in tool.attributes
    assert semconv.PROMPT not in root.attributes
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in root.attributes
    assert root.attributes[semconv.CONTENT_CAPTURED] is False
    # structure and telemetry stay
    assert tool.attributes[semconv.TOOL_EXIT_CODE] == 0
    assert semconv.TELEMETRY_USER_TIME_S in tool.attributes


def test_content_off_by_environment_variable(tmp_path) -> None:
    script = (
        "import agenttrace\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "m = InMemorySpanExporter()\n"
        "agenttrace.configure(span_processors=[SimpleSpanProcessor(m)])\n"
        "@agenttrace.tool\n"
        "def t(x): return x\n"
        "t('hidden')\n"
        "print(sorted(m.get_finished_spans()[0].attributes))\n"
    )
    env = dict(os.environ, AGENTTRACE_CAPTURE_CONTENT="false")
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert "gen_ai.tool.call.arguments" not in out.stdout
    assert "gen_ai.tool.call.result" not in out.stdout
    assert "gen_ai.tool.name" in out.stdout


def test_long_values_are_bounded_with_marker(configure_spans) -> None:
    spans = configure_spans(max_value_length=1000)

    @agenttrace.tool
    def huge(code: str) -> str:
        return "y" * 50_000

    huge(code="x" * 20_000)
    attrs = spans.one("execute_tool huge").attributes
    result = attrs[semconv.GEN_AI_TOOL_CALL_RESULT]
    assert len(result) < 1100 and result.startswith("y" * 1000)
    assert "original length 50000" in result
    arguments = json.loads(attrs[semconv.GEN_AI_TOOL_CALL_ARGUMENTS])  # still valid JSON
    assert set(arguments) == {"code"}
    assert "original length 20000" in arguments["code"]
    assert len(attrs[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]) < 1200
    assert "original length" in attrs[semconv.TOOL_INPUT_REPR]


def test_truncate_json_keeps_validity_for_wide_structures() -> None:
    wide = _content.to_json([{"k": i} for i in range(5000)])
    bounded = _content.truncate_json(wide, 500)
    parsed = json.loads(bounded)
    assert parsed["agenttrace.truncated"] is True
    assert parsed["original_length"] == len(wide)


class _Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_unserialisable_values_never_raise(spans) -> None:
    cyclic: list = [1]
    cyclic.append(cyclic)
    nested: dict = {"self": None}
    nested["self"] = nested

    @agenttrace.tool
    def weird(a, b, c, d, e):
        return {"nan": math.nan, "inf": -math.inf, "bytes": b"\xff\x00", "obj": object()}

    result = weird(cyclic, nested, _Unprintable(), b"raw bytes", {1, 2})
    assert result["bytes"] == b"\xff\x00"
    attrs = spans.one("execute_tool weird").attributes
    arguments = json.loads(attrs[semconv.GEN_AI_TOOL_CALL_ARGUMENTS])
    assert arguments["a"] == [1, "<cycle>"]
    assert arguments["b"] == {"self": "<cycle>"}
    assert arguments["c"].startswith("<unrepresentable _Unprintable")
    assert arguments["d"] == "raw bytes"
    assert arguments["e"] == [1, 2]
    output = json.loads(attrs[semconv.GEN_AI_TOOL_CALL_RESULT])
    assert output["nan"] == "NaN" and output["inf"] == "-Infinity"
    assert output["bytes"].startswith("<2 bytes")
    assert "unrepresentable" in attrs[semconv.TOOL_INPUT_REPR]


def test_redaction_of_secrets_home_and_roots(configure_spans, tmp_path) -> None:
    fixture_root = tmp_path / "fixture"
    seen_keys = []

    def hook(key: str, text: str) -> str:
        seen_keys.append(key)
        return text.replace("internal-host", "<host>")

    spans = configure_spans(redact_paths={str(fixture_root): "/testdata"}, redaction_hook=hook)
    home = os.path.expanduser("~")

    @agenttrace.tool
    def bash(command: str) -> str:
        return (
            f"key sk-proj-{'a' * 30} and Authorization: Bearer abc.def-123456 "
            f"home {home}/notes.txt fixture {fixture_root}/testbed/a.txt internal-host "
            f"not-home {home}extra"
        )

    bash(command=f"cat {fixture_root}/testbed/a.txt  # token ghp_{'b' * 36}")
    attrs = spans.one("execute_tool bash").attributes
    result = attrs[semconv.GEN_AI_TOOL_CALL_RESULT]
    assert "a" * 30 not in result and "sk-proj-[REDACTED]" in result
    assert "abc.def-123456" not in result and "Bearer [REDACTED]" in result
    assert "~/notes.txt" in result and f"{home}/notes.txt" not in result
    assert "/testdata/testbed/a.txt" in result and str(fixture_root) not in result
    assert "<host>" in result
    assert f"{home}extra" in result  # only whole path components are mapped
    arguments = json.loads(attrs[semconv.GEN_AI_TOOL_CALL_ARGUMENTS])
    assert arguments["command"] == "cat /testdata/testbed/a.txt  # token ghp_[REDACTED]"
    assert "/testdata/testbed/a.txt" in attrs[semconv.TOOL_INPUT_REPR]
    assert semconv.GEN_AI_TOOL_CALL_RESULT in seen_keys


def test_broken_redaction_hook_drops_the_value_not_the_call(configure_spans) -> None:
    def hook(key: str, text: str) -> str:
        raise RuntimeError("hook bug")

    spans = configure_spans(redaction_hook=hook)

    @agenttrace.tool
    def t(x: str) -> str:
        return "secret output"

    assert t("in") == "secret output"
    assert spans.one("execute_tool t").attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "[REDACTED]"


class _AttrBag:
    """An object whose attribute lookups go through a dict and raise KeyError."""

    def __init__(self) -> None:
        self.data: dict = {}

    def __getattr__(self, name: str):
        return self.data[name]


class _BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


def test_hostile_values_never_break_the_call(configure_spans) -> None:
    spans = configure_spans(max_value_length=64)

    @agenttrace.tool
    def takes(value):
        return value

    deep: list = ["x" * 500]
    for _ in range(600):
        deep = [deep]
    assert takes(_AttrBag()) is not None  # __getattr__ raising KeyError
    assert takes(deep) is deep  # nesting deeper than the JSON walkers go
    assert takes("caf\udce9.txt") == "caf\udce9.txt"  # a lone surrogate from surrogateescape
    quotes = ['\\"'] * 20000  # escapes that grow when re-encoded
    assert takes(quotes) is quotes
    for span in spans.named("execute_tool takes"):
        for key in (semconv.GEN_AI_TOOL_CALL_ARGUMENTS, semconv.GEN_AI_TOOL_CALL_RESULT):
            text = span.attributes[key]
            text.encode("utf-8")  # what OTLP needs
            assert len(text) <= 64 + 128
            if key == semconv.GEN_AI_TOOL_CALL_ARGUMENTS:
                json.loads(text)


def test_an_exception_whose_str_raises_still_fails_the_span(spans) -> None:
    @agenttrace.tool
    def bad() -> None:
        raise _BadStr()

    @agenttrace.tool
    def after() -> None:
        pass

    with pytest.raises(_BadStr):
        bad()
    after()
    failed = spans.one("execute_tool bad")
    assert failed.status.status_code.name == "ERROR"
    assert failed.attributes[semconv.ERROR_TYPE] == "_BadStr"
    assert failed.attributes[semconv.TOOL_EXIT_CODE] == 1
    # the probe was stopped: the next call's peak is its own, not an "overlap"
    assert spans.one("execute_tool after").attributes[semconv.TELEMETRY_PEAK_SCOPE] != "overlap"
