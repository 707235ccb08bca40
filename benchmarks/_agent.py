"""The realistic agent the benchmarks record: per turn, one model step and one tool call.

A step carries text, 240 characters of reasoning, a tool call and token counts, as a Qwen3 step
served by llama-server does; the tool returns a small listing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import agenttrace


def realistic_agent(turns: int, *, varied: bool = False) -> Callable[[int], None]:
    """`run(i)`: one agent run of `turns` turns, task `i`. `varied` gives every prompt its own
    text (as real tasks have), else all turns ask the same."""

    @agenttrace.tool(name="bash")
    def bash(command: str) -> str:
        return "README.md\nsrc\ntests\n" * 20

    @agenttrace.llm(model="qwen3-1.7b")
    def step(messages: list[dict[str, str]]) -> dict[str, Any]:
        call = {"id": "call_1", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}
        message = {"content": "Listing.", "reasoning_content": "think " * 40, "tool_calls": [call]}
        return {
            "model": "qwen3-1.7b",
            "choices": [{"finish_reason": "tool_calls", "message": message}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 120},
        }

    @agenttrace.agent(metadata={"dataset_name": "nl2bash", "source": "bench", "dataset_split": "t"})
    def run(i: int) -> None:
        agenttrace.set_run_metadata(task_id=i, run_id="bench")
        for turn in range(turns):
            prompt = f"task {i}: list the files, turn {turn}" if varied else "list the files"
            step([{"role": "user", "content": prompt}])
            bash(command="ls")

    return run
