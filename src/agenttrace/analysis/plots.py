"""Plots over AgentTrace files, rendered headless (matplotlib's Agg backend) to PNG files.

Each figure has a title and axes labelled with units; a figure with no data to show says so
instead of failing, so a set of plots is always complete.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display needed, before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from agenttrace.analysis.dataset import Dataset  # noqa: E402

_MiB = 2**20


def _empty(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in these files", ha="center", va="center", transform=ax.transAxes)


def time_breakdown(data: Dataset, ax: Axes) -> None:
    traces = data.traces
    if traces.empty:
        return _empty(ax, "runs")
    grouped = traces.groupby("file")[["llm_time_ms", "tool_time_ms"]].sum() / 1000
    ax.bar(grouped.index, grouped["llm_time_ms"], label="LLM generation (estimated)")
    ax.bar(
        grouped.index,
        grouped["tool_time_ms"],
        bottom=grouped["llm_time_ms"],
        label="tool execution",
    )
    ax.set_title("Where the time goes: LLM generation vs tool execution")
    ax.set_xlabel("file")
    ax.set_ylabel("total time (s)")
    ax.legend()
    ax.tick_params(axis="x", labelrotation=20)


def tool_durations(data: Dataset, ax: Axes) -> None:
    spans = data.spans[data.spans["duration_ms"] > 0]
    if spans.empty:
        return _empty(ax, "tool calls")
    names = sorted(spans["tool_name"].dropna().unique())
    ax.boxplot(
        [spans.loc[spans["tool_name"] == n, "duration_ms"] for n in names],
        tick_labels=names,
        orientation="horizontal",
    )
    ax.set_xscale("log")
    ax.set_title("Tool call durations")
    ax.set_xlabel("duration (ms, log scale)")
    ax.set_ylabel("tool")


def cpu_vs_duration(data: Dataset, ax: Axes) -> None:
    spans = data.spans[(data.spans["duration_ms"] > 0) & (data.spans["cpu_time_s"] > 0)]
    if spans.empty:
        return _empty(ax, "tool calls with CPU time")
    for name, group in spans.groupby("tool_name"):
        ax.scatter(group["duration_ms"] / 1000, group["cpu_time_s"], s=12, alpha=0.7, label=name)
    low = min(spans["duration_ms"].min() / 1000, spans["cpu_time_s"].min())
    high = max(spans["duration_ms"].max() / 1000, spans["cpu_time_s"].max())
    ax.plot([low, high], [low, high], linestyle="--", color="grey", label="CPU time = duration")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title("CPU time vs wall-clock duration per tool call")
    ax.set_xlabel("duration (s, log scale)")
    ax.set_ylabel("user + system CPU time (s, log scale)")
    ax.legend()


def peak_rss_by_tool(data: Dataset, ax: Axes) -> None:
    spans = data.spans[data.spans["max_rss_bytes"] > 0]
    if spans.empty:
        return _empty(ax, "peak RSS figures")
    names = sorted(spans["tool_name"].dropna().unique())
    ax.boxplot(
        [spans.loc[spans["tool_name"] == n, "max_rss_bytes"] / _MiB for n in names],
        tick_labels=names,
    )
    ax.set_title("Peak resident memory by tool")
    ax.set_xlabel("tool")
    ax.set_ylabel("peak RSS (MiB)")


def steps_per_trace(data: Dataset, ax: Axes) -> None:
    traces = data.traces
    if traces.empty:
        return _empty(ax, "runs")
    counts = traces["llm_step_count"]
    ax.hist(
        counts,
        bins=range(int(counts.min()), int(counts.max()) + 2),
        align="left",
        edgecolor="black",
    )
    ax.set_title("Model steps per run")
    ax.set_xlabel("model steps (count)")
    ax.set_ylabel("runs (count)")


def reasoning_vs_output(data: Dataset, ax: Axes) -> None:
    steps = data.steps.dropna(subset=["output_tokens"])
    steps = steps[steps["reasoning_chars"] > 0]
    if steps.empty:
        return _empty(ax, "model steps with reasoning and token counts")
    ax.scatter(steps["reasoning_chars"], steps["output_tokens"], s=12, alpha=0.7)
    ax.set_title("Reasoning length vs output tokens per model step")
    ax.set_xlabel("reasoning content (characters)")
    ax.set_ylabel("output tokens (count)")


PLOTS: dict[str, Callable[[Dataset, Axes], None]] = {
    "time_breakdown": time_breakdown,
    "tool_durations": tool_durations,
    "cpu_vs_duration": cpu_vs_duration,
    "peak_rss_by_tool": peak_rss_by_tool,
    "steps_per_trace": steps_per_trace,
    "reasoning_vs_output_tokens": reasoning_vs_output,
}


def render_all(data: Dataset, outdir: str | Path) -> list[Path]:
    """Write every plot as `<outdir>/<name>.png`; returns the files.

    Like `analyze`, the plots leave out runs cut short by the model server or by stopping the
    collector: they say nothing about the agent.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    data = data.without_infrastructure_failures()
    written = []
    for name, draw in PLOTS.items():
        figure, ax = plt.subplots(figsize=(9, 5.5), layout="constrained")
        try:
            draw(data, ax)
            path = outdir / f"{name}.png"
            figure.savefig(path, dpi=110)
            written.append(path)
        finally:
            plt.close(figure)
    return written
