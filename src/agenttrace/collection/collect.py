"""Collecting AgentTrace datasets: run tasks with the reference agent, resumably.

`collect` is what `agenttrace collect`, `agenttrace demo` and `agenttrace replay` share. Rows are
appended to the output as each run ends (see `configure(output=...)`), so an interrupted collection
keeps every finished run, and running it again skips the tasks whose rows are already there.

A run that the model server cut short (it could not be reached, timed out, answered with an error
status) or that was interrupted (Ctrl-C, SIGTERM) is not a finished run: its row stays in the file,
marked by `metadata.error_type` (the exception's class name, written by the exporter for every run
that ended by raising) or `metadata.stop_reason == "interrupted"`, and the next collection runs the
task again. The file is only ever appended to, so the old row stays; `agenttrace analyze` leaves
such rows out (`failed_on_infrastructure`), so the retried run is the one that counts.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.exporter.agenttrace import AgentTraceFileError, read_rows

from agenttrace.collection.tasks import Task

if TYPE_CHECKING:
    from agenttrace.collection.reference_agent import ReferenceAgent, RunResult

#: Class names of the `openai` errors that mean the model server, not the task, ended a run
#: (`metadata.error_type` holds the class name). Every one of them is retried on resume: a 400
#: can be a parameter the server rejects for every task as well as a prompt too long for one.
MODEL_SERVER_ERRORS = frozenset(
    {
        "APIError",
        "APIConnectionError",
        "APITimeoutError",
        "APIStatusError",
        "APIResponseValidationError",
        "BadRequestError",
        "AuthenticationError",
        "PermissionDeniedError",
        "NotFoundError",
        "ConflictError",
        "UnprocessableEntityError",
        "RateLimitError",
        "InternalServerError",
    }
)
#: Of those, the ones after which no later task can succeed either (nothing listens, the key or
#: the model name is wrong): the collection stops at the first instead of failing every task.
FATAL_ERRORS = frozenset(
    {"APIConnectionError", "AuthenticationError", "PermissionDeniedError", "NotFoundError"}
)
#: The collector itself was stopped (SIGTERM ends the run in flight with SystemExit).
_STOPPED_ERRORS = frozenset({"SystemExit", "KeyboardInterrupt"})


def failed_on_infrastructure(metadata: Mapping[str, Any]) -> bool:
    """Whether a row's run was cut short by the model server or by stopping the collector.

    Such a run says nothing about the agent or the task: resume runs the task again, and analysis
    leaves the row out.
    """
    error_type = metadata.get("error_type")
    return metadata.get("stop_reason") == "interrupted" or (
        isinstance(error_type, str) and error_type in MODEL_SERVER_ERRORS | _STOPPED_ERRORS
    )


def task_ids(path: Path, dataset: str) -> tuple[set[int], set[int]]:
    """(finished, to retry): task ids of `dataset` in `path` whose runs finished, and those whose
    only rows are runs cut short (incomplete, interrupted or failed on the model server)."""
    finished: set[int] = set()
    failed: set[int] = set()
    if not path.exists():
        return finished, failed
    try:
        for row in read_rows(path):
            metadata = row.get("metadata") or {}
            task_id = metadata.get("task_id")
            if metadata.get("dataset_name") != dataset or not isinstance(task_id, int):
                continue
            if metadata.get("incomplete") or failed_on_infrastructure(metadata):
                failed.add(task_id)
            else:
                finished.add(task_id)
    except AgentTraceFileError as error:
        raise AgentTraceFileError(
            error.path, error.where, f"cannot resume: {error.message}"
        ) from None
    return finished, failed - finished


def finished_task_ids(path: Path, dataset: str) -> set[int]:
    """Task ids of `dataset` already collected in `path` (complete, not interrupted runs)."""
    return task_ids(path, dataset)[0]


def new_run_id() -> str:
    """A run id in the release's style: the UTC start time."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


@dataclass
class CollectSummary:
    """What a collection did: `results` has one entry per row written, in task order."""

    run_id: str
    skipped: int = 0
    #: Tasks run again because their earlier rows were cut short.
    retried: int = 0
    results: list[tuple[Task, RunResult]] = field(default_factory=list)
    #: Runs the model server cut short in this collection (their rows are marked; resume retries).
    failures: list[tuple[Task, BaseException]] = field(default_factory=list)


class CollectAborted(RuntimeError):
    """The model server cannot serve any task (see FATAL_ERRORS); `summary` has what was done."""

    def __init__(
        self, summary: CollectSummary, task: Task, error: BaseException, agent: Any = None
    ) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.summary = summary
        self.task = task
        self.error = error
        self.agent = agent  # the one that ran the task: its server is the one that failed


