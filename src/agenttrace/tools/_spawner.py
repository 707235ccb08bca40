"""A small helper process that starts tool subprocesses, so their peak RSS is their own.

Linux starts a child's `ru_maxrss` from the memory of the process it was forked from, before it
execs: every command an agent runs would report at least the agent's own size (often 100 MiB and
more), and a 3 MiB `ls` is indistinguishable from a 100 MiB one. Commands started by this helper
are forked from a bare interpreter of about 10 MiB instead, and the helper reaps them with `wait4`
and reports their own rusage. Their exit status, stdin/stdout/stderr and process group behave as
with `subprocess`; the pipes are the caller's (passed over a UNIX socket), so output streams to the
caller directly.

The helper is started on first use (one per process, restarted after a fork or if it died) and
exits when the agent process closes its end of the socket. Anything it cannot do is left to
`subprocess` by the caller (see `agenttrace.run`).
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any, overload

# The helper's own code: single-threaded, so forking it is always safe. It answers each request
# ("spawn": argv, cwd, env, new session, and three fds) with the child's pid or the errno of a
# failed exec, and later with the child's exit status and rusage once it has been reaped.
_HELPER = r"""
import array, errno, json, os, select, signal, socket, struct, sys
sock = socket.socket(fileno=int(sys.argv[1]))
os.set_inheritable(sock.fileno(), False)  # commands must not inherit the control socket
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the agent and its commands, not us
pending = {}

def send(message):
    sock.send(json.dumps(message).encode())  # SOCK_SEQPACKET: one message per send

def reap():
    while pending:
        try:
            pid, status, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        request = pending.pop(pid, None)
        if request is not None:
            usage = [ru.ru_utime, ru.ru_stime, ru.ru_maxrss, ru.ru_inblock, ru.ru_oublock]
            send({"id": request, "exited": pid, "status": status, "rusage": usage})

def spawn(request, fds):
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        step = 0  # 0: exec, 1: chdir (what a failure is about)
        try:
            os.close(err_r)
            for name in ("SIGCHLD", "SIGPIPE", "SIGXFSZ", "SIGINT"):  # as subprocess restores
                signal.signal(getattr(signal, name), signal.SIG_DFL)
            if request["new_session"]:
                os.setsid()
            for target, fd in enumerate(fds):
                os.dup2(fd, target, inheritable=True)
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            if request["cwd"] is not None:
                step = 1
                os.chdir(request["cwd"])
                step = 0
            os.execvpe(request["argv"][0], request["argv"], request["env"])
        except BaseException as exc:
            code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EINVAL
            os.write(err_w, struct.pack("!ii", code, step))
        finally:
            os._exit(127)
    os.close(err_w)
    for fd in fds:
        os.close(fd)
    failure = os.read(err_r, 8)
    os.close(err_r)
    if failure:
        os.waitpid(pid, 0)
        code, step = struct.unpack("!ii", failure)
        send({"id": request["id"], "errno": code, "step": step})
    else:
        pending[pid] = request["id"]
        send({"id": request["id"], "pid": pid})

while True:
    readable, _, _ = select.select([sock, wake_r], [], [])
    if wake_r in readable:
        try:
            os.read(wake_r, 512)
        except BlockingIOError:
            pass
        reap()
    if sock in readable:
        data, ancillary, _, _ = sock.recvmsg(1 << 22, socket.CMSG_SPACE(3 * 4))
        if not data:
            break
        fds = []
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
        spawn(json.loads(data), fds)
    reap()
