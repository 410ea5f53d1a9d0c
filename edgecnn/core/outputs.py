"""Atomic file and directory writes: a crash or Ctrl-C never leaves a half-written output behind.

Every output goes through here: it is built under a temporary name tagged with this process id and
renamed into place only when complete (`edgecnn.core.scratch` sweeps what a killed run left); an
existing output is replaced only with `force` and only when edgecnn wrote it, and two runs never write
the same output at once (`edgecnn.core.ownership`); OS errors become one line naming the path."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.faults import OUTPUT_WRITE, pause_point
from edgecnn.core.input_files import show_path
from edgecnn.core.interrupt import forget_temporary, interrupted, register_temporary
from edgecnn.core.ownership import check_not_an_input, check_replaceable, claim_output, write_marker
from edgecnn.core.scratch import TMP_PREFIX, remove_entry, sweep_stale, tmp_prefix

__all__ = [
    "TMP_PREFIX",
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "dumps_json",
    "os_error_line",
    "refuse_overwrite",
    "to_jsonable",
]

# mkstemp/mkdtemp create private (0600/0700) entries; results should get the user's usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)


def os_error_line(exc: OSError, path: Path | str | None = None, action: str = "write") -> str:
    """One line for an OS error that names the path and says what happened (disk full, read-only...)."""
    where = path if path is not None else (exc.filename or "")
    reason = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.ENAMETOOLONG: "the file name is too long",
        errno.ENOTDIR: "a parent in the path is a file, not a directory",
        errno.EISDIR: "it is a directory",
    }.get(exc.errno or -1, exc.strerror or str(exc))
    return f"cannot {action} {where}: {reason}" if where else f"cannot {action}: {reason}"


def _ensure_parent(path: Path, created: list[Path] | None = None) -> Path:
    """Create the parent of `path` (recording in `created` the folders made, so a failed write can
    remove them again), refuse an unwritable one and sweep what killed runs left there."""
    parent = path.parent
    if created is not None:
        probe = parent
        while not probe.exists() and probe.parent != probe:
            created.append(probe)
            probe = probe.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgecnnError(os_error_line(exc, parent, "create directory")) from None
    if not parent.is_dir():
        raise EdgecnnError(f"cannot write {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK):
        raise EdgecnnError(f"directory {parent} is not writable")
    sweep_stale(parent)
    return parent


def refuse_overwrite(
    path: Path,
    force: bool,
    what: str = "output",
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    kind: str | None = None,
    beside_ok: bool = False,
) -> None:
    """The one output-path check, before long work starts: `path` may not be, contain or sit inside
    any of `inputs` (even with --force); an existing `path` is replaced only with `force` and only
    when the same command (`kind`: bench, eval, ...) wrote it. Then claim it for this process so a
    concurrent run cannot write it too. `beside_ok`: see ownership.check_not_an_input."""
    path = Path(path)
    check_not_an_input(path, inputs, what, beside_ok=beside_ok)
    if path.exists() or path.is_symlink():
        if not force:
            raise EdgecnnError(f"{what} {show_path(path)} already exists; pass --force to overwrite it")
        check_replaceable(path, what, kind)
    claim_output(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    Without `force` the final step never replaces a file that appeared meanwhile."""
    path = Path(path)
    # Ownership is checked where a command accepts the user's --output (refuse_overwrite); internal
    # files (manifests, caches, checkpoints) are edgecnn's by construction.
    if not force and (path.exists() or path.is_symlink()):
        raise EdgecnnError(f"output {path} already exists; pass --force to overwrite it")
    claim_output(path)
    created: list[Path] = []
    parent = _ensure_parent(path, created)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=tmp_prefix(), suffix=path.suffix, dir=parent)
    except OSError as exc:
        _remove_empty(created)
        raise EdgecnnError(os_error_line(exc, path)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    register_temporary(tmp)
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        _move_into_place(tmp, path, replace=force)
    except OSError as exc:
        raise EdgecnnError(os_error_line(exc, path)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        forget_temporary(tmp)
        if not path.exists():
            _remove_empty(created)


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders a failed write created for its output (deepest first; only if empty)."""
    for folder in created:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _move_into_place(tmp: Path, path: Path, replace: bool) -> None:
    if interrupted():  # Ctrl-C/SIGTERM arrived (maybe swallowed by a library): not this output
        raise KeyboardInterrupt
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if `path` exists: no silent replacement of a concurrent result
    except FileExistsError:
        raise EdgecnnError(f"output {path} already exists; pass --force to overwrite it") from None
    except OSError:  # file systems without hard links
        if path.exists():
            raise EdgecnnError(f"output {path} already exists; pass --force to overwrite it") from None
        os.replace(tmp, path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, force: bool = True) -> Path:
    path = Path(path)
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str, *, force: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), force=force)


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, Paths, numpy scalars/arrays and tuples into plain JSON types."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays and scalars
        return obj.tolist()
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None  # JSON has no NaN/inf
    return obj


def dumps_json(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n"


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, force: bool = True) -> Path:
    return atomic_write_text(path, dumps_json(obj), force=force)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, force: bool = False, kind: str = "edgecnn") -> Iterator[Path]:
    """Build a directory under a temporary name and move it into place when the block succeeds.

    An existing directory is refused unless `force` (and edgecnn wrote it); with `force` it is
    replaced only after the new one is complete, so a failed run never destroys the previous result.
    The finished directory carries edgecnn's ownership marker."""
    path = Path(path)
    refuse_overwrite(path, force, kind=None if kind == "edgecnn" else kind)
    created: list[Path] = []
    parent = _ensure_parent(path, created)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix(path.name + "-"), dir=parent))
    except OSError as exc:
        _remove_empty(created)
        raise EdgecnnError(os_error_line(exc, path)) from None
    register_temporary(tmp)
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        pause_point(OUTPUT_WRITE)
        write_marker(tmp, kind)
        _swap_dir(tmp, path, parent, force, kind)
    except OSError as exc:
        raise EdgecnnError(os_error_line(exc, path)) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        forget_temporary(tmp)
        if not path.exists():
            _remove_empty(created)


def _swap_dir(tmp: Path, path: Path, parent: Path, force: bool, kind: str) -> None:
    if interrupted():  # Ctrl-C/SIGTERM arrived (maybe swallowed by a library): not this output
        raise KeyboardInterrupt
    if not path.exists():
        try:
            os.rename(tmp, path)  # an empty directory made meanwhile is replaced; a full one raises
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise EdgecnnError(
                    f"output {path} appeared while this run was writing; not replaced"
                ) from None
            raise
        return
    if not force:
        raise EdgecnnError(f"output {path} already exists; pass --force to overwrite it")
    check_replaceable(path, kind=None if kind == "edgecnn" else kind)
    old = Path(tempfile.mkdtemp(prefix=tmp_prefix("old-"), dir=parent))
    old.rmdir()
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except OSError:
        os.replace(old, path)  # the previous result stays where it was
        raise
    remove_entry(old)  # a file or a directory: nothing named .edgecnn-tmp-* is left behind
