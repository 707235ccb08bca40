"""Redaction: secrets and host paths out of every string before any exporter sees it.

One `Redactor` per configuration. It runs on rendered text (so a secret inside a JSON value or a
repr is caught) and before values are cut to their bound (so a secret straddling the cut is too).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

#: Signature of a user redaction hook: it receives the attribute key and the rendered text and
#: returns the text to record.
RedactionHook = Callable[[str, str], str]


# Secrets that must never reach an exporter. Each pattern keeps its recognisable prefix so a reader
# can tell what kind of secret was removed.
_SECRET_PATTERNS: tuple[str, ...] = (
    r"(?P<bearer>(?i:bearer)\s+)[A-Za-z0-9._~+/=-]{8,}",
    r"(?P<sk>\bsk-(?:proj-|ant-)?)[A-Za-z0-9_-]{16,}",
    r"(?P<gh>\bgh[pousr]_)[A-Za-z0-9]{20,}",
    r"(?P<hf>\bhf_)[A-Za-z0-9]{20,}",
    r"(?P<aws>\bAKIA)[0-9A-Z]{16}\b",
    r"(?P<slack>\bxox[abprs]-)[A-Za-z0-9-]{10,}",
    r"(?P<google>\bAIza)[0-9A-Za-z_-]{35}",
)
_REDACTED = "[REDACTED]"
# Substrings every secret match contains. Most values contain none of them, and a few `in` scans
# cost far less than running the combined pattern over the text.
_SECRET_LITERALS: tuple[str, ...] = (
    "earer",
    "EARER",
    "sk-",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "hf_",
    "AKIA",
    "xox",
    "AIza",
)


class Redactor:
    """Replaces secrets and host paths in rendered text before any exporter sees it.

    `paths` maps a host directory to its placeholder (the release mapped its fixture root to
    `/testdata`); the user's home directory maps to `~` unless `redact_home` is off. Longer paths
    win over their parents. `hook` runs last, on every value, with the attribute key.
    """

    __slots__ = ("_pattern", "_path_map", "_hook", "_literals")

    def __init__(
        self,
        *,
        secrets: bool = True,
        paths: Mapping[str, str] | None = None,
        redact_home: bool = True,
        hook: RedactionHook | None = None,
    ) -> None:
        path_map: dict[str, str] = {}
        if redact_home:
            home = os.path.expanduser("~")
            if home and home != "/":
                path_map[home.rstrip("/")] = "~"
        for root, placeholder in (paths or {}).items():
            root = os.fspath(root).rstrip("/")
            if root:
                path_map[root] = placeholder
        alternatives: list[str] = []
        if secrets:
            alternatives.extend(_SECRET_PATTERNS)
        # A path matches only as a whole path component: "/home/al" must not eat "/home/alice".
        for index, root in enumerate(sorted(path_map, key=len, reverse=True)):
            alternatives.append(rf"(?P<path{index}>{re.escape(root)})(?![\w.-])")
        self._path_map = {
            f"path{index}": path_map[root]
            for index, root in enumerate(sorted(path_map, key=len, reverse=True))
        }
        self._pattern = re.compile("|".join(alternatives)) if alternatives else None
        self._literals = (_SECRET_LITERALS if secrets else ()) + tuple(path_map)
        self._hook = hook

    def _replace(self, match: re.Match[str]) -> str:
        group = match.lastgroup or ""
        if group in self._path_map:
            return self._path_map[group]
        return match.group(group) + _REDACTED

    def __call__(self, key: str, text: str) -> str:
        if self._pattern is not None:
            for literal in self._literals:
                if literal in text:
                    text = self._pattern.sub(self._replace, text)
                    break
        if self._hook is not None:
            try:
                hooked = self._hook(key, text)
            except Exception:  # a broken hook must not break the user's agent: drop the value
                return _REDACTED
            text = hooked if isinstance(hooked, str) else str(hooked)
        return text
