"""Per-tool telemetry accuracy: real subprocesses, real CPU burn, real disk writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

import agenttrace
from agenttrace import _telemetry as telemetry_module
from agenttrace import semconv
from agenttrace._telemetry import CompatProbe, maxrss_to_bytes

MiB = 1 << 20
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="Linux rusage semantics"
)


def _telemetry(span) -> dict:
    return {key.rsplit(".", 1)[1]: span.attributes[key] for key in semconv.TELEMETRY_KEYS}


def _burn_thread_cpu(seconds: float) -> None:
    start = time.thread_time()
    x = 0
    while time.thread_time() - start < seconds:
        for i in range(10_000):
            x += i * i


class _Burner:
    """Another thread burning CPU for as long as the test runs."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        x = 0
        while not self.stop.is_set():
            for i in range(10_000):
                x += i

    def __enter__(self) -> _Burner:
        self.thread.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


PEAK_SCRIPT = """
import json, sys
import agenttrace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

memory = InMemorySpanExporter()
agenttrace.configure(span_processors=[SimpleSpanProcessor(memory)])

@agenttrace.tool
def python_child(code):
    return agenttrace.tools.run([sys.executable, "-c", code], capture_output=True, text=True).stdout

python_child("data = b'x' * (200 * 1024 * 1024); print(len(data))")
python_child("pass")
print(json.dumps([dict(s.attributes) for s in memory.get_finished_spans()]))
"""


@linux_only
@pytest.mark.slow
def test_subprocess_peak_rss_is_the_childs_own() -> None:
    # An agent process of ordinary size (a fresh interpreter, not this test runner, whose own size
    # the kernel would count into every child's peak: see the README's telemetry limits).
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    big, trivial = json.loads(out.stdout)
    assert big[semconv.TELEMETRY_PEAK_SCOPE] == "child"
    # `pass` never grows past the size it inherited before exec: its figure is only a bound.
    assert trivial[semconv.TELEMETRY_PEAK_SCOPE] == "child-bound"
    big_peak = big[semconv.TELEMETRY_MAX_RSS_BYTES]
    trivial_peak = trivial[semconv.TELEMETRY_MAX_RSS_BYTES]
    assert 200 * MiB <= big_peak <= 260 * MiB, big_peak / MiB
    assert trivial_peak < big_peak / 2, (trivial_peak / MiB, big_peak / MiB)


@linux_only
@pytest.mark.slow
def test_in_process_peak_rss_is_per_call(spans) -> None:
    @agenttrace.tool
    def allocate(mib: int) -> int:
        data = b"x" * (mib * MiB)
        return len(data)

    allocate(200)
    allocate(1)
    outside = b"y" * (200 * MiB)  # a new peak between calls, outside any tool
    del outside
    allocate(1)
    big, small, after_outside = sorted(
        spans.named("execute_tool allocate"), key=lambda s: s.start_time
    )
    assert big.attributes[semconv.TELEMETRY_PEAK_SCOPE] == "call"
    big_peak = big.attributes[semconv.TELEMETRY_MAX_RSS_BYTES]
    assert big_peak >= 200 * MiB
    # The peak is reset when a call starts after a new peak: later calls don't inherit 200 MiB.
    assert small.attributes[semconv.TELEMETRY_MAX_RSS_BYTES] < big_peak - 150 * MiB
    assert after_outside.attributes[semconv.TELEMETRY_MAX_RSS_BYTES] < big_peak - 150 * MiB


