"""`agenttrace fixture`, and the NL2Bash fixture the collecting commands run their tools on."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from agenttrace.cli._app import Refused, force_option, main, os_error_message


def build_fixture(root: Path, force: bool = False) -> Path:
    """The NL2Bash fixture under `root`, built there unless it is there already.

    Building replaces what is under `root`; files that are not a fixture's are replaced only
    with `force` (the one overwrite rule), else the command stops saying how to rebuild.
    """
    from agenttrace.collection import fixture

    if fixture.check(root)[0]:
        return root
    if not force and _holds_other_files(root):
        raise Refused(
            f"{root} holds files that are not the NL2Bash fixture's; use an empty directory, "
            f"or `agenttrace fixture {root} --force` to replace them"
        )
    digest = _fixture_build(root)
    if digest != fixture.FIXTURE_VERSION:
        raise click.ClickException(
            f"the fixture built under {root} has digest {digest}, "
            f"expected {fixture.FIXTURE_VERSION}"
        )
    return root


def _fixture_build(root: Path) -> str:
    """`fixture.build(root)`, or exit 1 saying why the fixture cannot be built there."""
    from agenttrace.collection import fixture

    try:
        return fixture.build(root)
    except OSError as error:
        raise click.ClickException(
            f"cannot build the NL2Bash fixture under {root}: {os_error_message(error)}"
        ) from None


@contextmanager
def fixture_for(root: Path | None, needed: bool = True) -> Iterator[Path | None]:
    """The fixture tasks run on: `root` (kept), else a temporary one, removed afterwards."""
    if not needed:
        yield None
    elif root is not None:
        yield build_fixture(root)
    else:
        with tempfile.TemporaryDirectory(
            prefix="agenttrace-fixture-", ignore_cleanup_errors=True
        ) as scratch:
            yield build_fixture(Path(scratch))


def _holds_other_files(root: Path) -> bool:
    """True when building under `root` would replace files that are not a fixture's."""
    from agenttrace.collection import fixture

    if not root.is_dir() or not any(root.iterdir()):
        return False
    return not fixture.check(root)[0]


@main.command("fixture")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Verify ROOT instead of building it.")
@force_option("Replace a ROOT that holds other files than the fixture's.")
def fixture_command(root: Path, check: bool, force: bool) -> None:
    """Build (or --check) the deterministic NL2Bash file-system fixture under ROOT.

    Rebuilding a fixture that checks out is harmless; a ROOT holding anything else is only
    replaced with --force.
    """
    from agenttrace.collection import fixture

    if check:
        ok, digest = fixture.check(root)
        click.echo(f"{digest} {'ok' if ok else 'MISMATCH, expected ' + fixture.FIXTURE_VERSION}")
        sys.exit(0 if ok else 1)
    if not force and _holds_other_files(root):
        raise Refused(f"{root} holds files that are not the fixture's; use --force to replace them")
    click.echo(f"{_fixture_build(root)} built under {root}")
