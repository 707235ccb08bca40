"""The release's `tool_input` form, rebuilt at export from the arguments JSON when the
instrumentation leaves it out, is exactly the text it would have recorded."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from opentelemetry.exporter.agenttrace._rows import tool_input_of

from agenttrace import _settings, semconv
from agenttrace._invocations import _argument_attributes, _input_repr

SECRETS = st.sampled_from(
    [
        "sk-abcdefghijklmnopqrstuvwx12345678",
        "password=hunter2",
        "Authorization: Bearer abc.def.ghi",
        "postgres://user:pw@db:5432/x",
        'it\'s "quoted" \\ and é and \x01 and \udce9',
    ]
)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | SECRETS
)
VALUES = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=6), children, max_size=3)
        | st.dictionaries(st.integers(), children, max_size=2)
    ),
    max_leaves=10,
)


@hypothesis_settings(max_examples=400, deadline=None)
@given(
    args=st.lists(VALUES, max_size=3),
    kwargs=st.dictionaries(
        st.text(min_size=1, max_size=6).map(lambda k: "k_" + k), VALUES, max_size=3
    ),
)
def test_rebuilt_tool_input_equals_the_recorded_one(
    args: list[Any], kwargs: dict[str, Any]
) -> None:
    assume(args or kwargs)
    settings = _settings.Settings()
    arguments = {f"p{index}": value for index, value in enumerate(args)} | kwargs
    attributes = _argument_attributes(settings, arguments, None, positional=len(args))
    recorded = settings.renderer.repr(
        semconv.TOOL_INPUT_REPR, _input_repr(tuple(args), kwargs, settings.renderer.limit)
    )
    assert tool_input_of(attributes) == recorded


def test_plain_arguments_leave_the_repr_to_the_exporter_and_the_rest_record_it() -> None:
    settings = _settings.Settings()
    plain = _argument_attributes(settings, {"command": "ls", "n": 2}, None, positional=1)
    assert semconv.TOOL_INPUT_REPR not in plain
    assert plain[semconv.TOOL_POSITIONAL_ARGS] == 1
    assert tool_input_of(plain) == "args=('ls',), kwargs={'n': 2}"
    for unusual in (
        {"t": (1, 2)},
        {"k": float("nan")},
        {"secret": "sk-abcdefghijklmnopqrstuvwx1234"},
    ):
        attributes = _argument_attributes(settings, unusual, None)
        assert semconv.TOOL_INPUT_REPR in attributes, unusual
