"""A bundle's `device.json`: which of its files (and how many threads) `edgecnn tune` found fastest on
this device, per batch size, and how predict / eval / bench use it when handed the bundle directory.

The record is tied to the CPU and ORT release it was measured on (like `edgecnn optimize`'s graphs):
on any other machine it is refused with the way out (tune again, or name a .onnx file).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file, show_path
from edgecnn.core.text import one_line
from edgecnn.runtime.backends.registry import BACKENDS
from edgecnn.runtime.session_config import (
    OPENVINO_PRECISIONS,
    PRECISIONS,
    RUNTIMES,
    SessionConfig,
    check_thread_count,
    usable_cores,
)
from edgecnn.runtime.target import current_cpu_target, target_mismatch

DEVICE_JSON = "device.json"
DEVICE_SCHEMA = "edgecnn.device_pick"


@dataclass(frozen=True)
class DevicePick:
    """What to run for one batch size: the file, its threads and what tune measured."""

    bundle: Path
    batch: int
    variant: str
    path: Path
    threads: int
    p50_ms: float
    fp32_p50_ms: float
    runtime: str = "ort"  # the runtime tune timed it in (records from before runtimes: ORT)
    precision: str | None = None  # OpenVINO's precision hint it was timed with

    @property
    def runtime_entry(self) -> str:
        """How bench's model_runtimes names it: "openvino:bf16", "litert", "ort"."""
        return self.runtime + (f":{self.precision}" if self.precision else "")

    def note(self, asked_batch: int | str, threads_given: bool) -> str:
        threads = "your --threads" if threads_given else f"{self.threads} thread(s)"
        speed = self.fp32_p50_ms / self.p50_ms if self.p50_ms > 0 else float("nan")
        runtime = BACKENDS[self.runtime].title + (f" {self.precision}" if self.precision else "")
        return (
            f"{show_path(self.bundle)}: ran {show_path(self.path.name)} in {runtime} with {threads}, the "
            f"device pick for batch {self.batch} (for batch {asked_batch}) in {DEVICE_JSON} "
            f"({speed:.2f}x ORT FP32 when tuned)"
        )


def _bad(path: Path, key: str, why: str) -> EdgecnnError:
    bundle = path.parent
    return EdgecnnError(
        f"{show_path(path)}: {key} {why}; run `edgecnn tune {show_path(bundle)} --force` to measure it again"
    )


def read_device_record(bundle: Path) -> dict[str, Any]:
    """The bundle's device.json, read through its schema (every value checked like an option, every
    error naming device.json and the key) and made on this machine. Returns {"picks": {batch: DevicePick
    fields}} with the batch keys as integers."""
    path = Path(bundle) / DEVICE_JSON
    if not path.exists():
        raise EdgecnnError(
            f"{show_path(bundle)} is a directory without {DEVICE_JSON}: run `edgecnn tune "
            f"{show_path(bundle)}` on this device first, or pass one of its model files"
        )
    check_input_file(path, DEVICE_JSON)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise _bad(path, "the file", f"is not readable JSON ({one_line(exc, 100)})") from None
    if not isinstance(record, dict) or record.get("kind") != DEVICE_SCHEMA:
        raise _bad(path, "kind", f"is not {DEVICE_SCHEMA!r} (not an edgecnn tune record)")
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    session = config.get("session") if isinstance(config.get("session"), dict) else {}
    tuned_on = session.get("device", "cpu")
    if tuned_on != "cpu":
        # A GPU pick names a precision and CUDA graphs too: run its file with those options yourself.
        raise EdgecnnError(
            f"{show_path(path)} was tuned for --device {tuned_on}: pass the file it picks with --device "
            f"{tuned_on} (its precision and CUDA-graph choice are in the record)"
        )
    target = record.get("target")
    if not isinstance(target, dict):
        raise _bad(path, "target", "is missing or not an object")
    why = target_mismatch(target, current_cpu_target())
    if why:
        raise EdgecnnError(
            f"{show_path(path)} was measured on another machine ({why}); run `edgecnn tune "
            f"{show_path(bundle)} --force` here"
        )
    picks = record.get("picks")
    if not isinstance(picks, dict) or not picks:
        raise _bad(path, "picks", "is missing, empty or not an object of batch size -> pick")
    return {**record, "picks": {_batch_key(path, k): _pick_fields(path, k, v) for k, v in picks.items()}}


def _batch_key(path: Path, key: str) -> int:
    if not (key.isascii() and key.isdigit()) or not 0 < int(key) <= 1 << 16:
        raise _bad(path, f"picks key {key[:20]!r}", "is not a batch size (an integer from 1 to 65536)")
    return int(key)


