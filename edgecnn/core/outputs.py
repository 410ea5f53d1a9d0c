"""Atomic file and directory writes: a crash or Ctrl-C never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError

TMP_PREFIX = ".edgecnn-tmp-"

# mkstemp/mkdtemp create private (0600/0700) entries; results should get the user's usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)


def _ensure_parent(path: Path) -> Path:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgecnnError(f"cannot create directory {parent}: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK):
        raise EdgecnnError(f"directory {parent} is not writable")
    return parent


def refuse_overwrite(path: Path, force: bool, what: str = "output") -> None:
    """Raise unless `path` is free or the user asked to replace it."""
    if path.exists() and not force:
        raise EdgecnnError(f"{what} {path} already exists; pass --force to overwrite it")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    refuse_overwrite(path, force)
    parent = _ensure_parent(path)
    fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=path.suffix, dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


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
def atomic_dir(path: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary name and move it into place when the block succeeds.

    An existing directory is refused unless `force`; with `force` it is replaced only after the new
    one is complete, so a failed run never destroys the previous result.
    """
    path = Path(path)
    refuse_overwrite(path, force)
    parent = _ensure_parent(path)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + path.name + "-", dir=parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + "old-", dir=parent))
            old.rmdir()
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
