"""Process-wide instrumentation settings: content capture, value bound, redaction, telemetry.

Decorators read `current()` on every call, so the settings object is replaced whole (never mutated)
by `configure()`; a call in flight keeps the settings it started with. Without `configure()` the
settings come from environment variables, so a decorated agent run under `opentelemetry-instrument`
behaves the same as one configured in code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.agenttrace import semconv

from agenttrace._content import Renderer
from agenttrace._redaction import RedactionHook, Redactor
from agenttrace._telemetry import Probe, probe_for

#: Environment variables (each also a `configure()` argument).
ENV_CAPTURE_CONTENT = "AGENTTRACE_CAPTURE_CONTENT"
ENV_MAX_VALUE_LENGTH = "AGENTTRACE_MAX_VALUE_LENGTH"
ENV_TELEMETRY = "AGENTTRACE_TELEMETRY"
ENV_REDACT = "AGENTTRACE_REDACT"
#: The GenAI instrumentations' own switch; honoured when ours is not set.
ENV_OTEL_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

_logger = logging.getLogger(__name__)

DEFAULT_MAX_VALUE_LENGTH = 32 * 1024  # characters; the release's largest tool outputs fit
_LABEL_CACHE_SIZE = 1024  # distinct (key, name) pairs remembered per settings object
_LABEL_MAX_CACHED = 256  # longer names are rendered each time rather than kept alive

# A switch set in the environment is on unless it says one of these (the exporter's switches,
# AGENTTRACE_FSYNC and AGENTTRACE_STRICT, follow the same rule).
_FALSE = {"0", "false", "no", "off", "none", "no_content"}


def _env_flag(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return raw.strip().lower() not in _FALSE


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of characters, got {raw!r}") from None
    if value < 64:
        raise ValueError(f"{name} must be at least 64, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """One immutable snapshot of what the decorators record and how."""

    capture_content: bool = True
    max_value_length: int = DEFAULT_MAX_VALUE_LENGTH
    telemetry_method: str = semconv.TELEMETRY_METHOD_PRECISE
    redact_secrets: bool = True
    redact_home: bool = True
    redact_paths: Mapping[str, str] = field(default_factory=dict)
    redaction_hook: RedactionHook | None = None
    renderer: Renderer = field(init=False, repr=False, compare=False)
    redactor: Redactor | None = field(init=False, repr=False, compare=False)
    probe: Probe | None = field(init=False, repr=False, compare=False)
    _label_renderer: Renderer = field(init=False, repr=False, compare=False)
    _labels: dict[tuple[str, str], str] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if self.max_value_length < 64:
            raise ValueError(f"max_value_length must be at least 64, got {self.max_value_length}")
        builtin = self.redact_secrets or self.redact_home or bool(self.redact_paths)
        redactor = label_redactor = None
        if builtin or self.redaction_hook:
            redactor = Redactor(
                secrets=self.redact_secrets,
                paths=self.redact_paths,
                redact_home=self.redact_home,
                hook=self.redaction_hook,
            )
        if builtin:
            label_redactor = Redactor(
                secrets=self.redact_secrets, paths=self.redact_paths, redact_home=self.redact_home
            )
        renderer = Renderer(self.max_value_length, redactor)
        object.__setattr__(self, "redactor", redactor)
        object.__setattr__(self, "renderer", renderer)
        object.__setattr__(
            self,
            "_label_renderer",
            renderer
            if self.redaction_hook is None
            else Renderer(self.max_value_length, label_redactor),
        )
        object.__setattr__(self, "probe", probe_for(self.telemetry_method))

    def label(self, key: str, name: Any) -> str:
        """A name (tool, agent, model, provider, finish reason): redacted and bounded.

        Names get the built-in redaction but not the user's hook: they must stay recognisable
        (a hook that fails drops what it is given, and a row whose tool names are all
        "[REDACTED]" is no longer a valid row). They repeat on every call of a decorated
        function, so the rendered form is remembered (in a bounded dict: a program with endless
        distinct names only loses the cache).
        """
        if not isinstance(name, str) or len(name) > _LABEL_MAX_CACHED:
            return self._label_renderer.text(key, name)
        labels = self._labels
        rendered = labels.get((key, name))
        if rendered is None:
            rendered = self._label_renderer.text(key, name)
            if len(labels) >= _LABEL_CACHE_SIZE:
                labels.clear()
            labels[(key, name)] = rendered
        return rendered


def from_environment() -> Settings:
    """Settings as the environment variables describe them (defaults where unset)."""
    capture = _env_flag(ENV_CAPTURE_CONTENT)
    if capture is None:
        capture = _env_flag(ENV_OTEL_CAPTURE_CONTENT)
    redact = _env_flag(ENV_REDACT)
    return Settings(
        capture_content=True if capture is None else capture,
        max_value_length=_env_int(ENV_MAX_VALUE_LENGTH, DEFAULT_MAX_VALUE_LENGTH),
        telemetry_method=os.environ.get(ENV_TELEMETRY, "").strip()
        or semconv.TELEMETRY_METHOD_PRECISE,
        redact_secrets=redact is not False,
        redact_home=redact is not False,
    )


_current: Settings | None = None


def current() -> Settings:
    """The settings in force (read from the environment on first use).

    A malformed variable must not break the decorated code that triggered this first read: it is
    logged and the defaults apply. `configure()` reads the same variables and raises instead.
    """
    global _current
    if _current is None:
        try:
            _current = from_environment()
        except ValueError as exc:
            _logger.warning("agenttrace: %s; using the default settings", exc)
            _current = Settings()
    return _current


def replace(settings: Settings | None) -> None:
    """Install new settings (None: re-read the environment on next use)."""
    global _current
    _current = settings
