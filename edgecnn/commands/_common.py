"""Shared CLI plumbing: one-line errors, --json output, progress to stderr."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import literal
from edgecnn.core.interrupt import mark_reported
from edgecnn.core.outputs import dumps_json, os_error_line

T = TypeVar("T")
ConfigT = TypeVar("ConfigT")
ResultT = TypeVar("ResultT")

# Human-readable output goes to stdout; with --json stdout carries only the JSON document,
# so tables and progress go to stderr instead. Markup is off: paths, labels and every other user
# string print literally (a file named `[red]x` or `a[/x]`); colour comes only from `styled`.
stdout_console = Console(highlight=False, markup=False)
stderr_console = Console(stderr=True, highlight=False, markup=False)


def plain_console(console: Console, min_width: int = 0) -> Console:
    """A console on the same stream with markup off, at least `min_width` wide when not a terminal
    (a pipe or log file has no width to respect; rich's 80-column default would fold every number)."""
    width = console.width if console.is_terminal else max(console.width, min_width)
    return Console(file=console.file, width=width, highlight=False, markup=False)


def styled(label: str, style: str, rest: str = "") -> Text:
    """`label` in `style` followed by `rest`, both literal text (never parsed as markup)."""
    return Text.assemble((label, style), rest)


def console_for(as_json: bool) -> Console:
    return stderr_console if as_json else stdout_console


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` on one line to stderr and return an Exit to raise."""
    first_line = literal(" ".join(str(message).split()))
    print(f"error: {first_line}", file=sys.stderr)
    mark_reported()
    return typer.Exit(code)


def run_guarded(fn: Callable[[], T]) -> T:
    """Run a command body; turn every failure into one line and a non-zero exit, never a traceback."""
    try:
        return fn()
    except typer.Exit:
        raise
    except EdgecnnError as exc:
        raise fail(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted; no partial output was written", 130) from None
    except OSError as exc:  # disk full, read-only, permission: one line that names the path
        if os.environ.get("EDGECNN_DEBUG"):
            traceback.print_exc()
        raise fail(os_error_line(exc, action="access")) from None
    except MemoryError:
        raise fail("out of memory; try a smaller --batch or --limit") from None
    except Exception as exc:  # noqa: BLE001 - the promise is: no traceback for users
        if os.environ.get("EDGECNN_DEBUG"):
            traceback.print_exc()
        raise fail(
            f"unexpected {type(exc).__name__}: {exc} (set EDGECNN_DEBUG=1 for the traceback)"
        ) from None


def emit_json(document: Any) -> None:
    sys.stdout.write(dumps_json(document))
    sys.stdout.flush()


class _Documented(Protocol):
    def to_document(self) -> Any: ...


def result_document(result: _Documented) -> Any:
    """The JSON document of a result (what --json prints and the command saved)."""
    return result.to_document()


def run_command(
    build: Callable[[], ConfigT],
    engine: Callable[[ConfigT], ResultT],
    show: Callable[[ResultT, Console], None],
    *,
    as_json: bool,
    document: Callable[[ResultT], Any] = result_document,
    failure: Callable[[ResultT], EdgecnnError | str | None] | None = None,
) -> None:
    """The one shape of every command: build its typed config from the options (checks raise
    EdgecnnError there), run the engine, render the result, print the JSON document with --json, and
    exit 1 with one line when `failure` names a problem the result records (after its tables and JSON
    are out). Every failure on the way is one `error:` line, never a traceback."""

    def body() -> None:
        config = build()
        result = engine(config)
        show(result, console_for(as_json))
        if as_json:
            emit_json(document(result))
        problem = failure(result) if failure is not None else None
        if isinstance(problem, EdgecnnError):  # with its own exit status (predict's partial result: 3)
            raise problem
        if problem:
            raise EdgecnnError(problem)

    run_guarded(body)


def add_name_column(table: Table, header: str, names: Iterable[str], **options: Any) -> None:
    """A column of file or model names that is never cut: at least as wide as its longest name, so at
    80 columns (a pipe, a CI log) the other columns wrap or fold first (`no_wrap` alone lets rich
    truncate it to `model.int8…`)."""
    width = max([len(header), *(len(n) for n in names)])
    table.add_column(header, no_wrap=True, min_width=width, **options)
