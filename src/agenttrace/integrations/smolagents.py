"""smolagents: every agent run, model call and tool call becomes an AgentTrace span.

    from agenttrace.integrations.smolagents import SmolagentsInstrumentor

    SmolagentsInstrumentor().instrument()  # before or after the agents are built
    agent.run("Count the .txt files under /testbed")  # one AgentTrace row

What is traced, and through which public smolagents method:

* `MultiStepAgent.run` is the agent run (`invoke_agent {agent.name or class}`), for every agent
  kind, sync or `stream=True`. A managed agent's run happens inside its manager's tool call, so
  it is nested: its steps and tools belong to the manager's row, not to a row of their own.
* Model calls are traced where they reach the server: the `openai` client of an
  `OpenAIServerModel` (`OpenAIModel`) is instrumented at the first run (`instrument_openai`), so
  reasoning content, tool calls and token usage are recorded streamed or not. smolagents itself
  drops reasoning content when streaming, which is why the client is the place to look. Models
  of other kinds (`LiteLLMModel`, `TransformersModel`, ...) are traced through their `generate`.
* `Tool.__call__` is the tool call (`execute_tool {tool.name}`), with `tool_input` in the
  release's `kwargs={...}` form and the model's tool call id. A managed agent called as a tool is
  an `execute_tool {name}` span with the nested run inside it.
* CodeAgent's code execution (`LocalPythonExecutor.__call__`) is a `python_interpreter` tool
  call; tools the code calls are nested under it. smolagents runs that code in a worker thread
  that does not carry the caller's context, so the executor's tools are bound to it for the
  call (without that, their spans would start traces of their own), and the call is measured
  process-wide (see `_code_settings`).

Per-tool telemetry is the configured method's: in-process work (smolagents' own Python
interpreter, a tool's Python code) through the calling thread's usage; subprocesses a tool
starts with `agenttrace.tools.run` / `Popen` through their own usage and exit code (plain
`subprocess` children are not seen: use those two in a tool's `forward`).

Row metadata (dataset, task id, ...) comes from an enclosing run:
`with agenttrace.agent_run("nl2bash", task_id=3): agent.run(task)`; the smolagents run is then
nested in it and the row is the enclosing run's.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from agenttrace import _settings, semconv
from agenttrace._decorators import _wrap_generator
from agenttrace._genai import StepRecord, ToolCallRecord
from agenttrace._invocations import AgentRun, LLMCall, ToolCall, _Invocation, using_call_id
from agenttrace.integrations.openai import instrument_openai, uninstrument_openai

__all__ = ["SmolagentsInstrumentor"]

#: The tool name the release gives code execution, and the one CodeAgent records it under.
PYTHON_INTERPRETER = "python_interpreter"

# The ids of the tool calls of the model message being executed, for the tool spans to take.
_pending_ids: contextvars.ContextVar[_CallIds | None] = contextvars.ContextVar(
    "agenttrace_smolagents_call_ids", default=None
)


class _CallIds:
    """The tool calls of one model message: (name, arguments object, id), each taken once."""

    def __init__(self, tool_calls: Any) -> None:
        self._lock = threading.Lock()  # parallel tool calls take ids from worker threads
        self._calls = [
            (
                getattr(call.function, "name", None),
                getattr(call.function, "arguments", None),
                getattr(call, "id", None),
            )
            for call in tool_calls or []
        ]

    def take(self, name: str, arguments: Any) -> str | None:
        """The id of the call `execute_tool_call(name, arguments)` is running.

        smolagents passes the very arguments object of the model's call on, so identity tells
        two calls of one tool apart; the name alone is the fallback (empty arguments).
        """
        with self._lock:
            named = [i for i, call in enumerate(self._calls) if call[0] == name]
            same = [i for i in named if self._calls[i][1] is arguments]
            if not (same or named):
                return None
            return self._calls.pop((same or named)[0])[2]


def _agent_name(agent: Any) -> str:
    return str(getattr(agent, "name", None) or type(agent).__name__)


def _final_output(result: Any) -> Any:
    output = getattr(result, "output", result)  # a RunResult (return_full_result=True), or not
    return None if output is None else str(output)


class SmolagentsInstrumentor:
    """Trace smolagents agents: `SmolagentsInstrumentor().instrument()`; `uninstrument()` undoes it.

    Process-wide and idempotent, like the OpenTelemetry instrumentors: the smolagents classes are
    wrapped once, however many instances call `instrument()`.
    """

    _lock = threading.Lock()
    _originals: dict[tuple[type, str], Any] = {}
    _models: weakref.WeakSet[Any] = weakref.WeakSet()  # models whose calls we traced

    @property
    def is_instrumented(self) -> bool:
        return bool(self._originals)

    def instrument(self) -> None:
        try:
            from smolagents import LocalPythonExecutor, MultiStepAgent, Tool, ToolCallingAgent
        except ImportError as exc:
            raise ImportError(
                "the smolagents integration needs smolagents: pip install 'agenttrace[smolagents]'"
            ) from exc
        targets: list[tuple[type, str, Callable[[Any], Any]]] = [
            (MultiStepAgent, "run", _traced_run),
            (Tool, "__call__", _traced_tool_call),
            (ToolCallingAgent, "process_tool_calls", _traced_process_tool_calls),
            (ToolCallingAgent, "execute_tool_call", _traced_execute_tool_call),
            (LocalPythonExecutor, "__call__", _traced_code_execution),
        ]
        with self._lock:
            for cls, name, wrap in targets:
                if (cls, name) not in self._originals:
                    original = cls.__dict__[name]
                    self._originals[(cls, name)] = original
                    setattr(cls, name, wrap(original))

    def uninstrument(self) -> None:
        with self._lock:
            for (cls, name), original in self._originals.items():
                setattr(cls, name, original)
            self._originals.clear()
            for model in list(self._models):
                _untrace_model(model)
            self._models.clear()


# --- agent runs -----------------------------------------------------------------------------
def _start_run(agent: Any, task: Any) -> AgentRun:
    SmolagentsInstrumentor._models.add(agent.model)
    _trace_model(agent.model)
    model_id = getattr(agent.model, "model_id", None)
    return AgentRun(
        _agent_name(agent),
        prompt=task,
        model=model_id if isinstance(model_id, str) else None,
        metadata={"agent_framework": "smolagents", "agent_class": type(agent).__name__},
    )


def _traced_run(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def run(self: Any, task: str, stream: bool = False, *args: Any, **kwargs: Any) -> Any:
        if stream:
            # The steps happen while the caller iterates; the span is attached only then, never
            # while the generator is suspended in the caller's hands.
            steps = _wrap_generator(
                lambda: original(self, task, True, *args, **kwargs),
                lambda _args, _kwargs: _start_run(self, task),
            )
            return steps()
        invocation = _start_run(self, task)
        invocation.attach()
        try:
            result = original(self, task, False, *args, **kwargs)
        except BaseException as exc:
            invocation.detach()
            invocation.fail(exc)
            raise
        invocation.detach()
        invocation.finish(_final_output(result))
        return result

    return run


# --- model calls ----------------------------------------------------------------------------
def _trace_model(model: Any) -> None:
    """Trace `model`'s calls once: through its `openai` client when it has one, else `generate`."""
    client = getattr(model, "client", None)
    if _is_openai_client(client):
        instrument_openai(client)
        return
    for method in ("generate", "generate_stream"):
        bound = getattr(model, method, None)
        if bound is None or getattr(bound, "_agenttrace_traced", False):
            continue
        traced = _traced_generate(model, bound) if method == "generate" else None
        if traced is None:
            traced = _traced_generate_stream(model, bound)
        traced._agenttrace_traced = True  # type: ignore[attr-defined]
        setattr(model, method, traced)


