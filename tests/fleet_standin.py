"""A stand-in for the compose `fleet` profile where no container engine runs: one process that
takes OTLP/HTTP where the agent collector listens and does what the profile's collectors do
together, routing each trace to one of two gateways by its id (the loadbalancing exporter) and
writing each gateway's requests as the collector's `file` exporter writes them: one OTLP JSON
ExportTraceServiceRequest per line, ids in hex, enums as numbers.

    python tests/fleet_standin.py --port 5318 --out collector-output/fleet

The collector configuration itself is checked elsewhere (the real Compose binary, and the YAML);
this is only the closest thing to it that runs here, for the README's fleet commands.
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

GATEWAYS = 2
_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(value: Any) -> Any:
    """OTLP JSON writes ids as hex; protobuf's JSON mapping writes bytes as base64."""
    if isinstance(value, dict):
        return {
            key: base64.b64decode(item).hex()
            if key in _ID_KEYS and isinstance(item, str)
            else _hex_ids(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(item) for item in value]
    return value


def _by_gateway(request: trace_service_pb2.ExportTraceServiceRequest) -> dict[int, dict[str, Any]]:
    """The request split per gateway: every span of a trace to the same one."""
    parts: dict[int, dict[str, Any]] = {}
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                gateway = zlib.crc32(span.trace_id) % GATEWAYS
                one = trace_service_pb2.ExportTraceServiceRequest()
                rs = one.resource_spans.add()
                rs.resource.CopyFrom(resource_spans.resource)
                rs.schema_url = resource_spans.schema_url
                ss = rs.scope_spans.add()
                ss.scope.CopyFrom(scope_spans.scope)
                ss.schema_url = scope_spans.schema_url
                ss.spans.add().CopyFrom(span)
                payload = _hex_ids(MessageToDict(one, use_integers_for_enums=True))
                merged = parts.setdefault(gateway, {"resourceSpans": []})
                merged["resourceSpans"].extend(payload["resourceSpans"])
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    files = {}
    for number in range(GATEWAYS):
        folder = args.out / f"gateway-{number + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        files[number] = open(folder / "traces.jsonl", "a", encoding="utf-8")  # noqa: SIM115
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            with lock:
                for gateway, payload in _by_gateway(request).items():
                    files[gateway].write(json.dumps(payload, separators=(",", ":")) + "\n")
                    files[gateway].flush()
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()
    for handle in files.values():
        handle.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
