"""`agenttrace merge`: shards from several collections into one file, or into a folder that
Hugging Face `datasets` loads with no code of ours; shards that disagree are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.agenttrace import read_rows
from opentelemetry.exporter.agenttrace.merge import MergeError, merge, write_dataset_folder

from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder
from agenttrace.collection.tasks import DATASETS, scripted_steps

MODEL = "qwen3-1.7b"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agenttrace.cli", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three shards as three workers would write them: NL2Bash split over two, MBPP on a third."""
    scripts: dict[str, Any] = {}
    for dataset in DATASETS:
        scripts.update(scripted_steps(dataset))
    folder = tmp_path_factory.mktemp("shards")
    made = []
    with ScriptedModelServer(ScriptResponder(scripts), model=MODEL) as server:
        for name, dataset, extra in (
            ("worker-0.jsonl", "nl2bash", ["-n", "4"]),
            ("worker-1.jsonl", "nl2bash", []),  # tasks 0-3 again, and 4-7
            ("worker-2.jsonl", "mbpp", ["--temperature", "0.6"]),
        ):
            done = _cli(
                "collect", "--dataset", dataset, "--model", MODEL, "--base-url", server.base_url,
                "--output", str(folder / name), *extra,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            made.append(folder / name)
    return made


def _ids(path: Path) -> list[str]:
    return [row["trace_id"] for row in read_rows(path)]


def test_merge_keeps_every_run_once(shards: list[Path], tmp_path: Path) -> None:
    twin = shards[0].with_suffix(".parquet")  # the same runs as worker-0.jsonl
    assert twin.exists()
    target = tmp_path / "all.jsonl"
    stats = merge([*shards, twin, shards[2]], target)
    every = [trace_id for shard in shards for trace_id in _ids(shard)]
    assert sorted(_ids(target)) == sorted(set(every))
    assert stats.rows == len(set(every)) == 4 + 8 + 4
    assert stats.duplicates == 4 + 4  # the twin's runs, and the shard given twice


def test_a_folder_that_datasets_loads_as_it_is(shards: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "dataset"
    stats = write_dataset_folder(shards, folder, shard_bytes=20_000, title="Scripted runs")
    assert len(stats.shards) > 1  # bounded shards
    names = sorted(p.name for p in (folder / "data").iterdir())
    assert names == [f"train-{i:05d}-of-{len(names):05d}.parquet" for i in range(len(names))]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nconfigs:")
    assert "| nl2bash | qwen3-1.7b | 12 |" in card and "| mbpp | qwen3-1.7b | 4 |" in card
    assert "fixture_version" in card and '"temperature": 0.6' in card
    # Hugging Face datasets, on the folder, with no code of ours and no network.
    script = (
        "import json, sys\n"
        "from datasets import load_dataset\n"
        "runs = load_dataset(sys.argv[1])['train']\n"
        "print(json.dumps([len(runs), sorted(runs.column_names), runs[0]['trace_id']]))\n"
    )
    env = _env() | {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    env["HF_HOME"] = str(tmp_path / "hf-home")
    out = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    rows, columns, first = json.loads(out.stdout.splitlines()[-1])
    assert rows == stats.rows == 16
    assert {"trace_id", "prompt", "spans_json", "llm_steps_json", "metadata_json"} <= set(columns)
    assert first in {trace_id for shard in shards for trace_id in _ids(shard)}


def test_shards_of_another_fixture_are_refused(shards: list[Path], tmp_path: Path) -> None:
    rows = [json.loads(line) for line in shards[1].read_text().splitlines()]
    rows[-1]["metadata"]["fixture_version"] = "0" * 64
    rows[-1]["trace_id"] = "f" * 32
    other = tmp_path / "other-host.jsonl"
    other.write_text("".join(json.dumps(row) + "\n" for row in rows))
    target = tmp_path / "all.jsonl"
    with pytest.raises(MergeError, match="fixture_version .* differs"):
        merge([shards[0], other], target)
    assert not target.exists()  # nothing written
    done = _cli("merge", str(shards[0]), str(other), "-o", str(target))
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {other}:8: nl2bash fixture_version"), done.stderr
    assert not target.exists()


def test_the_command_writes_a_file_or_a_folder_and_refuses_to_overwrite(
    shards: list[Path], tmp_path: Path
) -> None:
    target = tmp_path / "merged.parquet"
    done = _cli("merge", *map(str, shards), "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert "16 runs from 3 shards written to" in done.stdout
    assert len(list(read_rows(target))) == 16
    assert _cli("merge", *map(str, shards), "-o", str(target)).returncode == 2  # exists
    folder = tmp_path / "hub"
    done = _cli("merge", *map(str, shards), "-o", str(folder))
    assert done.returncode == 0, done.stderr
    assert (folder / "README.md").exists()
    again = _cli("merge", *map(str, shards), "-o", str(folder), "--force")
    assert again.returncode == 0, again.stderr
    assert _cli("merge", str(shards[0])).returncode == 2  # no output given
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    refused = _cli("merge", str(shards[0]), "-o", str(stranger), "--force")
    assert refused.returncode == 2 and "not a dataset folder" in refused.stderr


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
