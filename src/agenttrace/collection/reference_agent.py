"""The reference agent: a plain tool-calling loop on the `openai` client, fully instrumented.

No agent framework: the model is called through the real `openai` client (traced by
`instrument_openai`), and its tool calls run through three `@tool`s with the release's names and
arguments:

* `bash(command)`: a real `bash -c` subprocess in a private copy of the NL2Bash fixture, in its
  own process group, killed after `bash_timeout` seconds; InterCode's paths (`/system`,
  `/testbed`, `/workspace`) are mapped into the copy and mapped back in what the model reads; the
  exit code is kept on the span.
* `python_interpreter(code)`: a fresh `python -I` process (isolated mode: no site-packages of the
  user, no environment variables read) in an empty temporary directory, with limits on address
  space, CPU time, file size and open files, killed after `python_timeout` seconds. It is not a
  security sandbox: the network and the rest of the file system are reachable.
* `final_answer(answer)`: ends the run.

Neither tool inherits the agent's environment. `bash` gets PATH, HOME, USER, LOGNAME, SHELL,
LANG, LANGUAGE, LC_*, TZ, TERM and TMPDIR; `python_interpreter` gets PATH=/usr/bin:/bin and
LANG=C.UTF-8; both also get the variables named in `AgentConfig.pass_env`. A key in the agent's
environment (`OPENAI_API_KEY`, `DB_PASSWORD`) is therefore neither in a recorded tool output nor
shown to the model.

The run stops at `final_answer`, at a reply without tool calls, or after `max_steps` model steps.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import agenttrace
from agenttrace.collection import fixture
from agenttrace.collection.tasks import NL2BASH, Task
from agenttrace.integrations.openai import _StepAccumulator
from agenttrace.version import __version__

SYSTEM_PROMPT = """\
You are an agent that solves tasks by calling tools, one step at a time.
Tools:
- bash(command): run a shell command on a Linux machine whose files are under /system, /testbed
  and /workspace; you get its output and exit code. /workspace is yours to write in.
- python_interpreter(code): run Python code in a fresh interpreter; you get what it prints.
- final_answer(answer): give your final answer; this ends the task.
Think briefly, then call a tool. Check results before answering. When you are done, call
final_answer with the answer alone (for a coding task, the complete code)."""

TOOL_SPECS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "bash",
            "description": "Run a shell command and return its output.",
            "parameters": {
                "type": "object",
                "properties": {"command": {"type": "string", "description": "The command."}},
                "required": ["command"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "python_interpreter",
            "description": "Run Python code in a fresh interpreter and return what it prints.",
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "description": "The Python code."}},
                "required": ["code"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "final_answer",
            "description": "Give the final answer and end the task.",
            "parameters": {
                "type": "object",
                "properties": {"answer": {"type": "string", "description": "The answer."}},
                "required": ["answer"],
            },
        },
    },
]

_INTERCODE_PATH = re.compile(r"(?<![\w./-])/(system|testbed|workspace)(?=/|\b|$)")
_OUTPUT_LIMIT = 20_000  # characters of tool output shown to the model
_PYTHON_BOOTSTRAP = """\
import resource, sys
memory = int(sys.argv[2]) * 1024 * 1024
for limit, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, int(sys.argv[3])),
                     (resource.RLIMIT_FSIZE, 64 * 1024 * 1024), (resource.RLIMIT_NOFILE, 64)):
    try:
        resource.setrlimit(limit, (value, value))
    except (ValueError, OSError):
        pass
code = sys.argv[1]
del sys.argv[1:]
exec(compile(code, "<python_interpreter>", "exec"), {"__name__": "__main__"})
"""
#: What `bash` inherits from the agent's environment by default (`LC_*`: every name starting LC_).
BASH_ENV_ALLOWED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TERM",
    "TMPDIR",
)
#: The whole environment of `python_interpreter` by default (`python -I` reads none of it).
PYTHON_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass
class AgentConfig:
    """How the agent talks to the model and runs tools; all of it lands in the row metadata."""

    model: str
    max_steps: int = 10
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stream: bool = False
    bash_timeout: float = 30.0
    python_timeout: float = 30.0
    python_memory_mb: int = 1024
    extra_body: dict[str, Any] = field(default_factory=dict)
    #: Environment variables the `bash` and `python_interpreter` tools also get from the agent's
    #: environment (names; `NAME*` for every name that starts with NAME). Only the names land in
    #: the row metadata, never the values.
    pass_env: tuple[str, ...] = ()
    #: `metadata.collector_version` of the rows (default: this project's name and version). The
    #: release's own label, "0.3.0", makes them release rows, held to the release's rules.
    collector_version: str | None = None

    def sampling(self) -> dict[str, Any]:
        values = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass
class RunResult:
    answer: str | None
    steps: int
    stop_reason: str


def tool_environment(
    names: tuple[str, ...], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables of `environ` (default: this process's) that `names` allow.

    `NAME*` allows every name that starts with NAME. An allow-list rather than a deny-list: a
    secret is kept out whatever it is called.
    """
    source = os.environ if environ is None else environ
    exact: set[str] = set()
    prefixes: list[str] = []
    for name in names:
        if name.endswith("*"):
            prefixes.append(name[:-1])
        else:
            exact.add(name)
    return {
        name: value
        for name, value in source.items()
        if name in exact or any(name.startswith(prefix) for prefix in prefixes)
    }