def _untrace_model(model: Any) -> None:
    client = getattr(model, "client", None)
    if _is_openai_client(client):
        uninstrument_openai(client)
    for method in ("generate", "generate_stream"):
        if getattr(vars(model).get(method), "_agenttrace_traced", False):
            delattr(model, method)


def _is_openai_client(client: Any) -> bool:
    try:
        import openai
    except ImportError:
        return False
    return isinstance(client, (openai.OpenAI, openai.AsyncOpenAI))


def _start_generation(model: Any, messages: Any) -> LLMCall:
    model_id = getattr(model, "model_id", None)
    return LLMCall(
        model_id if isinstance(model_id, str) else None,
        provider=type(model).__name__,
        messages=[_message_dict(m) for m in messages or []],
        request={},
    )


def _message_dict(message: Any) -> Any:
    as_dict = getattr(message, "dict", None)  # smolagents' ChatMessage
    return as_dict() if callable(as_dict) else message


def _step_of(message: Any) -> StepRecord:
    """A smolagents ChatMessage as a step: text, tool calls, tokens, and the raw reasoning."""
    usage = getattr(message, "token_usage", None)
    raw = getattr(message, "raw", None)
    reasoning = None
    with contextlib.suppress(AttributeError, IndexError, TypeError):  # a raw OpenAI response
        reasoning = raw.choices[0].message.reasoning_content  # type: ignore[union-attr]
    calls = [
        ToolCallRecord(
            name=str(getattr(call.function, "name", "")),
            arguments=getattr(call.function, "arguments", None),
            id=getattr(call, "id", None),
        )
        for call in getattr(message, "tool_calls", None) or []
    ]
    content = getattr(message, "content", None)
    if isinstance(content, list):  # content parts
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return StepRecord(
        text=content,
        reasoning=reasoning if isinstance(reasoning, str) else None,
        tool_calls=calls,
        input_tokens=getattr(usage, "input_tokens", None),
        output_tokens=getattr(usage, "output_tokens", None),
    )


