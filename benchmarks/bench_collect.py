"""Collection throughput against concurrency, with a model server that takes its time.

    uv run python benchmarks/bench_collect.py [--tasks 24] [--latency-ms 200] [--levels 1,2,4,8,16]
        [--check]

The reference agent runs NL2Bash tasks (the bundled prompts, repeated to `--tasks`) on the
NL2Bash fixture against the scripted OpenAI-compatible server over HTTP, which waits
`--latency-ms` before every completion, as a small model on a GPU would. Each run takes two
completions and one bash call. The work is waiting, not CPU, so runs at once should divide the
time until the machine or the server saturates. The speed-up is the rate at each level over the
rate at concurrency 1, measured in the same process; `--check` exits 1 unless concurrency 8
reaches 6x.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import openai

import agenttrace
from agenttrace.collection import fixture
from agenttrace.collection.collect import collect
from agenttrace.collection.reference_agent import AgentConfig, ReferenceAgent
from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder
from agenttrace.collection.tasks import Task, load_tasks, scripted_steps

TARGET_LEVEL, TARGET_SPEEDUP = 8, 6.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=24, help="runs per level")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument(
        "--levels", default="1,2,4,8,16", help="concurrency levels, comma-separated"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1 unless {TARGET_LEVEL} reaches {TARGET_SPEEDUP:g}x",
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    prompts = [task.prompt for task in load_tasks("nl2bash")]
    tasks = [
        Task("nl2bash", index, prompts[index % len(prompts)], "nl2bash", "train")
        for index in range(args.tasks)
    ]
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as scratch:
        root = Path(scratch)
        fixture.build(root / "fixture")
        responder = ScriptResponder(scripted_steps("nl2bash"))
        with ScriptedModelServer(
            responder, model="qwen3-1.7b", latency_s=args.latency_ms / 1000
        ) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
            agent = ReferenceAgent(
                client, AgentConfig(model="qwen3-1.7b"), fixture_root=root / "fixture"
            )
            print(
                f"{args.tasks} runs per level, {args.latency_ms:g} ms per completion, "
                "2 completions and 1 bash call per run"
            )
            print(f"{'concurrency':>11} {'seconds':>8} {'runs/s':>7} {'speed-up':>8}")
            for level in levels:
                output = root / f"runs-{level}.jsonl"
                agenttrace.configure(output=output, parquet=False, handle_signals=False)
                started = time.perf_counter()
                summary = collect(agent, tasks, output=output, resume=False, concurrency=level)
                elapsed = time.perf_counter() - started
                agenttrace.shutdown()
                finished = sum(1 for _, r in summary.results if r.stop_reason == "final_answer")
                if finished != args.tasks:
                    print(f"only {finished} of {args.tasks} runs finished at {level}")
                    return 1
                rates[level] = args.tasks / elapsed
                base = rates.get(1, rates[levels[0]])
                print(
                    f"{level:>11} {elapsed:>8.2f} {rates[level]:>7.2f} {rates[level] / base:>7.2f}x"
                )
    if args.check:
        if 1 not in rates or TARGET_LEVEL not in rates:
            print(f"--check needs levels 1 and {TARGET_LEVEL}")
            return 1
        speedup = rates[TARGET_LEVEL] / rates[1]
        if speedup < TARGET_SPEEDUP:
            print(
                f"MISSED: concurrency {TARGET_LEVEL} is {speedup:.2f}x, target {TARGET_SPEEDUP:g}x"
            )
            return 1
        print(f"ok: concurrency {TARGET_LEVEL} is {speedup:.2f}x (target {TARGET_SPEEDUP:g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
