"""Invocation objects: one per agent run, model step and tool call, each owning one span.

An invocation starts its span when it is created, becomes the current span while attached, and
ends the span exactly once (`finish` or `fail`, whichever comes first; later calls do nothing).
Decorators and the context-manager forms (`agent_run`, `llm_call`, `tool_call`) are thin drivers
of these objects, so every entry point records the same attributes. Nothing here raises into the
user's code: a failure to render a value drops that value, never the span or the call.

Every string a span carries is made here, redacted and bounded by the settings' renderer before
the span sees it: names (span names too), prompt, metadata, arguments, results, model and response
fields, the status description and the `exception` event. No exporter, processor or sampler ever
sees a raw value.
"""

from __future__ import annotations

import itertools
import logging
import math
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.agenttrace import semconv
from opentelemetry.trace import SpanKind, Status, StatusCode

from agenttrace import _settings
from agenttrace._content import Renderer, bounded_repr
from agenttrace._genai import (
    StepRecord,
    input_messages,
    looks_like_completion,
    step_from_completion,
)
from agenttrace._telemetry import ChildUsage
from agenttrace.version import __version__

_logger = logging.getLogger(__name__)

# The provider `configure(tracer_provider=...)` named; None means the global one. The tracer is
# looked up per span rather than bound at import, so a provider given later (or a global one set
# after import) receives the spans; one (provider, tracer) pair is cached so that costs nothing.
_provider: trace.TracerProvider | None = None
_cached: tuple[trace.TracerProvider, trace.Tracer] | None = None


def use_tracer_provider(provider: trace.TracerProvider | None) -> None:
    """Start every later agenttrace span on `provider` (None: the global provider)."""
    global _provider
    _provider = provider


def _tracer() -> trace.Tracer:
    """The `agenttrace`-scoped tracer of the provider in use (see `use_tracer_provider`)."""
    global _cached
    provider = _provider if _provider is not None else trace.get_tracer_provider()
    cached = _cached
    if cached is not None and cached[0] is provider:
        return cached[1]
    tracer = provider.get_tracer(semconv.INSTRUMENTATION_SCOPE, __version__)
    _cached = (provider, tracer)
    return tracer


_INVOCATION_KEY = otel_context.create_key("agenttrace-invocation")
_RUN_KEY = otel_context.create_key("agenttrace-agent-run")
_CALL_ID_KEY = otel_context.create_key("agenttrace-pending-call-id")

_UNSET: Any = object()
# Request parameters the GenAI conventions name (gen_ai.request.<name>).
_REQUEST_PARAMETERS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "stop_sequences",
        "choice.count",
        "encoding_formats",
    }
)


