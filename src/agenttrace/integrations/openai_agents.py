"""The OpenAI Agents SDK: its own tracing, bridged to AgentTrace spans as the runs happen.

    from agenttrace.integrations.openai_agents import OpenAIAgentsInstrumentor

    OpenAIAgentsInstrumentor().instrument()  # adds a trace processor; uninstrument() removes it
    Runner.run_sync(agent, "Count the .txt files under /testbed")  # one AgentTrace row

The SDK reports every workflow, agent, model call and tool call to its trace processors
(`agents.add_trace_processor`). The bridge is one of them, and starts our spans as the SDK's
start, so that a run is the same tree as a hand-instrumented one:

* an SDK trace (one `Runner.run`) is the row: an `invoke_agent {workflow name}` run; each agent
  that takes part (the first one, and any handed off to) is a run nested in it;
* a generation (chat completions) or response (Responses API) is a `chat {model}` step with the
  output text, reasoning content, tool calls with their ids, and token usage;
* a function tool call is an `execute_tool {name}` call, carrying the id of the model's call that
  asked for it. The call is current while the tool runs (the SDK runs a sync function tool in a
  worker thread, which inherits it), so subprocesses it starts with `agenttrace.tools.run` or
  `Popen` are measured as the tool's own, with their exit code. In-process CPU time is the
  event-loop thread's during the call, as for async tools.

Handoff, guardrail and the SDK's bookkeeping spans (task, turn) have no span of their own: what
happens inside them lands under the nearest run. A `Runner.run` inside an enclosing
`agenttrace.agent_run(...)` is nested in it, and the row is the enclosing run's (with its
metadata). The SDK's own export to the OpenAI platform is not touched: `set_trace_processors`
decides which processors run, as the SDK documents.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from opentelemetry import context as otel_context

from agenttrace._genai import StepRecord, ToolCallRecord, step_from_completion
from agenttrace._invocations import AgentRun, LLMCall, ToolCall, _Invocation

__all__ = ["OpenAIAgentsInstrumentor"]

_FRAMEWORK = {"agent_framework": "openai-agents"}


def _usage_counts(usage: Any) -> tuple[int | None, int | None, int | None]:
    """(input, output, reasoning) tokens from the SDK's usage dict (or a Response's usage)."""

    def get(source: Any, key: str) -> Any:
        return source.get(key) if isinstance(source, dict) else getattr(source, key, None)

    details = get(usage, "output_tokens_details") if usage is not None else None
    reasoning = get(details, "reasoning_tokens") if details is not None else None
    counts = (
        get(usage, "input_tokens") if usage is not None else None,
        get(usage, "output_tokens") if usage is not None else None,
        reasoning or None,
    )
    return tuple(c if isinstance(c, int) else None for c in counts)  # type: ignore[return-value]


def step_of_generation(data: Any) -> StepRecord:
    """A chat-completions generation (GenerationSpanData) as a step."""
    output = list(getattr(data, "output", None) or [])
    step = step_from_completion({"choices": [{"message": output[0]}] if output else []})
    step.input_tokens, step.output_tokens, step.reasoning_tokens = _usage_counts(
        getattr(data, "usage", None)
    )
    step.response_model = getattr(data, "model", None)
    return step


def step_of_response(data: Any) -> StepRecord:
    """A Responses API call (ResponseSpanData) as a step: messages, reasoning, function calls."""
    response = getattr(data, "response", None)
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCallRecord] = []
    for item in getattr(response, "output", None) or []:
        kind = getattr(item, "type", None)
        if kind == "message":
            texts.extend(
                str(getattr(part, "text", "")) for part in getattr(item, "content", None) or []
            )
        elif kind == "reasoning":
            for part in [*(getattr(item, "content", None) or []), *getattr(item, "summary", [])]:
                reasoning.append(str(getattr(part, "text", "")))
        elif kind == "function_call":
            arguments = _arguments(getattr(item, "arguments", None))
            calls.append(
                ToolCallRecord(
                    name=str(getattr(item, "name", "")),
                    arguments=arguments,
                    id=getattr(item, "call_id", None),
                )
            )
    inputs, outputs, reasoning_tokens = _usage_counts(
        getattr(response, "usage", None) or getattr(data, "usage", None)
    )
    return StepRecord(
        text="".join(texts) if texts else None,
        reasoning="".join(reasoning) if reasoning else None,
        tool_calls=calls,
        response_model=getattr(response, "model", None),
        response_id=getattr(response, "id", None),
        input_tokens=inputs,
        output_tokens=outputs,
        reasoning_tokens=reasoning_tokens,
    )


class _Bridge:
    """The trace processor: SDK span ids to our invocations, and the model's pending tool calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._invocations: dict[str, _Invocation] = {}  # SDK trace or span id -> ours
        self._attached: dict[str, ToolCall] = {}  # function spans made current at start
        self._pending: dict[str, list[tuple[str, str, str | None]]] = {}  # per trace
        self._prompted: set[str] = set()  # runs whose prompt is known
        self.enabled = True  # uninstrument() turns it off: the SDK has no public way to remove one

    # -- the SDK's TracingProcessor interface (duck-typed: the SDK is an optional extra) -------
    def on_trace_start(self, trace: Any) -> None:
        if not self.enabled:
            return
        metadata = dict(getattr(trace, "metadata", None) or {})
        group = getattr(trace, "group_id", None)
        if group:
            metadata["group_id"] = group
        run = AgentRun(
            str(getattr(trace, "name", None) or "Agent workflow"),
            metadata={**_FRAMEWORK, **metadata},
            parent=otel_context.get_current(),
        )
        with self._lock:
            self._invocations[trace.trace_id] = run

    def on_trace_end(self, trace: Any) -> None:
        with self._lock:
            run = self._invocations.pop(trace.trace_id, None)
            self._pending.pop(trace.trace_id, None)
            self._prompted.discard(trace.trace_id)
        if run is not None:
            run.finish()

    def on_span_start(self, span: Any) -> None:
        if not self.enabled:
            return
        data = span.span_data
        kind = getattr(data, "type", None)
        with self._lock:
            parent = self._invocations.get(span.parent_id or "") or self._invocations.get(
                span.trace_id
            )
        context = parent.context if parent is not None else otel_context.get_current()
        invocation: _Invocation | None = None
        if kind == "agent":
            invocation = AgentRun(str(data.name), metadata=dict(_FRAMEWORK), parent=context)
        elif kind in ("generation", "response"):
            model = getattr(data, "model", None)
            invocation = LLMCall(model if isinstance(model, str) else None, parent=context)
        elif kind == "function":  # its input is set once the call has started
            invocation = ToolCall(str(data.name), parent=context)
        with self._lock:
            # Spans of no kind of ours (task, turn, handoff, ...) stand for their parent.
            self._invocations[span.span_id] = invocation or parent  # type: ignore[assignment]
            if invocation is None and parent is None:
                del self._invocations[span.span_id]
        if isinstance(invocation, ToolCall):
            invocation.attach()  # current while the tool runs (the SDK starts it in the same task)
            with self._lock:
                self._attached[span.span_id] = invocation

    def on_span_end(self, span: Any) -> None:
        data = span.span_data
        kind = getattr(data, "type", None)
        with self._lock:
            invocation = self._invocations.pop(span.span_id, None)
            attached = self._attached.pop(span.span_id, None)
            self._prompted.discard(span.span_id)
        if kind not in ("agent", "generation", "response", "function") or invocation is None:
            return
        if attached is not None:
            attached.detach()
        error = getattr(span, "error", None)
        if isinstance(invocation, LLMCall):
            step = step_of_generation(data) if kind == "generation" else step_of_response(data)
            invocation.record_step(step)
            self._expect_calls(span.trace_id, step)
            self._prompt_runs(span, getattr(data, "input", None))
        elif isinstance(invocation, ToolCall):
            arguments = _arguments(getattr(data, "input", None))
            if arguments is not None:
                invocation.set_arguments(arguments)
            call_id = self._take_call_id(span.trace_id, str(data.name), arguments)
            if call_id is not None:
                invocation.set_call_id(call_id)
            invocation.set_result(getattr(data, "output", None))
        if error:
            invocation.fail(_SDKError(error))
        else:
            invocation.finish()

    def shutdown(self) -> None:
        pass  # our spans end with the SDK's; exporting is configure()'s business

    def force_flush(self) -> None:
        pass

    # -- helpers ---------------------------------------------------------------------------
    def _expect_calls(self, trace_id: str, step: StepRecord) -> None:
        calls = [(c.name, _canonical(c.arguments), c.id) for c in step.tool_calls]
        with self._lock:
            self._pending.setdefault(trace_id, []).extend(calls)

    def _take_call_id(self, trace_id: str, name: str, arguments: Any) -> str | None:
        """The id of the model's call this function call runs (same name and arguments)."""
        wanted = _canonical(arguments)
        with self._lock:
            pending = self._pending.get(trace_id) or []
            named = [i for i, call in enumerate(pending) if call[0] == name]
            same = [i for i in named if pending[i][1] == wanted]
            if not (same or named):
                return None
            return pending.pop((same or named)[0])[2]

    def _prompt_runs(self, span: Any, messages: Any) -> None:
        """Give the row and the agent their prompt: the first user message the model saw."""
        prompt = _first_user_text(messages)
        if prompt is None:
            return
        with self._lock:
            runs = [
                (key, run)
                for key in (span.trace_id, span.parent_id)
                if key not in self._prompted
                and isinstance(run := self._invocations.get(key or ""), AgentRun)
            ]
            self._prompted.update(key for key, _ in runs)
        for _, run in runs:
            run.set_prompt(prompt)


