"""Decorators and context managers: span names, kinds, nesting, ending exactly once, context flow."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from typing import Any, cast

import pytest
from opentelemetry import trace
from opentelemetry.exporter.agenttrace._rows import tool_input_of
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import agenttrace
from agenttrace import semconv


def _children_of(spans, parent):
    return [
        s
        for s in spans.all()
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def test_agent_llm_tool_tree_names_and_kinds(spans) -> None:
    @agenttrace.tool
    def bash(command: str) -> str:
        return "ok"

    @agenttrace.llm(model="qwen3-8b")
    def call_model(messages: list) -> str:
        return "thinking done"

    @agenttrace.agent(name="nl2bash", provider="openai")
    def run(prompt: str) -> str:
        call_model([{"role": "user", "content": prompt}])
        return bash(command="ls")

    assert run("list files") == "ok"
    root = spans.one("invoke_agent nl2bash")
    chat = spans.one("chat qwen3-8b")
    tool = spans.one("execute_tool bash")
    assert root.parent is None
    assert root.kind is SpanKind.INTERNAL and chat.kind is SpanKind.CLIENT
    assert tool.kind is SpanKind.INTERNAL
    assert {s.name for s in _children_of(spans, root)} == {"chat qwen3-8b", "execute_tool bash"}
    assert root.attributes[semconv.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert root.attributes[semconv.GEN_AI_AGENT_NAME] == "nl2bash"
    assert root.attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert root.attributes[semconv.PROMPT] == "list files"
    assert chat.attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert chat.attributes[semconv.GEN_AI_REQUEST_MODEL] == "qwen3-8b"
    assert chat.attributes[semconv.STEP_NUMBER] == 1
    assert tool.attributes[semconv.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert tool.attributes[semconv.GEN_AI_TOOL_NAME] == "bash"
    assert root.status.status_code is StatusCode.UNSET


def test_step_numbers_count_per_run(spans) -> None:
    @agenttrace.llm(model="m")
    def step() -> str:
        return "x"

    @agenttrace.agent
    def run() -> None:
        for _ in range(3):
            step()

    run()
    run()
    numbers = sorted(s.attributes[semconv.STEP_NUMBER] for s in spans.named("chat m"))
    assert numbers == [1, 1, 2, 2, 3, 3]


@pytest.mark.parametrize("form", ["bare", "named_positional", "named_keyword"])
def test_decorator_forms(spans, form: str) -> None:
    def grep(pattern: str) -> str:
        return pattern

    if form == "bare":
        decorated, expected = agenttrace.tool(grep), "grep"
    elif form == "named_positional":
        decorated, expected = agenttrace.tool("search")(grep), "search"
    else:
        decorated, expected = agenttrace.tool(name="search")(grep), "search"
    assert decorated("x") == "x"
    assert decorated.__name__ == "grep" and cast(Any, decorated).__wrapped__ is grep
    assert spans.one(f"execute_tool {expected}").attributes[semconv.GEN_AI_TOOL_NAME] == expected


def test_async_function(spans) -> None:
    @agenttrace.tool
    async def fetch(url: str) -> str:
        await asyncio.sleep(0)
        return url.upper()

    @agenttrace.agent
    async def run() -> str:
        return await fetch("a")

    assert asyncio.run(run()) == "A"
    tool = spans.one("execute_tool fetch")
    assert tool.parent.span_id == spans.one("invoke_agent run").context.span_id
    assert tool.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "A"


def test_sync_generator_exhausted(spans) -> None:
    @agenttrace.tool
    def lines(n: int):
        for i in range(n):
            assert cast(ReadableSpan, trace.get_current_span()).name == "execute_tool lines"
            yield f"{i}\n"

    assert list(lines(3)) == ["0\n", "1\n", "2\n"]
    span = spans.one("execute_tool lines")
    assert span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "0\n1\n2\n"
    assert semconv.GENERATOR_CLOSED_EARLY not in span.attributes


def test_generator_does_not_leak_its_span_to_the_consumer(spans) -> None:
    @agenttrace.tool
    def numbers():
        yield 1
        yield 2

    outside = trace.get_current_span()
    for _ in numbers():
        assert trace.get_current_span() is outside


def test_generator_send_and_throw_are_forwarded(spans) -> None:
    @agenttrace.tool
    def echo():
        received = yield "ready"
        try:
            yield f"got {received}"
        except KeyError:
            yield "handled"

    generator = echo()
    assert next(generator) == "ready"
    assert generator.send("x") == "got x"
    assert generator.throw(KeyError("k")) == "handled"
    with pytest.raises(StopIteration):
        next(generator)
    assert spans.one("execute_tool echo").status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("how", ["break", "close", "gc"])
def test_sync_generator_closed_early_ends_once_without_detach_errors(
    spans,
    caplog,
    how: str,
) -> None:
    cleaned = []

    @agenttrace.tool
    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            cleaned.append(True)

    caplog.set_level(logging.ERROR)
    generator = endless()
    if how == "break":
        for value in generator:
            if value == 2:
                break
        generator.close()
    elif how == "close":
        next(generator)
        generator.close()
    else:
        next(generator)

        def drop_elsewhere() -> None:  # collected in another thread, another context
            nonlocal generator
            del generator
            gc.collect()

        worker = threading.Thread(target=drop_elsewhere)
        worker.start()
        worker.join()
    assert cleaned == [True]
    span = spans.one("execute_tool endless")
    assert span.attributes[semconv.GENERATOR_CLOSED_EARLY] is True
    assert span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT].startswith("[0")  # what it yielded
    assert span.status.status_code is StatusCode.UNSET
    assert "Failed to detach context" not in caplog.text


def test_async_generator_exhausted_and_closed_early(spans, caplog) -> None:
    @agenttrace.tool
    async def stream(n: int):
        for i in range(n):
            await asyncio.sleep(0)
            yield str(i)

    async def main() -> None:
        assert [x async for x in stream(3)] == ["0", "1", "2"]
        early = stream(100)
        async for x in early:
            if x == "1":
                break
        await early.aclose()
        dropped = stream(100)
        await dropped.__anext__()
        del dropped
        gc.collect()
        await asyncio.sleep(0.01)  # the loop's asyncgen finaliser runs aclose()

    caplog.set_level(logging.ERROR)
    asyncio.run(main())
    done, early, dropped = sorted(spans.named("execute_tool stream"), key=lambda s: s.start_time)
    assert done.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "012"
    assert early.attributes[semconv.GENERATOR_CLOSED_EARLY] is True
    assert dropped.attributes[semconv.GENERATOR_CLOSED_EARLY] is True
    assert "Failed to detach context" not in caplog.text


class Toolbox:
    prefix = "cls"

    def __init__(self) -> None:
        self.prefix_ = "self"

    @agenttrace.tool
    def method(self, x: int) -> str:
        return f"{self.prefix_}{x}"

    @agenttrace.tool
    @classmethod
    def klass(cls, x: int) -> str:
        return f"{cls.prefix}{x}"

    @classmethod
    @agenttrace.tool(name="klass_inner")
    def klass_inner(cls, x: int) -> str:
        return f"{cls.prefix}{x}"

    @agenttrace.tool
    @staticmethod
    def static(x: int) -> str:
        return f"static{x}"


def test_methods_classmethods_staticmethods(spans) -> None:
    box = Toolbox()
    assert box.method(1) == "self1"
    assert Toolbox.klass(2) == "cls2" and box.klass(2) == "cls2"
    assert Toolbox.klass_inner(3) == "cls3"
    assert Toolbox.static(4) == "static4" and box.static(4) == "static4"
    method = spans.one("execute_tool method")
    # self / cls are not tool arguments
    assert method.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"x": 1}'
    assert tool_input_of(method.attributes) == "args=(1,)"
    assert (
        spans.named("execute_tool klass")[0].attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]
        == '{"x": 2}'
    )
    assert (
        spans.one("execute_tool klass_inner").attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]
        == '{"x": 3}'
    )
    assert len(spans.named("execute_tool static")) == 2


class Boom(Exception):
    pass


def test_exception_recorded_and_reraised_unchanged(spans) -> None:
    error = Boom("bad input")

    @agenttrace.tool
    def fails() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        fails()
    assert caught.value is error
    span = spans.one("execute_tool fails")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.TOOL_EXIT_CODE] == 1
    assert span.attributes[semconv.ERROR_TYPE] == "Boom"
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes["exception.message"] == "bad input"


def test_exception_in_async_generator_and_cancellation(spans) -> None:
    @agenttrace.tool
    async def broken():
        yield 1
        raise Boom("mid-stream")

    @agenttrace.tool
    async def slow() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        with pytest.raises(Boom):
            async for _ in broken():
                pass
        task = asyncio.ensure_future(slow())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert spans.one("execute_tool broken").status.status_code is StatusCode.ERROR
    cancelled = spans.one("execute_tool slow")
    assert cancelled.attributes[semconv.ERROR_TYPE] == "CancelledError"


def test_span_ends_exactly_once(spans) -> None:
    with agenttrace.tool_call("bash", {"command": "true"}) as call:
        call.set_result("")
    call.finish("again")
    call.fail(RuntimeError("late"))
    span = spans.one("execute_tool bash")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == ""


def test_context_manager_forms(spans) -> None:
    with agenttrace.agent_run(
        "manual", prompt="p", model="qwen", task_id=7, dataset_name="mbpp"
    ) as run:
        with agenttrace.llm_call("qwen", temperature=0.2, repetition_penalty=1.1) as step:
            step.set_output("text", reasoning="because", input_tokens=5, output_tokens=3)
        with (
            pytest.raises(ValueError),
            agenttrace.tool_call("python_interpreter", {"code": "1/0"}, call_id="call_9"),
        ):
            raise ValueError("no")
        run.set_metadata(run_id="r-1")
    root = spans.one("invoke_agent manual")
    assert root.attributes["agenttrace.metadata.task_id"] == 7
    assert root.attributes["agenttrace.metadata.dataset_name"] == "mbpp"
    assert root.attributes["agenttrace.metadata.run_id"] == "r-1"
    assert root.attributes[semconv.GEN_AI_REQUEST_MODEL] == "qwen"
    chat = spans.one("chat qwen")
    assert chat.attributes["gen_ai.request.temperature"] == 0.2
    # not a GenAI convention name: kept under our own namespace
    assert chat.attributes["agenttrace.request.repetition_penalty"] == 1.1
    assert "gen_ai.request.repetition_penalty" not in chat.attributes
    assert chat.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 5
    tool = spans.one("execute_tool python_interpreter")
    assert tool.attributes[semconv.GEN_AI_TOOL_CALL_ID] == "call_9"
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.parent.span_id == root.context.span_id


def test_context_reaches_tasks_and_executor_threads(spans) -> None:
    @agenttrace.tool
    def work(i: int) -> int:
        return i

    @agenttrace.tool
    async def awork(i: int) -> int:
        return i

    @agenttrace.agent
    async def run() -> None:
        await asyncio.gather(*(asyncio.create_task(awork(i)) for i in range(3)))
        await asyncio.to_thread(work, 10)
        with agenttrace.ContextThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(work, range(3)))
        thread = threading.Thread(target=agenttrace.propagate(work), args=(20,))
        thread.start()
        thread.join()

    asyncio.run(run())
    root = spans.one("invoke_agent run")
    children = _children_of(spans, root)
    assert len(children) == 3 + 1 + 3 + 1
    assert all(c.context.trace_id == root.context.trace_id for c in children)


def test_concurrent_runs_never_mix(spans) -> None:
    @agenttrace.tool
    def step(run_id: int, i: int) -> int:
        return i

    @agenttrace.agent
    def run(run_id: int) -> None:
        for i in range(20):
            step(run_id, i)

    @agenttrace.agent
    async def arun(run_id: int) -> None:
        for i in range(20):
            step(run_id, i)
            await asyncio.sleep(0)

    threads = [threading.Thread(target=run, args=(r,)) for r in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def tasks() -> None:
        await asyncio.gather(*(arun(r) for r in range(10, 14)))

    asyncio.run(tasks())
    roots = spans.named("invoke_agent run") + spans.named("invoke_agent arun")
    assert len(roots) == 8
    for root in roots:
        mine = [
            s for s in spans.named("execute_tool step") if s.parent.span_id == root.context.span_id
        ]
        assert len(mine) == 20
        run_ids = {s.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] for s in mine}
        assert len({r.split(",")[0] for r in run_ids}) == 1
        assert all(s.context.trace_id == root.context.trace_id for s in mine)
    assert len({r.context.trace_id for r in roots}) == 8


def test_nested_tool_parent_is_enclosing_tool(spans) -> None:
    @agenttrace.tool
    def inner() -> str:
        return "in"

    @agenttrace.tool
    def outer() -> str:
        return inner()

    outer()
    assert (
        spans.one("execute_tool inner").parent.span_id
        == spans.one("execute_tool outer").context.span_id
    )


def test_call_id_applies_to_one_call_only(spans) -> None:
    @agenttrace.tool
    def inner() -> None:
        pass

    @agenttrace.tool
    def outer() -> None:
        inner()

    with agenttrace.using_call_id("call_abc"):
        outer()
    assert spans.one("execute_tool outer").attributes[semconv.GEN_AI_TOOL_CALL_ID] == "call_abc"
    assert semconv.GEN_AI_TOOL_CALL_ID not in spans.one("execute_tool inner").attributes


def test_decorating_a_non_callable_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="wrap callables"):
        agenttrace.tool(42)  # type: ignore[call-overload]  # the non-callable under test


def test_call_id_names_the_first_tool_of_the_block_only(spans) -> None:
    @agenttrace.tool
    def a() -> None:
        pass

    @agenttrace.tool
    def b() -> None:
        pass

    with agenttrace.using_call_id("call_1"):
        a()
        b()
    assert spans.one("execute_tool a").attributes[semconv.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert semconv.GEN_AI_TOOL_CALL_ID not in spans.one("execute_tool b").attributes


def test_generator_tool_resumed_on_another_thread_has_sane_telemetry(spans) -> None:
    from concurrent.futures import ThreadPoolExecutor

    @agenttrace.tool
    def chunks():
        for i in range(3):
            sum(range(200_000))
            yield i

    generator = chunks()
    with ThreadPoolExecutor(max_workers=3) as pool:  # each resume on a different thread
        for _ in range(4):
            pool.submit(next, generator, None).result()
    span = spans.one("execute_tool chunks")
    assert span.attributes[semconv.TELEMETRY_USER_TIME_S] >= 0
    assert span.attributes[semconv.TELEMETRY_SYSTEM_TIME_S] >= 0