_INT64 = range(-(2**63), 2**63)  # what OTLP carries as an integer
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _metadata_value(renderer: Renderer, attr: str, value: Any) -> Any:
    """One metadata primitive made safe for every sink: text redacted and bounded, a NaN or an
    infinity as the text JSON gives it elsewhere, an integer OTLP cannot carry as text."""
    if isinstance(value, str):
        return renderer.text(attr, value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if value in _INT64 else renderer.text(attr, value)
    if math.isnan(value):
        return "NaN"
    return _NON_FINITE.get(value, value)


def _metadata_attributes(
    settings: _settings.Settings, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """Row metadata as root-span attributes: primitives as they are, structures as JSON.

    Keys and values alike are redacted and bounded (a 10 MB value would otherwise be a 10 MB row);
    keys are names, which the user's hook does not see (one that fails would merge them all).
    """
    renderer = settings.renderer
    attributes: dict[str, Any] = {}
    for key, value in metadata.items():
        if value is None:
            continue
        name = settings.label(semconv.METADATA_PREFIX, key)
        if isinstance(value, (str, bool, int, float)):
            attr = semconv.METADATA_PREFIX + name
            attributes[attr] = _metadata_value(renderer, attr, value)
        else:
            attr = semconv.METADATA_JSON_PREFIX + name
            attributes[attr] = renderer.json(attr, value)
    return attributes


def _exception_type(exc: BaseException) -> str:
    """The exception's type as the SDK's `record_exception` names it (module-qualified)."""
    kind = type(exc)
    module = getattr(kind, "__module__", None)
    return f"{module}.{kind.__qualname__}" if module and module != "builtins" else kind.__qualname__


def _exception_message(exc: BaseException) -> str | None:
    try:
        return str(exc)
    except Exception:  # an exception whose __str__ raises
        return None


def _stacktrace(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:  # a hostile __str__ or __cause__ chain; the type is still worth keeping
        return type(exc).__qualname__


class _Invocation:
    """Common life cycle: start the span, attach/detach it, end it exactly once."""

    __slots__ = ("span", "settings", "_context", "_token", "_ended")

    settings: _settings.Settings  # set by each subclass's __init__, from `_settings.current()`

    _span_kind = SpanKind.INTERNAL

    def __init__(self, name: str, attributes: dict[str, Any], parent: Any) -> None:
        self.span = _tracer().start_span(
            name, context=parent, kind=self._span_kind, attributes=attributes
        )
        self._context = otel_context.set_value(
            _INVOCATION_KEY, self, trace.set_span_in_context(self.span, parent)
        )
        self._token: Any = None
        self._ended = False

    # -- context ----------------------------------------------------------------------------
    @property
    def context(self) -> otel_context.Context:
        """The OpenTelemetry context with this invocation current (to run code under it)."""
        return self._context

    def attach(self) -> None:
        """Make this invocation's span current (until `detach`)."""
        self._token = otel_context.attach(self._context)

    def detach(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)

    def __enter__(self) -> Any:
        self.attach()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.detach()
        if exc is None:
            self.finish()
        else:
            self.fail(exc)

    # -- ending -----------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self._ended

    def finish(self, result: Any = _UNSET) -> None:
        """End the span successfully, recording `result` when given."""
        if self._ended:
            return
        self._ended = True
        try:
            self._on_finish(result)
        except Exception:  # never into the user's code
            _logger.debug("agenttrace: recording the result failed", exc_info=True)
        self.span.end()

    def fail(self, exc: BaseException) -> None:
        """End the span with status ERROR and the exception recorded (the caller re-raises).

        The status description and the `exception` event are built here, redacted and bounded,
        rather than by `Span.record_exception`: a key quoted in an exception message must not
        reach an exporter.
        """
        if self._ended:
            return
        self._ended = True
        message = _exception_message(exc)
        # Each step on its own: one failing must not skip the others (the probe must stop).
        steps: tuple[Callable[[], None], ...] = (
            lambda: self._set_error_status(exc, message),
            lambda: self._on_fail(exc),
            lambda: self._add_exception_event(exc, message),
        )
        for step in steps:
            try:
                step()
            except Exception:
                _logger.debug("agenttrace: recording the failure failed", exc_info=True)
        self.span.end()

    def _set_error_status(self, exc: BaseException, message: str | None) -> None:
        name = type(exc).__name__
        description = f"{name}: {message}" if message is not None else name
        self.span.set_status(
            Status(
                StatusCode.ERROR,
                self.settings.renderer.text(semconv.STATUS_DESCRIPTION, description),
            )
        )
        # Type names are names: redacted and bounded, but not given to the user's hook.
        self.span.set_attribute(
            semconv.ERROR_TYPE, self.settings.label(semconv.ERROR_TYPE, type(exc).__qualname__)
        )

    def _add_exception_event(self, exc: BaseException, message: str | None) -> None:
        """The event `Span.record_exception` would add, with every value redacted and bounded."""
        renderer = self.settings.renderer
        event: dict[str, Any] = {
            semconv.EXCEPTION_TYPE: self.settings.label(
                semconv.EXCEPTION_TYPE, _exception_type(exc)
            ),
            semconv.EXCEPTION_STACKTRACE: renderer.text(
                semconv.EXCEPTION_STACKTRACE, _stacktrace(exc)
            ),
            semconv.EXCEPTION_ESCAPED: True,
        }
        if message is not None:
            event[semconv.EXCEPTION_MESSAGE] = renderer.text(semconv.EXCEPTION_MESSAGE, message)
        self.span.add_event(semconv.EXCEPTION_EVENT, event)

    def close_early(self, result: Any = _UNSET) -> None:
        """End the span of a generator closed before it was exhausted (with what it yielded)."""
        if not self._ended:
            self.span.set_attribute(semconv.GENERATOR_CLOSED_EARLY, True)
            self.finish(result)

    def _on_finish(self, result: Any) -> None:  # pragma: no cover - overridden
        pass

    def _on_fail(self, exc: BaseException) -> None:
        pass


class AgentRun(_Invocation):
    """An agent run: the root `invoke_agent {name}` span, which becomes one AgentTrace row."""

    __slots__ = ("name", "_steps", "_descendants", "_outer")

    def __init__(
        self,
        name: str,
        *,
        prompt: Any = None,
        model: str | None = None,
        provider: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        parent: Any = None,
    ) -> None:
        settings = _settings.current()
        parent = otel_context.get_current() if parent is None else parent
        outer = otel_context.get_value(_RUN_KEY, parent)
        name = settings.label(semconv.GEN_AI_AGENT_NAME, name)
        attributes: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_AGENT,
            semconv.GEN_AI_AGENT_NAME: name,
            semconv.OPENINFERENCE_SPAN_KIND: "AGENT",
            semconv.CONTENT_CAPTURED: settings.capture_content,
            semconv.TELEMETRY_METHOD: settings.probe.method
            if settings.probe
            else semconv.TELEMETRY_METHOD_NONE,
        }
        if model:
            attributes[semconv.GEN_AI_REQUEST_MODEL] = settings.label(
                semconv.GEN_AI_REQUEST_MODEL, model
            )
        if provider:
            attributes[semconv.GEN_AI_PROVIDER_NAME] = settings.label(
                semconv.GEN_AI_PROVIDER_NAME, provider
            )
        if prompt is not None and settings.capture_content:
            attributes[semconv.PROMPT] = settings.renderer.text(semconv.PROMPT, prompt)
        attributes.update(_metadata_attributes(settings, metadata or {}))
        if isinstance(outer, AgentRun):
            attributes[semconv.RUN_NESTED] = True
            outer.note_descendant()
            self._outer: AgentRun | None = outer
        else:
            self._outer = None
        self.settings = settings
        self.name = name
        self._steps = itertools.count(1)
        self._descendants = itertools.count()  # atomic increments from any thread
        super().__init__(f"{semconv.OPERATION_INVOKE_AGENT} {name}", attributes, parent)
        self._context = otel_context.set_value(_RUN_KEY, self, self._context)

    def next_step_number(self) -> int:
        return next(self._steps)

    def note_descendant(self) -> None:
        """Count a span started below this run (and below every run enclosing it)."""
        next(self._descendants)
        if self._outer is not None:
            self._outer.note_descendant()

    def set_prompt(self, prompt: Any) -> None:
        if self.settings.capture_content:
            self.span.set_attribute(
                semconv.PROMPT, self.settings.renderer.text(semconv.PROMPT, prompt)
            )

    def set_model(self, model: str) -> None:
        self.span.set_attribute(
            semconv.GEN_AI_REQUEST_MODEL, self.settings.label(semconv.GEN_AI_REQUEST_MODEL, model)
        )

    def set_metadata(self, **metadata: Any) -> None:
        """Row metadata (`dataset_name`, `task_id`, `run_id`, `dataset_split`, anything else)."""
        self.span.set_attributes(_metadata_attributes(self.settings, metadata))

    def _span_count(self) -> int:
        return next(self._descendants)  # the count's next value is the number of spans noted

    def _on_finish(self, result: Any) -> None:
        attributes: dict[str, Any] = {semconv.RUN_SPAN_COUNT: self._span_count()}
        if result is not _UNSET and result is not None and self.settings.capture_content:
            message = [{"role": "assistant", "parts": [{"type": "text", "content": result}]}]
            attributes[semconv.GEN_AI_OUTPUT_MESSAGES] = self.settings.renderer.json(
                semconv.GEN_AI_OUTPUT_MESSAGES, message
            )
        self.span.set_attributes(attributes)

    def _on_fail(self, exc: BaseException) -> None:
        self.span.set_attribute(semconv.RUN_SPAN_COUNT, self._span_count())


class LLMCall(_Invocation):
    """One model generation: a `chat {model}` CLIENT span, one `llm_steps` entry."""

    __slots__ = ("step_number",)

    _span_kind = SpanKind.CLIENT

    def __init__(
        self,
        model: str | None = None,
        *,
        provider: str = "openai",
        messages: Any = None,
        request: Mapping[str, Any] | None = None,
        parent: Any = None,
    ) -> None:
        settings = _settings.current()
        parent = otel_context.get_current() if parent is None else parent
        run = otel_context.get_value(_RUN_KEY, parent)
        attributes: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_CHAT,
            semconv.GEN_AI_PROVIDER_NAME: settings.label(semconv.GEN_AI_PROVIDER_NAME, provider),
            semconv.OPENINFERENCE_SPAN_KIND: "LLM",
        }
        if model:
            model = settings.label(semconv.GEN_AI_REQUEST_MODEL, model)
            attributes[semconv.GEN_AI_REQUEST_MODEL] = model
        for key, value in (request or {}).items():  # temperature=0.2 -> gen_ai.request.temperature
            if isinstance(value, (str, bool, int, float)):
                # Only names the GenAI conventions define go under gen_ai.request.*.
                prefix = "gen_ai.request." if key in _REQUEST_PARAMETERS else "agenttrace.request."
                if isinstance(value, str):
                    value = settings.renderer.text(prefix + key, value)
                attributes[prefix + key] = value
        self.step_number: int | None = run.next_step_number() if isinstance(run, AgentRun) else None
        if self.step_number is not None:
            attributes[semconv.STEP_NUMBER] = self.step_number
        if isinstance(messages, (list, tuple)) and settings.capture_content:
            try:  # user objects: anything may raise, and nothing may reach the caller
                converted: Any = input_messages(messages)
            except Exception:
                converted = None
            if converted is not None:
                attributes[semconv.GEN_AI_INPUT_MESSAGES] = settings.renderer.json(
                    semconv.GEN_AI_INPUT_MESSAGES, converted
                )
        self.settings = settings
        name = f"{semconv.OPERATION_CHAT} {model}" if model else semconv.OPERATION_CHAT
        super().__init__(name, attributes, parent)
        if isinstance(run, AgentRun):
            run.note_descendant()

    def record_step(self, step: StepRecord) -> None:
        """Record what the generation produced (text, reasoning, tool calls, usage)."""
        attributes: dict[str, Any] = {}
        label = self.settings.label
        if step.response_model:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = label(
                semconv.GEN_AI_RESPONSE_MODEL, step.response_model
            )
        if step.response_id:
            attributes[semconv.GEN_AI_RESPONSE_ID] = self.settings.renderer.text(
                semconv.GEN_AI_RESPONSE_ID, step.response_id
            )
        if step.finish_reason:
            attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = (
                label(semconv.GEN_AI_RESPONSE_FINISH_REASONS, step.finish_reason),
            )
        if step.input_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] = step.input_tokens
        if step.output_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = step.output_tokens
        if step.reasoning_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = step.reasoning_tokens
        if self.settings.capture_content:
            attributes[semconv.GEN_AI_OUTPUT_MESSAGES] = self.settings.renderer.json(
                semconv.GEN_AI_OUTPUT_MESSAGES, step.output_messages()
            )
        self.span.set_attributes(attributes)

    def record_completion(self, completion: Any) -> None:
        """Record an OpenAI-style chat completion (the `openai` object or its dict)."""
        self.record_step(step_from_completion(completion))

    def set_output(self, text: str | None = None, **step: Any) -> None:
        """Record a generation by hand: `text`, `reasoning`, `tool_calls`, token counts..."""
        self.record_step(StepRecord(text=text, **step))

    def _on_finish(self, result: Any) -> None:
        if result is _UNSET or result is None:
            return
        if isinstance(result, str):
            self.record_step(StepRecord(text=result))
        elif isinstance(result, StepRecord):
            self.record_step(result)
        elif looks_like_completion(result):
            self.record_completion(result)