class _SDKError(Exception):
    """An error the SDK recorded on a span (`{"message": ..., "data": ...}`)."""

    def __init__(self, error: Any) -> None:
        message = error.get("message") if isinstance(error, dict) else str(error)
        super().__init__(message)


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _canonical(arguments: Any) -> str:
    try:
        return json.dumps(arguments, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(arguments)


def _first_user_text(messages: Any) -> str | None:
    if isinstance(messages, str):
        return messages
    for message in messages or []:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("text")]
                return "".join(str(t) for t in texts) or None
    return None


class OpenAIAgentsInstrumentor:
    """Bridge the Agents SDK's tracing: `OpenAIAgentsInstrumentor().instrument()`."""

    _lock = threading.Lock()
    _bridge: _Bridge | None = None

    @property
    def is_instrumented(self) -> bool:
        bridge = OpenAIAgentsInstrumentor._bridge
        return bridge is not None and bridge.enabled

    def instrument(self, *, exclusive: bool = False) -> None:
        """Add the bridge to the SDK's trace processors. `exclusive=True` makes it the only one,
        replacing the SDK's upload of traces to the OpenAI platform (for local servers)."""
        try:
            from agents import add_trace_processor, set_trace_processors
        except ImportError as exc:
            raise ImportError(
                "the OpenAI Agents SDK integration needs it: pip install openai-agents"
            ) from exc
        with self._lock:
            bridge = OpenAIAgentsInstrumentor._bridge
            if bridge is None:
                bridge = OpenAIAgentsInstrumentor._bridge = _Bridge()
                if not exclusive:
                    add_trace_processor(bridge)  # type: ignore[arg-type]  # duck-typed
            if exclusive:
                set_trace_processors([bridge])  # type: ignore[list-item]
            bridge.enabled = True

    def uninstrument(self) -> None:
        """Stop bridging. The SDK can add a processor but not remove one, so the bridge stays
        registered, switched off, and `instrument()` switches the same one on again."""
        with self._lock:
            if OpenAIAgentsInstrumentor._bridge is not None:
                OpenAIAgentsInstrumentor._bridge.enabled = False
