"""What the commands print: counts in words, the run summary and the analysis tables.

Apart from the orchestration so that the wording lives in one place and a command module reads
as what it does.
"""

from __future__ import annotations

import sys
from typing import Any

import click


def count(number: int, singular: str, plural: str | None = None) -> str:
    """`1 run`, `2 runs`: a number and its noun in agreement (`plural` for irregular nouns)."""
    noun = singular if number == 1 else (plural or singular + "s")
    return f"{number:,} {noun}"


def summary_table(summary: Any) -> None:
    """One line per run: dataset, task, steps, why it stopped and the start of its answer."""
    click.echo(f"{'dataset':8} {'task':>5} {'steps':>5}  {'stop reason':14} answer")
    for task, result in summary.results:
        answer = (result.answer or "").replace("\n", " ")
        answer = answer if len(answer) <= 40 else answer[:37] + "..."
        click.echo(
            f"{task.dataset:8} {task.task_id:>5} {result.steps:>5}  "
            f"{result.stop_reason:14} {answer}"
        )


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: `-` for no value, thousands separators, `digits` decimals for floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_analysis(title: str, result: dict[str, Any]) -> None:
    """The tables of one `analyze` result (a file's, or all files' combined)."""
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)  # pipes: don't squeeze
    counts = result["counts"]
    console.rule(f"[bold]{title}")
    console.print(
        f"{count(counts['traces'], 'run')}, {count(counts['llm_steps'], 'model step')}, "
        f"{count(counts['tool_spans'], 'tool call')} "
        f"({count(counts['incomplete_traces'], 'incomplete run')})"
    )
    left_out = result["left_out"]
    if left_out["duplicate_rows"] or left_out["infrastructure_failures"]:
        console.print(
            f"left out: {count(left_out['duplicate_rows'], 'row')} repeating a run already read "
            f"(same trace_id), {count(left_out['infrastructure_failures'], 'run')} cut short by "
            "the model "
            "server or by stopping the collector (collect runs those tasks again)"
        )
    breakdown = result["time_breakdown"]
    table = Table(title="Time: LLM generation (estimated as run time minus tool time) vs tools")
    for column in ("", "seconds", "%"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("total", fmt(breakdown["total_s"], 1), "100.0")
    table.add_row(
        "LLM generation", fmt(breakdown["llm_s_estimated"], 1), fmt(breakdown["llm_pct"], 1)
    )
    table.add_row("tool execution", fmt(breakdown["tool_s"], 1), fmt(breakdown["tool_pct"], 1))
    console.print(table)
    share = result["tool_share_per_trace_pct"]
    console.print(
        "Tool time as % of each run: "
        + ", ".join(f"{key} {fmt(share[key])}" for key in ("min", "median", "p95", "max"))
    )
    table = Table(title="Tools")
    for column in (
        "tool",
        "calls",
        "total s",
        "failed",
        "median ms",
        "p95 ms",
        "median CPU s",
        "median peak MiB",
        "p95 peak MiB",
        "median read MiB",
        "median write MiB",
    ):
        table.add_column(column, justify="left" if column == "tool" else "right")
    for name, _ in result["tools_by_time_s"]:
        tool = result["tools"][name]
        table.add_row(
            name,
            fmt(tool["count"]),
            fmt(tool["total_s"], 3),
            f"{tool['failures']} ({100 * tool['failure_rate']:.0f}%)",
            fmt(tool["duration_ms"]["median"], 1),
            fmt(tool["duration_ms"]["p95"], 1),
            fmt(tool["cpu_time_s"]["median"], 3),
            fmt(tool["max_rss_mib"]["median"], 1),
            fmt(tool["max_rss_mib"]["p95"], 1),
            fmt(tool["read_mib"]["median"], 2),
            fmt(tool["write_mib"]["median"], 2),
        )
    console.print(table)
    tokens = result["tokens"]
    table = Table(title="Model steps")
    for column in ("", "min", "median", "mean", "p95", "max"):
        table.add_column(column, justify="left" if not column else "right")
    for label, stats in (
        ("steps per run", result["steps_per_trace"]),
        ("input tokens per step", tokens["input_per_step"]),
        ("output tokens per step", tokens["output_per_step"]),
        ("reasoning chars per step", tokens["reasoning_chars_per_step"]),
    ):
        table.add_row(label, *(fmt(stats[k], 1) for k in ("min", "median", "mean", "p95", "max")))
    console.print(table)
    console.print(
        f"tokens: {fmt(tokens['input_total'], 0)} in, {fmt(tokens['output_total'], 0)} out; "
        f"reasoning length vs output tokens, Pearson r = "
        f"{fmt(tokens['reasoning_chars_vs_output_tokens_pearson'], 3)}"
    )
    failures = result["failures"]
    console.print(
        f"tool failures: {failures['tool_calls_failed']} "
        f"(rate {fmt(failures['rate'], 3)}), by exit code {failures['by_exit_code']}"
    )
