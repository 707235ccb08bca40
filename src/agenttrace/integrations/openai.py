"""The `openai` client integration: every chat completion becomes a `chat {model}` model step.

`instrument_openai(client)` wraps one client (sync or async); `instrument_openai()` with no client
wraps the `openai` package's chat-completions resources for every client in the process, and
`uninstrument_openai()` undoes either. The wrapper never changes what the caller sees: a
non-streaming call returns the very object the client returned; a streaming call returns a thin
proxy yielding the very chunks, which assembles the step as they pass (content, `reasoning_content`
or `reasoning`, tool-call deltas, usage with `stream_options={"include_usage": True}`) and ends the
span when the stream is exhausted, closed, or garbage-collected. API errors are recorded on the
span and re-raised unchanged. Works against any OpenAI-compatible server (llama-server, vLLM,
Ollama, OpenAI).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any

from opentelemetry.exporter.agenttrace import semconv

from agenttrace._genai import StepRecord, ToolCallRecord, field_of, parse_arguments
from agenttrace._invocations import LLMCall

_PATCHED = "__agenttrace_original__"
# Request parameters recorded as gen_ai.request.<name>.
_REQUEST_PARAMETERS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}


class _StepAccumulator:
    """Builds the step of a streamed completion from its chunks."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.step = StepRecord()

    def feed(self, chunk: Any) -> None:
        step = self.step
        step.response_id = step.response_id or field_of(chunk, "id")
        step.response_model = step.response_model or field_of(chunk, "model")
        usage = field_of(chunk, "usage")
        if usage is not None:
            step.input_tokens = field_of(usage, "prompt_tokens")
            step.output_tokens = field_of(usage, "completion_tokens")
            details = field_of(usage, "completion_tokens_details")
            step.reasoning_tokens = field_of(details, "reasoning_tokens")
        for choice in field_of(chunk, "choices") or ():
            if field_of(choice, "index", 0) != 0:
                continue
            delta = field_of(choice, "delta")
            # Servers open a stream with `"content": ""`; only real text makes the output non-null,
            # so a streamed step records what the same reply unstreamed would.
            content = field_of(delta, "content")
            if isinstance(content, str) and content:
                self.text.append(content)
            reasoning = field_of(delta, "reasoning_content") or field_of(delta, "reasoning")
            if isinstance(reasoning, str) and reasoning:
                self.reasoning.append(reasoning)
            for call in field_of(delta, "tool_calls") or ():
                slot = self.calls.setdefault(
                    field_of(call, "index", len(self.calls)), {"id": None, "name": "", "args": []}
                )
                slot["id"] = slot["id"] or field_of(call, "id")
                function = field_of(call, "function")
                slot["name"] += field_of(function, "name") or ""
                slot["args"].append(field_of(function, "arguments") or "")
            finish = field_of(choice, "finish_reason")
            if finish:
                step.finish_reason = finish

    def record(self) -> StepRecord:
        step = self.step
        step.text = "".join(self.text) if self.text else None
        step.reasoning = "".join(self.reasoning) if self.reasoning else None
        step.tool_calls = [
            ToolCallRecord(
                name=slot["name"], arguments=parse_arguments("".join(slot["args"])), id=slot["id"]
            )
            for _, slot in sorted(self.calls.items())
        ]
        return step


class _StreamProxy:
    """What both stream proxies share: the step being assembled and ending the span once."""

    def __init__(self, stream: Any, call: LLMCall) -> None:
        self._stream = stream
        self._call = call
        self._accumulator = _StepAccumulator()

    def _feed(self, chunk: Any) -> None:
        with contextlib.suppress(Exception):  # an odd chunk must not break the caller's loop
            self._accumulator.feed(chunk)

    def _fail(self, exc: BaseException) -> None:
        """A stream broken midway: keep what arrived before the error, then fail the span."""
        if not self._call.ended:
            with contextlib.suppress(Exception):
                self._call.record_step(self._accumulator.record())
        self._call.fail(exc)

    def _end(self, closed_early: bool = False) -> None:
        if self._call.ended:
            return
        with contextlib.suppress(Exception):
            self._call.record_step(self._accumulator.record())
        if closed_early:
            self._call.close_early()
        else:
            self._call.finish()

    def __del__(self) -> None:  # dropped unfinished: the span still ends
        call = getattr(self, "_call", None)
        if call is not None and not call.ended:
            self._end(closed_early=True)

    def __getattr__(self, name: str) -> Any:  # response, etc.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._stream, name)


