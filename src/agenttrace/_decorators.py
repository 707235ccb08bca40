"""The decorators `agent`, `llm` and `tool`: drivers of the invocation objects for any callable.

One wrapper per kind of callable (function, coroutine function, generator function, async
generator function; classmethod and staticmethod objects are unwrapped and rewrapped). Generators
never keep their span attached while suspended: the span is attached around each resume and
detached before the value is handed out, so a generator closed early (`break`, `aclose()`, garbage
collection in another context) ends its span cleanly and never trips "Failed to detach context".
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from agenttrace import _settings
from agenttrace._invocations import AgentRun, LLMCall, ToolCall, _input_repr, _Invocation

F = TypeVar("F", bound=Callable[..., Any])
_Start = Callable[[tuple[Any, ...], dict[str, Any]], _Invocation]

_PROMPT_NAMES = ("prompt", "task", "query", "question", "instruction", "input", "message")
_MAX_ITEMS = 10_000  # generator items kept for the recorded result


class _Signature:
    """Positional parameter names, computed once, to name the arguments of each call cheaply."""

    __slots__ = ("names", "skip_first", "var_positional")

    def __init__(self, func: Callable[..., Any]) -> None:
        try:
            parameters = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            parameters = []
        positional = [
            p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        # Methods: `self` / `cls` is not a tool argument. (A decorator inside a class body sees a
        # plain function, so the conventional names are the only reliable sign.)
        self.skip_first = bool(positional) and positional[0] in ("self", "cls")
        self.names = positional[1:] if self.skip_first else positional
        self.var_positional = next(
            (p.name for p in parameters if p.kind is p.VAR_POSITIONAL), "args"
        )

    def own_args(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return args[1:] if self.skip_first else args

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name (`self`/`cls` left out)."""
        named = dict(zip(self.names, args, strict=False))
        if len(args) > len(self.names):
            named[self.var_positional] = list(args[len(self.names) :])
        if kwargs:
            named.update(kwargs)
        return named


class _Items:
    """Items a generator yielded, kept (bounded) to record as its result."""

    __slots__ = ("items", "size", "limit", "dropped")

    def __init__(self, limit: int) -> None:
        self.items: list[Any] = []
        self.size = 0
        self.limit = limit
        self.dropped = 0

    def add(self, item: Any) -> None:
        if self.size <= self.limit and len(self.items) < _MAX_ITEMS:
            self.items.append(item)
            self.size += len(item) if isinstance(item, str) else 16
        else:
            self.dropped += 1

    def result(self, returned: Any) -> Any:
        if returned is not None:
            return returned
        if self.items and all(isinstance(item, str) for item in self.items):
            text = "".join(self.items)
            return text + (f"…[{self.dropped} more items]" if self.dropped else "")
        return self.items + ([f"…[{self.dropped} more items]"] if self.dropped else [])


def _wrap_function(func: Callable[..., Any], start: _Start) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        invocation = start(args, kwargs)
        invocation.attach()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            invocation.detach()
            invocation.fail(exc)
            raise
        invocation.detach()
        invocation.finish(result)
        return result

    return wrapper


def _wrap_coroutine(func: Callable[..., Any], start: _Start) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        invocation = start(args, kwargs)
        invocation.attach()
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:  # CancelledError included: the span says it was cancelled
            invocation.detach()
            invocation.fail(exc)
            raise
        invocation.detach()
        invocation.finish(result)
        return result

    return wrapper