def _without_password(url: str) -> str:
    """`url` with the password of its user part removed (the user name stays)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{parts.username}@{host}" if parts.username else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:  # not a URL we can take apart: keep nothing of it
        return "<unparseable URL>"


def _clip(text: str) -> str:
    if len(text) <= _OUTPUT_LIMIT:
        return text
    return text[:_OUTPUT_LIMIT] + f"\n[output truncated: {len(text)} characters in all]"


class ReferenceAgent:
    """Runs tasks against an OpenAI-compatible server. `client` is an `openai.OpenAI`."""

    def __init__(
        self, client: Any, config: AgentConfig, *, fixture_root: Path | None = None
    ) -> None:
        self.client = agenttrace.instrument_openai(client)
        self.config = config
        self.fixture_root = fixture_root
        # The task's fixture copy, per run: runs in other threads (collect --concurrency) have
        # their own, and tool threads a framework starts inherit it with the context.
        self._workdir_var: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
            "agenttrace_task_workdir", default=None
        )

    @property
    def _workdir(self) -> Path | None:
        return self._workdir_var.get()

    # -- tools ------------------------------------------------------------------------------
    def _to_host(self, command: str) -> str:
        root = self._workdir
        return _INTERCODE_PATH.sub(lambda m: f"{root}/{m.group(1)}", command) if root else command

    def _from_host(self, text: str) -> str:
        return text.replace(str(self._workdir), "") if self._workdir else text

    @agenttrace.tool(name="bash", description="Run a shell command and return its output.")
    def bash(self, command: str) -> str:
        return self.run_bash(command)

    @agenttrace.tool(
        name="python_interpreter", description="Run Python code in a fresh interpreter."
    )
    def python_interpreter(self, code: str) -> str:
        return self.run_python(code)

    @agenttrace.tool(name="final_answer", description="Give the final answer and end the task.")
    def final_answer(self, answer: str) -> str:
        return answer

    # The tools' work, untraced: for agents whose framework traces its tool calls itself.
    def run_bash(self, command: str) -> str:
        """`command` in this task's fixture copy: its output, its exit code when not 0."""
        cwd = self._workdir / "testbed" if self._workdir else None
        try:
            done = agenttrace.tools.run(
                ["bash", "-c", self._to_host(command)],
                cwd=cwd,
                env=tool_environment(BASH_ENV_ALLOWED + tuple(self.config.pass_env)),
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.config.bash_timeout,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as expired:
            call = agenttrace.current_tool_call()
            if call is not None:
                call.set_exit_code(124)  # what `timeout(1)` reports
            partial = expired.stdout or ""
            partial = partial if isinstance(partial, str) else partial.decode("utf-8", "replace")
            return _clip(self._from_host(partial)) + (
                f"\n[timed out after {self.config.bash_timeout:g} s]"
            )
        output = self._from_host(done.stdout + done.stderr)
        if done.returncode:
            output += f"\n[exit code {done.returncode}]"
        return _clip(output)

    def run_python(self, code: str) -> str:
        """`code` in a fresh, limited `python -I`: its output, its exit code when not 0."""
        limit = self.config.python_timeout
        with tempfile.TemporaryDirectory(prefix="agenttrace-python-") as scratch:
            try:
                done = agenttrace.tools.run(
                    [
                        sys.executable,
                        "-I",
                        "-c",
                        _PYTHON_BOOTSTRAP,
                        code,
                        str(self.config.python_memory_mb),
                        str(int(limit) + 1),
                    ],
                    cwd=scratch,
                    capture_output=True,
                    text=True,
                    errors="replace",
                    timeout=limit,
                    start_new_session=True,
                    env={**PYTHON_ENV, **tool_environment(tuple(self.config.pass_env))},
                )
            except subprocess.TimeoutExpired:
                call = agenttrace.current_tool_call()
                if call is not None:
                    call.set_exit_code(124)
                return f"[timed out after {limit:g} s]"
        output = done.stdout + done.stderr
        if done.returncode:
            output += f"\n[exit code {done.returncode}]"
        return _clip(output)

    # -- the loop ---------------------------------------------------------------------------
    def _complete(self, messages: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
        """One model step: the assistant message to append, and its tool calls."""
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "tools": TOOL_SPECS,
            **self.config.sampling(),
        }
        if self.config.extra_body:
            request["extra_body"] = self.config.extra_body
        if self.config.stream:
            request["stream"] = True
            request["stream_options"] = {"include_usage": True}
            accumulator = _StepAccumulator()
            for chunk in self.client.chat.completions.create(**request):
                accumulator.feed(chunk)
            step = accumulator.record()
            calls = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in step.tool_calls
            ]
            message: dict[str, Any] = {"role": "assistant", "content": step.text}
        else:
            response = self.client.chat.completions.create(**request)
            reply = response.choices[0].message
            calls = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in reply.tool_calls or []
            ]
            message = {"role": "assistant", "content": reply.content}
        if calls:
            message["tool_calls"] = calls
        return message, calls

    def _call_tool(self, call: dict[str, Any]) -> tuple[str, bool]:
        """Run one tool call; returns what the model reads and whether the run is over."""
        name = call["function"]["name"]
        tools: dict[str, Callable[..., str]] = {
            "bash": self.bash,
            "python_interpreter": self.python_interpreter,
            "final_answer": self.final_answer,
        }
        if name not in tools:
            return f"error: there is no tool named {name!r}", False
        try:
            arguments = json.loads(call["function"]["arguments"] or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            return f"error: the arguments are not a JSON object ({exc})", False
        try:
            with agenttrace.using_call_id(call["id"]):
                result = tools[name](**arguments)
        except TypeError as exc:  # wrong argument names
            return f"error: {exc}", False
        except Exception as exc:  # the span has it; the model gets the message
            return f"error: {type(exc).__name__}: {exc}", False
        return str(result), name == "final_answer"

    def agent_label(self) -> str:
        """The agent, as row metadata names it (`metadata.agent`)."""
        return f"agenttrace-reference-agent/{__version__}"

    def metadata(self, task: Task, run_id: str) -> dict[str, Any]:
        base_url = getattr(self.client, "base_url", None)
        metadata: dict[str, Any] = {
            "dataset_name": task.dataset,
            "source": task.source,
            "task_id": task.task_id,
            "run_id": run_id,
            "dataset_split": task.split,
            "agent": self.agent_label(),
            "serving": {
                "base_url": _without_password(str(base_url)) if base_url is not None else None,
                "model": self.config.model,
                "stream": self.config.stream,
                **self.config.sampling(),
            },
            "max_steps": self.config.max_steps,
            "tool_timeouts_s": {
                "bash": self.config.bash_timeout,
                "python_interpreter": self.config.python_timeout,
            },
        }
        if self.config.pass_env:
            metadata["tool_env_passed"] = list(self.config.pass_env)
        if self.config.collector_version:
            metadata["collector_version"] = self.config.collector_version
        if task.dataset == NL2BASH:
            metadata["fixture_version"] = fixture.FIXTURE_VERSION
        return metadata

    def run(self, task: Task, *, run_id: str = "run") -> RunResult:
        """Solve one task as one agent run (one AgentTrace row). Safe to call from many threads."""
        with tempfile.TemporaryDirectory(prefix="agenttrace-task-") as scratch:
            workdir = None
            if task.dataset == NL2BASH and self.fixture_root is not None:
                workdir = fixture.copy(self.fixture_root, scratch)
            token = self._workdir_var.set(workdir)
            try:
                with agenttrace.agent_run(
                    f"{task.dataset}-agent",
                    prompt=task.prompt,
                    model=self.config.model,
                    provider="openai",
                    **self.metadata(task, run_id),
                ) as run:
                    try:
                        return self._loop(task, run)
                    except KeyboardInterrupt:
                        run.set_metadata(stop_reason="interrupted")  # resume runs it again
                        raise
            finally:
                self._workdir_var.reset(token)

    def _loop(self, task: Task, run: agenttrace.types.AgentRun) -> RunResult:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": task.prompt},
        ]
        for step in range(1, self.config.max_steps + 1):
            message, calls = self._complete(messages)
            messages.append(message)
            if not calls:
                run.set_metadata(stop_reason="no_tool_calls", steps=step)
                return RunResult(message.get("content"), step, "no_tool_calls")
            for call in calls:
                output, done = self._call_tool(call)
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": output})
                if done:
                    run.set_metadata(stop_reason="final_answer", steps=step)
                    return RunResult(output, step, "final_answer")
        run.set_metadata(stop_reason="max_steps", steps=self.config.max_steps)
        return RunResult(None, self.config.max_steps, "max_steps")
