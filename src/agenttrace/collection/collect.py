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

import time
from collections.abc import Callable, Iterable, Mapping
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

    def __init__(self, summary: CollectSummary, task: Task, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.summary = summary
        self.task = task
        self.error = error


def collect(
    agent: ReferenceAgent,
    tasks: Iterable[Task],
    *,
    output: Path,
    run_id: str | None = None,
    resume: bool = True,
    on_task: Callable[[Task, RunResult | None], Any] | None = None,
) -> CollectSummary:
    """Run each task not yet in `output` (when `resume`); `on_task` follows progress.

    A run the model server cuts short is counted in `summary.failures` and the collection goes
    on, unless the error is one no later task can escape (CollectAborted). Other exceptions (a bug
    in the agent) propagate.
    """
    from agenttrace.collection.reference_agent import RunResult

    tasks = list(tasks)
    summary = CollectSummary(run_id or new_run_id())
    done: set[int] = set()
    retry: set[int] = set()
    if resume and tasks:
        done, retry = task_ids(output, tasks[0].dataset)
    for task in tasks:
        if task.task_id in done:
            summary.skipped += 1
            if on_task is not None:
                on_task(task, None)
            continue
        if task.task_id in retry:
            summary.retried += 1
        try:
            result = agent.run(task, run_id=summary.run_id)
        except Exception as error:  # the row is written already, marked with error_type
            name = type(error).__name__
            if name not in MODEL_SERVER_ERRORS:
                raise
            summary.failures.append((task, error))
            summary.results.append((task, RunResult(None, 0, name)))
            if name in FATAL_ERRORS:
                raise CollectAborted(summary, task, error) from error
            result = summary.results[-1][1]
        else:
            summary.results.append((task, result))
        if on_task is not None:
            on_task(task, result)
    return summary