def _traced_generate(model: Any, generate: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(generate)
    def traced(messages: Any, *args: Any, **kwargs: Any) -> Any:
        with _start_generation(model, messages) as step:
            message = generate(messages, *args, **kwargs)
            step.record_step(_step_of(message))
            return message

    return traced


def _traced_generate_stream(model: Any, generate_stream: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(generate_stream)
    def traced(messages: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        text: list[str] = []
        input_tokens = output_tokens = None
        with _start_generation(model, messages) as step:
            for delta in generate_stream(messages, *args, **kwargs):
                text.append(getattr(delta, "content", None) or "")
                usage = getattr(delta, "token_usage", None)
                if usage is not None:
                    input_tokens = getattr(usage, "input_tokens", None)
                    output_tokens = getattr(usage, "output_tokens", None)
                yield delta
            step.set_output(
                "".join(text) or None, input_tokens=input_tokens, output_tokens=output_tokens
            )

    return traced


# --- tool calls -----------------------------------------------------------------------------
def _traced_process_tool_calls(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def process_tool_calls(self: Any, chat_message: Any, memory_step: Any) -> Iterator[Any]:
        token = _pending_ids.set(_CallIds(getattr(chat_message, "tool_calls", None)))
        try:
            yield from original(self, chat_message, memory_step)
        finally:
            # Closed from another context: that context never saw the ids.
            with contextlib.suppress(ValueError):
                _pending_ids.reset(token)

    return process_tool_calls


def _traced_execute_tool_call(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute_tool_call(self: Any, tool_name: str, arguments: Any) -> Any:
        ids = _pending_ids.get()
        call_id = ids.take(tool_name, arguments) if ids is not None else None
        if tool_name in getattr(self, "managed_agents", {}):
            # A managed agent is a tool to its manager: its run is nested in this call.
            arguments_dict = arguments if isinstance(arguments, dict) else {"task": arguments}
            with ToolCall(tool_name, arguments_dict, call_id=call_id) as call:
                result = original(self, tool_name, arguments)
                call.set_result(result)
                return result
        if call_id is None:
            return original(self, tool_name, arguments)
        with using_call_id(call_id):
            return original(self, tool_name, arguments)

    return execute_tool_call


def _tool_input(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, str | None]:
    """The arguments to record, and the release's input form when it is not `kwargs={...}`."""
    if not args:
        return kwargs, None
    if len(args) == 1 and not kwargs and isinstance(args[0], dict):
        return args[0], None  # smolagents' "arguments as one dict" form
    return {"args": list(args), **kwargs}, f"args={args!r}, kwargs={kwargs!r}"


def _traced_tool_call(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __call__(
        self: Any, *args: Any, sanitize_inputs_outputs: bool = False, **kwargs: Any
    ) -> Any:
        arguments, input_repr = _tool_input(args, kwargs)
        call = ToolCall(
            str(getattr(self, "name", None) or type(self).__name__),
            arguments,
            input_repr=input_repr,
            description=getattr(self, "description", None),
        )
        call.attach()
        try:
            result = original(
                self, *args, sanitize_inputs_outputs=sanitize_inputs_outputs, **kwargs
            )
        except BaseException as exc:
            call.detach()
            call.fail(exc)
            raise
        call.detach()
        call.finish(result)
        return result

    return __call__


_process_wide: tuple[_settings.Settings, _settings.Settings] | None = None


def _code_settings(executor: Any) -> _settings.Settings:
    """The settings a code execution is measured with.

    With a timeout (the default), smolagents runs the code in a worker thread of its own while
    the calling thread waits, so the precise method's per-thread figures would miss all of it.
    The release's method (the process's CPU time and block I/O during the call, its peak RSS)
    counts it, and the span says which method measured it.
    """
    global _process_wide
    settings = _settings.current()
    if getattr(executor, "timeout_seconds", None) is None:
        return settings  # the code runs in this thread: per-thread figures are exact
    if settings.telemetry_method != semconv.TELEMETRY_METHOD_PRECISE:
        return settings
    cached = _process_wide
    if cached is None or cached[0] is not settings:
        compat = dataclasses.replace(settings, telemetry_method=semconv.TELEMETRY_METHOD_COMPAT)
        cached = _process_wide = (settings, compat)
    return cached[1]


def _traced_code_execution(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __call__(self: Any, code_action: str) -> Any:
        call = ToolCall(PYTHON_INTERPRETER, {"code": code_action}, settings=_code_settings(self))
        call.attach()
        tools = getattr(self, "static_tools", None)
        try:
            if tools:  # run the code's tool calls in this call's context (see the module doc)
                self.static_tools = {
                    name: _in_context(tool, call) if callable(tool) else tool
                    for name, tool in tools.items()
                }
            result = original(self, code_action)
        except BaseException as exc:
            call.detach()
            call.fail(exc)
            raise
        finally:
            if tools:
                self.static_tools = tools
        call.detach()
        output = getattr(result, "output", None)
        logs = str(getattr(result, "logs", "") or "")
        call.finish(logs + ("" if output is None else str(output)))
        return result

    return __call__


def _in_context(function: Callable[..., Any], call: _Invocation) -> Callable[..., Any]:
    """`function` run with `call` current, from whichever thread calls it."""
    context = call.context

    @functools.wraps(function)
    def bound(*args: Any, **kwargs: Any) -> Any:
        from opentelemetry import context as otel_context

        token = otel_context.attach(context)
        try:
            return function(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return bound
