"""Row -> spans -> row is the identity (property-tested), and the Parquet view round-trips too."""

from __future__ import annotations

import json
import string
import uuid
from typing import Any, Literal, cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.agenttrace import build_row, record_to_row, row_to_record
from opentelemetry.exporter.agenttrace.files import encode_row
from opentelemetry.exporter.agenttrace.rows_to_spans import row_to_spans

HEX = "0123456789abcdef"
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.printable, max_size=200),
    st.builds(
        lambda ch, n: ch * n,
        st.characters(blacklist_categories=SURROGATES),
        st.integers(1000, 70_000),
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
nonneg_floats = st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False)
ns_times = st.integers(min_value=0, max_value=2**62)


@st.composite
def ids(draw, bits: int) -> str:
    kind = draw(st.sampled_from(["hex", "uuid", "word"]))
    if kind == "hex":
        return draw(
            st.text(alphabet=HEX, min_size=bits // 4, max_size=bits // 4).filter(
                lambda s: int(s, 16) != 0
            )
        )
    if kind == "uuid":
        return str(uuid.UUID(int=draw(st.integers(1, 2**128 - 1))))
    return draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,30}", fullmatch=True))


@st.composite
def tool_entry(draw, span_id: str, earlier: list[str]) -> dict:
    start = draw(ns_times)
    entry = {
        "span_id": span_id,
        "type": "TOOL",
        "tool_name": draw(
            st.sampled_from(["bash", "python_interpreter", "final_answer", "ünïcode"])
        ),
        "tool_input": draw(
            st.one_of(
                texts,
                st.builds(
                    lambda d: f"kwargs={d!r}",
                    st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3),
                ),
            )
        ),
        "tool_output": draw(texts),
        "start_ns": start,
        "end_ns": start + draw(st.integers(0, 10**12)),
        "duration_ms": draw(nonneg_floats),
        "telemetry": {
            "user_time_s": draw(nonneg_floats),
            "system_time_s": draw(nonneg_floats),
            "max_rss_bytes": draw(st.integers(0, 2**40)),
            "read_bytes": draw(st.integers(0, 2**40)),
            "write_bytes": draw(st.integers(0, 2**40)),
        },
        "exit_code": draw(st.integers(-255, 255)),
        "parent_span_id": draw(st.one_of(st.none(), st.sampled_from(earlier))) if earlier else None,
    }
    if draw(st.booleans()):
        entry["tool_call_id"] = draw(st.one_of(st.none(), st.text(max_size=12)))
        entry["max_rss_scope"] = draw(st.one_of(st.none(), st.sampled_from(["child", "call"])))
    return entry


@st.composite
def step_entry(draw, step_id: str) -> dict:
    calls = draw(
        st.one_of(
            st.none(),
            st.just([]),
            st.lists(
                st.builds(
                    lambda name, arguments: {"name": name, "arguments": arguments},
                    st.text(max_size=12),
                    st.dictionaries(st.text(max_size=8), json_values, max_size=3),
                ),
                max_size=3,
            ),
        )
    )
    entry = {
        "step_id": step_id,
        "step_number": draw(st.integers(1, 500)),
        "model_output": draw(st.one_of(st.none(), texts)),
        "reasoning_content": draw(st.one_of(st.none(), texts)),
        "tool_calls": calls,
        "duration_ms": draw(st.one_of(st.none(), nonneg_floats)),
        "input_tokens": draw(st.one_of(st.none(), st.integers(0, 10**6))),
        "output_tokens": draw(st.one_of(st.none(), st.integers(0, 10**6))),
    }
    if draw(st.booleans()):
        start = draw(ns_times)
        entry["start_ns"] = start
        entry["end_ns"] = start + draw(st.integers(0, 10**12))
    return entry


@st.composite
def rows(draw) -> dict:
    n_tools = draw(st.integers(0, 5))
    n_steps = draw(st.integers(0, 5))
    all_ids = draw(
        st.lists(ids(64), min_size=n_tools + n_steps, max_size=n_tools + n_steps, unique=True)
    )
    tools: list[dict[str, Any]] = []
    for index in range(n_tools):
        tools.append(draw(tool_entry(all_ids[index], [t["span_id"] for t in tools])))
    steps = [draw(step_entry(all_ids[n_tools + i])) for i in range(n_steps)]
    metadata = {
        "schema_version": "0.3.0",
        "collector_version": draw(st.text(max_size=20)),
        "dataset_name": draw(st.sampled_from(["nl2bash", "mbpp", "", "ディー"])),
        "source": draw(st.text(max_size=20)),
        "task_id": draw(st.integers(0, 10**6)),
        "run_id": draw(st.text(max_size=20)),
        "dataset_split": draw(st.sampled_from(["train", "test"])),
    }
    metadata.update(
        draw(
            st.dictionaries(
                st.text(max_size=10).filter(lambda k: k not in metadata), json_values, max_size=4
            )
        )
    )
    moment = draw(st.integers(0, 4_000_000_000 * 10**6))  # microseconds since the epoch
    from opentelemetry.exporter.agenttrace._rows import iso_utc

    return {
        "trace_id": draw(ids(128)),
        "timestamp_utc": draw(
            st.one_of(
                st.just(iso_utc(moment * 1000)),
                st.sampled_from(["2026-03-28T13:31:44Z", "not a time"]),
            )
        ),
        "prompt": draw(texts),
        "model": draw(st.text(max_size=30)),
        "spans": tools,
        "llm_steps": steps,
        "total_duration_ms": draw(nonneg_floats),
        "metadata": metadata,
    }


