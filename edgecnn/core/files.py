"""File identity and default result paths."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from pathlib import Path


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def timestamped_path(kind: str, suffix: str = "", *, now: _dt.datetime | None = None) -> Path:
    """`<kind>-<local timestamp><suffix>` in the working directory (bench-20261204-101500, predict-...json).

    A rerun in the same second gets a -2, -3 ... suffix instead of colliding with the earlier result."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    candidate, n = Path(f"{kind}-{stamp}{suffix}"), 2
    while candidate.exists():
        candidate, n = Path(f"{kind}-{stamp}-{n}{suffix}"), n + 1
    return candidate
