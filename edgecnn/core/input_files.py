"""Every file a command reads, checked in one place before it is opened, and every path printed literally.

A FIFO or device handed as a model would block the first read forever, a directory would fail deep inside
a library with its message: `check_input_file` stats the path (never opens it) and accepts only a
readable regular file, naming what the file was for. `show_path` turns a path into text that prints on
any terminal: bytes that are not UTF-8 (a file name from another system) appear as \\xNN escapes."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

from edgecnn.core.errors import EdgecnnError

_SURROGATE = re.compile("[\udc80-\udcff]")


def literal(text: str) -> str:
    """`text` with the bytes Python could not decode (lone surrogates, from os.fsdecode) as \\xNN."""
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


def _literal_errors(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: undecodable file-name bytes (lone surrogates) written as \\xNN."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return literal(exc.object[exc.start : exc.end]).encode("ascii", "backslashreplace").decode(), exc.end


def install_literal_streams() -> None:
    """Make stdout and stderr print any text: a non-UTF-8 file name inside a table or a note appears
    with \\xNN escapes instead of ending the command with UnicodeEncodeError (called once by the CLI)."""
    import codecs
    import sys

    codecs.register_error("edgecnn-literal", _literal_errors)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="edgecnn-literal")  # type: ignore[union-attr]


def show_path(path: str | os.PathLike[str]) -> str:
    """A path as a user should read it: the name as typed, undecodable bytes escaped."""
    return literal(os.fsdecode(path))


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_input_file(path: str | os.PathLike[str], what: str = "input", *, allow_dir: bool = False) -> Path:
    """`path` if it is a readable regular file (or, with `allow_dir`, a directory); otherwise one line
    naming `what` it was for. The path is stat'ed, never opened: a FIFO is refused without blocking."""
    path = Path(path)
    shown = show_path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        dangling = " (a symbolic link to a missing file)" if path.is_symlink() else ""
        raise EdgecnnError(f"{what} {shown} does not exist{dangling}") from None
    except NotADirectoryError:
        raise EdgecnnError(f"{what} {shown} does not exist (a parent in the path is a file)") from None
    except PermissionError:
        raise EdgecnnError(f"{what} {shown} cannot be read: permission denied") from None
    except OSError as exc:  # too long, loop of links...
        raise EdgecnnError(f"{what} {shown} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        if allow_dir:
            return path
        raise EdgecnnError(f"{what} {shown} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise EdgecnnError(f"{what} {shown} is {_kind(mode)}, not a regular file")
    if not os.access(path, os.R_OK):
        raise EdgecnnError(f"{what} {shown} cannot be read: permission denied")
    return path


def path_text_for_library(path: Path) -> str | None:
    """`str(path)` when a library that wants UTF-8 text (ONNX Runtime's constructor) can take it; None
    for a name with bytes that are not UTF-8 (the caller then hands the library the file's bytes)."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text
