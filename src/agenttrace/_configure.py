"""`configure()`: one call that sets up tracing for an instrumented agent.

It builds (or joins) the global TracerProvider, installs the instrumentation settings, and wires
the exporters the user asked for. It follows the OpenTelemetry SDK's habits: `OTEL_SERVICE_NAME`
and `OTEL_RESOURCE_ATTRIBUTES` shape the Resource, `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`,
`_PROTOCOL` and `_HEADERS` switch on OTLP export, and `OTEL_SDK_DISABLED=true` turns tracing off.
If the application (or `opentelemetry-instrument`) already set a global SDK provider, configure()
adds to it instead of replacing it. Spans are flushed at exit and on SIGTERM.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from agenttrace import _resource, _settings
from agenttrace._redaction import RedactionHook

_logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "agenttrace"
DEFAULT_OTLP_TIMEOUT_S = 5.0


class _Processors(SpanProcessor):
    """The processors configure() owns, registered once per provider and swapped on reconfigure.

    The SDK cannot remove a processor from a provider; holding ours behind this one lets a second
    configure() replace the first one's exporters instead of doubling every span.
    """

    def __init__(self) -> None:
        self._processors: tuple[SpanProcessor, ...] = ()
        self._lock = threading.Lock()

    def replace(self, processors: Sequence[SpanProcessor]) -> None:
        with self._lock:
            old, self._processors = self._processors, tuple(processors)
        for processor in old:
            processor.shutdown()

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        for processor in self._processors:
            processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        with self._lock:
            processors, self._processors = self._processors, ()
        for processor in processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        results = [p.force_flush(timeout_millis) for p in self._processors]  # every one of them
        return all(results)


_owned = _Processors()
_registered_on: TracerProvider | None = None
_atexit_installed = False
_sigterm_installed = False


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _parse_headers(raw: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in (raw or "").split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            headers[key.strip().lower()] = value.strip()
    return headers


def _otlp_exporter(
    endpoint: str | None,
    protocol: str | None,
    headers: Mapping[str, str] | None,
    timeout: float,
) -> SpanExporter:
    """An OTLP span exporter. With `endpoint` None it reads the OTEL_* variables itself."""
    protocol = (
        protocol
        or _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    kwargs: dict[str, Any] = {"timeout": timeout}
    if headers:
        kwargs["headers"] = dict(headers)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        if endpoint:
            parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
            kwargs["endpoint"] = endpoint
            kwargs["insecure"] = parsed.scheme != "https"
        return OTLPSpanExporter(**kwargs)
    if protocol in ("http/protobuf", "http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HTTPSpanExporter,
        )

        if endpoint:
            parsed = urlparse(endpoint)
            # A base URL (http://host:4318) gets the traces path, as the SDK does for the env var.
            if parsed.path in ("", "/"):
                endpoint = endpoint.rstrip("/") + "/v1/traces"
            kwargs["endpoint"] = endpoint
        return HTTPSpanExporter(**kwargs)
    raise ValueError(f"unsupported OTLP protocol {protocol!r}: use 'grpc' or 'http/protobuf'")


def build_resource(
    service_name: str | None = None,
    service_version: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Resource:
    """Detected host/OS/runtime/hardware, under OTEL_* variables, under explicit arguments.

    Precedence is the SDK's `Resource.create`: OTEL_SERVICE_NAME beats OTEL_RESOURCE_ATTRIBUTES,
    and attributes given in code beat both. The service name defaults to "agenttrace".
    """
    explicit: dict[str, Any] = dict(attributes or {})
    if service_name:
        explicit[SERVICE_NAME] = service_name
    if service_version:
        explicit[SERVICE_VERSION] = service_version
    resource = Resource(_resource.detect()).merge(Resource.create(explicit))
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _flush_owned(timeout_millis: int = 5_000, *, finish: bool = False) -> None:
    """Flush every exporter; with `finish`, also close what configure() added (the process is
    ending): runs still open become incomplete rows and Parquet files are completed."""
    try:
        provider = trace.get_tracer_provider()
        if isinstance(provider, TracerProvider):
            provider.force_flush(timeout_millis)
        else:
            _owned.force_flush(timeout_millis)
        if finish:
            _owned.shutdown()
    except Exception:  # flushing at exit must never turn a clean exit into a crash
        _logger.debug("agenttrace: flush at exit failed", exc_info=True)


def shutdown(timeout_millis: int = 5_000) -> None:
    """Flush every exporter and close what configure() added: open runs are written as incomplete
    rows and Parquet files are completed. (Done for you at exit and on SIGTERM.)"""
    _flush_owned(timeout_millis, finish=True)


_terminated = False  # set when our SIGTERM handler turned the signal into an orderly exit
#: Seconds an orderly exit after SIGTERM may take before the process dies of SIGTERM anyway.
SIGTERM_GRACE_S = 10.0


def _at_exit() -> None:
    _flush_owned(finish=True)
    if _terminated:
        # Everything is written: now die of SIGTERM, as the process would have without us.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Turn SIGTERM into an orderly exit of the main thread.

    Flushing here would take locks the interrupted code may be holding (a row half written), so
    the handler only raises SystemExit: the stack unwinds, spans end, locks are released, and the
    atexit hook writes what is left and then re-raises SIGTERM.
    """
    global _terminated
    _terminated = True
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
    # Native code may swallow the exception (or the exit may stall): the rows already written are
    # safe on disk, so after a grace period the process dies of SIGTERM regardless.
    watchdog = threading.Timer(SIGTERM_GRACE_S, os.kill, (os.getpid(), signal.SIGTERM))
    watchdog.daemon = True
    watchdog.start()
    raise SystemExit(128 + signum)