def _start_generator(
    func: Callable[..., Any], start: _Start, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[_Invocation, Any]:
    """Start the span and create the (not yet started) generator in its context."""
    invocation = start(args, kwargs)
    invocation.attach()
    try:
        generator = func(*args, **kwargs)
    except BaseException as exc:
        invocation.detach()
        invocation.fail(exc)
        raise
    invocation.detach()
    return invocation, generator


def _wrap_generator(func: Callable[..., Any], start: _Start) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        invocation, generator = _start_generator(func, start, args, kwargs)
        items = _Items(invocation.settings.max_value_length)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            invocation.attach()
            try:
                if thrown is not None:
                    exc, thrown = thrown, None
                    item = generator.throw(exc)
                else:
                    item = generator.send(sent)
            except StopIteration as stop:
                invocation.detach()
                invocation.finish(items.result(stop.value))
                return stop.value
            except BaseException as exc:
                invocation.detach()
                invocation.fail(exc)
                raise
            invocation.detach()
            items.add(item)
            try:
                sent = yield item
            except GeneratorExit:
                invocation.attach()
                try:
                    generator.close()
                except BaseException as exc:
                    invocation.detach()
                    invocation.fail(exc)
                    raise
                invocation.detach()
                invocation.close_early(items.result(None))
                raise
            except BaseException as exc:  # thrown in by the consumer: pass it on
                sent, thrown = None, exc

    return wrapper


def _wrap_async_generator(func: Callable[..., Any], start: _Start) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        invocation, generator = _start_generator(func, start, args, kwargs)
        items = _Items(invocation.settings.max_value_length)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            invocation.attach()
            try:
                if thrown is not None:
                    exc, thrown = thrown, None
                    item = await generator.athrow(exc)
                else:
                    item = await generator.asend(sent)
            except StopAsyncIteration:
                invocation.detach()
                invocation.finish(items.result(None))
                return
            except BaseException as exc:
                invocation.detach()
                invocation.fail(exc)
                raise
            invocation.detach()
            items.add(item)
            try:
                sent = yield item
            except GeneratorExit:
                invocation.attach()
                try:
                    await generator.aclose()
                except BaseException as exc:
                    invocation.detach()
                    invocation.fail(exc)
                    raise
                invocation.detach()
                invocation.close_early(items.result(None))
                raise
            except BaseException as exc:
                sent, thrown = None, exc

    return wrapper


def _decorate(func: Any, make_start: Callable[[Callable[..., Any]], _Start]) -> Any:
    if isinstance(func, (classmethod, staticmethod)):
        return type(func)(_decorate(func.__func__, make_start))
    if not callable(func):
        raise TypeError(f"agenttrace decorators wrap callables, not {type(func).__name__}")
    start = make_start(func)
    if inspect.isasyncgenfunction(func):
        wrapper = _wrap_async_generator(func, start)
    elif inspect.isgeneratorfunction(func):
        wrapper = _wrap_generator(func, start)
    elif inspect.iscoroutinefunction(func):
        wrapper = _wrap_coroutine(func, start)
    else:
        wrapper = _wrap_function(func, start)
    return functools.update_wrapper(wrapper, func)


def _name_of(func: Any) -> str:
    inner = getattr(func, "__func__", func)
    return getattr(inner, "__name__", type(inner).__name__)


@overload
def tool(func: F, /) -> F: ...
@overload
def tool(
    func: str | None = None, /, *, name: str | None = None, description: str | None = None
) -> Callable[[F], F]: ...
def tool(func: Any = None, /, *, name: str | None = None, description: str | None = None) -> Any:
    """Trace each call as an `execute_tool {name}` span with arguments, result and telemetry.

    Bare (`@tool`), named (`@tool("bash")`, `@tool(name="bash")`), on functions, coroutines,
    generators, async generators, methods, classmethods and staticmethods.
    """
    if isinstance(func, str):
        func, name = None, func
    if func is None:
        return lambda f: tool(f, name=name, description=description)
    tool_name = name or _name_of(func)

    def make_start(target: Callable[..., Any]) -> _Start:
        signature = _Signature(target)

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Invocation:
            settings = _settings.current()
            if not settings.capture_content:
                return ToolCall(tool_name, description=description, settings=settings)
            own = signature.own_args(args)
            arguments = signature.arguments(own, kwargs)
            if (own or kwargs) and len(own) <= len(signature.names):
                # Each positional value is one named argument: the release's form follows from
                # the arguments and their count (rebuilt at export when it can be).
                return ToolCall(
                    tool_name,
                    arguments,
                    positional=len(own),
                    description=description,
                    settings=settings,
                )
            return ToolCall(
                tool_name,
                arguments,
                input_repr=_input_repr(own, kwargs, settings.renderer.limit),
                description=description,
                settings=settings,
            )

        return start

    return _decorate(func, make_start)


@overload
def agent(func: F, /) -> F: ...
@overload
def agent(
    func: str | None = None,
    /,
    *,
    name: str | None = None,
    model: str | None = None,
    provider: str | None = None,
    prompt_arg: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Callable[[F], F]: ...
def agent(
    func: Any = None,
    /,
    *,
    name: str | None = None,
    model: str | None = None,
    provider: str | None = None,
    prompt_arg: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Trace each call as an agent run: the root `invoke_agent {name}` span, one AgentTrace row.

    The prompt is the argument named `prompt_arg`, else the first of `prompt`, `task`, `query`,
    `question`, `instruction`, `input`, `message`, else the first string argument. `metadata` is
    static row metadata; per-call metadata goes through `agenttrace.set_run_metadata(...)`.
    """
    if isinstance(func, str):
        func, name = None, func
    if func is None:
        return lambda f: agent(
            f, name=name, model=model, provider=provider, prompt_arg=prompt_arg, metadata=metadata
        )
    agent_name = name or _name_of(func)

    def make_start(target: Callable[..., Any]) -> _Start:
        signature = _Signature(target)
        candidates = (prompt_arg,) if prompt_arg else _PROMPT_NAMES

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Invocation:
            arguments = signature.arguments(signature.own_args(args), kwargs)
            prompt = next((arguments[c] for c in candidates if c in arguments), None)
            if prompt is None and not prompt_arg:
                prompt = next((v for v in arguments.values() if isinstance(v, str)), None)
            return AgentRun(
                agent_name, prompt=prompt, model=model, provider=provider, metadata=metadata
            )

        return start

    return _decorate(func, make_start)


@overload
def llm(func: F, /) -> F: ...
@overload
def llm(
    func: str | None = None, /, *, model: str | None = None, provider: str = "openai"
) -> Callable[[F], F]: ...
def llm(func: Any = None, /, *, model: str | None = None, provider: str = "openai") -> Any:
    """Trace each call as a model step, a `chat {model}` span, for code that calls a model by hand.

    The model is `model`, else the call's `model` argument. A `messages` argument is recorded as
    the input; the return value is recorded as the output when it is a string or an OpenAI-style
    chat completion (object or dict); anything else can be recorded with
    `agenttrace.current_invocation().set_output(...)`.
    """
    if isinstance(func, str):
        func, model = None, func
    if func is None:
        return lambda f: llm(f, model=model, provider=provider)

    def make_start(target: Callable[..., Any]) -> _Start:
        signature = _Signature(target)

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Invocation:
            arguments = signature.arguments(signature.own_args(args), kwargs)
            call_model = model or arguments.get("model")
            messages = arguments.get("messages")
            return LLMCall(
                call_model if isinstance(call_model, str) else None,
                provider=provider,
                # an iterator is the function's to read: recorded only when it is a sequence
                messages=messages if isinstance(messages, (list, tuple)) else None,
            )

        return start

    return _decorate(func, make_start)
