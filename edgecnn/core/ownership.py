"""Which outputs are edgecnn's to replace, and one writer per output at a time.

`--force` replaces an output only when edgecnn wrote it: a directory edgecnn writes carries a small
marker (`.edgecnn-output`, listing the files it wrote), and `--force` refuses a directory holding
anything else, so a user's file is never deleted. Directories written by an edgecnn before the marker
existed are recognized by their result document and file types.

Two runs into the same output at once would each succeed and the last would silently replace the
other's result; `claim_output` takes an exclusive lock (released by the OS even on kill -9) so the
second run fails at once with one line."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import show_path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; writes stay atomic, concurrency is not guarded
    fcntl = None  # type: ignore[assignment]

MARKER = ".edgecnn-output"
# File types edgecnn writes into its result directories (for directories without a marker).
_LEGACY_SUFFIXES = {".json", ".csv", ".png", ".onnx", ".keras"}
_held: dict[str, IO[Any]] = {}  # output path -> open lock file, for this process's lifetime


def write_marker(directory: Path, kind: str) -> None:
    """Record that edgecnn wrote `directory` and which entries are its own."""
    entries = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.name != MARKER)
    doc = {"kind": kind, "pid": os.getpid(), "entries": entries}
    (directory / MARKER).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def add_to_marker(path: Path) -> None:
    """Record a file edgecnn wrote later into one of its own output directories (tune's device.json,
    optimize's graph in a bundle), so `--force` may still replace that directory. No marker: nothing
    to extend (the directory is not edgecnn's, or an older edgecnn's, judged as before)."""
    marker = path.parent / MARKER
    try:
        doc = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(doc, dict) and isinstance(doc.get("entries"), list) and path.name not in doc["entries"]:
        doc["entries"] = sorted([*doc["entries"], path.name])
        marker.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def _is_result_document(path: Path) -> bool:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(doc, dict):
        return False
    env = doc.get("environment")
    # Every edgecnn result carries environment_info() ({"hardware", "versions"}); some also a kind.
    return (
        str(doc.get("kind", "")).startswith("edgecnn.")
        or "edgecnn_version" in doc
        or (isinstance(env, dict) and "hardware" in env and "versions" in env)
        or ("command" in doc and "config" in doc)
    )


def foreign_entries(directory: Path) -> list[str]:
    """Entries of `directory` that edgecnn did not write (empty: safe to replace with --force).

    A directory that edgecnn never wrote at all returns ["<not an edgecnn output>"]."""
    try:
        present = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.name != MARKER)
    except OSError as exc:
        return [f"<unreadable: {exc.strerror or exc}>"]
    if not present:
        return []  # an empty directory holds nothing to lose
    marker = directory / MARKER
    if marker.is_file():
        try:
            ours = set(json.loads(marker.read_text(encoding="utf-8")).get("entries", []))
        except (OSError, ValueError, AttributeError):
            ours = set()
        return [p for p in present if p not in ours]
    # No marker: an older edgecnn's result is a result document plus files of the types edgecnn writes.
    files = [directory / p for p in present if (directory / p).is_file()]
    if not any(_is_result_document(f) for f in files if f.suffix == ".json"):
        return ["<not an edgecnn output>"]
    return [str(f.relative_to(directory)) for f in files if f.suffix not in _LEGACY_SUFFIXES]


# The result document that names which command wrote a directory without a kind in its marker.
_DOCUMENT_KIND = {
    "bench.json": "bench",
    "threads.json": "bench",
    "eval.json": "eval",
    "compare.json": "compare",
    "export.json": "export",
    "model.onnx": "export",
}


def output_kind(directory: Path) -> str | None:
    """Which command wrote `directory`: its marker's kind, else the result document it holds."""
    try:
        kind = json.loads((directory / MARKER).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    if isinstance(kind, str) and kind != "edgecnn":
        return kind
    for name, command in _DOCUMENT_KIND.items():
        if (directory / name).is_file():
            return command
    return None


def _file_kind(path: Path) -> str | None:
    """The command that wrote a result file: a JSON document's kind / command, or for an .onnx file
    `optimize` when its metadata carries the CPU target optimize records (None: not edgecnn's)."""
    if path.suffix == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or not _is_result_document(path):
            return None
        kind = str(doc.get("kind") or doc.get("command") or "")
        return kind.removeprefix("edgecnn.").split(" ")[0] or "edgecnn"
    if path.suffix == ".onnx":
        try:
            with open(path, "rb") as fh:
                return "optimize" if b"edgecnn.ort_target" in fh.read() else None
        except OSError:
            return None
    return None


def check_replaceable(path: Path, what: str = "output", kind: str | None = None) -> None:
    """Refuse `--force` over something edgecnn did not write (a user's directory or file, or a
    directory of edgecnn's that now also holds a user's files) and, given the command's `kind`, over
    another command's output (a tuned bundle is never replaced by a bench result)."""
    shown = show_path(path)
    if path.is_dir() and not path.is_symlink():
        foreign = foreign_entries(path)
        if foreign == ["<not an edgecnn output>"]:
            raise EdgecnnError(
                f"refusing to replace {shown}: it is not an edgecnn output (--force only replaces what "
                "edgecnn wrote); choose another --output or remove it yourself"
            )
        if foreign:
            listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise EdgecnnError(
                f"refusing to replace {what} {shown}: it holds files edgecnn did not write ({listed}); "
                "move them or choose another --output"
            )
        found = output_kind(path)
        if kind is not None and found is not None and found != kind:
            raise EdgecnnError(
                f"refusing to replace {shown}: it is the output of `edgecnn {found}`, not of `edgecnn "
                f"{kind}` (--force replaces only the same command's output); choose another --output"
            )
        return
    if not path.exists() and not path.is_symlink():
        return
    written_by = _file_kind(path) if path.is_file() and not path.is_symlink() else None
    if written_by is None:
        raise EdgecnnError(
            f"refusing to replace {shown}: it is not an edgecnn result (--force only replaces what edgecnn "
            "wrote); choose another --output"
        )
    if kind is not None and written_by not in (kind, "edgecnn"):
        raise EdgecnnError(
            f"refusing to replace {shown}: it is the output of `edgecnn {written_by}`, not of `edgecnn "
            f"{kind}` (--force replaces only the same command's output); choose another --output"
        )


def check_not_an_input(
    output: Path, inputs: Iterable[str | os.PathLike[str]], what: str = "output", *, beside_ok: bool = False
) -> None:
    """An output may never be or contain one of the command's inputs, nor sit inside an input that is
    itself an edgecnn output (whatever --force says): writing it would destroy or alter what the
    command reads. Checked before any work starts. `beside_ok`: a file next to the input in its
    bundle is the command's design (optimize's <stem>.cpu.onnx, recorded in the bundle's marker)."""
    out = Path(os.path.abspath(output)).resolve()
    for item in inputs:
        src = Path(os.path.abspath(item)).resolve()
        # An edgecnn output that is or holds an input (a bundle, a bench result) is read as a whole.
        holder = next((d for d in (src, src.parent) if (d / MARKER).is_file()), None)
        if out == src:
            relation = "is"
        elif out in src.parents:
            relation = "contains"
        elif holder is not None and holder in out.parents and not (beside_ok and out.parent == src.parent):
            # Inside it, the output would make that edgecnn output no longer only edgecnn's. A folder
            # of images may hold a result file.
            relation, item = "is inside", holder
        else:
            continue
        raise EdgecnnError(
            f"{what} {show_path(output)} {relation} the input {show_path(item)}: an output must differ from "
            "every input (never replaced, even with --force); choose another --output"
        )


def _lock_path(path: Path) -> Path:
    key = hashlib.sha256(str(path.absolute()).encode()).hexdigest()[:32]
    root = Path(tempfile.gettempdir()) / f"edgecnn-locks-{os.getuid() if hasattr(os, 'getuid') else 0}"
    root.mkdir(mode=0o700, exist_ok=True)
    return root / f"{key}.lock"


def claim_output(path: Path) -> None:
    """Hold an exclusive lock on `path` for the rest of this process; a concurrent edgecnn run that
    claims the same output fails at once. Claiming twice from one process is a no-op."""
    key = str(path.absolute())
    if key in _held or fcntl is None:
        return
    try:
        fh = open(_lock_path(path), "a+", encoding="utf-8")  # noqa: SIM115 - held until process exit
    except OSError:
        return  # no usable temp dir: concurrency protection is best effort, the write itself is atomic
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise EdgecnnError(
            f"{path} is being written by another edgecnn run ({holder}); wait for it to finish or choose "
            "another --output"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}")
    fh.flush()
    _held[key] = fh


def release_output(path: Path) -> None:
    fh = _held.pop(str(path.absolute()), None)
    if fh is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()
