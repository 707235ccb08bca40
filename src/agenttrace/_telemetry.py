"""Per-tool OS telemetry: user/system CPU time, peak RSS, disk read/write bytes.

Two methods, one object each, chosen by configuration and recorded on every tool span:

* `precise` (default). A tool's subprocesses count through their own rusage, taken when they are
  reaped with `wait4` (see `agenttrace.tools.Popen` / `.run`); in-process work counts through
  `getrusage(RUSAGE_THREAD)` deltas, so another thread burning CPU or writing files at the same
  time does not leak in. The peak RSS of an in-process call is the process's peak since the call
  began: on Linux the peak is reset (`/proc/self/clear_refs`) when a call starts while no other
  call is measuring. Async tools share the event-loop thread, so their figures include whatever
  else ran on the loop while they awaited.
* `agenttrace-0.3`. The public release's method, reproduced exactly: `getrusage` RUSAGE_SELF plus
  RUSAGE_CHILDREN deltas for CPU and block I/O (blocks x 512), and the larger of the two
  `ru_maxrss` lifetime peaks (KiB on Linux, so x 1024; bytes on macOS). Reproducible but coarse.

A probe costs a few microseconds (two or four `getrusage` calls and one small write);
`benchmarks/bench_overhead.py` measures each method against a bare span.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
from typing import Any, NamedTuple, Protocol

from opentelemetry.exporter.agenttrace import semconv

_BLOCK_BYTES = 512  # ru_inblock / ru_oublock count 512-byte blocks on Linux
_HAS_THREAD_USAGE = hasattr(resource, "RUSAGE_THREAD")


class Telemetry(NamedTuple):
    """The five figures of one tool call, plus how the peak was scoped."""

    user_time_s: float
    system_time_s: float
    max_rss_bytes: int
    read_bytes: int
    write_bytes: int
    peak_scope: str


class ChildUsage(NamedTuple):
    """A reaped child process's own resource usage and exit code.

    `spawn_maxrss` is the parent's `ru_maxrss` when the child was spawned. Linux starts a child's
    `ru_maxrss` from the memory it had before `exec` (the parent's, with fork or vfork alike), so a
    child peak at or below this floor is only an upper bound on the child's own peak.
    """

    rusage: Any  # resource.struct_rusage
    returncode: int
    spawn_maxrss: int = 0


_status_fd = -1
_status_pid = -1


def _read_vmhwm_kib() -> int | None:
    """This process's own peak RSS (`VmHWM`, KiB) from /proc; None where there is no /proc.

    The file is kept open (and re-opened after a fork, /proc/self being resolved at open time).
    """
    global _status_fd, _status_pid
    try:
        if _status_pid != os.getpid():
            _status_fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
            _status_pid = os.getpid()
        data = os.pread(_status_fd, 4096, 0)
        start = data.index(b"VmHWM:") + 6
        return int(data[start : data.index(b"kB", start)])
    except (OSError, ValueError):
        return None


class _OwnPeak:
    """The process's own peak RSS, without what `exec` inherited.

    Linux reports `ru_maxrss` as the larger of the process's own peak and a value carried over
    from whatever exec'd it (the launcher's size: a shell's few MiB, a test runner's hundreds).
    When `ru_maxrss` is above that inherited value it is the process's own peak, exactly; at or
    below it, only /proc's `VmHWM` (8 us to read, so only then) tells the own peak.
    """

    def __init__(self) -> None:
        self._inherited: int | None = None

    def inherited(self) -> int:
        if self._inherited is None:
            reported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            own = _read_vmhwm_kib()
            self._inherited = reported if own is not None and reported > own else 0
        return self._inherited

    def own(self, ru_maxrss: int) -> int:
        if ru_maxrss > self.inherited():
            return ru_maxrss
        own = _read_vmhwm_kib()
        return ru_maxrss if own is None else own


OWN_PEAK = _OwnPeak()


def maxrss_to_bytes(ru_maxrss: int, platform: str | None = None) -> int:
    """`ru_maxrss` in bytes: the kernel reports KiB on Linux (and the BSDs), bytes on macOS."""
    platform = sys.platform if platform is None else platform
    return int(ru_maxrss) if platform == "darwin" else int(ru_maxrss) * 1024


class Probe(Protocol):
    """Measures one tool call: `start()` before it runs, `stop()` after, on the same thread."""

    method: str

    def start(self) -> Any: ...

    def stop(self, state: Any, children: list[ChildUsage] | None) -> Telemetry: ...


class CompatProbe:
    """The `agenttrace-0.3` method: the release's getrusage SELF + CHILDREN deltas."""

    method = semconv.TELEMETRY_METHOD_COMPAT

    def __init__(self, platform: str | None = None) -> None:
        self._platform = sys.platform if platform is None else platform

    def start(self) -> Any:
        return resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
            resource.RUSAGE_CHILDREN
        )

    def stop(self, state: Any, children: list[ChildUsage] | None) -> Telemetry:
        self0, child0 = state
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return Telemetry(
            (self1.ru_utime - self0.ru_utime) + (child1.ru_utime - child0.ru_utime),
            (self1.ru_stime - self0.ru_stime) + (child1.ru_stime - child0.ru_stime),
            maxrss_to_bytes(max(self1.ru_maxrss, child1.ru_maxrss), self._platform),
            ((self1.ru_inblock - self0.ru_inblock) + (child1.ru_inblock - child0.ru_inblock))
            * _BLOCK_BYTES,
            ((self1.ru_oublock - self0.ru_oublock) + (child1.ru_oublock - child0.ru_oublock))
            * _BLOCK_BYTES,
            "process",
        )


