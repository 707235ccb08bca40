"""NL2Bash and MBPP tasks: the bundled sets, local files, and the Hugging Face datasets.

The release collected NL2Bash from `epinnock/intercode-nl2bash-curated` (200 rows, split train,
task_id = row index) and MBPP from its test split (task_id = MBPP's own id). Those load through
Hugging Face `datasets` when it is installed and the hub is reachable; a local JSONL or Parquet
file with the same columns works anywhere; and a small bundled set of each, written for this
project, works with nothing at all (it is what `agenttrace demo` runs).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

NL2BASH = "nl2bash"
MBPP = "mbpp"
DATASETS = (NL2BASH, MBPP)
HUB_SOURCES = {
    NL2BASH: ("epinnock/intercode-nl2bash-curated", None, "train"),
    MBPP: ("mbpp", None, "test"),
}


@dataclass(frozen=True)
class Task:
    """One task: what the agent is asked, and what a grader would need."""

    dataset: str
    task_id: int
    prompt: str
    source: str
    split: str
    gold: str | None = None  # NL2Bash reference command / MBPP reference code
    tests: tuple[str, ...] = field(default_factory=tuple)


class TaskError(ValueError):
    """Tasks that cannot be loaded: a clear message, no traceback needed."""


def fixtures_dir() -> Path:
    """The bundled fixtures: packaged with the wheel, or the repository's `fixtures/`."""
    packaged = resources.files("agenttrace") / "_fixtures"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "fixtures"


def mbpp_prompt(text: str, tests: Iterable[str]) -> str:
    """The user message for an MBPP task: the text, then the tests the code must pass."""
    return text.strip() + "\nYour code should pass these tests:\n" + "\n".join(tests)


def _task(dataset: str, index: int, record: dict[str, Any], source: str, split: str) -> Task:
    if dataset == NL2BASH:
        query = record.get("query") or record.get("nl") or record.get("prompt")
        if not isinstance(query, str):
            raise TaskError(f"{source}: row {index} has no 'query' text")
        task_id = record.get("task_id", index)
        return Task(dataset, int(task_id), query.strip(), source, split, gold=record.get("gold"))
    text = record.get("text") or record.get("prompt")
    tests = record.get("test_list") or []
    if not isinstance(text, str) or "task_id" not in record:
        raise TaskError(f"{source}: row {index} needs 'task_id' and 'text'")
    return Task(
        dataset,
        int(record["task_id"]),
        mbpp_prompt(text, tests),
        source,
        split,
        gold=record.get("code"),
        tests=tuple(tests),
    )


def _records(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()
        return
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise TaskError(f"{path}:{number}: not valid JSON ({exc})") from None


def load_tasks(dataset: str, source: str = "bundled", *, limit: int | None = None) -> list[Task]:
    """Tasks of `dataset` from `source`: "bundled", "hub", or a JSONL/Parquet file path."""
    if dataset not in DATASETS:
        raise TaskError(f"unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}")
    if source == "bundled":
        path = fixtures_dir() / "tasks" / f"{dataset}.jsonl"
        tasks = [
            _task(dataset, i, r, f"agenttrace-bundled/{dataset}", "bundled")
            for i, r in enumerate(_records(path))
        ]
    elif source == "hub":
        tasks = _from_hub(dataset)
    else:
        path = Path(source)
        if not path.is_file():
            raise TaskError(f"no task file at {source}")
        tasks = [
            # The file's name, not its path: a machine's paths never go into metadata.
            dataclasses.replace(_task(dataset, i, r, os.fspath(path), "local"), source=path.name)
            for i, r in enumerate(_records(path))
        ]
    return tasks if limit is None else tasks[:limit]


def _from_hub(dataset: str) -> list[Task]:
    name, config, split = HUB_SOURCES[dataset]
    try:
        from datasets import load_dataset
    except ImportError:
        raise TaskError(
            "loading from the hub needs the 'datasets' package (pip install datasets)"
        ) from None
    try:
        rows = load_dataset(name, config, split=split)
    except Exception as exc:  # offline, unknown, rate-limited: the hub's error, said plainly
        raise TaskError(
            f"could not load {name} ({split}) from the Hugging Face hub: {exc}"
        ) from None
    return [_task(dataset, i, dict(r), name, split) for i, r in enumerate(rows)]


def scripted_steps(dataset: str) -> dict[str, list[dict[str, Any]]]:
    """The scripted model responses for the bundled tasks, by prompt."""
    path = fixtures_dir() / "scripted" / f"{dataset}.jsonl"
    return {record["prompt"]: record["steps"] for record in _records(path)}
