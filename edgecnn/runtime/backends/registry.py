"""The runtimes edgecnn can run a model with: the ONE place a runtime is added (BACKENDS), and which
runtime opens which file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file
from edgecnn.runtime.backends.base import Backend, OpenedModel, RuntimeMissing
from edgecnn.runtime.backends.litert import LiteRtBackend
from edgecnn.runtime.backends.openvino import OpenVinoBackend
from edgecnn.runtime.backends.ort import OrtBackend
from edgecnn.runtime.session_config import RUNTIMES, SessionConfig

BACKENDS: dict[str, Backend] = {b.name: b for b in (OrtBackend(), OpenVinoBackend(), LiteRtBackend())}
assert tuple(BACKENDS) == RUNTIMES, "session_config.RUNTIMES lists the registry's runtimes, in order"


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise EdgecnnError(f"unknown runtime {name!r}; choose one of {', '.join(BACKENDS)}") from None


def installed_runtimes() -> list[str]:
    return [name for name, b in BACKENDS.items() if b.missing() is None]


def runtime_for_file(path: str | Path, requested: str | None = None) -> str:
    """The runtime that runs `path`: `requested` when it opens that kind of file (ort by default for
    .onnx, litert for .tflite); a runtime asked for a file it cannot open is one clear line. The file is
    checked first (core.input_files): a missing path says so, not that its suffix is unknown."""
    check_input_file(path, "model file")
    suffix = Path(path).suffix.lower()
    able = [name for name, b in BACKENDS.items() if suffix in b.file_suffixes]
    if requested is None:
        if not able:
            kinds = sorted({s for b in BACKENDS.values() for s in b.file_suffixes})
            raise EdgecnnError(f"{path}: edgecnn runs {', '.join(kinds)} files, not {suffix or 'this file'}")
        return able[0]
    backend = get_backend(requested)
    if suffix not in backend.file_suffixes:
        which = f"; {path} runs with --runtime {able[0]}" if able else ""
        raise EdgecnnError(
            f"--runtime {requested} runs {'/'.join(backend.file_suffixes)} files, not {suffix or path}{which}"
        )
    return requested


def for_file(config: SessionConfig, path: str | Path) -> SessionConfig:
    """`config` with the runtime that opens `path` settled (and checked against its other options)."""
    runtime = runtime_for_file(path, config.runtime)
    return config if runtime == config.runtime else replace(config, runtime=runtime)


def open_model_file(path: str | Path, config: SessionConfig, *, allow_cpu_nodes: bool = False) -> OpenedModel:
    """Open `path` with `config.runtime` (checked against the file kind); one line when not installed."""
    config = for_file(config, path)
    backend = get_backend(str(config.runtime))
    backend.require()
    return backend.open(Path(path), config, allow_cpu_nodes=allow_cpu_nodes)


__all__ = [
    "BACKENDS",
    "RuntimeMissing",
    "for_file",
    "get_backend",
    "installed_runtimes",
    "open_model_file",
    "runtime_for_file",
]
