"""GenAI message shapes: OpenAI-style chat messages and completions -> semantic-convention parts.

The GenAI conventions record messages as `[{"role", "parts": [...], "finish_reason"?}]` where a
part is `{"type": "text", "content"}`, `{"type": "reasoning", "content"}`,
`{"type": "tool_call", "id", "name", "arguments"}` or `{"type": "tool_call_response", "id",
"response"}`. Everything here is duck-typed so it accepts the `openai` client's pydantic objects,
plain dicts, and the output of OpenAI-compatible servers (llama-server, vLLM) alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def field_of(obj: Any, name: str, default: Any = None) -> Any:
    """`obj[name]` for mappings, `obj.name` otherwise, including pydantic extra fields."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    value = getattr(obj, name, None)
    if value is None:
        extra = getattr(obj, "model_extra", None)  # openai's objects keep unknown fields here
        if isinstance(extra, Mapping):
            value = extra.get(name)
    return default if value is None else value


def parse_arguments(raw: Any) -> Any:
    """Tool-call arguments as a dict when they are JSON text, else as given."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested beyond what we walk
            return raw
    return raw


@dataclass
class ToolCallRecord:
    """One tool call a model asked for."""

    name: str
    arguments: Any
    id: str | None = None


@dataclass
class StepRecord:
    """What one model generation produced, independent of how it was obtained."""

    text: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    finish_reason: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None

    def output_messages(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if self.reasoning:
            parts.append({"type": "reasoning", "content": self.reasoning})
        if self.text is not None:
            parts.append({"type": "text", "content": self.text})
        for call in self.tool_calls:
            part: dict[str, Any] = {"type": "tool_call", "name": call.name}
            if call.id is not None:
                part["id"] = call.id
            part["arguments"] = call.arguments
            parts.append(part)
        message: dict[str, Any] = {"role": "assistant", "parts": parts}
        if self.finish_reason:
            message["finish_reason"] = self.finish_reason
        return [message]


def _tool_calls_of(message: Any) -> list[ToolCallRecord]:
    records = []
    for call in field_of(message, "tool_calls", None) or ():
        function = field_of(call, "function", None)
        records.append(
            ToolCallRecord(
                name=str(field_of(function, "name", "") or ""),
                arguments=parse_arguments(field_of(function, "arguments", None)),
                id=field_of(call, "id", None),
            )
        )
    return records


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def step_from_completion(completion: Any) -> StepRecord:
    """A StepRecord from a chat completion (openai object or dict); first choice only."""
    choices = field_of(completion, "choices", None) or []
    choice = choices[0] if choices else None
    message = field_of(choice, "message", None)
    reasoning = field_of(message, "reasoning_content", None) or field_of(message, "reasoning", None)
    usage = field_of(completion, "usage", None)
    details = field_of(usage, "completion_tokens_details", None)
    return StepRecord(
        text=field_of(message, "content", None),
        reasoning=reasoning if isinstance(reasoning, str) else None,
        tool_calls=_tool_calls_of(message),
        finish_reason=field_of(choice, "finish_reason", None),
        response_model=field_of(completion, "model", None),
        response_id=field_of(completion, "id", None),
        input_tokens=_int_or_none(field_of(usage, "prompt_tokens", None)),
        output_tokens=_int_or_none(field_of(usage, "completion_tokens", None)),
        reasoning_tokens=_int_or_none(field_of(details, "reasoning_tokens", None)),
    )


def looks_like_completion(value: Any) -> bool:
    return field_of(value, "choices", None) is not None


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts = []
    for item in content if isinstance(content, Iterable) else [content]:
        kind = field_of(item, "type", None)
        if kind == "text":
            parts.append({"type": "text", "content": field_of(item, "text", "")})
        else:
            parts.append({"type": str(kind or "unknown"), "content": item})
    return parts


def input_messages(messages: Any) -> list[dict[str, Any]]:
    """OpenAI chat messages -> GenAI input messages."""
    converted = []
    for message in messages or ():
        role = field_of(message, "role", "user")
        if role == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": field_of(message, "tool_call_id", None),
                    "response": field_of(message, "content", None),
                }
            ]
        else:
            parts = _content_parts(field_of(message, "content", None))
            for call in _tool_calls_of(message):
                parts.append(
                    {
                        "type": "tool_call",
                        "id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                    }
                )
        converted.append({"role": role, "parts": parts})
    return converted
