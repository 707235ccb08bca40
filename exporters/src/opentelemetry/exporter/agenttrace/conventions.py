"""Spans of other instrumentations, read as the GenAI spans the row builder understands.

Teams already trace their agents with OpenInference (Arize Phoenix, `openinference-
instrumentation-*`), OpenLLMetry / Traceloop (`traceloop-sdk`, `opentelemetry-instrumentation-
openai` and friends) or GenAI instrumentations written against older releases of the
conventions. Their spans carry the same facts under other keys. Rather than teach the assembler
and the row builder every dialect, `normalized` fills in the GenAI keys they read (operation,
messages, tokens, tool name / arguments / result, the run's prompt) from the foreign ones, in
this one place:

* OpenInference: `openinference.span.kind` AGENT -> `invoke_agent` (a row), LLM -> `chat` (a
  step), TOOL -> `execute_tool` (a tool call); CHAIN and the rest stay out of the row.
* Traceloop: `traceloop.span.kind` workflow / agent -> a row, tool -> a tool call; its model
  spans are `llm.request.type` chat / completion with the flat `gen_ai.prompt.{i}.*` /
  `gen_ai.completion.{i}.*` messages (current releases already write `gen_ai.*` messages).
* Deprecated GenAI names: `gen_ai.system`, `gen_ai.usage.prompt_tokens` / `completion_tokens`.

A key the span already has is never overwritten: what an instrumentation says in our own terms
wins over what we derive. AgentTrace's own spans (scope `agenttrace`) are returned untouched
before any lookup, so the common case costs one comparison. A span that cannot be read is left
as it is (logged at debug level): a mapping failure must never cost a row or reach the SDK.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.exporter.agenttrace import _json, semconv
from opentelemetry.sdk.trace import ReadableSpan

_logger = logging.getLogger(__name__)

# Keys of a framework's input object that hold the user's task, most specific first.
_PROMPT_KEYS = ("task", "prompt", "input", "query", "question", "message", "text")
_OPERATION_OF_REQUEST_TYPE = {
    semconv.LLM_REQUEST_TYPE_CHAT: semconv.OPERATION_CHAT,
    semconv.LLM_REQUEST_TYPE_COMPLETION: "text_completion",
}
_TRACELOOP_ROOT_OPERATIONS = {
    semconv.TRACELOOP_KIND_WORKFLOW: "invoke_workflow",
    semconv.TRACELOOP_KIND_AGENT: semconv.OPERATION_INVOKE_AGENT,
}
# Keys that make a span worth scanning for the deprecated flat messages.
_GENAI_MARKERS = (
    semconv.GEN_AI_OPERATION_NAME,
    semconv.GEN_AI_SYSTEM,
    semconv.GEN_AI_PROVIDER_NAME,
    semconv.LLM_REQUEST_TYPE,
)


def normalized(span: ReadableSpan, attributes: dict[str, Any]) -> dict[str, Any]:
    """`attributes` (the caller's own copy of the span's) with the GenAI keys filled in.

    Filled in place and returned; keys already present are kept as they are.
    """
    scope = span.instrumentation_scope
    if scope is not None and scope.name == semconv.INSTRUMENTATION_SCOPE:
        return attributes  # ours already speak the conventions: the hot path stops here
    try:
        openinference_kind = attributes.get(semconv.OPENINFERENCE_SPAN_KIND)
        if isinstance(openinference_kind, str):
            _from_openinference(span, openinference_kind, attributes)
        else:
            traceloop_kind = attributes.get(semconv.TRACELOOP_SPAN_KIND)
            if isinstance(traceloop_kind, str):
                _from_traceloop_entity(traceloop_kind, attributes)
        if any(marker in attributes for marker in _GENAI_MARKERS):
            _from_deprecated_genai(attributes)
    except Exception:  # a foreign span we cannot read stays as it was
        _logger.debug(
            "agenttrace: could not map the attributes of span %r", span.name, exc_info=True
        )
    return attributes


# -- helpers --------------------------------------------------------------------------------------
def _fill(attributes: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` unless the span already has it (or there is nothing to set)."""
    if value is not None and key not in attributes:
        attributes[key] = value


def _parsed(value: Any) -> Any:
    """A JSON attribute's value; a string that is not JSON stays the string itself."""
    if isinstance(value, str):
        try:
            return _json.loads(value)
        except ValueError:
            return value
    return value