class TracedStream(_StreamProxy):
    """A streaming response that records its step as it is read; otherwise the stream itself."""

    def __iter__(self) -> Iterator[Any]:
        try:
            for chunk in self._stream:
                self._feed(chunk)
                yield chunk
        except GeneratorExit:
            self._end(closed_early=True)
            raise
        except BaseException as exc:
            self._fail(exc)
            raise
        self._end()

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._end()
            raise
        except BaseException as exc:
            self._fail(exc)
            raise
        self._feed(chunk)
        return chunk

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._end(closed_early=True)

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class TracedAsyncStream(_StreamProxy):
    """The async twin of TracedStream."""

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for chunk in self._stream:
                self._feed(chunk)
                yield chunk
        except GeneratorExit:
            self._end(closed_early=True)
            raise
        except BaseException as exc:
            self._fail(exc)
            raise
        self._end()

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._end()
            raise
        except BaseException as exc:
            self._fail(exc)
            raise
        self._feed(chunk)
        return chunk

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._end(closed_early=True)

    async def __aenter__(self) -> TracedAsyncStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


def _start_call(resource: Any, kwargs: dict[str, Any], provider: str) -> LLMCall:
    messages = kwargs.get("messages")
    if messages is not None and not isinstance(messages, (list, tuple)):
        kwargs["messages"] = list(messages)  # an iterator read once here is passed on as a list
    request = {
        name: kwargs[key]
        for key, name in _REQUEST_PARAMETERS.items()
        if isinstance(kwargs.get(key), (int, float)) and not isinstance(kwargs.get(key), bool)
    }
    model = kwargs.get("model")
    call = LLMCall(
        model if isinstance(model, str) else None,
        provider=provider,
        messages=kwargs.get("messages"),
        request=request,
    )
    client = getattr(resource, "_client", None)
    base_url = getattr(client, "base_url", None)
    host = getattr(base_url, "host", None)
    if host:
        attributes: dict[str, Any] = {semconv.SERVER_ADDRESS: host}
        port = getattr(base_url, "port", None)
        if port:
            attributes[semconv.SERVER_PORT] = port
        call.span.set_attributes(attributes)
    return call


def _wrap_sync(create: Any, provider: str) -> Any:
    @functools.wraps(create)
    def traced_create(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = _start_call(self, kwargs, provider)
        call.attach()
        try:
            result = create(self, *args, **kwargs)
        except BaseException as exc:
            call.detach()
            call.fail(exc)
            raise
        call.detach()
        if kwargs.get("stream"):
            return TracedStream(result, call)
        call.finish(result)
        return result

    setattr(traced_create, _PATCHED, create)
    return traced_create


def _wrap_async(create: Any, provider: str) -> Any:
    @functools.wraps(create)
    async def traced_create(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = _start_call(self, kwargs, provider)
        call.attach()
        try:
            result = await create(self, *args, **kwargs)
        except BaseException as exc:
            call.detach()
            call.fail(exc)
            raise
        call.detach()
        if kwargs.get("stream"):
            return TracedAsyncStream(result, call)
        call.finish(result)
        return result

    setattr(traced_create, _PATCHED, create)
    return traced_create


def _resource_classes() -> tuple[Any, Any]:
    """openai's `Completions` and `AsyncCompletions`, imported on first use (openai is an extra).

    Typed `Any`: their `create` is replaced at run time, which a checker rightly rejects on the
    declared classes.
    """
    from openai.resources.chat.completions import AsyncCompletions, Completions

    return Completions, AsyncCompletions


def instrument_openai(client: Any = None, *, provider: str = "openai") -> Any:
    """Trace chat completions of `client` (an `openai.OpenAI` or `AsyncOpenAI`), or of every client.

    With a client, patches that client and returns it (so `client = instrument_openai(OpenAI())`
    reads naturally); with none, patches the `openai` classes for every client in the process and
    returns None. Calling it twice is harmless. `provider` is recorded as `gen_ai.provider.name`
    (the conventions' value for the OpenAI API is "openai").
    """
    sync_class, async_class = _resource_classes()
    if client is None:
        for cls, wrap in ((sync_class, _wrap_sync), (async_class, _wrap_async)):
            if not hasattr(cls.create, _PATCHED):
                cls.create = wrap(cls.create, provider)
        return None
    completions = client.chat.completions
    if hasattr(type(completions).create, _PATCHED) or "create" in vars(completions):
        return client  # already traced, process-wide or for this client
    original = type(completions).create
    wrap = _wrap_async if isinstance(completions, async_class) else _wrap_sync
    traced = wrap(original, provider)
    completions.create = functools.partial(traced, completions)
    return client


def uninstrument_openai(client: Any = None) -> None:
    """Undo `instrument_openai` for `client`, or the process-wide switch."""
    sync_class, async_class = _resource_classes()
    if client is None:
        for cls in (sync_class, async_class):
            original = getattr(cls.create, _PATCHED, None)
            if original is not None:
                cls.create = original
        return
    vars(client.chat.completions).pop("create", None)
