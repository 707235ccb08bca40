"""End to end: a whole `agenttrace collect`, instrumented and not, on the same tasks.

    uv run python benchmarks/bench_e2e.py [--sizes 12,150] [--repeats 2]

Each size is a task file of that many NL2Bash tasks (the bundled prompts, repeated), collected by
the reference agent against the scripted OpenAI-compatible server over HTTP, with the command
line as a user runs it (a fresh process: imports, fixture, exit). The switch is the OTel SDK's
own, `OTEL_SDK_DISABLED=true`: the agent, its tools and the server are the same, and configure()
sets up nothing, so no span is recorded and no file is written. Runs alternate between the two,
and the best of `--repeats` is kept. Overhead = instrumented / disabled - 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder
from agenttrace.collection.tasks import load_tasks, scripted_steps


def _collect(base_url: str, tasks: Path, output: Path, disabled: bool) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    if disabled:
        env["OTEL_SDK_DISABLED"] = "true"
    command = [sys.executable, "-m", "agenttrace.cli", "collect", "--dataset", "nl2bash"]
    command += ["--tasks", str(tasks), "--model", "qwen3-1.7b", "--base-url", base_url]
    command += ["--output", str(output), "--no-resume"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"collect failed: {done.stderr.strip().splitlines()[-1:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="12,150", help="tasks per run, comma-separated")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    prompts = [task.prompt for task in load_tasks("nl2bash")]
    print(f"{'tasks':>6} {'instrumented s':>15} {'disabled s':>11} {'overhead':>9}")
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as scratch:
        root = Path(scratch)
        with ScriptedModelServer(ScriptResponder(scripted_steps("nl2bash"))) as server:
            for size in (int(s) for s in args.sizes.split(",") if s):
                tasks = root / f"tasks-{size}.jsonl"
                tasks.write_text(
                    "".join(
                        json.dumps({"task_id": i, "query": prompts[i % len(prompts)]}) + "\n"
                        for i in range(size)
                    )
                )
                best = {True: float("inf"), False: float("inf")}
                for repeat in range(args.repeats):
                    for disabled in (False, True):
                        output = root / f"runs-{size}-{disabled}-{repeat}.jsonl"
                        seconds = _collect(server.base_url, tasks, output, disabled)
                        best[disabled] = min(best[disabled], seconds)
                overhead = best[False] / best[True] - 1
                print(f"{size:>6} {best[False]:>15.2f} {best[True]:>11.2f} {overhead:>8.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
