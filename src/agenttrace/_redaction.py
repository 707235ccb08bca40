"""Redaction: secrets and host paths out of every string before any exporter sees it.

One `Redactor` per configuration. It runs on rendered text (so a secret inside a JSON value or a
repr is caught) and before values are cut to their bound (so a secret straddling the cut is too).

The patterns come in families, each with the literals every one of its matches contains (compared
without ASCII case where the family ignores case). A family runs only on text holding one of its
literals: most values hold none and cost a few substring scans. Two promises, each pinned by a
property test:

* The fast path never skips what the patterns would change: the result is the same as running
  every family on every value (`redact_all`). Replacements only ever insert `[REDACTED]`, which
  holds no literal, so a family skipped for want of its literals could not have matched later
  either; path placeholders (user text) are inserted last.
* Redacting valid JSON text leaves valid JSON: a value is only replaced inside one string, from a
  boundary between whole escape sequences to the string's end or earlier, never across a quote.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping

#: Signature of a user redaction hook: it receives the attribute key and the rendered text and
#: returns the text to record.
RedactionHook = Callable[[str, str], str]

_REDACTED = "[REDACTED]"


def _ci(word: str) -> str:
    """`word` matched in any ASCII case, as character classes.

    Not `(?i)`: Unicode case folding would let `ſ` match `s` where the literal prefilter cannot
    see it, and a pattern that opens on a character class lets the regex engine skip positions
    that cannot start a match.
    """
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


# Names whose value is a secret, in `name=value`, `name: value`, `"name": "value"` and
# `'name': 'value'` forms, in any case. The name may end a longer one (DB_PASSWORD, access_token,
# aws_secret_access_key, SecretAccessKey) but must end with the keyword: `max_tokens=512` and
# `PASSWORD_FILE=/run/x` are kept.
_NAME = (
    "(?:"
    + "|".join(
        (
            f"{_ci('pass')}(?:{_ci('word')}|{_ci('wd')}|{_ci('phrase')})",
            f"{_ci('secret')}(?:[_-]?{_ci('access')})?(?:[_-]?{_ci('key')})?",
            _ci("token"),
            f"{_ci('api')}[_-]?{_ci('key')}",
            f"{_ci('private')}[_-]?{_ci('key')}",
            _ci("authorization"),
        )
    )
    + ")(?![A-Za-z0-9_-])"
)
# A double quote that opens a value, in text that may be JSON. Escaped (an odd run of backslashes:
# JSON inside JSON) it always opens one. Bare, it may close a string instead; but in valid JSON a
# closing quote is followed by white space, `,`, `:`, `}` or `]`, so one followed by anything else
# opens a string.
_ESCAPED_QUOTE = r'(?:\\\\)*\\"'
_DQ_OPEN = rf'(?:{_ESCAPED_QUOTE}|"(?=[^\s,:}}\]"\\]))'
_SEP = r"[ \t]*[:=][ \t]*"
# Values. Inside a JSON string, replaced text must hold no bare quote and start and end between
# whole escape sequences, so the JSON around it stays valid.
_DQ_JSON_VALUE = r'(?:[^"\\\n]|\\.)+'  # a JSON string's content: whole escapes, no bare quote
_SQ_JSON_VALUE = r"""(?:[^'"\\\n]|\\.)+"""
_DQ_PLAIN_VALUE = r'[^"\\\n]+'  # up to the next quote or backslash
_SQ_PLAIN_VALUE = r"""[^'"\\\n]+"""
_BARE_VALUE = r"""[^\s"'\\,;&)}\]<>]+"""

# Each alternative ends with one named group: the value replaced by "[REDACTED]". What comes
# before it stays, so a reader can tell what kind of secret was removed.
_NAMED_SECRETS = "|".join(
    (
        # Authorization headers, any scheme: `Authorization: Basic dXNlcjpwYXNz`.
        rf"{_ci('authorization')}{_SEP}(?:[A-Za-z0-9-]+[ \t]+)?(?P<authz>{_BARE_VALUE})",
        _NAME
        + "(?:"
        + "|".join(
            (
                # `"password": "…"` (JSON, dicts), `\"password\": \"…\"`, Python reprs.
                rf'"[ \t]*:[ \t]*"(?P<kv_json>{_DQ_JSON_VALUE})',
                rf'\\+"[ \t]*:[ \t]*{_ESCAPED_QUOTE}(?P<kv_esc>{_DQ_PLAIN_VALUE})',
                rf"'[ \t]*:[ \t]*'(?P<kv_sq>{_SQ_JSON_VALUE})",
                rf"'[ \t]*:[ \t]*{_DQ_OPEN}(?P<kv_sqdq>{_DQ_PLAIN_VALUE})",
                # `PASSWORD="a b"`, `token: 'x'`, `password=hunter2` (env, URLs, YAML, shells).
                rf"{_SEP}{_DQ_OPEN}(?P<kv_dq>{_DQ_PLAIN_VALUE})",
                rf"{_SEP}\\*'(?P<kv_q>{_SQ_PLAIN_VALUE})",
                rf"(?:[ \t]*:[ \t]*|=)(?P<kv>{_BARE_VALUE})",
            )
        )
        + ")",
    )
)
# Bearer tokens of any length and case (a word boundary before "bearer").
_BEARER = rf"{_ci('b')}(?<!\w.){_ci('earer')}[ \t]+(?P<bearer>[A-Za-z0-9._~+/=-]+)"
# Passwords in URLs: scheme://user:password@host keeps the user.
_URL = r"""://[^\s/?#@:"'\\]*:(?P<url>[^\s/?#@"'\\]+)(?=@)"""
# PEM private keys, up to their END line (or the end of the string that holds them).
_PEM = (
    r'-----BEGIN[A-Z ]*PRIVATE KEY-----(?P<pem>(?:[^"\\]|\\.)*?'
    r'(?:-----END[A-Z ]*PRIVATE KEY-----|(?=")|$))'
)
# JSON Web Tokens: header.payload.signature, the header being base64url JSON ("eyJ"). Only at
# the start of a base64url run: each run is then scanned once, whatever it holds.
_JWT = r"eyJ(?<![A-Za-z0-9_-]eyJ)(?P<jwt>[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)"
# Provider keys with a recognisable prefix (each at a word boundary).
_PROVIDER_KEYS = "|".join(
    (
        r"sk-(?<!\wsk-)(?:proj-|ant-)?(?P<sk>[A-Za-z0-9_-]{16,})",
        r"gh[pousr]_(?<!\wgh._)(?P<gh>[A-Za-z0-9_]{20,})",
        r"github_pat_(?<!\wgithub_pat_)(?P<gh_pat>[A-Za-z0-9_]{20,})",
        r"hf_(?<!\whf_)(?P<hf>[A-Za-z0-9]{20,})",
        r"A(?:KIA|SIA)(?<!\wA...)(?P<aws>[0-9A-Z]{16})\b",
        r"xox[abprs]-(?<!\wxox..)(?P<slack>[A-Za-z0-9-]{10,})",
        r"AIza(?<!\wAIza)(?P<google>[0-9A-Za-z_-]{35})",
    )
)

#: (pattern, literals matched as they are, literals matched in lower case), in the order they run.
_SECRET_FAMILIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (_NAMED_SECRETS, (), ("pass", "secret", "token", "key", "authorization")),
    (_BEARER, (), ("bearer",)),
    (_URL, ("://",), ()),
    (_PEM, ("-----BEGIN",), ()),
    (_JWT, ("eyJ",), ()),
    (
        _PROVIDER_KEYS,
        ("sk-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "hf_")
        + ("AKIA", "ASIA", "xox", "AIza"),
        (),
    ),
)


class _Family:
    """One compiled pattern and the literals that tell whether it can match at all."""

    __slots__ = ("pattern", "cased", "uncased", "replace")

    def __init__(
        self,
        pattern: re.Pattern[str],
        cased: tuple[str, ...],
        uncased: tuple[str, ...],
        replace: Callable[[re.Match[str]], str],
    ) -> None:
        self.pattern = pattern
        self.cased = cased
        self.uncased = uncased
        self.replace = replace

    def may_match(self, text: str, lowered: str) -> bool:
        for literal in self.cased:
            if literal in text:
                return True
        return any(literal in lowered for literal in self.uncased)

    def apply(self, text: str) -> str:
        return self.pattern.sub(self.replace, text)


def _redact_value(match: re.Match[str]) -> str:
    """The match with its value group (the last group that matched) replaced."""
    whole = match.group(0)
    start, end = match.span(match.lastgroup or 0)
    offset = match.start()
    return whole[: start - offset] + _REDACTED + whole[end - offset :]


def _path_map(paths: Mapping[str, str] | None, redact_home: bool) -> dict[str, str]:
    path_map: dict[str, str] = {}
    if redact_home:
        home = os.path.expanduser("~")
        if home and home != "/":
            path_map[home.rstrip("/")] = "~"
    for root, placeholder in (paths or {}).items():
        root = os.fspath(root).rstrip("/")
        if root:
            path_map[root] = placeholder
    return path_map


# Characters from the most to the least common in the text values hold (prose, JSON, commands).
# Any character not listed counts as rarer than all of these.
_COMMON_FIRST = ' "etaoinsrhldcu:,mfpg.wyb/-_vk0123456789xjqz{}'


def _rarity(char: str) -> int:
    rank = _COMMON_FIRST.find(char)
    return len(_COMMON_FIRST) if rank < 0 else rank


def _anchored_pattern(literals: Iterable[str]) -> str:
    """One regex matching any of `literals`, each found by its rarest character.

    The regex engine skips, in a tight loop, every position whose character cannot start a
    match, and tries the pattern at each of the others. Literals written as they read start on
    common letters (`token`, `secret`, `authorization`), so about half the positions of ordinary
    text were tried. Here each literal starts at its rarest character and checks the rest
    around it: `token` is `k(?<=tok)(?=en)`, `authorization` is `z(?<=authoriz)(?=ation)`.
    Literals sharing that character share one group. The typical tool argument is scanned in
    about half the time. It matches exactly where one of the literals occurs.
    """
    groups: dict[str, list[str]] = {}
    for literal in sorted(set(literals)):
        at = max(range(len(literal)), key=lambda i: (_rarity(literal[i]), -i))
        before, anchor, after = literal[:at], literal[at], literal[at + 1 :]
        check = (f"(?<={re.escape(before + anchor)})" if before else "") + (
            f"(?={re.escape(after)})" if after else ""
        )
        groups.setdefault(anchor, []).append(check)
    branches = []
    for anchor, checks in sorted(groups.items()):
        if "" in checks:  # the character alone is a literal: nothing else to check
            branches.append(re.escape(anchor))
        elif len(checks) == 1:
            branches.append(re.escape(anchor) + checks[0])
        else:
            branches.append(f"{re.escape(anchor)}(?:{'|'.join(checks)})")
    return "|".join(branches)


class Redactor:
    """Replaces secrets and host paths in rendered text before any exporter sees it.

    `paths` maps a host directory to its placeholder (the release mapped its fixture root to
    `/testdata`); the user's home directory maps to `~` unless `redact_home` is off. Longer paths
    win over their parents. `hook` runs last, on every value, with the attribute key.
    """

    __slots__ = ("_families", "_scan", "_raw_roots", "_hook")

    def __init__(
        self,
        *,
        secrets: bool = True,
        paths: Mapping[str, str] | None = None,
        redact_home: bool = True,
        hook: RedactionHook | None = None,
    ) -> None:
        families = [
            _Family(re.compile(pattern), cased, uncased, _redact_value)
            for pattern, cased, uncased in (_SECRET_FAMILIES if secrets else ())
        ]
        path_map = _path_map(paths, redact_home)
        roots = tuple(sorted(path_map, key=len, reverse=True))
        if roots:
            # A path matches only as a whole path component: "/home/al" must not eat
            # "/home/alice". Last, since a placeholder is free text that may hold a literal.
            pattern = "(?:" + "|".join(re.escape(root) for root in roots) + r")(?![\w.-])"
            families.append(_Family(re.compile(pattern), roots, (), lambda m: path_map[m.group(0)]))
        # The one scan most values need: every literal, lowered, searched for in the lowered
        # text. Lowering maps ASCII letters one to one, so an ASCII literal in the text is in the
        # lowered text too; a path root that is not ASCII is looked for as it is.
        literals = {
            literal.lower()
            for family in families
            for literal in family.cased + family.uncased
            if literal.isascii()
        }
        self._scan = re.compile(_anchored_pattern(literals)).search if literals else None
        self._raw_roots = tuple(root for root in roots if not root.isascii())
        self._families = tuple(families)
        self._hook = hook

    @property
    def has_hook(self) -> bool:
        """Whether a user's hook runs after the built-in families (it may change any text)."""
        return self._hook is not None

    def _redact(self, text: str) -> str:
        """Run each family whose literals the text (as redacted so far) holds."""
        lowered = text.lower()
        for family in self._families:
            if family.may_match(text, lowered):
                redacted = family.apply(text)
                if redacted != text:
                    text, lowered = redacted, redacted.lower()
        return text

    def redact_all(self, text: str) -> str:
        """Every family run on `text`, no prefilter, no hook: the reference the fast path is
        tested against."""
        for family in self._families:
            text = family.apply(text)
        return text

    def __call__(self, key: str, text: str) -> str:
        # The prefilter (inline: it runs on every value): false only when no family can match.
        scan = self._scan
        if (scan is not None and scan(text.lower()) is not None) or (
            self._raw_roots and any(root in text for root in self._raw_roots)
        ):
            text = self._redact(text)
        if self._hook is not None:
            try:
                hooked = self._hook(key, text)
            except Exception:  # a broken hook must not break the user's agent: drop the value
                return _REDACTED
            text = hooked if isinstance(hooked, str) else str(hooked)
        return text
