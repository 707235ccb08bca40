"""The command group and what every command shares: options, guards, errors, progress.

Conventions every command follows, so a script written against one command fits the others:

- Exit codes follow click's habits: 0 success, 1 invalid data (or a failed run), 2 usage error.
- Errors: what goes wrong outside the program (a file that cannot be read or written, a server
  that cannot be reached, malformed data) is one `Error: ...` line on stderr and exit 1, never a
  traceback; a command line that would destroy data is one `Error: ...` line and exit 2.
- Outputs: a file a command writes is named by `--output/-o`, a directory by `--output-dir/-o`.
  Older spellings (`plots --outdir`, `convert SOURCE TARGET`) still work until the next version,
  with a warning on stderr.
- Overwriting: no command writes over one of its inputs, and none overwrites an existing output
  without `--force`.
- Long work shows a progress bar on stderr when stderr is a terminal.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from agenttrace.version import __version__

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")

#: What "the release" means wherever the help uses the term, spelled once.
RELEASE = (
    '"The release" is the public AgentTrace dataset: 1,400 traces of Qwen3 agents on the MBPP '
    "and NL2Bash tasks, in schema 0.3.0, whose format and rules AgentTrace files follow."
)

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
fixture_option = click.option(
    "--fixture",
    "fixture_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="NL2Bash fixture directory, kept (built there if missing; default: a temporary one, "
    "removed afterwards).",
)


class Commands(click.Group):
    """The command group: every error a command does not handle itself becomes one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except OSError as error:
            if error.errno == errno.EPIPE:
                raise  # stdout closed early (`| head`): click ends quietly
            raise click.ClickException(os_error_message(error)) from None
        except Exception as error:
            raise click.ClickException(_error_message(error)) from None


def os_error_message(error: OSError) -> str:
    """`PATH: reason` for a file-system error (what the user can act on), else its message."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    message = f"{os.fsdecode(error.filename)}: {reason}"
    if error.filename2 is not None:
        message += f" ({os.fsdecode(error.filename2)})"
    return message


def _error_message(error: Exception) -> str:
    """The one line for an error no command expected: a located file error reads as is."""
    from opentelemetry.exporter.agenttrace import AgentTraceFileError

    if isinstance(error, AgentTraceFileError):
        return str(error)  # FILE:LINE: problem
    return f"unexpected {type(error).__name__}: {error}"


@click.group(
    cls=Commands,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=f"""Trace tool-using LLM agents with OpenTelemetry and write AgentTrace files.

    {RELEASE}

    Files a command writes are named by --output/-o, directories by --output-dir/-o; no command
    overwrites an existing output without --force. Errors are one `Error: ...` line on stderr:
    exit 1 for bad data or a failed run, exit 2 for a usage error.
    """,
)
@click.version_option(__version__, prog_name="agenttrace", help="Show the version and exit.")
def main() -> None:
    """The command group; its help (above) states the conventions every command follows."""


def make_dir(path: Path, what: str) -> None:
    """Create directory `path` (and its parents), or exit 1 saying why it cannot be one."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:
        blocker = os.fsdecode(error.filename) if error.filename is not None else str(path)
        raise click.ClickException(
            f"cannot create {what} {path}: {blocker} is a file, not a directory"
        ) from None
    except OSError as error:
        raise click.ClickException(
            f"cannot create {what} {path}: {error.strerror or error}"
        ) from None


def _same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one existing file (a hard link or another spelling counts)."""
    return first.exists() and second.exists() and os.path.samefile(first, second)


def rows_output(output: Path, option: str) -> tuple[Path, Path]:
    """The JSONL file runs are written to and its Parquet twin; usage error for another suffix."""
    if output.suffix.lower() not in JSONL_SUFFIXES:
        raise click.BadParameter(
            f"{output}: must be a .jsonl file (its Parquet twin is written beside it)",
            param_hint=option,
        )
    return output, output.with_suffix(".parquet")


class Refused(click.ClickException):
    """A command line that would destroy data: one line, exit 2 like any usage error."""

    exit_code = 2


def protect(outputs: Iterable[Path], inputs: Iterable[Path], force: bool) -> None:
    """Never write over an input; overwrite an existing output only with --force."""
    outputs, inputs = list(outputs), list(inputs)
    for output in outputs:
        for source in inputs:
            if _same_file(output, source):
                raise Refused(f"{output} is an input of this command; write elsewhere")
    for output in outputs:
        if output.exists() and not force:
            raise Refused(f"{output} exists; use --force to overwrite it")


def force_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The one `--force/-f` flag: the only way any command overwrites an existing output."""
    return click.option("--force", "-f", is_flag=True, help=help_text)


def deprecated_alias(
    new: Any, old: Any, new_flag: str, old_flag: str, *, required: bool = True
) -> Any:
    """The value of an option given by its new spelling or by its deprecated one.

    The old spellings keep scripts written before the flags were made consistent working until
    the next version; each use says on stderr what to write instead.
    """
    if old is not None:
        if new is not None:
            raise click.UsageError(f"give {new_flag} or {old_flag}, not both")
        click.echo(f"Warning: {old_flag} is deprecated; use {new_flag}", err=True)
        return old
    if new is None and required:
        raise click.UsageError(f"Missing option '{new_flag}'.")
    return new


@contextmanager
def progress(label: str, total: int, unit: str | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr with its ETA, and its rate in `unit`s per second when given
    (none when stderr is not a terminal)."""
    if not sys.stderr.isatty():
        yield lambda _: None
        return
    started = time.monotonic()
    done = 0

    def rate(_: Any) -> str | None:
        elapsed = time.monotonic() - started
        return f"{done / elapsed:.2f} {unit}/s" if unit and done and elapsed > 0 else None

    with click.progressbar(
        length=total,
        label=label,
        file=sys.stderr,
        show_eta=True,
        show_percent=True,
        item_show_func=rate,
    ) as bar:

        def advance(count: int) -> None:
            nonlocal done
            done += count
            bar.update(count, done)

        yield advance


def total_for(path: Path) -> int:
    """What progress is counted in: bytes for JSONL, rows for Parquet."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception:
            return 0
    return path.stat().st_size
