"""A bundle's `device.json`: which of its files (and how many threads) `edgecnn tune` found fastest on
this device, per batch size, and how predict / eval / bench use it when handed the bundle directory.

The record is tied to the CPU and ORT release it was measured on (like `edgecnn optimize`'s graphs):
on any other machine it is refused with the way out (tune again, or name a .onnx file).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.target import current_cpu_target, target_mismatch

DEVICE_JSON = "device.json"
DEVICE_SCHEMA = "edgecnn.device_pick"
RUNTIME_TITLES = {"ort": "ONNX Runtime", "openvino": "OpenVINO", "litert": "LiteRT"}


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

    def note(self, asked_batch: int, threads_given: bool) -> str:
        threads = "your --threads" if threads_given else f"{self.threads} thread(s)"
        speed = self.fp32_p50_ms / self.p50_ms if self.p50_ms > 0 else float("nan")
        runtime = RUNTIME_TITLES.get(self.runtime, self.runtime) + (
            f" {self.precision}" if self.precision else ""
        )
        return (
            f"{self.bundle}: ran {self.path.name} in {runtime} with {threads}, the device pick for batch "
            f"{self.batch} (for batch {asked_batch}) in {DEVICE_JSON} ({speed:.2f}x ORT FP32 when tuned)"
        )


def read_device_record(bundle: Path) -> dict[str, Any]:
    """The bundle's device.json, checked to be well-formed and made on this machine."""
    path = Path(bundle) / DEVICE_JSON
    if not path.is_file():
        raise EdgecnnError(
            f"{bundle} is a directory without {DEVICE_JSON}: run `edgecnn tune {bundle}` on this device "
            "first, or pass one of its .onnx files"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("kind") != DEVICE_SCHEMA or not isinstance(record.get("picks"), dict):
            raise ValueError("not an edgecnn tune record")
    except (ValueError, OSError, AttributeError) as exc:
        raise EdgecnnError(f"{path} is malformed ({exc}); run `edgecnn tune {bundle} --force`") from None
    tuned_on = ((record.get("config") or {}).get("session") or {}).get("device", "cpu")
    if tuned_on != "cpu":
        # A GPU pick names a precision and CUDA graphs too: run its file with those options yourself.
        raise EdgecnnError(
            f"{path} was tuned for --device {tuned_on}: pass the file it picks with --device {tuned_on} "
            "(its precision and CUDA-graph choice are in the record)"
        )
    why = target_mismatch(record.get("target") or {}, current_cpu_target())
    if why:
        raise EdgecnnError(
            f"{path} was measured on another machine ({why}); run `edgecnn tune {bundle} --force` here"
        )
    return record


def pick_for(bundle: Path, batch_size: int) -> DevicePick:
    """The record's pick for the tuned batch size nearest to `batch_size` (on a log scale)."""
    bundle = Path(bundle)
    picks = read_device_record(bundle)["picks"]
    if not picks:
        raise EdgecnnError(f"{bundle / DEVICE_JSON} has no picks; run `edgecnn tune {bundle} --force`")
    nearest = min(picks, key=lambda b: (abs(math.log(int(b)) - math.log(max(batch_size, 1))), int(b)))
    p = picks[nearest]
    path = bundle / p["file"]
    if not path.is_file():
        raise EdgecnnError(f"{bundle / DEVICE_JSON} picks {p['file']}, which is not in the bundle any more")
    return DevicePick(
        bundle,
        int(nearest),
        p["variant"],
        path,
        int(p["threads"]),
        float(p["p50_ms"]),
        float(p["fp32_p50_ms"]),
        _runtime_of(p, path),
        p.get("precision"),
    )


def _runtime_of(pick: dict[str, Any], path: Path) -> str:
    """The pick's runtime, validated (a record names one of edgecnn's runtimes, or none: ORT)."""
    from edgecnn.runtime.session_config import RUNTIMES

    runtime = pick.get("runtime") or ("litert" if path.suffix == ".tflite" else "ort")
    if runtime not in RUNTIMES:
        raise EdgecnnError(
            f"{path.parent / DEVICE_JSON} names runtime {runtime!r}, which edgecnn does not run"
        )
    return str(runtime)


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