class _PeakReset:
    """Keeps the process's peak RSS per call on Linux by resetting it (`clear_refs` = 5).

    The peak (`VmHWM`, which `ru_maxrss` reports) is process-wide, so a reset only happens when a
    call starts while no other call is measuring, and only when a new peak was reached since the
    previous reset (otherwise the peak is still the RSS at that reset, and the write is saved).
    Calls that overlap report the peak since the last reset: an upper bound on their own. A
    forked child starts afresh (`after_fork`): its own file descriptor, no call in flight, a
    reset due; a call it inherited in flight is the parent's to count (`generation`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._fd = -1
        self._level = -1  # ru_maxrss just after the last reset; -1 when a reset is due
        self.generation = 0  # forks so far: a call that began before one is not counted out
        self.available = sys.platform.startswith("linux") and os.access(
            "/proc/self/clear_refs", os.W_OK
        )

    def after_fork(self) -> None:
        """In a forked child: /proc/self was the parent's when the descriptor was opened, and
        the parent's calls in flight are not the child's."""
        self._lock = threading.Lock()
        self._in_flight = 0
        self._fd = -1
        self._level = -1
        self.generation += 1

    def enter(self, ru_maxrss: int) -> str:
        """Count a call in. Returns its peak scope, or "reset" when the caller must re-read."""
        with self._lock:
            self._in_flight += 1
            if self._in_flight != 1 or not self.available:
                return "overlap" if self.available else "process"
            if ru_maxrss <= self._level:  # no new peak since the last reset (-1: one is due)
                return "call"
            try:
                if self._fd < 0:
                    self._fd = os.open("/proc/self/clear_refs", os.O_WRONLY | os.O_CLOEXEC)
                os.write(self._fd, b"5")
            except OSError:
                self.available = False
                return "process"
            return "reset"

    def set_level(self, ru_maxrss: int) -> None:
        with self._lock:
            self._level = ru_maxrss

    def leave(self, ru_maxrss: int, generation: int) -> None:
        """Count a call out: one that `enter` counted in when the generation was `generation`."""
        with self._lock:
            if generation != self.generation:
                return  # it began in the parent, before this process was forked
            self._in_flight -= 1
            if ru_maxrss > self._level:
                self._level = -1


# One per process: the peak it resets is process-wide, whatever settings are in force.
_PEAK_RESET = _PeakReset()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_PEAK_RESET.after_fork)


class PreciseProbe:
    """The default method: the tool's own children plus this thread's in-process usage.

    Two `getrusage` calls a tool call, and as little else as can be: this runs around every call.
    """

    method = semconv.TELEMETRY_METHOD_PRECISE

    def __init__(self, platform: str | None = None) -> None:
        self._who = resource.RUSAGE_THREAD if _HAS_THREAD_USAGE else resource.RUSAGE_SELF
        # Per-thread figures only mean something on the thread that took the first reading.
        self._per_thread = _HAS_THREAD_USAGE
        self._peak = _PEAK_RESET
        self._rss_unit = maxrss_to_bytes(1, platform)  # bytes per unit of ru_maxrss
        self._inherited = OWN_PEAK.inherited()  # read once here, not on a call's path

    def start(self) -> Any:
        before = resource.getrusage(self._who)
        generation = self._peak.generation
        scope = self._peak.enter(before.ru_maxrss)
        if scope == "reset":
            before = resource.getrusage(self._who)
            self._peak.set_level(before.ru_maxrss)
            scope = "call"
        return before, scope, threading.get_ident(), generation

    def stop(self, state: Any, children: list[ChildUsage] | None) -> Telemetry:
        before, scope, thread, generation = state
        after = resource.getrusage(self._who)
        self._peak.leave(after.ru_maxrss, generation)
        if not self._per_thread or thread == threading.get_ident():
            user = after.ru_utime - before.ru_utime
            system = after.ru_stime - before.ru_stime
            read_blocks = after.ru_inblock - before.ru_inblock
            write_blocks = after.ru_oublock - before.ru_oublock
        else:
            # A generator resumed on another thread: per-thread deltas mean nothing across
            # threads, so the in-process part is left out (children still count).
            user = system = 0.0
            read_blocks = write_blocks = 0
        if children:
            peak = 0
            scope = "child-bound"
            for child in children:
                usage = child.rusage
                user += usage.ru_utime
                system += usage.ru_stime
                read_blocks += usage.ru_inblock
                write_blocks += usage.ru_oublock
                if usage.ru_maxrss >= peak:
                    peak = usage.ru_maxrss
                    scope = "child" if peak > child.spawn_maxrss else "child-bound"
        else:
            # With RUSAGE_THREAD, ru_maxrss is the process's peak (reset for this call if "call").
            peak = after.ru_maxrss
            if peak <= self._inherited:
                peak = OWN_PEAK.own(peak)
        return Telemetry(
            user,
            system,
            peak * self._rss_unit,
            read_blocks * _BLOCK_BYTES,
            write_blocks * _BLOCK_BYTES,
            scope,
        )


def probe_for(method: str) -> Probe | None:
    """The probe for a method name (`precise`, `agenttrace-0.3`, `none`)."""
    if method == semconv.TELEMETRY_METHOD_PRECISE:
        return PreciseProbe()
    if method == semconv.TELEMETRY_METHOD_COMPAT:
        return CompatProbe()
    if method == semconv.TELEMETRY_METHOD_NONE:
        return None
    raise ValueError(
        f"unknown telemetry method {method!r}: use "
        f"{semconv.TELEMETRY_METHOD_PRECISE!r}, {semconv.TELEMETRY_METHOD_COMPAT!r} "
        f"or {semconv.TELEMETRY_METHOD_NONE!r}"
    )
