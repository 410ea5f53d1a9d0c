"""What ran the numbers: hardware, instruction sets and library versions, without heavy imports."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from edgecnn.core.version import __version__

# Instruction-set flags that decide which int8/fp16 kernels a runtime can use.
INTERESTING_CPU_FLAGS = (
    "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8",
    "amx_bf16", "neon", "asimd", "asimddp", "asimdhp", "sve", "i8mm", "bf16", "fphp",
)  # fmt: skip

DEFAULT_LIBRARIES = (
    "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorflow", "keras", "tf2onnx", "onnxslim",
    "ai-edge-litert", "typer",
)  # fmt: skip


def _read_proc_cpuinfo() -> tuple[str | None, set[str]]:
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware", "cpu model") and model is None:
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    model, flags = _read_proc_cpuinfo()
    if model is None or not flags:
        try:
            import cpuinfo  # py-cpuinfo: slower, but portable (macOS, Windows)

            info = cpuinfo.get_cpu_info()
            model = model or info.get("brand_raw")
            flags = flags or set(info.get("flags", []))
        except Exception:  # noqa: BLE001 - best effort, hardware info must never break a command
            pass
    logical = os.cpu_count()
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:  # noqa: BLE001
        physical = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = logical
    return {
        "model": model or platform.processor() or "unknown",
        "arch": platform.machine(),
        "logical_cores": logical,
        "physical_cores": physical,
        "usable_cores": affinity,
        "flags": sorted(f for f in flags if f in INTERESTING_CPU_FLAGS),
    }


@functools.lru_cache(maxsize=1)
def gpu_info(root: Path = Path("/")) -> list[dict[str, str]]:
    """GPU names from nvidia-smi when it exists; on a Jetson (no nvidia-smi) its board and L4T release
    (core.jetson); an empty list otherwise."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        from edgecnn.core.jetson import jetson_info

        jetson = jetson_info(root)
        if jetson is None:
            return []
        return [{"name": jetson.model or "NVIDIA Jetson", "memory": "unified (host memory)",
                 "driver": f"L4T {jetson.l4t}", "jetpack": str(jetson.jetpack)}]  # fmt: skip
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            gpus.append({"name": parts[0], "memory": parts[1], "driver": parts[2]})
    return gpus


def memory_total_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001
        return None


def hardware_info() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_info(),
        "memory_bytes": memory_total_bytes(),
        "gpus": gpu_info(),
    }


def library_versions(names: tuple[str, ...] = DEFAULT_LIBRARIES) -> dict[str, str]:
    """Installed versions of `names` (distributions), read from metadata so nothing gets imported."""
    versions = {"python": sys.version.split()[0], "edgecnn": __version__}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def environment_info() -> dict[str, Any]:
    """The block every result JSON carries."""
    return {"hardware": hardware_info(), "versions": library_versions()}
