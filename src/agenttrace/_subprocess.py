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
from typing import Any

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
    """
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