class ToolCall(_Invocation):
    """One tool call: an `execute_tool {name}` span with arguments, result, exit code, telemetry."""

    __slots__ = ("name", "_probe", "_probe_state", "_children", "_exit_code")

    def __init__(
        self,
        name: str,
        arguments: Any = None,
        *,
        input_repr: str | None = None,
        call_id: str | None = None,
        description: str | None = None,
        parent: Any = None,
        settings: Any = None,
        positional: int = 0,
    ) -> None:
        settings = _settings.current() if settings is None else settings
        parent = otel_context.get_current() if parent is None else parent
        holder = otel_context.get_value(_CALL_ID_KEY, parent)
        # The id given by using_call_id() names one call: the first tool started takes it.
        pending_id = holder.pop() if isinstance(holder, list) and holder else None
        run = otel_context.get_value(_RUN_KEY, parent)
        name = settings.label(semconv.GEN_AI_TOOL_NAME, name)
        attributes: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
            semconv.GEN_AI_TOOL_NAME: name,
            semconv.GEN_AI_TOOL_TYPE: semconv.TOOL_TYPE_FUNCTION,
            semconv.OPENINFERENCE_SPAN_KIND: "TOOL",
            semconv.TOOL_EXIT_CODE: 0,  # replaced at the end by any other
        }
        call_id = call_id or pending_id
        if call_id:
            attributes[semconv.GEN_AI_TOOL_CALL_ID] = settings.renderer.text(
                semconv.GEN_AI_TOOL_CALL_ID, str(call_id)
            )
        if description:
            attributes[semconv.GEN_AI_TOOL_DESCRIPTION] = settings.label(
                semconv.GEN_AI_TOOL_DESCRIPTION, description
            )
        if settings.capture_content:
            attributes.update(_argument_attributes(settings, arguments, input_repr, positional))
        self.settings = settings
        self.name = name
        self._children: list[ChildUsage] | None = None
        self._exit_code: int | None = None
        self._probe = settings.probe
        self._probe_state: Any = None
        super().__init__(f"{semconv.OPERATION_EXECUTE_TOOL} {name}", attributes, parent)
        if isinstance(run, AgentRun):
            run.note_descendant()  # counted once the span exists

    def attach(self) -> None:
        self._token = otel_context.attach(self._context)
        if self._probe is not None and self._probe_state is None:
            self._probe_state = self._probe.start()

    def set_result(self, result: Any) -> None:
        """Record the tool's output now (the decorators do this with the return value)."""
        if self.settings.capture_content:
            self.span.set_attribute(
                semconv.GEN_AI_TOOL_CALL_RESULT,
                self.settings.renderer.text(semconv.GEN_AI_TOOL_CALL_RESULT, result),
            )

    def set_arguments(self, arguments: Any, *, input_repr: str | None = None) -> None:
        """Record the call's arguments now, when they were not known as it started."""
        if self.settings.capture_content:
            self.span.set_attributes(_argument_attributes(self.settings, arguments, input_repr))

    def set_exit_code(self, code: int) -> None:
        """The tool's exit code (0 = ok); overrides the one taken from subprocesses."""
        self._exit_code = int(code)

    def set_call_id(self, call_id: str) -> None:
        self.span.set_attribute(
            semconv.GEN_AI_TOOL_CALL_ID,
            self.settings.renderer.text(semconv.GEN_AI_TOOL_CALL_ID, str(call_id)),
        )

    @property
    def measures_children_precisely(self) -> bool:
        """Whether subprocesses should be started so that their own peak RSS can be measured."""
        return self._probe is not None and self._probe.method == semconv.TELEMETRY_METHOD_PRECISE

    def record_child(self, usage: ChildUsage) -> None:
        """A subprocess this tool ran was reaped: count its own usage and its exit code."""
        if self._children is None:
            self._children = []
        self._children.append(usage)

    def _end_attributes(self, exit_code: int) -> dict[str, Any]:
        """The exit code when not 0 (the span started with 0: a call that succeeded with nothing
        else to record costs no attribute update at its end), and the telemetry."""
        attributes: dict[str, Any] = {semconv.TOOL_EXIT_CODE: exit_code} if exit_code else {}
        if self._probe is not None and self._probe_state is not None:
            figures = self._probe.stop(self._probe_state, self._children)
            self._probe_state = None
            attributes[semconv.TELEMETRY_USER_TIME_S] = figures.user_time_s
            attributes[semconv.TELEMETRY_SYSTEM_TIME_S] = figures.system_time_s
            attributes[semconv.TELEMETRY_MAX_RSS_BYTES] = figures.max_rss_bytes
            attributes[semconv.TELEMETRY_READ_BYTES] = figures.read_bytes
            attributes[semconv.TELEMETRY_WRITE_BYTES] = figures.write_bytes
            attributes[semconv.TELEMETRY_METHOD] = self._probe.method
            attributes[semconv.TELEMETRY_PEAK_SCOPE] = figures.peak_scope
        return attributes

    def _on_finish(self, result: Any) -> None:
        exit_code = self._exit_code
        if exit_code is None:
            exit_code = self._children[-1].returncode if self._children else 0
        attributes = self._end_attributes(exit_code)
        if result is not _UNSET and self.settings.capture_content:
            attributes[semconv.GEN_AI_TOOL_CALL_RESULT] = self.settings.renderer.text(
                semconv.GEN_AI_TOOL_CALL_RESULT, result
            )
        if attributes:
            self.span.set_attributes(attributes)
        if exit_code:  # a command that failed is a failed call, for every viewer
            self.span.set_status(Status(StatusCode.ERROR, f"exit code {exit_code}"))

    def _on_fail(self, exc: BaseException) -> None:
        exit_code = self._exit_code
        if not exit_code:
            returncode = getattr(exc, "returncode", None)  # CalledProcessError and friends
            exit_code = returncode if isinstance(returncode, int) and returncode else 1
        self.span.set_attributes(self._end_attributes(exit_code))