@linux_only
def test_a_child_forked_inside_a_call_measures_its_own_calls(spans) -> None:
    """The peak reset's state is the parent's: its calls in flight, its /proc/self. A child
    forked inside a call starts afresh, whether it calls a tool inside that call or after it
    returned there (the parent counts that call out, not the child), or every call it makes
    would say "overlap"."""

    @agenttrace.tool
    def allocate(mib: int) -> int:
        return len(b"x" * (mib * MiB))

    @agenttrace.tool
    def fork_inside() -> int:
        pid = os.fork()
        if pid == 0:
            allocate(1)  # inside the call the child was forked in
        return pid

    def scope() -> str:
        return str(
            spans.named("execute_tool allocate")[-1].attributes[semconv.TELEMETRY_PEAK_SCOPE]
        )

    allocate(1)  # the parent opens its /proc/self/clear_refs
    read_end, write_end = os.pipe()
    pid = fork_inside()
    if pid == 0:
        try:
            inside = scope()
            allocate(1)  # after that call returned, in the child
            os.write(write_end, f"{inside} {scope()}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    scopes = os.read(read_end, 100).decode()
    os.waitpid(pid, 0)
    os.close(read_end)
    assert scopes == "call call"
    allocate(1)
    assert scope() == "call"  # the parent's count is its own


@linux_only
def test_overlapping_in_process_calls_say_so(spans) -> None:
    inside = threading.Event()
    release = threading.Event()

    @agenttrace.tool
    def hold() -> None:
        inside.set()
        release.wait(10)

    @agenttrace.tool
    def quick() -> None:
        pass

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)
    quick()
    release.set()
    holder.join()
    assert spans.one("execute_tool hold").attributes[semconv.TELEMETRY_PEAK_SCOPE] == "call"
    assert spans.one("execute_tool quick").attributes[semconv.TELEMETRY_PEAK_SCOPE] == "overlap"


@pytest.mark.slow
def test_cpu_time_of_in_process_tool_excludes_other_threads(spans) -> None:
    @agenttrace.tool
    def crunch() -> None:
        _burn_thread_cpu(0.5)

    with _Burner():
        crunch()
    figures = _telemetry(spans.one("execute_tool crunch"))
    cpu = figures["user_time_s"] + figures["system_time_s"]
    assert 0.4 <= cpu <= 0.6, cpu


@pytest.mark.slow
def test_cpu_time_of_subprocess_tool_excludes_other_threads(spans) -> None:
    burn = "import time\ns = time.process_time()\nwhile time.process_time() - s < 0.5: pass\n"

    @agenttrace.tool
    def child_crunch() -> None:
        agenttrace.tools.run([sys.executable, "-c", burn], check=True)

    with _Burner():
        child_crunch()
    figures = _telemetry(spans.one("execute_tool child_crunch"))
    cpu = figures["user_time_s"] + figures["system_time_s"]
    # 0.5 s of burning plus the interpreter's own start-up (~0.02-0.05 s)
    assert 0.45 <= cpu <= 0.65, cpu


@linux_only
@pytest.mark.slow
def test_write_bytes_of_fsynced_file(spans, tmp_path) -> None:
    target = tmp_path / "out.bin"

    @agenttrace.tool
    def write_file(path: str) -> None:
        with open(path, "wb") as handle:
            for _ in range(8):
                handle.write(os.urandom(MiB))
            handle.flush()
            os.fsync(handle.fileno())

    @agenttrace.tool
    def write_with_dd(path: str) -> None:
        agenttrace.tools.run(
            ["dd", "if=/dev/zero", f"of={path}", "bs=1M", "count=8", "conv=fsync"],
            capture_output=True,
            check=True,
        )

    with _Burner():
        write_file(str(target))
        write_with_dd(str(tmp_path / "dd.bin"))
    in_process = _telemetry(spans.one("execute_tool write_file"))
    child = _telemetry(spans.one("execute_tool write_with_dd"))
    assert in_process["write_bytes"] >= 8 * MiB, in_process
    assert child["write_bytes"] >= 8 * MiB, child


def test_subprocess_exit_code_becomes_tool_exit_code(spans) -> None:
    @agenttrace.tool
    def bash(command: str) -> str:
        completed = agenttrace.tools.run(["bash", "-c", command], capture_output=True, text=True)
        return completed.stdout

    assert bash(command="echo hi; exit 3") == "hi\n"
    span = spans.one("execute_tool bash")
    assert span.attributes[semconv.TOOL_EXIT_CODE] == 3
    assert span.status.status_code.name == "ERROR" and span.status.description == "exit code 3"
    assert span.attributes[semconv.TELEMETRY_PEAK_SCOPE] in ("child", "child-bound")


