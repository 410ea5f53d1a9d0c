"""TensorRT's engine as its own cold-start figure: was it built by this session or loaded from the
`--trt-engine-cache` directory, and how long did the build take.

The TensorRT EP builds its engine while the session is created (edgecnn passes explicit profile
shapes, see runtime.providers.trt_profile_shapes) or, failing that, at the first run; so a build's
cost is the session creation plus the first run. With the engine cache on, a second run finds the
`.engine` file and skips the build: its cold start drops, and bench says so."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRT_PROVIDER = "TensorrtExecutionProvider"
ENGINE_SUFFIXES = (".engine", ".profile")


@dataclass(frozen=True)
class EngineCacheSnapshot:
    """The engine files of a cache directory (name -> modification time), taken before a session opens."""

    directory: Path | None
    files: dict[str, int]

    @classmethod
    def take(cls, directory: Path | None) -> EngineCacheSnapshot:
        if directory is None or not Path(directory).is_dir():
            return cls(directory, {})
        return cls(
            directory,
            {
                p.name: p.stat().st_mtime_ns
                for p in Path(directory).iterdir()
                if p.is_file() and p.name.endswith(ENGINE_SUFFIXES)
            },
        )


def engine_cold_start(
    provider: str, before: EngineCacheSnapshot, session_create_ns: int, first_run_ns: int
) -> dict[str, Any] | None:
    """{"engine": "built" | "loaded from cache", "engine_build_ms", "cache_dir", "cached_files"} for a
    TensorRT session; None for any other provider."""
    if provider != TRT_PROVIDER:
        return None
    cold_ms = (session_create_ns + first_run_ns) / 1e6
    if before.directory is None:
        return {"engine": "built", "engine_build_ms": cold_ms, "cache_dir": None, "cached_files": 0}
    after = EngineCacheSnapshot.take(before.directory)
    written = [name for name, mtime in after.files.items() if before.files.get(name) != mtime]
    reused = not written and bool(before.files)
    return {
        "engine": "loaded from cache" if reused else "built",
        "engine_build_ms": None if reused else cold_ms,
        "cache_dir": str(before.directory),
        "cached_files": len(after.files),
    }


def engine_note(name: str, engine: dict[str, Any] | None, cold_start_ms: float) -> str | None:
    if engine is None:
        return None
    if engine["engine"] == "loaded from cache":
        return (
            f"{name}: TensorRT engine loaded from the cache in {engine['cache_dir']} (no build): cold "
            f"start {cold_start_ms:.0f} ms"
        )
    cache = (
        f"; cached in {engine['cache_dir']}, so the next run skips the build"
        if engine["cache_dir"]
        else "; --trt-engine-cache DIR keeps it for the next run"
    )
    return f"{name}: TensorRT built its engine: {engine['engine_build_ms']:.0f} ms of the cold start{cache}"
