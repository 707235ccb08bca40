"""`configure()`: one call that sets up tracing for an instrumented agent.

It builds (or joins) the global TracerProvider, installs the instrumentation settings, and wires
the exporters the user asked for. It follows the OpenTelemetry SDK's habits: `OTEL_SERVICE_NAME`
and `OTEL_RESOURCE_ATTRIBUTES` shape the Resource, `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`,
`_PROTOCOL` and `_HEADERS` switch on OTLP export, `OTEL_TRACES_EXPORTER` names exporters from the
SDK's own registry, and `OTEL_SDK_DISABLED=true` turns tracing off. The names of the variables
are the SDK's constants, and the exporters and the provider read their own variables (headers,
timeouts, sampler, span limits), so nothing the SDK parses is parsed twice here.
If the application (or `opentelemetry-instrument`) already set a global SDK provider, configure()
adds to it instead of replacing it. At exit and on SIGTERM the AgentTrace files are completed
first and the backends get what is left of a bounded wait (`_exit` says how).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, cast
from urllib.parse import urlparse

from opentelemetry import trace
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from agenttrace import _exit, _resource, _settings
from agenttrace._exit import BoundedExporter, CountingBatchProcessor, ExportCounts
from agenttrace._redaction import RedactionHook

_logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "agenttrace"
DEFAULT_OTLP_TIMEOUT_S = 5.0
_EXPORTER_ENTRY_POINTS = "opentelemetry_traces_exporter"  # the SDK's registry of exporters
# The SDK's two protocol-specific OTLP names, each pinning the protocol as the SDK does.
_OTLP_PROTOCOL_BY_EXPORTER = {"otlp_proto_http": "http/protobuf", "otlp_proto_grpc": "grpc"}


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
# Every provider our processors were added to (a user's own via `tracer_provider=`, the global
# one): each gets them once, however often configure() switches between them.
_registered_on: weakref.WeakSet[TracerProvider] = weakref.WeakSet()
_atexit_installed = False
_otlp: CountingBatchProcessor | None = None  # the OTLP export configure() set up, if any


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _traces_exporter_names() -> list[str]:
    """`OTEL_TRACES_EXPORTER` as the SDK splits it: comma-separated, `none` for nothing."""
    raw = _env(OTEL_TRACES_EXPORTER) or ""
    return [name.strip().lower() for name in raw.split(",") if name.strip()]


def _registered_exporter(name: str) -> SpanExporter:
    """The span exporter registered under `name` in the `opentelemetry_traces_exporter` entry
    points: the registry the SDK's own auto-configuration resolves `OTEL_TRACES_EXPORTER` in, so
    any exporter package installed (zipkin, a vendor's) is chosen the same way here. The
    exporter reads its own `OTEL_*` variables, as it does under `opentelemetry-instrument`."""
    found = entry_points(group=_EXPORTER_ENTRY_POINTS, name=name)
    for entry_point in found:
        exporter_class = entry_point.load()
        return cast(SpanExporter, exporter_class())
    installed = {ep.name for ep in entry_points(group=_EXPORTER_ENTRY_POINTS)}
    known = sorted(installed | {"otlp", "none"})
    raise ValueError(
        f"{OTEL_TRACES_EXPORTER}={name!r}: no span exporter of that name is installed "
        f"(installed: {', '.join(known)})"
    )


def _otlp_exporter(
    endpoint: str | None,
    protocol: str | None,
    headers: Mapping[str, str] | None,
    timeout: float,
) -> SpanExporter:
    """An OTLP span exporter. With `endpoint` None it reads the OTEL_* variables itself."""
    protocol = (
        protocol
        or _env(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL)
        or "http/protobuf"  # the specification's default; gRPC is an extra here
    )
    kwargs: dict[str, Any] = {"timeout": timeout}
    if headers:
        kwargs["headers"] = dict(headers)
    if protocol == "grpc":
        try:  # an extra: gRPC is a large dependency most agents never use
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ImportError(
                "OTLP over gRPC needs the 'grpc' extra: pip install 'agenttrace[grpc]' "
                "(or use otlp_protocol='http/protobuf', included)"
            ) from exc

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


def shutdown(timeout_millis: int | None = None) -> bool:
    """Complete what configure() added, then return: open runs become incomplete rows and the
    Parquet twins are finished first, then batched exporters (OTLP) flush with the time left.

    Waits at most `timeout_millis` (default: `otlp_timeout`) in all, however many spans are queued
    for a backend that is down; returns whether everything finished in time. (Done for you at
    exit and on SIGTERM.)
    """
    return _exit.finish(None if timeout_millis is None else timeout_millis / 1000)


def otlp_counts() -> ExportCounts | None:
    """Spans offered to, delivered by and failed in the OTLP export configure() set up (or None).

    Final once `shutdown()` has returned: what was neither delivered nor failed by then was not
    sent.
    """
    return None if _otlp is None else _otlp.counts()


def _install_exit_hooks(handle_signals: bool | None) -> None:
    """Finish at interpreter exit, and on SIGTERM unless opted out (`handle_signals=False`,
    `AGENTTRACE_HANDLE_SIGNALS=0`); an application's own SIGTERM handler is called after ours."""
    global _atexit_installed
    if not _atexit_installed:
        _atexit_installed = True
        atexit.register(_exit.at_exit)
    _exit.install_sigterm(_exit.wants_signals(handle_signals))


def _otlp_endpoint_label(endpoint: str | None) -> str:
    return (
        endpoint
        or _env(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT)
        or "the default OTLP endpoint"
    )


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
    handle_signals: bool | None = None,
    tracer_provider: TracerProvider | None = None,
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

    Exit (interpreter exit, `shutdown()`, SIGTERM) completes the files first, then gives batched
    exporters what is left of `otlp_timeout` seconds in all. On SIGTERM the runs still open are
    written as incomplete rows and the process then dies of SIGTERM; an application's SIGTERM
    handler installed earlier is called after ours instead. (A main thread that cannot run a
    Python handler does not hold the files back on Linux: see the README.) `handle_signals=False`
    (or `AGENTTRACE_HANDLE_SIGNALS=0`) leaves SIGTERM alone.

    `tracer_provider` is a provider of your own: agenttrace's spans are started on it and its
    processors get configure()'s additions, while the global provider is left alone (neither read
    nor set), so an application can keep agent traces apart from the rest. Like a provider set up
    before configure(), it keeps its own Resource and exports what its owner asked for.
    """
    global _otlp
    if tracer_provider is not None and not isinstance(tracer_provider, TracerProvider):
        raise TypeError("configure(tracer_provider=...) takes an SDK TracerProvider")
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
    from agenttrace._invocations import use_tracer_provider

    use_tracer_provider(tracer_provider)  # None: the global provider, whenever it is set
    if (_env(OTEL_SDK_DISABLED) or "").lower() == "true":
        return None

    existing = trace.get_tracer_provider() if tracer_provider is None else tracer_provider
    created = not isinstance(existing, TracerProvider)
    if not isinstance(existing, TracerProvider):  # = created; spelled out so `existing` narrows
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
    local: list[SpanProcessor] = []  # completed first at exit: the durable record
    # OTEL_TRACES_EXPORTER, as the SDK reads it, when configure() creates the provider (a
    # provider set up elsewhere already exports what its owner asked for). `otlp` follows the
    # protocol variables, `agenttrace` is the file processor below, any other name is looked up
    # where the SDK looks it up. Unset, OTLP is on when an endpoint variable is set.
    env_exporters = _traces_exporter_names() if created else []
    if "none" in env_exporters:
        env_exporters = []
    otlp_protocol = otlp_protocol or _OTLP_PROTOCOL_BY_EXPORTER.get(
        next((n for n in env_exporters if n in _OTLP_PROTOCOL_BY_EXPORTER), "")
    )
    output = output or _env("AGENTTRACE_OUTPUT")
    if output or "agenttrace" in env_exporters:
        from opentelemetry.exporter.agenttrace import AgentTraceSpanProcessor

        local.append(AgentTraceSpanProcessor(output, parquet=parquet, strict=strict))
        processors.extend(local)
    registered = [
        _registered_exporter(name)
        for name in env_exporters
        if name not in ("agenttrace", "console", "otlp", *_OTLP_PROTOCOL_BY_EXPORTER)
    ]
    batched = [BoundedExporter(exporter) for exporter in (*span_exporters, *registered)]
    processors.extend(BatchSpanProcessor(exporter) for exporter in batched)
    env_endpoint = _env(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT)
    wants_otlp = any(n == "otlp" or n in _OTLP_PROTOCOL_BY_EXPORTER for n in env_exporters) or (
        created and bool(env_endpoint) and not _traces_exporter_names()
    )
    _otlp = None
    if otlp_endpoint or wants_otlp:
        otlp = BoundedExporter(
            _otlp_exporter(otlp_endpoint, otlp_protocol, otlp_headers, otlp_timeout)
        )
        batched.append(otlp)
        _otlp = CountingBatchProcessor(
            otlp,
            _otlp_endpoint_label(otlp_endpoint),
            export_timeout_millis=int(otlp_timeout * 1000),
        )
        processors.append(_otlp)
    if console or "console" in env_exporters:
        processors.append(SimpleSpanProcessor(ConsoleSpanExporter()))

    _exit.set_pipeline(
        _exit.Pipeline(tuple(local), tuple(batched), _owned.shutdown, timeout_s=otlp_timeout)
    )
    _owned.replace(processors)
    if provider not in _registered_on:
        from agenttrace._redacting import RedactingSpanProcessor  # other scopes' spans, redacted

        provider.add_span_processor(RedactingSpanProcessor(_owned))
        _registered_on.add(provider)
    if created:
        trace.set_tracer_provider(provider)
    _install_exit_hooks(handle_signals)
    return provider