def test_run_timeout_kills_the_process_group_and_still_measures(spans) -> None:
    @agenttrace.tool
    def bash(command: str) -> str:
        completed = agenttrace.tools.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=0.5,
            start_new_session=True,
        )
        return completed.stdout

    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        bash(command="sleep 30 & sleep 30; echo never")
    assert time.monotonic() - started < 10
    span = spans.one("execute_tool bash")
    assert span.attributes[semconv.TOOL_EXIT_CODE] != 0
    assert span.attributes[semconv.TELEMETRY_PEAK_SCOPE] in ("child", "child-bound")


def test_popen_outside_a_tool_behaves_like_subprocess() -> None:
    process = agenttrace.tools.Popen([sys.executable, "-c", "print('x')"], stdout=subprocess.PIPE)
    out, _ = process.communicate()
    assert out.strip() == b"x" and process.returncode == 0
    if hasattr(os, "wait4"):
        assert process.rusage is not None and process.rusage.ru_maxrss > 0
    polled = agenttrace.tools.Popen([sys.executable, "-c", "pass"])
    while polled.poll() is None:
        time.sleep(0.01)
    assert polled.returncode == 0
    if hasattr(os, "wait4"):
        assert polled.rusage is not None


def test_maxrss_normalisation_by_platform() -> None:
    assert maxrss_to_bytes(2048, "linux") == 2048 * 1024
    assert maxrss_to_bytes(2048, "freebsd14") == 2048 * 1024
    assert maxrss_to_bytes(2048 * 1024, "darwin") == 2048 * 1024


def test_compat_probe_follows_the_release_formula(monkeypatch) -> None:
    import resource as real_resource

    from agenttrace import _telemetry

    class Usage:
        def __init__(self, utime, stime, maxrss, inblock, oublock) -> None:
            self.ru_utime, self.ru_stime, self.ru_maxrss = utime, stime, maxrss
            self.ru_inblock, self.ru_oublock = inblock, oublock

    readings: Iterator[Usage] = iter(())

    class FakeResource:
        RUSAGE_SELF = real_resource.RUSAGE_SELF
        RUSAGE_CHILDREN = real_resource.RUSAGE_CHILDREN

        @staticmethod
        def getrusage(who: int) -> Usage:
            return next(readings)

    monkeypatch.setattr(_telemetry, "resource", FakeResource)
    for platform, rss in (("linux", 4000 * 1024), ("darwin", 4000)):
        readings = iter(
            [
                Usage(1.0, 0.5, 1000, 10, 20),  # SELF before
                Usage(2.0, 1.0, 3000, 1, 2),  # CHILDREN before
                Usage(1.25, 0.75, 1500, 14, 28),  # SELF after
                Usage(2.5, 1.5, 4000, 3, 6),  # CHILDREN after
            ]
        )
        probe = CompatProbe(platform=platform)
        figures = probe.stop(probe.start(), None)
        assert figures.user_time_s == pytest.approx(0.25 + 0.5)
        assert figures.system_time_s == pytest.approx(0.25 + 0.5)
        assert figures.max_rss_bytes == rss
        assert figures.read_bytes == (4 + 2) * 512
        assert figures.write_bytes == (8 + 4) * 512
        assert figures.peak_scope == "process"


@pytest.mark.slow
def test_compat_method_is_process_wide(configure_spans) -> None:
    spans = configure_spans(telemetry="agenttrace-0.3")

    @agenttrace.tool
    def crunch() -> None:
        _burn_thread_cpu(0.3)

    with _Burner():
        crunch()
    span = spans.one("execute_tool crunch")
    figures = _telemetry(span)
    assert span.attributes[semconv.TELEMETRY_METHOD] == "agenttrace-0.3"
    # Process-wide CPU: the other thread's burning is counted too (the release's known coarseness).
    assert figures["user_time_s"] + figures["system_time_s"] > 0.45
    import resource

    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert figures["max_rss_bytes"] >= own_peak * 0.5


def test_telemetry_none_records_no_figures(configure_spans) -> None:
    spans = configure_spans(telemetry="none")

    @agenttrace.tool
    def quick() -> int:
        return 1

    quick()
    span = spans.one("execute_tool quick")
    assert semconv.TELEMETRY_USER_TIME_S not in span.attributes
    assert span.attributes[semconv.TOOL_EXIT_CODE] == 0