def _argument_attributes(
    settings: _settings.Settings, arguments: Any, input_repr: str | None, positional: int = 0
) -> dict[str, Any]:
    """A tool call's arguments as JSON, and for a dict the release's `args=(...), kwargs={...}`
    form (the first `positional` entries passed positionally).

    When the JSON is the arguments' own, exactly (`Renderer.json_exact`), that form is left for
    the exporter to rebuild from it: the same text, without a second rendering and redaction
    of the same values on every call.
    """
    renderer = settings.renderer
    attributes: dict[str, Any] = {}
    if arguments is not None:
        if input_repr is None and isinstance(arguments, dict):
            text, exact = renderer.json_exact(semconv.GEN_AI_TOOL_CALL_ARGUMENTS, arguments)
            attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = text
            if exact:
                if positional:
                    attributes[semconv.TOOL_POSITIONAL_ARGS] = positional
                return attributes
            input_repr = _release_input(arguments, positional, renderer.limit)
        else:
            attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = renderer.json(
                semconv.GEN_AI_TOOL_CALL_ARGUMENTS, arguments
            )
    if input_repr is not None:
        attributes[semconv.TOOL_INPUT_REPR] = renderer.repr(semconv.TOOL_INPUT_REPR, input_repr)
    return attributes


def _input_repr(args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> str:
    """The release's `tool_input` form: `args=(...)` if any, then `kwargs={...}` if any.

    Each part is a repr bounded by `limit` (its cost too), never raising.
    """
    parts = []
    if args:
        parts.append("args=" + bounded_repr(args, limit))
    if kwargs:
        parts.append("kwargs=" + bounded_repr(kwargs, limit))
    return ", ".join(parts)


def _release_input(arguments: dict[str, Any], positional: int, limit: int) -> str:
    """`args=(...)` for the first `positional` arguments, `kwargs={...}` for the rest (and
    `kwargs={...}` however empty when none was positional, as `tool_call()` always wrote)."""
    if not positional:
        return "kwargs=" + bounded_repr(arguments, limit)
    items = list(arguments.items())
    return _input_repr(
        tuple(value for _, value in items[:positional]), dict(items[positional:]), limit
    )


def current_invocation() -> _Invocation | None:
    """The innermost agent run, model step or tool call in progress in this context."""
    value = otel_context.get_value(_INVOCATION_KEY)
    return value if isinstance(value, _Invocation) else None


def current_tool_call() -> ToolCall | None:
    """The tool call in progress in this context (None outside a tool)."""
    value = otel_context.get_value(_INVOCATION_KEY)
    return value if isinstance(value, ToolCall) else None


def current_agent_run() -> AgentRun | None:
    """The agent run in progress in this context (None outside an agent)."""
    value = otel_context.get_value(_RUN_KEY)
    return value if isinstance(value, AgentRun) else None


def set_run_metadata(**metadata: Any) -> None:
    """Add row metadata (`task_id=3`, `run_id="r1"`, ...) to the agent run in progress."""
    run = current_agent_run()
    if run is not None:
        run.set_metadata(**metadata)


@contextmanager
def using_call_id(call_id: str) -> Iterator[None]:
    """Give the first tool call started in this block the model's tool call id (`call_...`).

    The id links a `chat` step's tool_call part to the `execute_tool` span that ran it.
    """
    token = otel_context.attach(otel_context.set_value(_CALL_ID_KEY, [call_id]))
    try:
        yield
    finally:
        otel_context.detach(token)


def agent_run(
    name: str,
    *,
    prompt: Any = None,
    model: str | None = None,
    provider: str | None = None,
    **metadata: Any,
) -> AgentRun:
    """An agent run as a context manager: `with agent_run("nl2bash", task_id=3) as run: ...`.

    Keyword arguments other than `prompt`, `model` and `provider` are row metadata.
    """
    return AgentRun(name, prompt=prompt, model=model, provider=provider, metadata=metadata)


def llm_call(
    model: str | None = None,
    *,
    provider: str = "openai",
    messages: Any = None,
    **request: Any,
) -> LLMCall:
    """A model step as a context manager; record output with `set_output` / `record_completion`."""
    return LLMCall(model, provider=provider, messages=messages, request=request)


def tool_call(
    name: str,
    arguments: Any = None,
    *,
    call_id: str | None = None,
    description: str | None = None,
) -> ToolCall:
    """A tool call as a context manager: `with tool_call("bash", {"command": c}) as call: ...`."""
    return ToolCall(name, arguments, call_id=call_id, description=description)
