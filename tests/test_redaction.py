"""Secrets never leave the process unredacted: the patterns, the fast path, every span field, every
sink (JSONL, Parquet, OTLP on the wire), spans of other instrumentations, the reference agent's
tool environment; and run-level strings bounded like every other value."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Status, StatusCode
from otlp_receiver import OTLPReceiver

import agenttrace
from agenttrace import semconv
from agenttrace._redacting import RedactingSpanProcessor
from agenttrace._redaction import Redactor, _anchored_pattern
from agenttrace.collection.reference_agent import (
    BASH_ENV_ALLOWED,
    AgentConfig,
    ReferenceAgent,
    tool_environment,
)
from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder
from agenttrace.collection.tasks import Task

HOME = os.path.expanduser("~")
REDACTED = "[REDACTED]"
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- one example of every class: (text, the secret in it, what must remain) --------------------
CLASSES: dict[str, tuple[str, str, str]] = {
    "openai key": (f"key sk-proj-{'a1' * 12}", "a1" * 12, "sk-proj-[REDACTED]"),
    "github token": (f"ghp_{'B2' * 18}", "B2" * 18, "ghp_[REDACTED]"),
    "github fine-grained": (f"github_pat_{'C3' * 15}", "C3" * 15, "github_pat_[REDACTED]"),
    "hugging face": (f"hf_{'D4' * 12}", "D4" * 12, "hf_[REDACTED]"),
    "slack": ("xoxb-1234567890-abcdefghij", "1234567890-abcdefghij", "xoxb-[REDACTED]"),
    "google": ("AIza" + "E5" * 17 + "x", "E5" * 17 + "x", "AIza[REDACTED]"),
    "bearer, short": ("Authorization: Bearer xyzzy", "xyzzy", "Bearer [REDACTED]"),
    "bearer, any case": ("BeArEr tok12345678", "tok12345678", "BeArEr [REDACTED]"),
    "basic auth header": (
        "curl -H 'Authorization: Basic dXNlcjpwYXNz' x",
        "dXNlcjpwYXNz",
        "Authorization: Basic [REDACTED]",
    ),
    "jwt": (
        "id eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36",
        "SflKxwRJSMeKKF2QT4fwpMeJf36",
        "eyJ[REDACTED]",
    ),
    "aws key id": ("AKIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE", "AKIA[REDACTED]"),
    "aws secret key": (
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key=[REDACTED]",
    ),
    "url password": (
        "postgres://app:hunter2pw@db:5432/x",
        "hunter2pw",
        "postgres://app:[REDACTED]@db:5432/x",
    ),
    "password=": ("mysql --password=s3cr3tpw", "s3cr3tpw", "--password=[REDACTED]"),
    "secret=": ("SECRET=abc123xyz run", "abc123xyz", "SECRET=[REDACTED] run"),
    "token=": ("?access_token=tok987&page=2", "tok987", "access_token=[REDACTED]&page=2"),
    "env style": ("DB_PASSWORD=hunter2 ./serve", "hunter2", "DB_PASSWORD=[REDACTED] ./serve"),
    "json form": ('{"password": "two words"}', "two words", '{"password": "[REDACTED]"}'),
    "dict repr": ("{'Api_Key': 'k-123 456'}", "k-123 456", "{'Api_Key': '[REDACTED]'}"),
    "quoted env": ('PASSWORD="a b c" cmd', "a b c", 'PASSWORD="[REDACTED]" cmd'),
    "pem": (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA",
        "-----BEGIN RSA PRIVATE KEY-----[REDACTED]",
    ),
}


@pytest.mark.parametrize("name", CLASSES)
def test_every_class_is_redacted_keeping_what_names_it(name: str) -> None:
    text, secret, kept = CLASSES[name]
    redacted = Redactor(redact_home=False)("value", text)
    assert secret not in redacted and kept in redacted


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=512",
        "PASSWORD_FILE=/run/secrets/db",
        '{"input_tokens": 5, "token": 42}',
        "the keyboard and the basic usage",
        '{"a": "token=", "b": "password:"}',
    ],
)
def test_lookalikes_are_kept(text: str) -> None:
    assert Redactor(redact_home=False)("value", text) == text


# -- properties ----------------------------------------------------------------------------------
_FRAGMENTS = [
    *("password", "PassWord", "db_password", "passwd", "secret", "SECRET_ACCESS_KEY"),
    *("aws_secret_access_key", "SecretAccessKey", "token", "TOKEN", "tokens", "max_tokens"),
    *("api_key", "apikey", "API-KEY", "private_key", "authorization", "Proxy-Authorization"),
    *("bearer", "BeArEr", "Basic", "eyJ", "eyJhbGciOi", "sk-", "sk-proj-", "ghp_", "github_pat_"),
    *("hf_", "AKIA", "ASIA", "xoxb-", "AIza", "://", "https://", "@", ":", "=", " ", "\t", "\n"),
    *('"', "'", "\\", '\\"', ",", "}", "]", "{", "[", ".", "-", "_", "/", "&", "?"),
    *("-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----"),
    *("\u017f", "\u212a", "\u0130", "\u00df", "\u03a3"),  # letters that case-fold to ASCII ones
    HOME,
    "/srv/fixture",
    "/data/\u00dcn\u03a3",
]
_TEXT = st.lists(
    st.one_of(
        st.sampled_from(_FRAGMENTS),
        st.text(alphabet="abcXYZ0189+/=-_.~", max_size=24),
        st.text(max_size=8),
    ),
    max_size=24,
).map("".join)


@FAST
@given(text=_TEXT)
def test_fast_path_never_skips_what_the_full_pattern_catches(text: str) -> None:
    """The literal prefilter and the per-family checks give what every pattern, always run,
    gives: they only ever save work."""
    redactor = Redactor(paths={"/srv/fixture": "/testdata", "/data/\u00dcn\u03a3": "/u"})
    assert redactor("value", text) == redactor.redact_all(text)


@FAST
@given(
    literals=st.lists(st.text(alphabet="ab-/:_kzxyeE.", min_size=1, max_size=5), min_size=1),
    text=st.text(alphabet="ab-/:_kzxyeE. ", max_size=40),
)
def test_the_anchored_prefilter_matches_where_a_literal_occurs(
    literals: list[str], text: str
) -> None:
    """Each literal is searched for by its rarest character, with the rest checked around it:
    the pattern must still match exactly the texts holding one of the literals."""
    search = re.compile(_anchored_pattern(literals)).search
    assert (search(text) is not None) == any(literal in text for literal in literals)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=12,
)


@settings(FAST, max_examples=100)  # structures cost more to draw than plain strings
@given(value=st.dictionaries(_TEXT, _JSON_VALUES, max_size=6), ascii_only=st.booleans())
def test_redacted_json_stays_valid_json(value: dict[str, Any], ascii_only: bool) -> None:
    """Arguments and messages are JSON attributes: redaction must never break them, nor a JSON
    document quoted inside one of their strings."""
    redactor = Redactor(paths={"/srv/fixture": "/testdata"})
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert isinstance(json.loads(redactor("value", text)), dict)
    wrapped = json.dumps({"command": f"curl -d '{text}'"}, ensure_ascii=ascii_only)
    assert isinstance(json.loads(redactor("value", wrapped)), dict)


def _any_case(word: str) -> st.SearchStrategy[str]:
    flips = st.lists(st.booleans(), min_size=len(word), max_size=len(word))
    return flips.map(
        lambda up: "".join(c.upper() if u else c.lower() for c, u in zip(word, up, strict=True))
    )


_BEFORE = st.sampled_from(["", " ", "\n", "x ", "curl -H '", "export ", "(", "see: ", "a;"])
_AFTER = st.sampled_from(["", " ", "\n", "'", " next", "; ls", ")"])
_NAMES = st.sampled_from(
    ["password", "db_password", "secret", "client_secret", "token", "github_token", "api_key"]
    + ["apikey", "private-key", "passphrase", "secret_access_key"]
).flatmap(_any_case)
# (what stays in front of the secret, the secret): both drawn per example.
_B64URL = "[A-Za-z0-9_-]"
_BARE = r"[A-Za-z0-9_.~!$%^*+/-]{1,40}"
_SECRETS = st.one_of(
    st.tuples(
        _any_case("bearer").map(lambda s: s + " "),
        st.from_regex(r"[A-Za-z0-9_.~+/-]{1,60}={0,2}", fullmatch=True),
    ),
    st.tuples(
        st.sampled_from(
            ["Authorization: Basic ", "authorization: bearer ", "Authorization=Token "]
        ),
        st.from_regex(r"[A-Za-z0-9+/]{1,40}={0,2}", fullmatch=True),
    ),
    st.tuples(_NAMES.map(lambda n: n + "="), st.from_regex(_BARE, fullmatch=True)),
    st.tuples(_NAMES.map(lambda n: n + ": "), st.from_regex(_BARE, fullmatch=True)),
    st.tuples(
        st.just("eyJ"),
        st.from_regex(rf"{_B64URL}{{4,30}}\.{_B64URL}{{4,60}}\.{_B64URL}{{0,43}}", fullmatch=True),
    ),
    st.tuples(st.sampled_from(["AKIA", "ASIA"]), st.from_regex(r"[0-9A-Z]{16}", fullmatch=True)),
    st.tuples(
        st.sampled_from(["https://me:", "postgres://app:", "redis://:"]),
        st.from_regex(r"[A-Za-z0-9._~!$%-]{1,30}", fullmatch=True),
    ),
)


@FAST
@given(before=_BEFORE, secret=_SECRETS, after=_AFTER)
def test_each_secret_is_replaced_exactly(before: str, secret: tuple[str, str], after: str) -> None:
    kept, value = secret
    tail = "@db/x" + after if kept.endswith(":") and "://" in kept else after
    expected = before + kept + REDACTED + tail
    assert Redactor(redact_home=False)("value", before + kept + value + tail) == expected


@FAST
@given(secret=st.text(min_size=1, max_size=40), name=_NAMES)
def test_json_and_repr_values_are_replaced_whole(secret: str, name: str) -> None:
    redactor = Redactor(redact_home=False)
    document = json.dumps({name: secret, "n": 1}, ensure_ascii=False)
    assert json.loads(redactor("value", document)) == {name: REDACTED, "n": 1}
    if not set(secret) & set("'\"\\\n"):
        assert redactor("value", f"{{'{name}': '{secret}'}}") == f"{{'{name}': '{REDACTED}'}}"


# -- every field a span carries ------------------------------------------------------------------
KEY = "sk-proj-" + "Q" * 30


def test_exception_message_status_and_stack_are_redacted_and_bounded(configure_spans) -> None:
    spans = configure_spans(max_value_length=256)

    @agenttrace.tool(name="login")
    def login(user: str) -> None:
        raise PermissionError(f"rejected {KEY} with password=hunter2 " + "x" * 5000)

    with pytest.raises(PermissionError):
        login(user="me")
    span = spans.one("execute_tool login")
    assert span.status.status_code is StatusCode.ERROR
    description = span.status.description or ""
    assert description.startswith("PermissionError: rejected sk-proj-[REDACTED] with password=")
    assert len(description) <= 256 + 80  # the bound plus its marker
    (event,) = [e for e in span.events if e.name == semconv.EXCEPTION_EVENT]
    attributes = dict(event.attributes or {})
    assert attributes[semconv.EXCEPTION_TYPE] == "PermissionError"
    assert attributes[semconv.EXCEPTION_ESCAPED] is True
    for key in (semconv.EXCEPTION_MESSAGE, semconv.EXCEPTION_STACKTRACE):
        assert KEY not in attributes[key] and "hunter2" not in attributes[key]
        assert len(attributes[key]) <= 256 + 80
    assert "sk-proj-[REDACTED]" in attributes[semconv.EXCEPTION_MESSAGE]
    assert "Traceback" in attributes[semconv.EXCEPTION_STACKTRACE]


def test_run_strings_are_redacted_and_bounded(configure_spans) -> None:
    spans = configure_spans(max_value_length=128)
    long = "m" * 10_000_000

    @agenttrace.agent(name="agent " + "n" * 500, model="model-" + long)
    def run(prompt: str) -> str:
        agenttrace.set_run_metadata(note=f"key {KEY}", huge=long, **{"k" * 1000: 1})
        return "done"

    run("p" * 10_000)
    (root,) = [s for s in spans.all() if s.name.startswith("invoke_agent")]
    attributes = dict(root.attributes or {})
    assert attributes[semconv.METADATA_PREFIX + "note"] == "key sk-proj-[REDACTED]"
    for key, value in attributes.items():
        assert len(key) <= 512 and (not isinstance(value, str) or len(value) <= 128 + 80), key
    assert len(root.name) <= 128 + 80 + len("invoke_agent ")
    assert attributes[semconv.GEN_AI_REQUEST_MODEL].startswith("model-mmm")


def test_metadata_with_nan_and_a_lone_surrogate_still_makes_a_row(
    configure_spans, tmp_path
) -> None:
    """The two together dropped the row: both are made safe where they are recorded."""
    out = tmp_path / "rows.jsonl"
    configure_spans(output=str(out), parquet=False)
    with agenttrace.agent_run(
        "a", ratio=float("nan"), peak=float("inf"), label="caf\udce9", big=2**70
    ):
        pass
    agenttrace.shutdown()
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    metadata = row["metadata"]
    assert metadata["ratio"] == "NaN" and metadata["peak"] == "Infinity"
    assert metadata["label"].startswith("caf") and metadata["big"] == str(2**70)


def test_spans_of_other_instrumentations_are_redacted(configure_spans) -> None:
    spans = configure_spans()
    tracer = trace.get_tracer("someone.else")
    with tracer.start_as_current_span(f"GET https://me:pw123456@api.example/x?token={KEY}") as span:
        span.set_attribute("http.request.header.authorization", ("Bearer abc",))
        span.set_attribute("url.full", "https://me:pw123456@api.example/x")
        span.add_event("retry", {"detail": f"key={KEY}"})
        span.set_status(Status(StatusCode.ERROR, f"401 for {KEY}"))

    foreign = spans.one("GET https://me:[REDACTED]@api.example/x?token=[REDACTED]")
    assert foreign.attributes["http.request.header.authorization"] == ("Bearer [REDACTED]",)
    assert foreign.attributes["url.full"] == "https://me:[REDACTED]@api.example/x"
    assert foreign.events[0].attributes["detail"] == "key=sk-proj-[REDACTED]"
    assert foreign.status.description == "401 for sk-proj-[REDACTED]"
    assert foreign.context.span_id == span.get_span_context().span_id


class _Keep(SpanProcessor):
    def __init__(self) -> None:
        self.ended: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


@pytest.mark.parametrize("scope", ["agenttrace", "someone.else"])
def test_only_foreign_spans_are_copied(spans, scope: str) -> None:
    """agenttrace's own spans are redacted where they are made: the safety net passes them on
    as they are, at no cost; others it hands on as a redacted copy."""
    span = ReadableSpan(
        f"call {KEY}",
        attributes={"k": KEY, "n": 1},
        events=[Event("e", {"k": (KEY, 2)})],
        status=Status(StatusCode.ERROR, KEY),
        instrumentation_scope=InstrumentationScope(scope),
    )
    inner = _Keep()
    RedactingSpanProcessor(inner).on_end(span)
    (passed,) = inner.ended
    if scope == semconv.INSTRUMENTATION_SCOPE:
        assert passed is span
    else:
        assert passed.attributes is not None and passed.events[0].attributes is not None
        assert passed.name == "call sk-proj-[REDACTED]" and passed.attributes["n"] == 1
        assert passed.attributes["k"] == passed.status.description == "sk-proj-[REDACTED]"
        assert passed.events[0].attributes["k"] == ("sk-proj-[REDACTED]", 2)


# -- every sink ----------------------------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    running = OTLPReceiver().start()
    yield running
    running.stop()


def _wire_text(receiver: OTLPReceiver) -> str:
    return json.dumps(
        [
            [s.name, s.attributes, s.status_message, s.events]
            for s in receiver.wait_for(4, timeout=10)
        ],
        default=str,
    )


def test_every_class_through_jsonl_parquet_and_otlp(configure_spans, receiver, tmp_path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "rows.jsonl"
    configure_spans(output=str(out), parquet=True, otlp_endpoint=receiver.http_endpoint)
    texts = [text for text, _, _ in CLASSES.values()]

    @agenttrace.tool(name="bash")
    def bash(command: str) -> str:
        return "\n".join(texts)

    @agenttrace.tool(name="fail")
    def fail() -> None:
        raise RuntimeError(" | ".join(texts))

    @agenttrace.agent(name="leaky")
    def run(prompt: str) -> str:
        agenttrace.set_run_metadata(note=" | ".join(texts), config={"dsn": texts[0]})
        bash(command=texts[-1])
        with pytest.raises(RuntimeError):
            fail()
        with trace.get_tracer("someone.else").start_as_current_span("http") as span:
            span.set_attribute("dump", " | ".join(texts))
        return "done"

    run(" | ".join(texts))
    agenttrace.shutdown()
    sinks = {
        "jsonl": out.read_text(),
        "parquet": json.dumps(pq.read_table(out.with_suffix(".parquet")).to_pylist(), default=str),
        "otlp": _wire_text(receiver),
    }
    for sink, text in sinks.items():
        assert REDACTED in text, sink
        for name, (_, secret, _) in CLASSES.items():
            assert secret not in text and json.dumps(secret)[1:-1] not in text, (sink, name)


# -- the reference agent's tools -----------------------------------------------------------------
def test_tool_environment_is_an_allow_list_with_pass_through() -> None:
    environ = {"PATH": "/bin", "LC_ALL": "C", "DB_PASSWORD": "pw", "AWS_KEY": "k", "AWS_X": "x"}
    assert tool_environment(BASH_ENV_ALLOWED, environ) == {"PATH": "/bin", "LC_ALL": "C"}
    assert tool_environment(BASH_ENV_ALLOWED + ("DB_PASSWORD", "AWS_*"), environ) == environ
    assert tool_environment(("AWS_*",), environ) == {"AWS_KEY": "k", "AWS_X": "x"}


def test_agenttrace_run_still_inherits_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("AGENTTRACE_TEST_INHERITED", "yes")
    done = agenttrace.tools.run(
        [sys.executable, "-c", "import os; print(os.environ['AGENTTRACE_TEST_INHERITED'])"],
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "yes"


class _Recorder:
    """Scripted responses that also keep every request the model received."""

    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.inner = ScriptResponder({"Print the secret.": steps})
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(request)
        return self.inner(request)


@pytest.mark.parametrize("pass_env", [(), ("AGENTTRACE_TEST_DB_*",)])
def test_reference_agent_tools_do_not_see_the_agents_secrets(
    spans, monkeypatch, pass_env: tuple[str, ...]
) -> None:
    import openai

    monkeypatch.setenv("AGENTTRACE_TEST_DB_PASSWORD", "hunter2-XYZZY")
    steps = [
        {"tool_calls": [{"name": "bash", "arguments": {"command": "env"}}]},
        {
            "tool_calls": [
                {
                    "name": "python_interpreter",
                    "arguments": {"code": "import os; print(sorted(os.environ.items()))"},
                }
            ]
        },
        {"tool_calls": [{"name": "final_answer", "arguments": {"answer": "done"}}]},
    ]
    recorder = _Recorder(steps)
    with ScriptedModelServer(recorder, model="m") as server:
        url = server.base_url.replace("http://", "http://me:s3rv3r-pw@")
        client = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        agent = ReferenceAgent(client, AgentConfig(model="m", pass_env=pass_env))
        task = Task("local", 1, "Print the secret.", "local", "local")
        result = agent.run(task)
    assert result.stop_reason == "final_answer"
    seen_by_model = json.dumps(recorder.requests)
    recorded = json.dumps([dict(s.attributes or {}) for s in spans.all()])
    assert "PATH=" in seen_by_model and "'PATH'" in seen_by_model  # both tools ran
    assert ("hunter2-XYZZY" in seen_by_model) is bool(pass_env)
    if not pass_env:
        assert "hunter2-XYZZY" not in recorded
    assert "s3rv3r-pw" not in recorded
    root = spans.one("invoke_agent local-agent")
    serving = json.loads(root.attributes[semconv.METADATA_JSON_PREFIX + "serving"])
    assert serving["base_url"].startswith("http://me@127.0.0.1:")


def test_nan_metadata_is_finite_on_the_span(configure_spans) -> None:
    spans = configure_spans()
    with agenttrace.agent_run("a", ratio=float("nan"), low=-math.inf):
        pass
    attributes = spans.one("invoke_agent a").attributes
    assert attributes[semconv.METADATA_PREFIX + "ratio"] == "NaN"
    assert attributes[semconv.METADATA_PREFIX + "low"] == "-Infinity"


def test_the_hook_sees_values_names_stay_recognisable(configure_spans) -> None:
    """The user's hook gets every value, the exception's too; names (tool, metadata keys, error
    types) get the built-in redaction only, so a hook that fails cannot merge or erase them."""
    seen: list[str] = []

    def hook(key: str, text: str) -> str:
        seen.append(key)
        raise RuntimeError("hook bug")

    spans = configure_spans(redaction_hook=hook)

    @agenttrace.tool(name="t")
    def t() -> None:
        raise ValueError("boom")

    with agenttrace.agent_run("a", dataset_name="d", run_id="r1"), pytest.raises(ValueError):
        t()
    root = spans.one("invoke_agent a").attributes
    assert root[semconv.METADATA_PREFIX + "dataset_name"] == REDACTED
    assert root[semconv.METADATA_PREFIX + "run_id"] == REDACTED
    failed = spans.one("execute_tool t")
    assert failed.attributes[semconv.ERROR_TYPE] == "ValueError"
    assert failed.status.description == REDACTED
    (event,) = failed.events
    assert event.attributes[semconv.EXCEPTION_TYPE] == "ValueError"
    assert event.attributes[semconv.EXCEPTION_MESSAGE] == REDACTED
    assert {semconv.STATUS_DESCRIPTION, semconv.EXCEPTION_MESSAGE} <= set(seen)
