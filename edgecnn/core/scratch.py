"""Temporary names that say who made them, and the sweep that removes those a dead process left.

Every temporary entry edgecnn makes carries its process id: `.edgecnn-tmp-<pid>-...` beside an output
(renamed into place when the work succeeds) and `edgecnn-<kind>-<pid>-...` scratch directories in the
system temp dir. A kill -9 cannot run cleanup code, so the next edgecnn run sweeps entries whose process
is gone. An entry of a live process (a concurrent run) is never touched."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".edgecnn-tmp-"
SCRATCH_PREFIX = "edgecnn-"
_PID_IN_NAME = re.compile(r"^(?:\.edgecnn-tmp-|edgecnn-[a-z0-9-]*?-)(\d+)-")
_PROCESS_START = time.time()


def tmp_prefix(name: str = "") -> str:
    """Prefix for a temporary entry beside an output, tagged with this process id."""
    return f"{TMP_PREFIX}{os.getpid()}-{name}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale(entry: Path) -> bool:
    """True for an edgecnn temporary entry whose process is gone; for an untagged one (an older
    edgecnn's), when it predates this process."""
    match = _PID_IN_NAME.match(entry.name)
    if match:
        return not _alive(int(match.group(1)))
    try:
        return entry.lstat().st_mtime < _PROCESS_START - 1.0
    except FileNotFoundError:
        return False


def remove_entry(entry: Path) -> None:
    """Remove a file, link or directory tree; quietly nothing when it is gone or cannot go."""
    with contextlib.suppress(FileNotFoundError, PermissionError, OSError):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink()


def sweep_stale(directory: Path) -> list[Path]:
    """Remove the stale `.edgecnn-tmp-*` entries in `directory`; returns what was removed."""
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            if entry.name.startswith(TMP_PREFIX) and is_stale(entry):
                remove_entry(entry)
                removed.append(entry)
    return removed


def sweep_stale_scratch(kind: str) -> list[Path]:
    """Remove stale `edgecnn-<kind>-<pid>-*` scratch directories from the system temp dir."""
    removed: list[Path] = []
    root = Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in root.glob(f"{SCRATCH_PREFIX}{kind}-*"):
            if _PID_IN_NAME.match(entry.name) and is_stale(entry):
                remove_entry(entry)
                removed.append(entry)
    return removed


@contextlib.contextmanager
def scratch_dir(kind: str) -> Iterator[Path]:
    """A private temporary directory for intermediate files (removed on exit, swept if killed)."""
    sweep_stale_scratch(kind)
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{kind}-{os.getpid()}-") as tmp:
        yield Path(tmp)
