"""Subprocesses whose own resource usage is charged to the tool call that ran them.

`Popen` is `subprocess.Popen` reaping its child with `os.wait4` instead of `os.waitpid` (the same
system call, so it costs nothing extra) and handing the child's own rusage (CPU times, peak RSS,
block I/O, including its waited-for descendants) and exit code to the tool call in progress where
the process was created. `run` is `subprocess.run` built on it. Outside a tool call both behave
exactly like the standard library's.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
from typing import Any

from agenttrace import _spawner
from agenttrace._invocations import ToolCall, current_tool_call
from agenttrace._telemetry import OWN_PEAK, ChildUsage

_HAS_WAIT4 = hasattr(os, "wait4")


class Popen(subprocess.Popen):  # type: ignore[type-arg]
    """`subprocess.Popen` that reports its child's own rusage to the current tool call.

    `rusage` holds the child's `resource.struct_rusage` once it has been reaped.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._agenttrace_call: ToolCall | None = current_tool_call()
        self.rusage: Any = None
        # What the kernel will count into the child's peak before it execs (see ChildUsage): this
        # process's own peak, which a vfork'ed child hands to its exec.
        self._spawn_maxrss = OWN_PEAK.own(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        super().__init__(*args, **kwargs)

    # CPython reaps a child in two places: _try_wait (wait/communicate) and _internal_poll
    # (poll, __del__). Both are overridden so neither loses the rusage.
    def _wait4(self, pid: int, options: int) -> tuple[int, int]:
        reaped, status, usage = os.wait4(pid, options)
        if reaped == self.pid and reaped != 0:
            self.rusage = usage
            call = self._agenttrace_call
            if call is not None and not call.ended:
                call.record_child(
                    ChildUsage(usage, os.waitstatus_to_exitcode(status), self._spawn_maxrss)
                )
        return reaped, status

    if _HAS_WAIT4:

        def _try_wait(self, wait_flags: int) -> tuple[int, int]:
            try:
                return self._wait4(self.pid, wait_flags)
            except ChildProcessError:  # SIGCHLD ignored: the child is gone, no status to be had
                return self.pid, 0

        def _internal_poll(
            self, _deadstate: Any = None, _waitpid: Any = None, **kwargs: Any
        ) -> Any:
            return super()._internal_poll(_deadstate, _waitpid=self._wait4, **kwargs)


def run(
    args: Any,
    *,
    input: Any = None,
    capture_output: bool = False,
    timeout: float | None = None,
    check: bool = False,
    **kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run` whose child is measured as part of the current tool call.

    On timeout the child is killed (its whole process group when `start_new_session=True`, so a
    shell's own children die with it), reaped and measured, then `TimeoutExpired` is raised.
    Inside a tool call measured with the precise method, on Linux, the child is started by the
    spawner helper (see `agenttrace._spawner`), so its peak RSS is its own; calls using options the
    helper does not handle go through `subprocess` as usual.
    """
    call = current_tool_call()
    if (
        call is not None
        and call.measures_children_precisely
        and not (set(kwargs) - _SPAWNER_OPTIONS)
    ):
        spawner = _spawner.helper()
        if spawner is not None:
            return _run_spawned(spawner, call, args, input, capture_output, timeout, check, kwargs)
    if capture_output:
        if kwargs.get("stdout") is not None or kwargs.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output")
        kwargs["stdout"] = subprocess.PIPE
        kwargs["stderr"] = subprocess.PIPE
    if input is not None:
        if kwargs.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used")
        kwargs["stdin"] = subprocess.PIPE
    own_group = bool(kwargs.get("start_new_session"))
    with Popen(args, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill(process, own_group)
            exc.stdout, exc.stderr = process.communicate()
            raise
        except BaseException:
            _kill(process, own_group)
            raise
        returncode = process.poll()
        assert returncode is not None  # communicate() returned, so the child was reaped
    if check and returncode:
        raise subprocess.CalledProcessError(returncode, process.args, stdout, stderr)
    return subprocess.CompletedProcess(process.args, returncode, stdout, stderr)


def _kill(process: Popen, own_group: bool) -> None:
    if own_group:
        try:
            os.killpg(process.pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            pass
    process.kill()


_SPAWNER_OPTIONS = frozenset(
    {
        "cwd",
        "env",
        "stdin",
        "stdout",
        "stderr",
        "text",
        "encoding",
        "errors",
        "universal_newlines",
        "shell",
        "start_new_session",
    }
)


class _ChildRusage:
    """The five rusage fields the telemetry reads, from the spawner's report."""

    __slots__ = ("ru_utime", "ru_stime", "ru_maxrss", "ru_inblock", "ru_oublock")

    def __init__(self, fields: tuple[float, float, int, int, int]) -> None:
        self.ru_utime, self.ru_stime, self.ru_maxrss, self.ru_inblock, self.ru_oublock = fields


def _helper_peak_kib(pid: int) -> int:
    """The spawner's own peak RSS: what the kernel counts into each child before its exec."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _read_all(fd: int, chunks: list[bytes]) -> None:
    with os.fdopen(fd, "rb", buffering=0) as stream:
        while True:
            data = stream.read(1 << 16)
            if not data:
                return
            chunks.append(data)


def _write_all(fd: int, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError), os.fdopen(fd, "wb") as stream:
        stream.write(data)  # a command that stops reading early closes the pipe: fine


def _decode(data: bytes, encoding: str | None, errors: str | None) -> str:
    import locale

    text = data.decode(encoding or locale.getpreferredencoding(False), errors or "strict")
    return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as subprocess


def _run_spawned(
    spawner: Any,
    call: ToolCall,
    args: Any,
    input: Any,
    capture_output: bool,
    timeout: float | None,
    check: bool,
    kwargs: dict[str, Any],
) -> subprocess.CompletedProcess[Any]:
    """`run` through the spawner helper: same results, the child's own rusage."""
    text = bool(
        kwargs.get("text")
        or kwargs.get("universal_newlines")
        or kwargs.get("encoding")
        or kwargs.get("errors")
    )
    if kwargs.get("shell"):
        argv = ["/bin/sh", "-c", args if isinstance(args, str) else " ".join(map(str, args))]
    elif isinstance(args, (str, bytes, os.PathLike)):
        argv = [os.fsdecode(args)]
    else:
        argv = [os.fsdecode(a) for a in args]
    stdout_spec = subprocess.PIPE if capture_output else kwargs.get("stdout")
    stderr_spec = subprocess.PIPE if capture_output else kwargs.get("stderr")
    if capture_output and (kwargs.get("stdout") is not None or kwargs.get("stderr") is not None):
        raise ValueError("stdout and stderr arguments may not be used with capture_output")
    stdin_spec = kwargs.get("stdin")
    if input is not None:
        if stdin_spec is not None:
            raise ValueError("stdin and input arguments may not both be used")
        stdin_spec = subprocess.PIPE
    opened: list[int] = []  # our ends and helper copies to close
    child_fds: list[int] = []
    parent_ends: dict[str, int] = {}

    def resolve(spec: Any, default_fd: int, name: str, writable: bool) -> int:
        if spec is None:
            return default_fd
        if spec == subprocess.DEVNULL:
            fd = os.open(os.devnull, os.O_RDWR)
            opened.append(fd)
            return fd
        if spec == subprocess.PIPE:
            read_end, write_end = os.pipe()
            child, parent = (read_end, write_end) if not writable else (write_end, read_end)
            opened.append(child)
            parent_ends[name] = parent
            return child
        if isinstance(spec, int):
            return spec
        return spec.fileno()

    try:
        fds = [resolve(stdin_spec, 0, "stdin", False), resolve(stdout_spec, 1, "stdout", True)]
        if stderr_spec == subprocess.STDOUT:
            fds.append(fds[1])
        else:
            fds.append(resolve(stderr_spec, 2, "stderr", True))
        child_fds = fds
        env = dict(os.environ if kwargs.get("env") is None else kwargs["env"])
        cwd = kwargs.get("cwd")
        new_session = bool(kwargs.get("start_new_session"))
        floor = _helper_peak_kib(spawner.helper_pid)
        request_id, pid = spawner.spawn(
            argv, os.fspath(cwd) if cwd is not None else None, env, new_session, child_fds
        )
    except BaseException:
        for fd in list(parent_ends.values()):
            os.close(fd)
        raise
    finally:
        for fd in opened:
            os.close(fd)
    process = _spawner.SpawnedProcess(spawner, request_id, pid, new_session)
    outputs: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    threads = []
    for name in ("stdout", "stderr"):
        if name in parent_ends:
            thread = threading.Thread(
                target=_read_all, args=(parent_ends.pop(name), outputs[name]), daemon=True
            )
            thread.start()
            threads.append(thread)
    if "stdin" in parent_ends:
        data = input if input is not None else b""
        if isinstance(data, str):
            data = data.encode(kwargs.get("encoding") or "utf-8", kwargs.get("errors") or "strict")
        thread = threading.Thread(
            target=_write_all, args=(parent_ends.pop("stdin"), data), daemon=True
        )
        thread.start()
        threads.append(thread)
    returncode = process.wait(timeout)
    timed_out = returncode is None
    if timed_out:
        process.kill()
        returncode = process.wait(None)
    for thread in threads:
        thread.join()
    if process.rusage is not None:
        call.record_child(ChildUsage(_ChildRusage(process.rusage), returncode, floor))

    def result(name: str, spec: Any) -> Any:
        if spec != subprocess.PIPE:
            return None
        data = b"".join(outputs[name])
        return _decode(data, kwargs.get("encoding"), kwargs.get("errors")) if text else data

    stdout = result("stdout", stdout_spec)
    stderr = result("stderr", stderr_spec)
    if timed_out:
        raise subprocess.TimeoutExpired(args, timeout or 0, output=stdout, stderr=stderr)
    if check and returncode:
        raise subprocess.CalledProcessError(returncode, args, stdout, stderr)
    return subprocess.CompletedProcess(args, returncode, stdout, stderr)