def test_unknown_telemetry_method_is_a_clear_error(configure_spans) -> None:
    with pytest.raises(ValueError, match="unknown telemetry method 'psutil'"):
        configure_spans(telemetry="psutil")


@linux_only
def test_children_of_a_large_agent_report_their_own_peak(spans) -> None:
    ballast = b"b" * (300 * MiB)  # this process is now far larger than any of its commands

    @agenttrace.tool
    def sh(command: str) -> str:
        return agenttrace.tools.run(["bash", "-c", command], capture_output=True, text=True).stdout

    sh("true")
    sh("python3 -c \"x = b'x' * (120 * 1024 * 1024)\"")
    del ballast
    trivial, big = sorted(spans.named("execute_tool sh"), key=lambda s: s.start_time)
    assert trivial.attributes[semconv.TELEMETRY_MAX_RSS_BYTES] < 40 * MiB  # not this process's 300+
    assert trivial.attributes[semconv.TELEMETRY_PEAK_SCOPE] == "child-bound"
    assert 120 * MiB <= big.attributes[semconv.TELEMETRY_MAX_RSS_BYTES] < 200 * MiB
    assert big.attributes[semconv.TELEMETRY_PEAK_SCOPE] == "child"


def test_spawned_commands_behave_like_subprocess(spans, tmp_path) -> None:
    results: dict = {}

    @agenttrace.tool
    def exercise() -> None:
        results["input"] = agenttrace.tools.run(
            ["cat"], input="a\r\nb\n", capture_output=True, text=True
        )
        results["merged"] = agenttrace.tools.run(
            "echo out; echo err >&2", shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        results["devnull"] = agenttrace.tools.run(
            ["cat"], stdin=subprocess.DEVNULL, capture_output=True
        )
        results["cwd_env"] = agenttrace.tools.run(
            ["sh", "-c", "pwd; echo $MARK"],
            cwd=tmp_path,
            env={"MARK": "m1", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
        with open(tmp_path / "file.txt", "w") as handle:
            agenttrace.tools.run(["echo", "to a file"], stdout=handle)
        with pytest.raises(FileNotFoundError):
            agenttrace.tools.run(["definitely-not-a-command-xyz"])
        with pytest.raises(subprocess.CalledProcessError) as failed:
            agenttrace.tools.run(
                ["sh", "-c", "echo partial; exit 4"], capture_output=True, check=True
            )
        results["failed"] = failed.value
        started = time.monotonic()
        with pytest.raises(subprocess.TimeoutExpired) as expired:
            agenttrace.tools.run(
                ["sh", "-c", "echo begun; sleep 30 & sleep 30"],
                capture_output=True,
                text=True,
                timeout=0.5,
                start_new_session=True,
            )
        results["timeout"] = (expired.value, time.monotonic() - started)

    exercise()
    assert results["input"].stdout == "a\nb\n" and results["input"].returncode == 0
    assert results["merged"].stdout == b"out\nerr\n"
    assert results["devnull"].stdout == b""
    assert results["cwd_env"].stdout == f"{tmp_path}\nm1\n"
    assert (tmp_path / "file.txt").read_text() == "to a file\n"
    assert results["failed"].returncode == 4 and results["failed"].stdout == b"partial\n"
    expired, elapsed = results["timeout"]
    assert expired.output == "begun\n" and elapsed < 10
    span = spans.one("execute_tool exercise")
    assert span.attributes[semconv.TOOL_EXIT_CODE] == -9  # the last child: killed at the timeout


@linux_only
def test_spawner_comes_back_after_it_dies_and_after_a_fork(spans) -> None:
    from agenttrace.tools import _spawner

    @agenttrace.tool
    def echo(word: str) -> str:
        return agenttrace.tools.run(["echo", word], capture_output=True, text=True).stdout

    assert echo("one") == "one\n"
    helper = _spawner.helper()
    assert helper is not None
    os.kill(helper.helper_pid, 9)
    deadline = time.monotonic() + 10
    while helper.alive and time.monotonic() < deadline:
        time.sleep(0.01)
    assert echo("two") == "two\n"
    assert _spawner.helper() is not helper
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child process gets a spawner of its own
        os.close(read_end)
        try:
            os.write(write_end, echo("three").encode())
        finally:
            os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 100) == b"three\n"
    os.waitpid(pid, 0)
    os.close(read_end)


def test_spawned_commands_match_subprocess_at_the_edges(spans, tmp_path) -> None:
    import signal
    import threading

    seen: dict = {}

    @agenttrace.tool
    def edges() -> None:
        started = time.monotonic()
        with pytest.raises(subprocess.TimeoutExpired):  # a background child holds the pipe
            agenttrace.tools.run(
                ["sh", "-c", "sleep 3 & echo started"], capture_output=True, timeout=0.5
            )
        seen["timeout_s"] = time.monotonic() - started
        seen["shell_list"] = agenttrace.tools.run(
            ["echo $0 $1", "zero", "one"], shell=True, capture_output=True
        ).stdout
        seen["shell_bytes"] = agenttrace.tools.run(
            b"echo hi", shell=True, capture_output=True
        ).stdout
        with pytest.raises(ValueError, match="embedded null byte"):
            agenttrace.tools.run(["echo", "a\0b"])
        with pytest.raises(FileNotFoundError) as missing:
            agenttrace.tools.run(["ls"], cwd=tmp_path / "nowhere")
        seen["missing"] = missing.value.filename
        many = [
            "x" * 100
        ] * 3000  # 300 KB of arguments, past one socket message: subprocess runs it
        seen["big"] = agenttrace.tools.run(
            ["sh", "-c", "echo $#", "sh", *many], capture_output=True
        ).stdout
        timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            agenttrace.tools.run(["sleep", "30"], capture_output=True)
        time.sleep(0.2)
        seen["left"] = subprocess.run(
            ["pgrep", "-f", "^sleep 30$"], capture_output=True, text=True
        ).stdout

    edges()
    assert seen["timeout_s"] < 2.5
    assert seen["shell_list"] == b"zero one\n" and seen["shell_bytes"] == b"hi\n"
    assert seen["missing"] == str(tmp_path / "nowhere")
    assert seen["big"] == b"3000\n"
    assert seen["left"] == ""  # Ctrl-C does not leave the command running


def test_popen_overrides_no_private_subprocess_method() -> None:
    """Private helpers of subprocess.Popen change between Python versions (3.13 renamed one)."""
    private = {
        name
        for name in vars(agenttrace.tools.Popen)
        if name.startswith("_") and not name.startswith("__") and hasattr(subprocess.Popen, name)
    }
    assert private == set()


def test_popen_wait_poll_and_timeouts_measure_the_child(spans) -> None:
    @agenttrace.tool
    def waits() -> int:
        slow = agenttrace.tools.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
        with pytest.raises(subprocess.TimeoutExpired):
            slow.wait(timeout=0.05)
        slow.kill()
        assert slow.wait() == -signal.SIGKILL
        quick = agenttrace.tools.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
        while quick.poll() is None:
            time.sleep(0.01)
        return quick.returncode

    assert waits() == 3
    span = spans.one("execute_tool waits")
    assert span.attributes[semconv.TOOL_EXIT_CODE] == 3  # the last child reaped, through poll()
    assert span.attributes[semconv.TELEMETRY_USER_TIME_S] > 0


@linux_only
def test_a_peak_at_or_below_the_launchers_is_read_from_proc(monkeypatch) -> None:
    """Linux reports a process's peak as at least its launcher's. A probe reads that inherited
    value once, when it is made; at or below it, the call's peak is the process's own (VmHWM)."""
    monkeypatch.setattr(telemetry_module, "_read_vmhwm_kib", lambda: 12345)
    monkeypatch.setattr(telemetry_module.OWN_PEAK, "_inherited", 1 << 40)  # a huge launcher
    probe = telemetry_module.PreciseProbe()
    assert probe.stop(probe.start(), None).max_rss_bytes == 12345 * 1024
    monkeypatch.setattr(telemetry_module.OWN_PEAK, "_inherited", 0)  # nothing inherited
    probe = telemetry_module.PreciseProbe()
    assert probe.stop(probe.start(), None).max_rss_bytes > 12345 * 1024  # ru_maxrss itself