def _install_exit_hooks() -> None:
    """Flush at interpreter exit, and on SIGTERM (unless the application handles it itself)."""
    global _atexit_installed, _sigterm_installed
    if not _atexit_installed:
        _atexit_installed = True
        atexit.register(_at_exit)
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be installed from the main thread: try next time
    _sigterm_installed = True
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # ignored, or the application's own handler: its exit runs the atexit flush
    with contextlib.suppress(ValueError, OSError):  # embedded interpreters may refuse
        signal.signal(signal.SIGTERM, _on_sigterm)


def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: str | None = None,
    otlp_headers: Mapping[str, str] | None = None,
    otlp_timeout: float = DEFAULT_OTLP_TIMEOUT_S,
    console: bool = False,
    span_exporters: Iterable[SpanExporter] = (),
    span_processors: Iterable[SpanProcessor] = (),
    output: str | os.PathLike[str] | None = None,
    parquet: bool | None = None,
    strict: bool | None = None,
    capture_content: bool | None = None,
    max_value_length: int | None = None,
    telemetry: str | None = None,
    redact_secrets: bool | None = None,
    redact_home: bool | None = None,
    redact_paths: Mapping[str, str] | None = None,
    redaction_hook: RedactionHook | None = None,
) -> TracerProvider | None:
    """Set up tracing for instrumented agents; returns the TracerProvider in use.

    Arguments left as None take their value from the environment (`AGENTTRACE_*`, `OTEL_*`), then
    from the defaults: content captured, values bounded to 32 KiB, `precise` telemetry, secrets and
    the home directory redacted. OTLP export is on when `otlp_endpoint` is given, or when an
    `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` variable is set and configure() creates the provider
    (a provider someone else set up already exports what its owner asked for); there,
    `OTEL_TRACES_EXPORTER` (otlp, console, agenttrace, none) chooses as it does for the SDK.
    `span_exporters` are batched; `span_processors` are added as they are. Calling configure()
    again replaces what the previous call added.

    `output` (or `AGENTTRACE_OUTPUT`) is an AgentTrace JSONL file: each run's row is appended the
    moment the run ends, and a Parquet twin (`parquet`, default on) is finished at exit. `strict`
    writes pure schema 0.3.0 rows.
    """
    global _registered_on
    env_settings = _settings.from_environment()
    _settings.replace(
        _settings.Settings(
            capture_content=env_settings.capture_content
            if capture_content is None
            else capture_content,
            max_value_length=max_value_length or env_settings.max_value_length,
            telemetry_method=telemetry or env_settings.telemetry_method,
            redact_secrets=env_settings.redact_secrets
            if redact_secrets is None
            else redact_secrets,
            redact_home=env_settings.redact_home if redact_home is None else redact_home,
            redact_paths=dict(redact_paths or {}),
            redaction_hook=redaction_hook,
        )
    )
    if (_env("OTEL_SDK_DISABLED") or "").lower() == "true":
        return None

    existing = trace.get_tracer_provider()
    created = not isinstance(existing, TracerProvider)
    if created:
        provider = TracerProvider(
            resource=build_resource(service_name, service_version, resource_attributes)
        )
    else:
        provider = existing
        if service_name or resource_attributes:
            _logger.warning(
                "agenttrace.configure: a TracerProvider is already set; its Resource is kept and "
                "service_name/resource_attributes are ignored"
            )

    processors: list[SpanProcessor] = list(span_processors)
    # OTEL_TRACES_EXPORTER, as the SDK reads it (otlp, console, none, agenttrace), when
    # configure() creates the provider; unset, OTLP is on when an endpoint variable is set.
    env_exporters = {
        name.strip().lower()
        for name in (_env("OTEL_TRACES_EXPORTER") or "").split(",")
        if name.strip()
    }
    if not created:
        env_exporters = set()
    output = output or _env("AGENTTRACE_OUTPUT")
    if output or "agenttrace" in env_exporters:
        from opentelemetry.exporter.agenttrace import AgentTraceSpanProcessor

        processors.append(AgentTraceSpanProcessor(output, parquet=parquet, strict=strict))
    processors.extend(BatchSpanProcessor(exporter) for exporter in span_exporters)
    env_endpoint = _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    wants_otlp = "otlp" in env_exporters or (
        created and env_endpoint and not env_exporters - {"otlp"} and "none" not in env_exporters
    )
    if otlp_endpoint or (wants_otlp and "none" not in env_exporters):
        exporter = _otlp_exporter(otlp_endpoint, otlp_protocol, otlp_headers, otlp_timeout)
        processors.append(
            BatchSpanProcessor(exporter, export_timeout_millis=int(otlp_timeout * 1000))
        )
    if console or "console" in env_exporters:
        processors.append(SimpleSpanProcessor(ConsoleSpanExporter()))

    _owned.replace(processors)
    if _registered_on is not provider:
        provider.add_span_processor(_owned)
        _registered_on = provider
    if created:
        trace.set_tracer_provider(provider)
    _install_exit_hooks()
    return provider
