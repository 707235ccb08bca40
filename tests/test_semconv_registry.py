"""Our attribute keys against the official registry (`opentelemetry-semantic-conventions`).

The GenAI keys are spelled out in `semconv` (see its docstring for why); this is where a rename
in the registry the SDK installs shows up, as a failing test rather than as rows whose keys no
other GenAI tool reads.
"""

from __future__ import annotations

import importlib

import pytest

from agenttrace import semconv

# The registry's incubating GenAI module: private by name, but the only place the package defines
# these keys; read here only, never at run time.
_GEN_AI = importlib.import_module("opentelemetry.semconv._incubating.attributes.gen_ai_attributes")
_HOST = importlib.import_module("opentelemetry.semconv._incubating.attributes.host_attributes")


def _registry_values(*modules: object) -> dict[str, str]:
    return {
        value: name
        for module in modules
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str)
    }


OUR_CONVENTION_KEYS = sorted(
    (name, value)
    for name, value in vars(semconv).items()
    if name.isupper() and isinstance(value, str) and value.startswith(("gen_ai.", "host."))
)


def test_every_gen_ai_and_host_key_is_checked() -> None:
    # 25 written GenAI keys, 2 deprecated ones read as fallbacks, one host key.
    assert len(OUR_CONVENTION_KEYS) >= 28


@pytest.mark.parametrize(("name", "value"), OUR_CONVENTION_KEYS)
def test_key_is_in_the_official_registry_under_the_same_name(name: str, value: str) -> None:
    registry = _registry_values(_GEN_AI, _HOST)
    assert registry.get(value) == name, f"{value!r} is not in the registry as {name}"


def test_well_known_values_are_the_registrys() -> None:
    operations = {member.value for member in _GEN_AI.GenAiOperationNameValues}
    assert {
        semconv.OPERATION_INVOKE_AGENT,
        semconv.OPERATION_CHAT,
        semconv.OPERATION_EXECUTE_TOOL,
    } <= operations


def test_the_fallback_token_keys_are_the_registrys_deprecated_ones() -> None:
    assert _GEN_AI.__file__ is not None
    with open(_GEN_AI.__file__, encoding="utf-8") as module_file:
        source = module_file.read()
    for key in (semconv.GEN_AI_USAGE_PROMPT_TOKENS, semconv.GEN_AI_USAGE_COMPLETION_TOKENS):
        after = source[source.index(f'"{key}"') :]
        assert "Deprecated: Replaced by" in after[:400], key


def test_stable_keys_come_from_the_stable_modules() -> None:
    from opentelemetry.semconv.attributes import error_attributes, exception_attributes

    assert semconv.ERROR_TYPE is error_attributes.ERROR_TYPE
    assert semconv.EXCEPTION_STACKTRACE is exception_attributes.EXCEPTION_STACKTRACE
