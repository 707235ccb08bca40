"""Subprocesses whose own resource usage is charged to the tool call that ran them.

`Popen` is `subprocess.Popen` reaping its child with `os.wait4` instead of `os.waitpid` (the same
system call, so it costs nothing extra) and handing the child's own rusage (CPU times, peak RSS,
block I/O, including its waited-for descendants) and exit code to the tool call in progress where
the process was created. `run` is `subprocess.run` built on it. Outside a tool call both behave
exactly like the standard library's.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from typing import Any

from agenttrace._invocations import ToolCall, current_tool_call
from agenttrace._telemetry import OWN_PEAK, ChildUsage
from agenttrace.tools import _spawner

_HAS_WAIT4 = hasattr(os, "wait4")


class Popen(subprocess.Popen[Any]):
    """`subprocess.Popen` that reports its child's own rusage to the current tool call.

    `rusage` holds the child's `resource.struct_rusage` once it has been reaped.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._agenttrace_call: ToolCall | None = current_tool_call()
        self.rusage: Any = None
        # One reaper at a time: wait4 on a pid another thread already reaped would lose its status.
        self._reap_lock = threading.Lock()
        # What the kernel will count into the child's peak before it execs (see ChildUsage): this
        # process's own peak, which a vfork'ed child hands to its exec.
        self._spawn_maxrss = OWN_PEAK.own(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        super().__init__(*args, **kwargs)

    # Reaping is done here, through the public `poll` and `wait` only (`communicate`, `__exit__`
    # and `send_signal` all go through them), never by overriding subprocess's private helpers,
    # whose signatures change between Python versions. A Popen dropped unreaped is still reaped by
    # the standard library's own cleanup, without its rusage.
    def _reap(self, options: int) -> None:
        """One `wait4`; on success set `returncode` and hand the rusage to the tool call."""
        try:
            reaped, status, usage = os.wait4(self.pid, options)
        except ChildProcessError:  # SIGCHLD ignored, or reaped elsewhere: no status to be had
            if self.returncode is None:
                self.returncode = 0
            return
        if reaped != self.pid:
            return
        self.rusage = usage
        self.returncode = os.waitstatus_to_exitcode(status)
        call = self._agenttrace_call
        if call is not None and not call.ended:
            call.record_child(ChildUsage(usage, self.returncode, self._spawn_maxrss))

    def poll(self) -> int | None:
        if not _HAS_WAIT4:
            return super().poll()
        if self.returncode is None and self._reap_lock.acquire(blocking=False):
            try:
                if self.returncode is None:
                    self._reap(os.WNOHANG)
            finally:
                self._reap_lock.release()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not _HAS_WAIT4:
            return super().wait(timeout)
        if timeout is None:
            with self._reap_lock:
                while self.returncode is None:
                    self._reap(0)
            return self.returncode
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            if self.poll() is not None:
                return self.returncode
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            delay = min(delay * 2, remaining, 0.05)
            time.sleep(delay)


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
    spawner helper (see `agenttrace.tools._spawner`), so its peak RSS is its own; calls using
    options the helper does not handle go through `subprocess` as usual.
    """
    call = current_tool_call()
    if (
        call is not None
        and call.measures_children_precisely
        and not (set(kwargs) - _SPAWNER_OPTIONS)
    ):
        spawner = _spawner.helper()
        if spawner is not None:
            done = _run_spawned(spawner, call, args, input, capture_output, timeout, check, kwargs)
            if done is not None:
                return done
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


def _decode(data: bytes, encoding: str | None, errors: str | None) -> str:
    import locale

    text = data.decode(encoding or locale.getpreferredencoding(False), errors or "strict")
    return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as subprocess


def _argv(args: Any, shell: bool) -> list[str]:
    """The argument vector, as subprocess builds it (NUL bytes refused the same way)."""
    if isinstance(args, (str, bytes, os.PathLike)):
        argv = [os.fsdecode(args)]
    else:
        argv = [os.fsdecode(a) for a in args]
    if shell:
        argv = ["/bin/sh", "-c", *argv]
    for arg in argv:
        if "\0" in arg:
            raise ValueError("embedded null byte")
    return argv


def _environment(env: Any) -> dict[str, str]:
    source = os.environ if env is None else env
    result = {os.fsdecode(k): os.fsdecode(v) for k, v in source.items()}
    for key, value in result.items():
        if "\0" in key or "\0" in value or "=" in key:
            raise ValueError(f"illegal environment variable name or value: {key!r}")
    return result


def _communicate(
    process: Any, ends: dict[str, int], data: bytes, deadline: float | None
) -> tuple[dict[str, list[bytes]], bool]:
    """Feed stdin, drain stdout/stderr, wait for the exit: all before `deadline`.

    Returns the output and whether the deadline passed (like `Popen.communicate`, the output of
    a command's background children that keep the pipes open counts against the timeout).
    """
    import selectors
    import time

    outputs: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    with selectors.DefaultSelector() as selector:
        for name, fd in ends.items():
            os.set_blocking(fd, False)
            if name == "stdin":
                if data:
                    selector.register(fd, selectors.EVENT_WRITE, name)
                else:
                    os.close(fd)
            else:
                selector.register(fd, selectors.EVENT_READ, name)
        view = memoryview(data)
        try:
            while selector.get_map():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return outputs, True
                for key, _ in selector.select(remaining):
                    fd, name = key.fd, key.data
                    if name == "stdin":
                        try:
                            view = view[os.write(fd, view[:65536]) :]
                        except BrokenPipeError:  # the command stopped reading: fine
                            view = view[:0]
                        if not view:
                            selector.unregister(fd)
                            os.close(fd)
                        continue
                    chunk = os.read(fd, 1 << 16)
                    if chunk:
                        outputs[name].append(chunk)
                    else:
                        selector.unregister(fd)
                        os.close(fd)
        finally:
            for key in list(selector.get_map().values()):
                os.close(key.fd)
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    return outputs, process.wait(remaining) is None


def _run_spawned(
    spawner: Any,
    call: ToolCall,
    args: Any,
    input: Any,
    capture_output: bool,
    timeout: float | None,
    check: bool,
    kwargs: dict[str, Any],
) -> subprocess.CompletedProcess[Any] | None:
    """`run` through the spawner helper: same results, the child's own rusage.

    Returns None when the helper cannot take the request (the caller uses subprocess then).
    """
    import time

    text = bool(
        kwargs.get("text")
        or kwargs.get("universal_newlines")
        or kwargs.get("encoding")
        or kwargs.get("errors")
    )
    argv = _argv(args, bool(kwargs.get("shell")))
    env = _environment(kwargs.get("env"))
    cwd = kwargs.get("cwd")
    cwd = os.fspath(cwd) if cwd is not None else None
    if not spawner.fits(argv, env, cwd):
        return None
    stdout_spec = subprocess.PIPE if capture_output else kwargs.get("stdout")
    stderr_spec = subprocess.PIPE if capture_output else kwargs.get("stderr")
    if capture_output and (kwargs.get("stdout") is not None or kwargs.get("stderr") is not None):
        raise ValueError("stdout and stderr arguments may not be used with capture_output")
    stdin_spec = kwargs.get("stdin")
    if input is not None:
        if stdin_spec is not None:
            raise ValueError("stdin and input arguments may not both be used")
        stdin_spec = subprocess.PIPE
    data = b"" if input is None else input
    if isinstance(data, str):
        data = data.encode(kwargs.get("encoding") or "utf-8", kwargs.get("errors") or "strict")
    opened: list[int] = []  # the child's ends and /dev/null: ours to close once sent
    ends: dict[str, int] = {}  # our ends of the pipes

    def resolve(spec: Any, default_fd: int, name: str, child_writes: bool) -> int:
        if spec is None:
            return default_fd
        if spec == subprocess.DEVNULL:
            fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            opened.append(fd)
            return fd
        if spec == subprocess.PIPE:
            read_end, write_end = os.pipe()
            child, ours = (write_end, read_end) if child_writes else (read_end, write_end)
            opened.append(child)
            ends[name] = ours
            return child
        return spec if isinstance(spec, int) else spec.fileno()

    new_session = bool(kwargs.get("start_new_session"))
    try:
        fds = [resolve(stdin_spec, 0, "stdin", False), resolve(stdout_spec, 1, "stdout", True)]
        if stderr_spec == subprocess.STDOUT:
            fds.append(fds[1])
        else:
            fds.append(resolve(stderr_spec, 2, "stderr", True))
        floor = _helper_peak_kib(spawner.helper_pid)
        request_id, pid = spawner.spawn(argv, cwd, env, new_session, fds)
    except BaseException:
        for fd in ends.values():
            os.close(fd)
        raise
    finally:
        for fd in opened:
            os.close(fd)
    process = _spawner.SpawnedProcess(spawner, request_id, pid, new_session)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        outputs, timed_out = _communicate(process, ends, data, deadline)
    except BaseException:  # Ctrl-C and friends: the command must not outlive the call
        process.kill()
        process.wait(None)
        raise
    if timed_out:
        process.kill()
    returncode = process.wait(None)
    if process.rusage is not None:
        call.record_child(ChildUsage(_ChildRusage(process.rusage), returncode, floor))

    def result(name: str, spec: Any) -> Any:
        if spec != subprocess.PIPE:
            return None
        output = b"".join(outputs[name])
        return _decode(output, kwargs.get("encoding"), kwargs.get("errors")) if text else output

    stdout = result("stdout", stdout_spec)
    stderr = result("stderr", stderr_spec)
    if timed_out:
        raise subprocess.TimeoutExpired(args, timeout or 0, output=stdout, stderr=stderr)
    if check and returncode:
        raise subprocess.CalledProcessError(returncode, args, stdout, stderr)
    return subprocess.CompletedProcess(args, returncode, stdout, stderr)