def _round_trip(row: dict) -> dict:
    spans = row_to_spans(row)
    return build_row(spans[0], spans[1:])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(rows())
def test_row_spans_row_is_identity(row: dict) -> None:
    back = _round_trip(row)
    assert encode_row(back) == encode_row(row)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows())
def test_parquet_record_round_trip(row: dict) -> None:
    assert encode_row(record_to_row(row_to_record(row, "f.jsonl"))) == encode_row(row)


RELEASE_ROW: dict[str, Any] = {
    "trace_id": "5f0c6d4e-8a3b-4b1e-9c2d-7e6f5a4b3c2d",
    "timestamp_utc": "2026-03-28T13:31:44.512345+00:00",
    "prompt": "Count the lines of every .txt file under /testdata",
    "model": "Qwen3-0.6B",
    "spans": [
        {
            "span_id": "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
            "type": "TOOL",
            "tool_name": "bash",
            "tool_input": "kwargs={'command': 'find /testdata -name \"*.txt\" | xargs wc -l'}",
            "tool_output": "  3 /testdata/a.txt\n",
            "start_ns": 98765432100,
            "end_ns": 98777432100,
            "duration_ms": 12.0,
            "telemetry": {
                "user_time_s": 0.004,
                "system_time_s": 0.002,
                "max_rss_bytes": 412090368,
                "read_bytes": 0,
                "write_bytes": 0,
            },
            "exit_code": 0,
            "parent_span_id": None,
        },
        {
            "span_id": "1d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
            "type": "TOOL",
            "tool_name": "final_answer",
            "tool_input": "kwargs={'answer': '3'}",
            "tool_output": "3",
            "start_ns": 99000000000,
            "end_ns": 99000100000,
            "duration_ms": 0.1,
            "telemetry": {
                "user_time_s": 0.0,
                "system_time_s": 0.0,
                "max_rss_bytes": 412090368,
                "read_bytes": 0,
                "write_bytes": 0,
            },
            "exit_code": 0,
            "parent_span_id": None,
        },
    ],
    "llm_steps": [
        {
            "step_id": "aa1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
            "step_number": 1,
            "model_output": "",
            "reasoning_content": "I should use find.",
            "tool_calls": [
                {
                    "name": "bash",
                    "arguments": {"command": 'find /testdata -name "*.txt" | xargs wc -l'},
                }
            ],
            "duration_ms": 812.5,
            "input_tokens": 812,
            "output_tokens": 95,
        },
        {
            "step_id": "bb1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
            "step_number": 2,
            "model_output": None,
            "reasoning_content": None,
            "tool_calls": [{"name": "final_answer", "arguments": {"answer": "3"}}],
            "duration_ms": None,
            "input_tokens": None,
            "output_tokens": None,
        },
    ],
    "total_duration_ms": 1905.25,
    "metadata": {
        "schema_version": "0.3.0",
        "collector_version": "0.3.0",
        "dataset_name": "nl2bash",
        "source": "nl2bash",  # the release: source == dataset_name
        "task_id": 17,
        "run_id": "20260328T133144Z",
        "dataset_split": "train",
        "fixture_version": "a" * 64,
        "platform": {"system": "Darwin"},
    },
}


def test_release_rows_round_trip_and_get_a_usable_timeline() -> None:
    spans = row_to_spans(RELEASE_ROW)
    back = build_row(spans[0], spans[1:])
    assert json.dumps(back) == json.dumps(RELEASE_ROW)
    root, *children = spans
    # perf-counter times are re-anchored at the run's start, inside the run
    for span in children:
        assert root.start_time is not None
        assert span.start_time is not None and span.end_time is not None
        assert root.start_time <= span.start_time <= span.end_time
    names = [s.name for s in sorted(children, key=lambda s: cast(int, s.start_time))]
    assert names == [
        "chat Qwen3-0.6B",
        "execute_tool bash",
        "chat Qwen3-0.6B",
        "execute_tool final_answer",
    ]
    bash = next(s for s in children if s.name == "execute_tool bash")
    assert bash.attributes is not None and root.attributes is not None
    assert json.loads(cast(str, bash.attributes["gen_ai.tool.call.arguments"])) == {
        "command": 'find /testdata -name "*.txt" | xargs wc -l'
    }
    assert bash.attributes["agenttrace.telemetry.max_rss_bytes"] == 412090368
    assert len({s.context.trace_id for s in spans}) == 1
    assert root.attributes["agenttrace.metadata.task_id"] == 17
