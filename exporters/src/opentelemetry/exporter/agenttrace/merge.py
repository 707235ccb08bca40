"""Shards into one dataset: one file, or a folder Hugging Face `datasets` loads as it is.

Collections run on many workers and hosts, each writing its own file. Merging streams every
shard once, keeps each run once (by `trace_id`: the JSONL and Parquet twin of one shard, or a
shard merged twice, hold the same runs), and refuses shards that do not describe one dataset:
rows of another schema version, or NL2Bash rows collected on another fixture (a different
`fixture_version` means the tools saw different files). Nothing appears at the target unless
the whole merge succeeds.

The folder form is what the Hub expects of a Parquet dataset: `data/train-0000i-of-0000n.parquet`
shards of bounded size, in the flat columns of the Parquet twin, and a dataset card `README.md`
whose YAML header names the files, so `datasets.load_dataset(folder)` needs no code of ours. The
card says what is inside: the schema, runs per dataset and model, the fixture digests, the
serving settings and where the runs came from.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.exporter.agenttrace._records import parquet_schema
from opentelemetry.exporter.agenttrace.readers import (
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    AgentTraceFileError,
    iter_rows,
)
from opentelemetry.exporter.agenttrace.schema import SCHEMA_VERSION
from opentelemetry.exporter.agenttrace.writers import ParquetWriter, encode_row, partial_path

#: Default bound of one Parquet shard of a dataset folder, counted in row JSON (the files are
#: smaller: compressed). The Hub serves shards up to a few hundred MB comfortably.
DEFAULT_SHARD_BYTES = 256 << 20


class MergeError(AgentTraceFileError):
    """The shards do not describe one dataset (`path:where: message`)."""


@dataclass
class MergeStats:
    """What a merge read and kept."""

    rows: int = 0
    duplicates: int = 0
    shards: list[Path] = field(default_factory=list)  # the dataset folder's Parquet files
    by_dataset_model: Counter[tuple[str, str]] = field(default_factory=Counter)
    fixtures: dict[str, str] = field(default_factory=dict)  # dataset -> fixture_version
    serving: Counter[str] = field(default_factory=Counter)  # serving settings (JSON) -> runs
    collectors: Counter[str] = field(default_factory=Counter)
    agents: Counter[str] = field(default_factory=Counter)
    first: str | None = None  # earliest / latest timestamp_utc
    last: str | None = None

    def _count(self, row: dict[str, Any]) -> None:
        metadata = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
        assert isinstance(metadata, dict)
        self.rows += 1
        self.by_dataset_model[(str(metadata.get("dataset_name") or ""), str(row.get("model")))] += 1
        serving = metadata.get("serving")
        if isinstance(serving, dict):
            settings = {k: v for k, v in serving.items() if k != "base_url"}  # not where: how
            self.serving[json.dumps(settings, sort_keys=True)] += 1
        self.collectors[str(metadata.get("collector_version") or "")] += 1
        agent = metadata.get("agent") or metadata.get("agent_name")
        if agent:
            self.agents[str(agent)] += 1
        stamp = row.get("timestamp_utc")
        if isinstance(stamp, str):
            self.first = stamp if self.first is None else min(self.first, stamp)
            self.last = stamp if self.last is None else max(self.last, stamp)


class _Shards:
    """The rows of every shard, each run once, checked for agreement as they stream past."""

    def __init__(self, sources: Iterable[str | os.PathLike[str]]) -> None:
        self.sources = [Path(source) for source in sources]
        self.stats = MergeStats()
        self._seen: set[str] = set()
        self._fixture_from: dict[str, str] = {}  # dataset -> where its fixture_version was seen

    def rows(
        self,
        progress: Callable[[int], None] | None = None,
        check: Callable[[Path, int, dict[str, Any]], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        for path in self.sources:
            for number, row in iter_rows(path, progress=progress):
                self._agree(path, number, row)
                trace_id = row.get("trace_id")
                if isinstance(trace_id, str) and trace_id:
                    if trace_id in self._seen:
                        self.stats.duplicates += 1
                        continue
                    self._seen.add(trace_id)
                if check is not None:
                    check(path, number, row)
                self.stats._count(row)
                yield row

    def _agree(self, path: Path, number: int, row: dict[str, Any]) -> None:
        metadata = row.get("metadata")
        if not isinstance(metadata, dict):
            raise MergeError(path, str(number), "the row has no metadata object")
        version = metadata.get("schema_version")
        if version != SCHEMA_VERSION:
            raise MergeError(
                path,
                str(number),
                f"schema_version {version!r}: shards must all be {SCHEMA_VERSION!r}",
            )
        fixture = metadata.get("fixture_version")
        if fixture is None:
            return
        dataset = str(metadata.get("dataset_name") or "")
        known = self.stats.fixtures.setdefault(dataset, str(fixture))
        self._fixture_from.setdefault(dataset, f"{path}:{number}")
        if known != str(fixture):
            raise MergeError(
                path,
                str(number),
                f"{dataset} fixture_version {fixture!r} differs from {known!r} "
                f"({self._fixture_from[dataset]}): the tools saw other files",
            )


def merge(
    sources: Iterable[str | os.PathLike[str]],
    target: str | os.PathLike[str],
    *,
    progress: Callable[[int], None] | None = None,
    check: Callable[[Path, int, dict[str, Any]], None] | None = None,
) -> MergeStats:
    """Merge AgentTrace files (JSONL or Parquet) into one `.jsonl` or `.parquet` file."""
    target = Path(target)
    suffix = target.suffix.lower()
    if suffix not in JSONL_SUFFIXES + PARQUET_SUFFIXES:
        raise AgentTraceFileError(target, "file", "unknown file type: use .jsonl or .parquet")
    shards = _Shards(sources)
    if suffix in PARQUET_SUFFIXES:
        writer = ParquetWriter(target, raw_file=target.name)
        try:
            for row in shards.rows(progress, check):
                writer.write_row(row)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        return shards.stats
    partial = partial_path(target)
    try:
        with open(partial, "wb") as out:
            for row in shards.rows(progress, check):
                out.write(encode_row(row))
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return shards.stats


def write_dataset_folder(
    sources: Iterable[str | os.PathLike[str]],
    folder: str | os.PathLike[str],
    *,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    title: str = "AgentTrace runs",
    progress: Callable[[int], None] | None = None,
    check: Callable[[Path, int, dict[str, Any]], None] | None = None,
) -> MergeStats:
    """Merge into `folder`: `data/train-*.parquet` shards of at most about `shard_bytes` of rows
    each, and the dataset card `README.md`. `folder` must not exist yet (it appears whole)."""
    folder = Path(folder)
    if folder.exists():
        raise AgentTraceFileError(folder, "folder", "already exists")
    folder.parent.mkdir(parents=True, exist_ok=True)
    shards = _Shards(sources)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        data = building / "data"
        data.mkdir()
        parts: list[Path] = []
        writer: ParquetWriter | None = None
        size = 0
        for row in shards.rows(progress, check):
            encoded = len(encode_row(row))
            if writer is None or (size and size + encoded > shard_bytes):
                if writer is not None:
                    writer.close()
                parts.append(data / f"part-{len(parts):05d}.parquet")
                writer = ParquetWriter(parts[-1], raw_file=parts[-1].name)
                size = 0
            writer.write_row(row)
            size += encoded
        if writer is not None:
            writer.close()
        names = [f"train-{index:05d}-of-{len(parts):05d}.parquet" for index in range(len(parts))]
        for part, name in zip(parts, names, strict=True):
            part.rename(data / name)
        shards.stats.shards = [folder / "data" / name for name in names]
        (building / "README.md").write_text(dataset_card(shards.stats, title), encoding="utf-8")
        os.replace(building, folder)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return shards.stats


def dataset_card(stats: MergeStats, title: str = "AgentTrace runs") -> str:
    """The `README.md` of a dataset folder: the Hub's YAML header, then what is inside."""
    header = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: data/*.parquet",
        "tags:",
        "- agenttrace",
        "- agents",
        "- opentelemetry",
        "---",
        "",
    ]
    lines = [
        f"# {title}",
        "",
        f"{stats.rows} runs of tool-using LLM agents in the AgentTrace schema {SCHEMA_VERSION}, "
        f"one row per run, in {len(stats.shards)} Parquet file(s) under `data/`"
        + (f" ({stats.duplicates} repeated runs left out)." if stats.duplicates else "."),
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'runs = load_dataset("path/to/this/folder")["train"]',
        "```",
        "",
        "## Columns",
        "",
        "| column | type |",
        "|---|---|",
    ]
    for column in parquet_schema():
        lines.append(f"| `{column.name}` | {column.type} |")
    lines += [
        "",
        "`spans_json`, `llm_steps_json` and `metadata_json` hold the row's `spans` (tool calls "
        "with per-tool CPU time, peak RSS and disk I/O), `llm_steps` (model generations) and "
        "`metadata` as JSON text.",
        "",
        "## Runs per dataset and model",
        "",
        "| dataset | model | runs |",
        "|---|---|---|",
    ]
    for (dataset, model), runs in sorted(stats.by_dataset_model.items()):
        lines.append(f"| {dataset or '(none)'} | {model or '(none)'} | {runs} |")
    if stats.fixtures:
        lines += ["", "## Fixture", ""]
        for dataset, digest in sorted(stats.fixtures.items()):
            lines.append(f"- {dataset}: `fixture_version` {digest}")
    if stats.serving:
        lines += ["", "## Serving settings", "", "| settings | runs |", "|---|---|"]
        for settings, runs in stats.serving.most_common():
            lines.append(f"| `{settings}` | {runs} |")
    lines += ["", "## Collection", ""]
    for label, counter in (("collector_version", stats.collectors), ("agent", stats.agents)):
        if counter:
            values = ", ".join(
                f"{name or '(none)'} ({runs})" for name, runs in counter.most_common()
            )
            lines.append(f"- {label}: {values}")
    if stats.first:
        lines.append(f"- collected from {stats.first} to {stats.last}")
    return "\n".join(header + lines) + "\n"


__all__ = [
    "DEFAULT_SHARD_BYTES",
    "MergeError",
    "MergeStats",
    "dataset_card",
    "merge",
    "write_dataset_folder",
]
