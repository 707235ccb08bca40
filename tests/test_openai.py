"""The OpenAI client integration, with the real `openai` client over HTTP to the scripted server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import agenttrace
from agenttrace import semconv
from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder
from agenttrace.integrations.openai import _StepAccumulator

PROMPT = "List the files in /testbed"
SCRIPT: dict[str, list[dict[str, Any]]] = {
    PROMPT: [
        {
            "reasoning": "The user wants a listing; ls will do. " * 3,
            "content": "Let me look.",
            "tool_calls": [
                {"name": "bash", "arguments": {"command": "ls -la /testbed"}},
                {"name": "python_interpreter", "arguments": {"code": "print(1 + 1)"}},
            ],
            "prompt_tokens": 120,
            "completion_tokens": 45,
            "reasoning_tokens": 20,
        },
        {"content": "Done: 3 files.", "tool_calls": []},
    ]
}
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": PROMPT}]


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(ScriptResponder(SCRIPT), model="qwen3-1.7b") as running:
        yield running


def _client(server: ScriptedModelServer, cls=openai.OpenAI):
    return cls(base_url=server.base_url, api_key="none", max_retries=0)


def _step_attributes(span) -> dict:
    keys = (
        semconv.GEN_AI_OUTPUT_MESSAGES,
        semconv.GEN_AI_USAGE_INPUT_TOKENS,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        semconv.GEN_AI_RESPONSE_MODEL,
        semconv.GEN_AI_RESPONSE_FINISH_REASONS,
        semconv.GEN_AI_RESPONSE_ID,
    )
    return {key: span.attributes.get(key) for key in keys}


def test_non_streaming_call_is_recorded_and_returned_unchanged(spans, server) -> None:
    plain = _client(server).chat.completions.create(model="qwen3-1.7b", messages=MESSAGES)
    client = agenttrace.instrument_openai(_client(server))
    response = client.chat.completions.create(
        model="qwen3-1.7b", messages=MESSAGES, temperature=0.6
    )
    assert isinstance(response, type(plain))
    assert response.model_dump() == plain.model_dump() | {"created": response.created}
    span = spans.one("chat qwen3-1.7b")
    assert span.kind is SpanKind.CLIENT
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs["gen_ai.request.temperature"] == 0.6
    assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1" and attrs[semconv.SERVER_PORT] > 0
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 45
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 20
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    (message,) = json.loads(attrs[semconv.GEN_AI_OUTPUT_MESSAGES])
    kinds = [p["type"] for p in message["parts"]]
    assert kinds == ["reasoning", "text", "tool_call", "tool_call"]
    calls = [p for p in message["parts"] if p["type"] == "tool_call"]
    assert calls[0]["name"] == "bash" and calls[0]["arguments"] == {"command": "ls -la /testbed"}
    assert calls[0]["id"] == response.choices[0].message.tool_calls[0].id
    inputs = json.loads(attrs[semconv.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["system", "user"]


def test_streaming_yields_the_same_chunks_and_the_same_step(spans, server) -> None:
    kwargs = {
        "model": "qwen3-1.7b",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    plain_chunks = [c.model_dump() for c in _client(server).chat.completions.create(**kwargs)]
    client = agenttrace.instrument_openai(_client(server))
    chunks = [c.model_dump() for c in client.chat.completions.create(**kwargs)]
    strip = lambda cs: [c | {"created": 0} for c in cs]  # noqa: E731
    assert strip(chunks) == strip(plain_chunks) and len(chunks) > 10
    streamed = spans.one("chat qwen3-1.7b")
    client.chat.completions.create(model="qwen3-1.7b", messages=MESSAGES)
    non_streamed = [s for s in spans.named("chat qwen3-1.7b") if s is not streamed][0]
    assert _step_attributes(streamed) == _step_attributes(non_streamed)
    assert semconv.GENERATOR_CLOSED_EARLY not in streamed.attributes


def test_stream_closed_early_and_context_manager(spans, server) -> None:
    client = agenttrace.instrument_openai(_client(server))
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    for _ in stream:
        break
    stream.close()
    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as managed:
        assert managed.response.status_code == 200
        next(iter(managed))
    early, managed_span = spans.named("chat m")
    assert early.attributes[semconv.GENERATOR_CLOSED_EARLY] is True
    assert managed_span.attributes[semconv.GENERATOR_CLOSED_EARLY] is True


def test_async_client_streaming_and_not(spans, server) -> None:
    async def main() -> None:
        client = agenttrace.instrument_openai(_client(server, openai.AsyncOpenAI))
        await client.chat.completions.create(model="a", messages=MESSAGES)
        stream = await client.chat.completions.create(
            model="a", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        async for _ in stream:
            pass
        await client.close()

    asyncio.run(main())
    first, second = spans.named("chat a")
    assert _step_attributes(first) | {semconv.GEN_AI_RESPONSE_ID: None} == _step_attributes(
        second
    ) | {semconv.GEN_AI_RESPONSE_ID: None}
    assert first.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 120


def test_api_errors_are_recorded_and_reraised(spans, server) -> None:
    client = agenttrace.instrument_openai(_client(server))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="error-500", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="error-400", messages=MESSAGES, stream=True)
    for span in spans.all():
        assert span.status.status_code is StatusCode.ERROR
    assert {s.attributes[semconv.ERROR_TYPE] for s in spans.all()} == {
        "InternalServerError",
        "BadRequestError",
    }


def test_process_wide_switch_and_uninstrument(spans, server) -> None:
    agenttrace.instrument_openai()
    try:
        _client(server).chat.completions.create(model="global", messages=MESSAGES)
        agenttrace.instrument_openai()  # twice is harmless
        client = agenttrace.instrument_openai(_client(server))  # and per client on top
        client.chat.completions.create(model="global", messages=MESSAGES)
    finally:
        agenttrace.uninstrument_openai()
    _client(server).chat.completions.create(model="global", messages=MESSAGES)
    assert len(spans.named("chat global")) == 2


def test_step_numbers_inside_an_agent_run(spans, server) -> None:
    client = agenttrace.instrument_openai(_client(server))

    @agenttrace.agent
    def run() -> None:
        messages = list(MESSAGES)
        first = client.chat.completions.create(model="s", messages=messages)
        messages.append(first.choices[0].message.model_dump(exclude_none=True))
        client.chat.completions.create(model="s", messages=messages)

    run()
    numbers = [s.attributes[semconv.STEP_NUMBER] for s in spans.named("chat s")]
    assert sorted(numbers) == [1, 2]


def test_accumulator_reads_the_reasoning_variant_and_split_tool_calls() -> None:
    accumulator = _StepAccumulator()
    chunks = [
        {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"reasoning": "think "}}]},
        {"choices": [{"index": 0, "delta": {"reasoning": "more"}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_a",
                                "function": {"name": "bash", "arguments": '{"comm'},
                            }
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [{"index": 0, "function": {"arguments": 'and": "ls"}'}}]
                    },
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
    ]
    for chunk in chunks:
        accumulator.feed(chunk)
    step = accumulator.record()
    assert step.reasoning == "think more" and step.text is None
    assert [(c.id, c.name, c.arguments) for c in step.tool_calls] == [
        ("call_a", "bash", {"command": "ls"})
    ]
    assert (step.input_tokens, step.output_tokens, step.finish_reason) == (3, 4, "tool_calls")


def test_message_iterators_reach_the_server_intact(spans, server) -> None:
    client = agenttrace.instrument_openai(_client(server))
    response = client.chat.completions.create(model="it", messages=iter(MESSAGES))
    assert response.choices[0].message.tool_calls  # the server saw the prompt: scripted reply
    inputs = json.loads(spans.one("chat it").attributes[semconv.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["system", "user"]


def test_a_stream_broken_midway_keeps_what_arrived(spans, server) -> None:
    client = agenttrace.instrument_openai(_client(server))
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(
            model="error-midstream", messages=MESSAGES, stream=True
        ):
            received.append(chunk)
    assert received  # part of the reply arrived before the break
    span = spans.one("chat error-midstream")
    assert span.status.status_code is StatusCode.ERROR
    (message,) = json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])
    assert {"type": "text", "content": "Let me look."} in message["parts"]
