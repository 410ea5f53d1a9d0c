"""Usage errors (a missing argument, `--epochs 1.5`, an unknown command) as one `error:` line, exit 2.

Typer/click would print a boxed usage panel; edgecnn's convention is one line on stderr for every
failure, with click's exit code 2 for usage errors (1 for other errors, 130 for Ctrl-C)."""

from __future__ import annotations

import sys
from typing import Any

from typer import Abort, Exit

from edgecnn.core.interrupt import mark_reported

try:  # typer >= 0.20 vendors click; older releases (pyproject allows >= 0.12) depend on it
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, UsageError  # type: ignore[no-redef]

    try:
        from click.exceptions import NoArgsIsHelpError  # type: ignore[no-redef]
    except ImportError:  # click < 8.2 prints the help itself and exits 0
        NoArgsIsHelpError = ()  # type: ignore[assignment,misc]

USAGE_EXIT = 2


def _usage_line(exc: UsageError) -> str:
    message = " ".join(exc.format_message().split())
    ctx = exc.ctx
    command = ctx.command_path if ctx is not None else "edgecnn"
    return f"error: {message} (see `{command} --help`)"


def run_cli(command: Any, argv: list[str] | None) -> int:
    """Invoke the click `command` without its standalone error printing; the process exit code."""
    try:
        result = command.main(args=argv, prog_name="edgecnn", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # bare `edgecnn` / `edgecnn data`: the help
        print(exc.ctx.get_help() if exc.ctx else str(exc), file=sys.stderr)
        return USAGE_EXIT
    except UsageError as exc:
        print(_usage_line(exc), file=sys.stderr)
        return USAGE_EXIT
    except ClickException as exc:
        print(f"error: {' '.join(exc.format_message().split())}", file=sys.stderr)
        return exc.exit_code
    except (Abort, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        mark_reported()
        return 130
    except Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0
