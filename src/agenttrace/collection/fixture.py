"""The deterministic NL2Bash file-system fixture: its generator, its digest, and its check.

NL2Bash tasks (InterCode's layout) talk about `/system`, `/testbed` and `/workspace`. The fixture
builds those three directories under a root of your choice, byte for byte the same on every
machine: file contents come from a seeded generator, and modes and modification times are set
explicitly (so `ls -l`, `find -newer` and `du` answer the same everywhere). Its SHA-256 tree digest
(paths, types, modes, sizes, contents and symlink targets; not timestamps, which copies and
checkouts do not keep) is recorded as `fixture_version` in every NL2Bash row.

    python fixtures/nl2bash_fixture.py DIR          # build it
    python fixtures/nl2bash_fixture.py --check DIR  # verify a built tree against the digest
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import stat
from pathlib import Path

#: The top-level directories of InterCode's NL2Bash environment, created under the root.
LAYOUT = ("system", "testbed", "workspace")
#: The digest of the tree `build` produces (see `tree_digest`).
FIXTURE_VERSION = "5ba66616b64f6059ba25872ee13d4a995738d26d250173d6842ddb44578e193c"
_SEED = 20260328
_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z: every mtime is this plus a fixed offset
_WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "chi",
    "psi",
    "omega",
    "agent",
    "tool",
    "trace",
    "span",
    "model",
    "step",
    "bash",
    "python",
    "file",
    "error",
    "warning",
    "info",
    "debug",
    "request",
    "response",
    "token",
    "cache",
    "queue",
    "batch",
]


def _text(rng: random.Random, lines: int, words: int = 8) -> str:
    return "".join(
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, words))) + "\n"
        for _ in range(lines)
    )


def _files(rng: random.Random) -> list[tuple[str, bytes, int]]:
    """(relative path, content, mode) of every file, in a fixed order."""
    files: list[tuple[str, bytes, int]] = []

    def add(path: str, content: str | bytes, mode: int = 0o644) -> None:
        files.append((path, content.encode() if isinstance(content, str) else content, mode))

    add("system/hosts", "127.0.0.1 localhost\n10.0.0.5 db.internal\n10.0.0.6 cache.internal\n")
    add(
        "system/passwd",
        "".join(
            f"{u}:x:{1000 + i}:{1000 + i}::/home/{u}:/bin/bash\n"
            for i, u in enumerate(["alice", "bob", "carol", "dave"])
        ),
    )
    add("system/config/app.conf", "port=8080\nworkers=4\nlog_level=info\ncache=on\n")
    add("system/config/db.conf", "host=db.internal\nport=5432\npool=16\n")
    for index in range(6):
        add(f"testbed/notes/note{index}.txt", _text(rng, rng.randint(3, 30)))
    add("testbed/notes/words.txt", _text(rng, 200, 12))
    add("testbed/notes/todo list.txt", "buy milk\nfix the build\nwrite tests\n")
    add("testbed/notes/empty.txt", "")
    for day in range(1, 8):
        levels = ("INFO", "WARNING", "ERROR", "DEBUG")
        lines = "".join(
            f"2026-01-0{day}T{hour:02d}:00:00Z {rng.choice(levels)} {rng.choice(_WORDS)} "
            f"request={rng.randint(1, 9999)}\n"
            for hour in range(rng.randint(5, 24))
        )
        add(f"testbed/logs/app-2026-01-0{day}.log", lines)
    add("testbed/logs/empty.log", "")
    for index in range(4):
        body = "".join(
            f"def f{index}_{k}(x):\n    return x * {k}\n\n" for k in range(rng.randint(2, 6))
        )
        add(f"testbed/src/module{index}.py", body)
    add("testbed/src/run.sh", "#!/bin/sh\necho running\n", 0o755)
    add("testbed/src/.hidden_config", "secret=false\n", 0o600)
    rows = "".join(
        f"{i},{rng.choice(_WORDS)},{rng.randint(1, 500)},{rng.random():.4f}\n" for i in range(120)
    )
    add("testbed/data/records.csv", "id,name,count,score\n" + rows)
    add("testbed/data/big.bin", rng.randbytes(256 * 1024))
    add("testbed/data/small.bin", rng.randbytes(100))
    add("testbed/data/nested/deeper/deepest/leaf.txt", "you found the leaf\n")
    add("workspace/README", "Scratch space: tasks may write here.\n")
    return files


def build(root: str | os.PathLike[str]) -> str:
    """Create the fixture under `root` (replacing what is there); returns its digest."""
    root = Path(root)
    for name in LAYOUT:
        shutil.rmtree(root / name, ignore_errors=True)
        (root / name).mkdir(parents=True, exist_ok=True)
    rng = random.Random(_SEED)
    for offset, (relative, content, mode) in enumerate(_files(rng)):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
        os.utime(path, (_EPOCH + offset * 3600, _EPOCH + offset * 3600))
    link = root / "testbed" / "latest.log"
    link.symlink_to("logs/app-2026-01-07.log")
    for directory in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        directory.chmod(0o755)
        os.utime(directory, (_EPOCH, _EPOCH))
    return tree_digest(root)


def tree_digest(root: str | os.PathLike[str]) -> str:
    """SHA-256 over the fixture's paths, types, modes, sizes, contents and symlink targets."""
    root = Path(root)
    digest = hashlib.sha256()
    for name in LAYOUT:
        top = root / name
        entries = [top, *sorted(top.rglob("*"))] if top.exists() else []
        for path in entries:
            relative = path.relative_to(root).as_posix()
            info = path.lstat()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                record = f"l {relative} {os.readlink(path)}"
            elif stat.S_ISDIR(info.st_mode):
                record = f"d {relative} {mode:o}"
            else:
                content = hashlib.sha256(path.read_bytes()).hexdigest()
                record = f"f {relative} {mode:o} {info.st_size} {content}"
            digest.update(record.encode("utf-8") + b"\n")
    return digest.hexdigest()


def check(root: str | os.PathLike[str]) -> tuple[bool, str]:
    """Whether the tree under `root` is the fixture; returns (ok, its digest)."""
    digest = tree_digest(root)
    return digest == FIXTURE_VERSION, digest


def copy(root: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """A private working copy of the fixture (tasks may write), modes and times kept."""
    target = Path(target)
    for name in LAYOUT:
        shutil.copytree(Path(root) / name, target / name, symlinks=True, dirs_exist_ok=True)
    return target