def _fill_counts(attributes: dict[str, Any], sources: Mapping[str, str]) -> None:
    """Token counts: each GenAI key (unless present) from its source key, as a whole number."""
    for key, source in sources.items():
        _fill(attributes, key, _count(attributes.get(source)))


def _fill_messages(
    attributes: dict[str, Any], key: str, messages: Callable[[], list[dict[str, Any]]]
) -> None:
    """GenAI messages (unless present) as JSON, from another convention's, when it has some."""
    if key not in attributes:
        found = messages()
        if found:
            attributes[key] = json.dumps(found)


def _count(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _indexed(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """The entries of flattened `prefix.{i}.<rest>` keys, in index order, as `{rest: value}`.

    Instrumentations skip indices (a message without role or content), so gaps are closed up
    rather than filled with empty entries.
    """
    start = prefix + "."
    found: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if key.startswith(start):
            index, dot, rest = key[len(start) :].partition(".")
            if dot and index.isdigit():
                found.setdefault(int(index), {})[rest] = value
    return [found[index] for index in sorted(found)]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _prompt_of(value: Any) -> str | None:
    """The user's task in a framework's recorded input (`input.value`, `traceloop.entity.input`).

    A plain string is the task; an object is searched for the usual argument names (and a
    Traceloop `{"args": [...], "kwargs": {...}}` for its first string argument); anything else
    gives None, and the row's prompt falls back to the first user message of its steps.
    """
    value = _parsed(value)
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return None
    args, kwargs = value.get("args"), value.get("kwargs")
    if isinstance(args, list) and isinstance(kwargs, dict):
        if args and isinstance(args[0], str):
            return args[0]
        value = kwargs
    for key in _PROMPT_KEYS:
        if isinstance(value.get(key), str):
            return str(value[key])
    strings = [item for item in value.values() if isinstance(item, str)]
    return strings[0] if len(strings) == 1 else None


def _call_arguments(value: Any) -> str | None:
    """A tool call's arguments as the JSON text of `gen_ai.tool.call.arguments`.

    Wrappers record the bound call, `{"args": [...], "kwargs": {...}}` (OpenInference's
    smolagents adds `sanitize_inputs_outputs`, Traceloop nothing); the arguments the model gave
    are its keyword arguments, or its one positional dict. An object becomes the release's
    `kwargs={...}` form in the row; text that is not JSON is kept as a JSON string.
    """
    if value is None:
        return None
    parsed = _parsed(value)
    if isinstance(parsed, dict):
        args, kwargs = parsed.get("args"), parsed.get("kwargs")
        if isinstance(args, list) and isinstance(kwargs, dict):
            if not args:
                parsed = kwargs
            elif len(args) == 1 and isinstance(args[0], dict) and not kwargs:
                parsed = args[0]
            else:
                parsed = {"args": args, **kwargs}
    return json.dumps(parsed)


def _result_text(value: Any) -> str | None:
    """A tool's recorded result as text: a JSON string is unwrapped, anything else kept."""
    if value is None:
        return None
    parsed = _parsed(value)
    return parsed if isinstance(parsed, str) else _text(value)


def _tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "tool_call", "name": "" if name is None else str(name)}
    if call_id is not None:
        part["id"] = str(call_id)
    # Arguments that are not a JSON object (truncated or free text) are kept, under "value".
    parsed = _parsed(arguments)
    if not isinstance(parsed, dict):
        parsed = {} if parsed is None else {"value": parsed}
    part["arguments"] = parsed
    return part


# -- OpenInference --------------------------------------------------------------------------------
def _from_openinference(span: ReadableSpan, kind: str, attributes: dict[str, Any]) -> None:
    if kind == semconv.OPENINFERENCE_KIND_AGENT:
        _fill(attributes, semconv.GEN_AI_OPERATION_NAME, semconv.OPERATION_INVOKE_AGENT)
        name = attributes.get(semconv.OPENINFERENCE_AGENT_NAME)
        if not isinstance(name, str) and span.name:
            name = span.name.removesuffix(".run")  # smolagents: "ToolCallingAgent.run"
        _fill(attributes, semconv.GEN_AI_AGENT_NAME, name)
        _fill(
            attributes,
            semconv.PROMPT,
            _prompt_of(attributes.get(semconv.OPENINFERENCE_INPUT_VALUE)),
        )
    elif kind == semconv.OPENINFERENCE_KIND_LLM:
        _fill(attributes, semconv.GEN_AI_OPERATION_NAME, semconv.OPERATION_CHAT)
        _fill(
            attributes,
            semconv.GEN_AI_REQUEST_MODEL,
            attributes.get(semconv.OPENINFERENCE_LLM_MODEL_NAME),
        )
        provider = attributes.get(semconv.OPENINFERENCE_LLM_PROVIDER)
        _fill(
            attributes,
            semconv.GEN_AI_PROVIDER_NAME,
            provider or attributes.get(semconv.OPENINFERENCE_LLM_SYSTEM),
        )
        _fill_counts(
            attributes,
            {
                semconv.GEN_AI_USAGE_INPUT_TOKENS: semconv.OPENINFERENCE_TOKEN_COUNT_PROMPT,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: semconv.OPENINFERENCE_TOKEN_COUNT_COMPLETION,
                semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: (
                    semconv.OPENINFERENCE_TOKEN_COUNT_REASONING
                ),
            },
        )
        _fill_messages(
            attributes,
            semconv.GEN_AI_INPUT_MESSAGES,
            lambda: _openinference_messages(attributes, semconv.OPENINFERENCE_INPUT_MESSAGES),
        )

        def output_messages() -> list[dict[str, Any]]:
            found = _openinference_messages(attributes, semconv.OPENINFERENCE_OUTPUT_MESSAGES)
            if found:
                _split_reasoning(found, attributes.get(semconv.OPENINFERENCE_OUTPUT_VALUE))
            return found

        _fill_messages(attributes, semconv.GEN_AI_OUTPUT_MESSAGES, output_messages)
    elif kind == semconv.OPENINFERENCE_KIND_TOOL:
        _fill(attributes, semconv.GEN_AI_OPERATION_NAME, semconv.OPERATION_EXECUTE_TOOL)
        _fill(attributes, semconv.GEN_AI_TOOL_NAME, attributes.get(semconv.OPENINFERENCE_TOOL_NAME))
        _fill(
            attributes,
            semconv.GEN_AI_TOOL_DESCRIPTION,
            attributes.get(semconv.OPENINFERENCE_TOOL_DESCRIPTION),
        )
        _fill(
            attributes,
            semconv.GEN_AI_TOOL_CALL_ARGUMENTS,
            _call_arguments(attributes.get(semconv.OPENINFERENCE_INPUT_VALUE)),
        )
        _fill(
            attributes,
            semconv.GEN_AI_TOOL_CALL_RESULT,
            _text(attributes.get(semconv.OPENINFERENCE_OUTPUT_VALUE)),
        )


def _openinference_messages(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """`llm.{input,output}_messages.{i}.message.*` as GenAI messages (role and parts)."""
    messages = []
    for entry in _indexed(attributes, prefix):
        parts: list[dict[str, Any]] = []
        content = entry.get(semconv.OPENINFERENCE_MESSAGE_CONTENT)
        if content is not None:
            parts.append({"type": "text", "content": _text(content)})
        for block in _indexed(entry, semconv.OPENINFERENCE_MESSAGE_CONTENTS):
            kind = block.get(semconv.OPENINFERENCE_CONTENT_TYPE, "text")
            text = block.get(semconv.OPENINFERENCE_CONTENT_TEXT)
            if text is not None and kind in ("text", "reasoning"):
                parts.append({"type": kind, "content": _text(text)})
        for call in _indexed(entry, semconv.OPENINFERENCE_MESSAGE_TOOL_CALLS):
            parts.append(
                _tool_call_part(
                    call.get(semconv.OPENINFERENCE_TOOL_CALL_ID),
                    call.get(semconv.OPENINFERENCE_TOOL_CALL_NAME),
                    call.get(semconv.OPENINFERENCE_TOOL_CALL_ARGUMENTS),
                )
            )
        role = entry.get(semconv.OPENINFERENCE_MESSAGE_ROLE)
        messages.append({"role": "" if role is None else str(role), "parts": parts})
    return messages


def _split_reasoning(messages: list[dict[str, Any]], output_value: Any) -> None:
    """Mark as reasoning the text OpenInference recorded next to the reply's own content.

    OpenInference's smolagents instrumentation appends a model's `reasoning_content` to the
    output message as one more *text* block; `output.value` (the reply as the framework saw it,
    with `role` and `content`) tells which text was the content. Without such an object
    (other instrumentations record the raw provider response there) every text is content.
    """
    reply = _parsed(output_value)
    if not (isinstance(reply, dict) and reply.get("role") == "assistant" and "content" in reply):
        return
    content = reply["content"]
    if isinstance(content, list):
        content = "".join(
            str(block.get("text", "")) for block in content if isinstance(block, dict)
        )
    if content is not None and not isinstance(content, str):
        return
    for message in messages[:1]:
        texts = [part for part in message["parts"] if part["type"] == "text"]
        if content is None:
            extra = texts
        elif texts and "".join(str(part["content"]) for part in texts[:-1]) == content:
            extra = texts[-1:] if len(texts) > 1 else []
        else:
            extra = []
        for part in extra:
            part["type"] = "reasoning"


# -- Traceloop / OpenLLMetry ----------------------------------------------------------------------
def _from_traceloop_entity(kind: str, attributes: dict[str, Any]) -> None:
    """A traceloop-sdk decorated function (`@workflow`, `@agent`, `@task`, `@tool`)."""
    name = attributes.get(semconv.TRACELOOP_ENTITY_NAME)
    operation = _TRACELOOP_ROOT_OPERATIONS.get(kind)
    if operation is not None:
        _fill(attributes, semconv.GEN_AI_OPERATION_NAME, operation)
        _fill(attributes, semconv.GEN_AI_AGENT_NAME, name if isinstance(name, str) else None)
        _fill(
            attributes, semconv.PROMPT, _prompt_of(attributes.get(semconv.TRACELOOP_ENTITY_INPUT))
        )
    elif kind == semconv.TRACELOOP_KIND_TOOL:
        _fill(attributes, semconv.GEN_AI_OPERATION_NAME, semconv.OPERATION_EXECUTE_TOOL)
        _fill(attributes, semconv.GEN_AI_TOOL_NAME, name if isinstance(name, str) else None)
        _fill(
            attributes,
            semconv.GEN_AI_TOOL_CALL_ARGUMENTS,
            _call_arguments(attributes.get(semconv.TRACELOOP_ENTITY_INPUT)),
        )
        _fill(
            attributes,
            semconv.GEN_AI_TOOL_CALL_RESULT,
            _result_text(attributes.get(semconv.TRACELOOP_ENTITY_OUTPUT)),
        )


def _from_deprecated_genai(attributes: dict[str, Any]) -> None:
    """Older GenAI names, and OpenLLMetry's model spans from before gen_ai.*.messages."""
    request_type = attributes.get(semconv.LLM_REQUEST_TYPE)
    if isinstance(request_type, str):
        _fill(
            attributes, semconv.GEN_AI_OPERATION_NAME, _OPERATION_OF_REQUEST_TYPE.get(request_type)
        )
    _fill(attributes, semconv.GEN_AI_PROVIDER_NAME, attributes.get(semconv.GEN_AI_SYSTEM))
    _fill_counts(
        attributes,
        {
            semconv.GEN_AI_USAGE_INPUT_TOKENS: semconv.GEN_AI_USAGE_PROMPT_TOKENS,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: semconv.GEN_AI_USAGE_COMPLETION_TOKENS,
        },
    )
    _fill_messages(
        attributes,
        semconv.GEN_AI_INPUT_MESSAGES,
        lambda: _flat_messages(attributes, semconv.GEN_AI_PROMPT),
    )
    _fill_messages(
        attributes,
        semconv.GEN_AI_OUTPUT_MESSAGES,
        lambda: _flat_messages(attributes, semconv.GEN_AI_COMPLETION),
    )


def _flat_messages(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """`gen_ai.prompt.{i}.role/.content/.tool_calls.{j}.id/.name/.arguments` as GenAI messages."""
    messages = []
    for entry in _indexed(attributes, prefix):
        parts: list[dict[str, Any]] = []
        content = entry.get("content")
        if content is not None:
            parts.append({"type": "text", "content": _text(content)})
        reasoning = entry.get("reasoning")
        if reasoning is not None:
            parts.append({"type": "reasoning", "content": _text(reasoning)})
        for call in _indexed(entry, "tool_calls"):
            parts.append(_tool_call_part(call.get("id"), call.get("name"), call.get("arguments")))
        role = entry.get("role", "assistant" if prefix == semconv.GEN_AI_COMPLETION else "user")
        messages.append({"role": str(role), "parts": parts})
    return messages
