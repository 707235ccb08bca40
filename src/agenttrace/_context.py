"""Carrying the current agent run / tool call into threads.

asyncio tasks copy the current context when they are created, and `asyncio.to_thread` copies it
too, so spans started there nest correctly with nothing to do. Plain threads and
`concurrent.futures.ThreadPoolExecutor` workers start from an empty context: wrap the callable with
`propagate` or use `ContextThreadPoolExecutor`, and work done there is parented to the span that
submitted it. Each call gets its own copy, so concurrent workers never share (or fight over) one
context.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

R = TypeVar("R")


def propagate(func: Callable[..., R]) -> Callable[..., R]:
    """Bind `func` to the current context; each call runs in a fresh copy of it.

    `threading.Thread(target=agenttrace.propagate(work)).start()` parents the spans of `work`
    to the span current where `propagate` was called.
    """
    captured = contextvars.copy_context()

    @functools.wraps(func)
    def run_in_context(*args: Any, **kwargs: Any) -> R:
        return captured.copy().run(func, *args, **kwargs)

    return run_in_context


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in the context of the code that submitted them.

    Its workers are not daemon threads, so at interpreter exit Python waits for them before any
    atexit hook runs; on SIGTERM, configure()'s handler therefore writes the runs still busy in
    them from a thread of its own, without waiting for them to end.
    """

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)