"""


class SpawnError(OSError):
    """The helper could not start the command (the errno of its exec)."""


class _Helper:
    """The client side: one helper per process, requests serialised, replies dispatched."""

    def __init__(self) -> None:
        # SOCK_SEQPACKET keeps message boundaries: one request or reply per send/recv.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _HELPER, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
        theirs.close()
        self._socket = ours
        self._send_lock = threading.Lock()
        # Keyed by (request id, whether the reply is the exit report rather than the spawn's).
        self._replies: dict[tuple[int, bool], dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._next_id = 0
        self.pid = os.getpid()
        self.helper_pid = self._process.pid
        self.alive = True
        threading.Thread(target=self._read_replies, daemon=True, name="agenttrace-spawner").start()

    def _read_replies(self) -> None:
        try:
            while True:
                data = self._socket.recv(1 << 16)
                if not data:
                    break
                message = json.loads(data)
                key = (message["id"], "exited" in message)
                with self._cond:
                    self._replies[key] = message
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        with self._cond:
            self.alive = False
            self._cond.notify_all()

    def _wait_reply(self, key: tuple[int, bool], timeout: float | None) -> dict[str, Any] | None:
        with self._cond:
            found = self._cond.wait_for(lambda: key in self._replies or not self.alive, timeout)
            if not found:
                return None
            reply = self._replies.pop(key, None)
            if reply is None:
                raise SpawnError("the agenttrace spawner exited")
            return reply

    def spawn(
        self,
        argv: list[str],
        cwd: str | None,
        env: dict[str, str],
        new_session: bool,
        fds: list[int],
    ) -> tuple[int, int]:
        """Start a command; returns (request id, pid). Raises SpawnError / OSError."""
        with self._send_lock:
            self._next_id += 1
            request_id = self._next_id
            payload = json.dumps(
                {"id": request_id, "argv": argv, "cwd": cwd, "env": env, "new_session": new_session}
            ).encode()
            self._socket.sendmsg(
                [payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
            )
        reply = self._wait_reply((request_id, False), None)
        assert reply is not None
        if "errno" in reply:
            code = reply["errno"]
            filename = cwd if reply.get("step") == 1 else argv[0]
            raise OSError(
                code, os.strerror(code), filename
            )  # FileNotFoundError etc., as subprocess
        return request_id, reply["pid"]

    def fits(self, argv: list[str], env: dict[str, str], cwd: str | None) -> bool:
        """Whether a request is small enough for one socket message (about 200 KiB here)."""
        size = sum(len(a) for a in argv) + sum(len(k) + len(v) + 8 for k, v in env.items())
        return size + len(cwd or "") < _MAX_REQUEST

    def wait(self, request_id: int, timeout: float | None) -> dict[str, Any] | None:
        """The exit report of a spawned command, or None on timeout."""
        return self._wait_reply((request_id, True), timeout)

    def close(self) -> None:
        self._socket.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()


# One SOCK_SEQPACKET message must fit the socket's send buffer (212,992 bytes by default on
# Linux); larger argument lists or environments go through subprocess instead.
_MAX_REQUEST = 150_000
_helper: _Helper | None = None
_helper_lock = threading.Lock()
_disabled = not sys.platform.startswith("linux") or not hasattr(socket, "SCM_RIGHTS")


def helper() -> _Helper | None:
    """The process's helper (started on first use), or None where it cannot run."""
    global _helper, _disabled
    if _disabled:
        return None
    with _helper_lock:
        if _helper is not None and _helper.alive and _helper.pid == os.getpid():
            return _helper
        try:
            _helper = _Helper()
        except OSError:
            _disabled = True
            return None
        return _helper


class SpawnedProcess:
    """A command started by the helper: pid, kill, wait, returncode and its own rusage."""

    def __init__(self, spawner: _Helper, request_id: int, pid: int, new_session: bool) -> None:
        self._spawner = spawner
        self._request_id = request_id
        self.pid = pid
        self.new_session = new_session
        self.returncode: int | None = None
        self.rusage: tuple[float, float, int, int, int] | None = None

    # Without a timeout, wait returns only once the command is reaped (or raises SpawnError).
    @overload
    def wait(self, timeout: None = None) -> int: ...
    @overload
    def wait(self, timeout: float) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int | None:
        if self.returncode is not None:
            return self.returncode
        report = self._spawner.wait(self._request_id, timeout)
        if report is None:
            return None
        self.returncode = os.waitstatus_to_exitcode(report["status"])
        user, system, max_rss, blocks_in, blocks_out = report["rusage"]
        self.rusage = (float(user), float(system), int(max_rss), int(blocks_in), int(blocks_out))
        return self.returncode

    def kill(self) -> None:
        if self.returncode is not None:
            return
        try:
            if self.new_session:
                os.killpg(self.pid, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