def _pick_fields(path: Path, key: str, pick: Any) -> dict[str, Any]:
    """One pick checked: file a plain name inside the bundle that its runtime opens, runtime and precision
    ones edgecnn runs, threads within the usable cores, times > 0."""
    where = f"picks[{key!r}]"
    if not isinstance(pick, dict):
        raise _bad(path, where, "is not an object")
    file = pick.get("file")
    plain = isinstance(file, str) and file not in ("", ".", "..") and os.path.basename(file) == file
    if not plain or "\\" in file or os.path.isabs(file):
        raise _bad(path, f"{where}.file", f"must be a plain file name inside the bundle, not {file!r}"[:160])
    runtime, precision = _runtime_fields(path, where, pick, file)
    variant = pick.get("variant")
    if not isinstance(variant, str):
        raise _bad(path, f"{where}.variant", f"must be a string, not {variant!r}"[:120])
    try:
        threads = check_thread_count(pick.get("threads"), "threads", limit=usable_cores())
    except EdgecnnError as exc:
        raise _bad(path, f"{where}.threads", f"is invalid ({exc})") from None
    times = {}
    for name in ("p50_ms", "fp32_p50_ms"):
        value = pick.get(name)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise _bad(
                path, f"{where}.{name}", f"must be a positive number of milliseconds, not {value!r}"[:120]
            )
        times[name] = float(value)
    return {
        "file": file,
        "variant": variant,
        "threads": threads,
        **times,
        "runtime": runtime,
        "precision": precision,
    }


def _runtime_fields(path: Path, where: str, pick: dict[str, Any], file: str) -> tuple[str, str | None]:
    """(runtime, precision) of one pick, checked: a runtime edgecnn runs (a record from before runtimes
    has none: the runtime that opens the file), a precision SessionConfig takes for that runtime or null,
    and a file that runtime opens."""
    suffix = os.path.splitext(file)[1].lower()
    runtime = pick.get("runtime")
    if runtime is None:
        runtime = next((name for name, b in BACKENDS.items() if suffix in b.file_suffixes), None)
        if runtime is None:
            kinds = "/".join(sorted({s for b in BACKENDS.values() for s in b.file_suffixes}))
            raise _bad(path, f"{where}.file", f"must name a {kinds} file in the bundle, not {file!r}"[:160])
    elif not isinstance(runtime, str) or runtime not in RUNTIMES:
        raise _bad(path, f"{where}.runtime", f"must be one of {', '.join(RUNTIMES)}, not {runtime!r}"[:160])
    suffixes = BACKENDS[runtime].file_suffixes
    if suffix not in suffixes:
        raise _bad(
            path,
            f"{where}.file",
            f"must name a {'/'.join(suffixes)} file (runtime {runtime} runs those), not {file!r}"[:160],
        )
    precision = pick.get("precision")
    if precision is None:
        return runtime, None
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise _bad(
            path,
            f"{where}.precision",
            f"must be one of {', '.join(PRECISIONS)} or null, not {precision!r}"[:160],
        )
    takes = tuple(OPENVINO_PRECISIONS) if runtime == "openvino" else ()  # a CPU pick: OpenVINO's hint only
    if precision not in takes:
        why = f"takes {', '.join(takes)} or null" if takes else "runs each file at its own precision (null)"
        raise _bad(path, f"{where}.precision", f"is {precision!r}, but runtime {runtime} on the CPU {why}")
    try:
        SessionConfig(runtime=runtime, precision=precision)  # bf16 on a CPU without it: refused here too
    except EdgecnnError as exc:
        raise _bad(path, f"{where}.precision", f"{precision!r} does not run here ({exc})") from None
    return runtime, precision


def pick_for(bundle: Path, batch_size: int) -> DevicePick:
    """The record's pick for the tuned batch size nearest to `batch_size` (on a log scale)."""
    bundle = Path(bundle)
    picks = read_device_record(bundle)["picks"]
    nearest = min(picks, key=lambda b: (abs(math.log(b) - math.log(max(batch_size, 1))), b))
    p = picks[nearest]
    path = bundle / p["file"]
    if not path.exists():
        raise EdgecnnError(
            f"{show_path(bundle / DEVICE_JSON)} picks {p['file']}, which is not in the bundle any more"
        )
    check_input_file(path, f"{DEVICE_JSON}'s pick")
    return DevicePick(
        bundle,
        nearest,
        p["variant"],
        path,
        p["threads"],
        p["p50_ms"],
        p["fp32_p50_ms"],
        p["runtime"],
        p["precision"],
    )


def refuse_session_override(bundle: Path, runtime: str | None, precision: str | None) -> None:
    """A bundle runs its device pick in the runtime and precision tune timed: an explicit --runtime or
    --precision would be overridden by the pick, so it is refused instead of silently dropped."""
    asked = [f"--{name} {value}" for name, value in (("runtime", runtime), ("precision", precision)) if value]
    if asked:
        raise EdgecnnError(
            f"{show_path(bundle)} is a bundle: it runs {DEVICE_JSON}'s pick in the runtime and precision "
            f"tune chose; {' and '.join(asked)} apply to a model file (pass one of the bundle's files)"
        )


def resolve_model(
    model: Path, batch_size: int, threads: int
) -> tuple[Path, int, list[str], DevicePick | None]:
    """(file to open, threads, notes, the pick): a model file passes through unchanged; a bundle
    directory becomes its device pick (file, runtime, precision), with the pick's threads unless the
    caller chose some (> 0)."""
    model = Path(model)
    if not model.is_dir():
        return model, threads, [], None
    pick = pick_for(model, batch_size)
    return pick.path, threads or pick.threads, [pick.note(batch_size, threads > 0)], pick