def collect(
    agent: ReferenceAgent | Sequence[ReferenceAgent],
    tasks: Iterable[Task],
    *,
    output: Path,
    run_id: str | None = None,
    resume: bool = True,
    on_task: Callable[[Task, RunResult | None], Any] | None = None,
    concurrency: int = 1,
) -> CollectSummary:
    """Run each task not yet in `output` (when `resume`); `on_task` follows progress.

    `concurrency` runs that many tasks at once, each in a thread of its own with its own fixture
    copy and its own trace (the work is waiting on the model server, not CPU). Several agents
    (one per model server) take the tasks in turn. Rows land as runs end, so their order in the
    file follows completion; `summary.results` is in task order either way.

    A run the model server cuts short is counted in `summary.failures` and the collection goes
    on, unless the error is one no later task can escape (CollectAborted: no new task starts,
    the runs in flight finish). Other exceptions (a bug in the agent) propagate the same way.
    On Ctrl-C no new task starts; runs in flight are left to the exit sequence, which writes
    them as incomplete rows, so the next collection runs them again.
    """

    agents = [agent] if not isinstance(agent, Sequence) else list(agent)
    if not agents:
        raise ValueError("collect needs at least one agent")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    tasks = list(tasks)
    summary = CollectSummary(run_id or new_run_id())
    done: set[int] = set()
    retry: set[int] = set()
    if resume and tasks:
        done, retry = task_ids(output, tasks[0].dataset)
    todo: list[Task] = []
    for task in tasks:
        if task.task_id in done:
            summary.skipped += 1
            if on_task is not None:
                on_task(task, None)
            continue
        if task.task_id in retry:
            summary.retried += 1
        todo.append(task)
    if concurrency == 1 and len(agents) == 1:
        for task in todo:
            _record(summary, task, _run_one(agents[0], task, summary.run_id), on_task, agents[0])
        return summary
    return _collect_concurrently(agents, todo, summary, on_task, concurrency)


def _run_one(agent: ReferenceAgent, task: Task, run_id: str) -> RunResult | BaseException:
    """One run: its result, or the model server's error that cut it short (others raise)."""
    try:
        return agent.run(task, run_id=run_id)
    except Exception as error:  # the row is written already, marked with error_type
        if type(error).__name__ not in MODEL_SERVER_ERRORS:
            raise
        return error


def _record(
    summary: CollectSummary,
    task: Task,
    outcome: RunResult | BaseException,
    on_task: Callable[[Task, RunResult | None], Any] | None,
    agent: ReferenceAgent,
) -> None:
    from agenttrace.collection.reference_agent import RunResult

    if isinstance(outcome, BaseException):
        name = type(outcome).__name__
        summary.failures.append((task, outcome))
        summary.results.append((task, RunResult(None, 0, name)))
        if name in FATAL_ERRORS:
            raise CollectAborted(summary, task, outcome, agent) from outcome
        result = summary.results[-1][1]
    else:
        summary.results.append((task, outcome))
        result = outcome
    if on_task is not None:
        on_task(task, result)


def _collect_concurrently(
    agents: list[ReferenceAgent],
    todo: list[Task],
    summary: CollectSummary,
    on_task: Callable[[Task, RunResult | None], Any] | None,
    concurrency: int,
) -> CollectSummary:
    """Workers take tasks in order; this thread records outcomes as they come in.

    The workers are daemon threads: on Ctrl-C this thread returns at once, and the runs still
    in flight are written as incomplete rows by the exit sequence instead of holding the exit.
    """
    work = iter(enumerate(todo))
    lock = threading.Lock()
    stop = threading.Event()
    outcomes: queue.Queue[tuple[int, Task, RunResult | BaseException, bool]] = queue.Queue()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                item = next(work, None)
            if item is None:
                return
            position, task = item
            agent = agents[position % len(agents)]
            try:
                outcomes.put((position, task, _run_one(agent, task, summary.run_id), False))
            except BaseException as error:  # a bug in the agent: raised in the caller's thread
                outcomes.put((position, task, error, True))

    workers = [
        threading.Thread(target=worker, name=f"agenttrace-collect-{number}", daemon=True)
        for number in range(min(concurrency, len(todo)))
    ]
    for thread in workers:
        thread.start()
    first_position = len(summary.results)
    positions: list[int] = []
    raised: BaseException | None = None
    try:
        while any(thread.is_alive() for thread in workers) or not outcomes.empty():
            try:
                position, task, outcome, crashed = outcomes.get(timeout=0.2)
            except queue.Empty:
                continue
            if crashed:
                assert isinstance(outcome, BaseException)
                stop.set()
                raised = raised or outcome
                continue
            try:
                _record(summary, task, outcome, on_task, agents[position % len(agents)])
                positions.append(position)
            except CollectAborted as aborted:
                positions.append(position)
                stop.set()
                raised = raised or aborted
    except BaseException:  # Ctrl-C (or SIGTERM's SystemExit): no new task starts
        stop.set()
        raise
    # Back to task order: the rows themselves are in the file in the order the runs ended.
    recorded = summary.results[first_position:]
    order = sorted(range(len(recorded)), key=positions.__getitem__)
    summary.results[first_position:] = [recorded[index] for index in order]
    if raised is not None:
        raise raised
    return summary
