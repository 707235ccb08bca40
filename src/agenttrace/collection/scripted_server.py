"""An OpenAI-compatible chat-completions server that answers from a script, over real HTTP.

It stands in for llama-server or vLLM where no model can run (no GPU, no weights): the real
`openai` client talks to it over HTTP, streaming or not, with tool calls, `reasoning_content` and
usage, exactly as it would to a real server. Two kinds of script:

* scripted responses for known prompts (the bundled tasks' `scripted` steps);
* a replay of the recorded `llm_steps` of an AgentTrace file, in order, so a published run is
  re-driven and its tool calls re-executed here for fresh telemetry.

A request's step is the number of assistant messages already in it, and its task is its first user
message. Unknown prompts, or steps past the end of a script, get a `final_answer` call, so an
agent loop always ends. The model names `error-400` and `error-500` make the server fail the
request, for exercising clients' error paths.

Run as a process (`python -m agenttrace.collection.scripted_server --port 8080`) it serves the
bundled tasks' scripts, standing in for `llama-server` in commands written for one; it prints its
base URL once it listens and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: A scripted model step: "content", "reasoning", "tool_calls" ([{"name", "arguments"}]) and
#: optional "prompt_tokens" / "completion_tokens" / "reasoning_tokens".
Step = dict[str, Any]
Responder = Callable[[dict[str, Any]], Step]

_FALLBACK: Step = {
    "content": None,
    "reasoning": "There is nothing more in the script for this task.",
    "tool_calls": [{"name": "final_answer", "arguments": {"answer": "unknown task"}}],
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def task_prompt(messages: Iterable[Mapping[str, Any]]) -> str:
    """The task a request is about: its first user message."""
    for message in messages:
        if message.get("role") == "user":
            return _text_of(message.get("content")).strip()
    return ""


def step_index(messages: Iterable[Mapping[str, Any]]) -> int:
    return sum(1 for message in messages if message.get("role") == "assistant")


class ScriptResponder:
    """Answers each task's requests with its scripted steps, in order."""

    def __init__(self, scripts: Mapping[str, list[Step]]) -> None:
        self.scripts = {prompt.strip(): list(steps) for prompt, steps in scripts.items()}
        self.requests = 0

    def __call__(self, request: dict[str, Any]) -> Step:
        self.requests += 1
        messages = request.get("messages") or []
        steps = self._script_for(task_prompt(messages))
        index = step_index(messages)
        if not steps or index >= len(steps):
            return _FALLBACK
        return steps[index]

    def _script_for(self, prompt: str) -> list[Step] | None:
        """The script of `prompt`; else of the longest scripted task the prompt quotes, since
        agent frameworks wrap the task in their own words ("New task:\n...")."""
        steps = self.scripts.get(prompt)
        if steps is None:
            quoted = [known for known in self.scripts if known and known in prompt]
            if quoted:
                steps = self.scripts[max(quoted, key=len)]
        return steps


def steps_from_row(row: Mapping[str, Any]) -> list[Step]:
    """The scripted steps that replay a recorded AgentTrace row's model output."""
    steps = []
    for step in row.get("llm_steps") or []:
        steps.append(
            {
                "content": step.get("model_output"),
                "reasoning": step.get("reasoning_content"),
                "tool_calls": [
                    {"name": call.get("name", ""), "arguments": call.get("arguments") or {}}
                    for call in step.get("tool_calls") or []
                ],
                "prompt_tokens": step.get("input_tokens"),
                "completion_tokens": step.get("output_tokens"),
            }
        )
    return steps


def replay_responder(rows: Iterable[Mapping[str, Any]]) -> ScriptResponder:
    """A responder replaying the `llm_steps` of recorded rows, keyed by their prompts."""
    return ScriptResponder({str(row.get("prompt", "")): steps_from_row(row) for row in rows})


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)  # the usual rough estimate: ~4 characters a token


