"""Collecting AgentTrace datasets: run tasks with the reference agent, resumably.

`collect` is what `agenttrace collect`, `agenttrace demo` and `agenttrace replay` share. Rows are
appended to the output as each run ends (see `configure(output=...)`), so an interrupted collection
keeps every finished run, and running it again skips the tasks whose rows are already there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.exporter.agenttrace import AgentTraceFileError, read_rows

from agenttrace.reference_agent import ReferenceAgent, RunResult
from agenttrace.tasks import Task


def finished_task_ids(path: Path, dataset: str) -> set[int]:
    """Task ids of `dataset` already collected in `path` (complete, not interrupted runs)."""
    if not path.exists():
        return set()
    done = set()
    try:
        for row in read_rows(path):
            metadata = row.get("metadata") or {}
            if (
                metadata.get("dataset_name") == dataset
                and not metadata.get("incomplete")
                and metadata.get("stop_reason") != "interrupted"
                and isinstance(metadata.get("task_id"), int)
            ):
                done.add(metadata["task_id"])
    except AgentTraceFileError as error:
        raise AgentTraceFileError(
            error.path, error.where, f"cannot resume: {error.message}"
        ) from None
    return done


def new_run_id() -> str:
    """A run id in the release's style: the UTC start time."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


@dataclass
class CollectSummary:
    run_id: str
    skipped: int = 0
    results: list[tuple[Task, RunResult]] = field(default_factory=list)


def collect(
    agent: ReferenceAgent,
    tasks: Iterable[Task],
    *,
    output: Path,
    run_id: str | None = None,
    resume: bool = True,
    on_task: Callable[[Task, RunResult | None], Any] | None = None,
) -> CollectSummary:
    """Run each task not yet in `output` (when `resume`); `on_task` follows progress."""
    tasks = list(tasks)
    summary = CollectSummary(run_id or new_run_id())
    done: set[int] = set()
    if resume and tasks:
        done = finished_task_ids(output, tasks[0].dataset)
    for task in tasks:
        if task.task_id in done:
            summary.skipped += 1
            if on_task is not None:
                on_task(task, None)
            continue
        result = agent.run(task, run_id=summary.run_id)
        summary.results.append((task, result))
        if on_task is not None:
            on_task(task, result)
    return summary