def _call_id(prompt: str, index: int, position: int) -> str:
    digest = hashlib.sha256(f"{prompt}\0{index}\0{position}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def _pieces(text: str, size: int = 16) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class ScriptedModelServer:
    """`with ScriptedModelServer(responder) as server: OpenAI(base_url=server.base_url, ...)`."""

    def __init__(
        self,
        responder: Responder,
        *,
        model: str = "scripted-model",
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
    ) -> None:
        """`latency_s` is added before each completion, as a model's generation time would be."""
        self.responder = responder
        self.model = model
        self.latency_s = latency_s
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (`http://host:port/v1`)."""
        if self._server is None:
            raise RuntimeError("the server is not running")
        host, port = self._server.socket.getsockname()[:2]  # = server_address, typed str/bytes too
        return f"http://{host}:{port}/v1"

    def start(self) -> ScriptedModelServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._server = _QuietServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- responses ---------------------------------------------------------------------------
    def completion(self, request: dict[str, Any]) -> tuple[Step, dict[str, Any]]:
        """The step for a request, and its usage figures."""
        step = self.responder(request)
        messages = request.get("messages") or []
        produced = (step.get("content") or "") + (step.get("reasoning") or "")
        produced += "".join(json.dumps(c.get("arguments")) for c in step.get("tool_calls") or [])
        usage = {
            "prompt_tokens": step.get("prompt_tokens") or _tokens(json.dumps(messages)),
            "completion_tokens": step.get("completion_tokens") or _tokens(produced),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        reasoning_tokens = step.get("reasoning_tokens")
        if reasoning_tokens is None and step.get("reasoning"):
            reasoning_tokens = _tokens(step["reasoning"])
        if reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
        return step, usage


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # a client hanging up is not news


class _Handler(BaseHTTPRequestHandler):
    owner: ScriptedModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            model = {"id": self.owner.model, "object": "model", "owned_by": "agenttrace"}
            self._json(200, {"object": "list", "data": [model]})
        elif self.path in ("/health", "/healthz"):
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        except ValueError:
            self._json(
                400, {"error": {"message": "the body is not JSON", "type": "invalid_request"}}
            )
            return
        model = str(request.get("model") or self.owner.model)
        if model.startswith("error-") and model != "error-midstream":
            status = int(model.split("-", 1)[1]) if model[6:].isdigit() else 500
            self._json(
                status, {"error": {"message": f"scripted failure {status}", "type": "scripted"}}
            )
            return
        if self.owner.latency_s > 0:
            time.sleep(self.owner.latency_s)
        step, usage = self.owner.completion(request)
        prompt = task_prompt(request.get("messages") or [])
        index = step_index(request.get("messages") or [])
        calls = [
            {
                "id": _call_id(prompt, index, position),
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments") or {})},
            }
            for position, c in enumerate(step.get("tool_calls") or [])
        ]
        finish = "tool_calls" if calls else "stop"
        ident = f"chatcmpl-{hashlib.sha256(f'{prompt}{index}'.encode()).hexdigest()[:20]}"
        created = int(time.time())
        if request.get("stream"):
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            try:
                self._stream(
                    ident, created, model, step, calls, finish, usage if include_usage else None
                )
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: fine
                self.close_connection = True
            return
        message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
        if step.get("reasoning") is not None:
            message["reasoning_content"] = step["reasoning"]
        if calls:
            message["tool_calls"] = calls
        self._json(
            200,
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            },
        )

    def _stream(
        self,
        ident: str,
        created: int,
        model: str,
        step: Step,
        calls: list[dict[str, Any]],
        finish: str,
        usage: dict[str, Any] | None,
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def event(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())

        def delta(payload: dict[str, Any], finish_reason: str | None = None) -> None:
            event([{"index": 0, "delta": payload, "finish_reason": finish_reason}])

        delta({"role": "assistant", "content": ""})
        if step.get("reasoning"):
            for piece in _pieces(step["reasoning"]):
                delta({"reasoning_content": piece})
        if step.get("content"):
            for piece in _pieces(step["content"]):
                delta({"content": piece})
        if model == "error-midstream":  # the connection breaks halfway through the reply
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        for position, call in enumerate(calls):
            head = {
                "index": position,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            delta({"tool_calls": [head]})
            for piece in _pieces(call["function"]["arguments"]):
                delta({"tool_calls": [{"index": position, "function": {"arguments": piece}}]})
        delta({}, finish)
        if usage is not None:
            event([], usage=usage)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the bundled NL2Bash and MBPP scripts until SIGTERM or SIGINT."""
    import argparse
    import signal

    from agenttrace.collection.tasks import DATASETS, scripted_steps

    parser = argparse.ArgumentParser(
        prog="python -m agenttrace.collection.scripted_server",
        description="An OpenAI-compatible server answering the bundled tasks from their scripts.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--model", default="scripted-model", help="model name it reports")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="added to every completion (default 0)"
    )
    args = parser.parse_args(argv)
    scripts: dict[str, list[Step]] = {}
    for dataset in DATASETS:
        scripts.update(scripted_steps(dataset))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = ScriptedModelServer(
        ScriptResponder(scripts),
        model=args.model,
        host=args.host,
        port=args.port,
        latency_s=args.latency_ms / 1000,
    )
    with server:
        print(server.base_url, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
