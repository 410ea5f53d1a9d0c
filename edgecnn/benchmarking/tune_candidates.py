"""What `edgecnn tune` chooses from: (file, runtime, precision hint) candidates for every runtime
installed here, and the accuracy checks each one passes on the device before it is timed.

Files: the FP32 model.onnx (always, run by ONNX Runtime: the pick is never slower than it) and every
file export stamped with its measured accuracy (INT8 .onnx files, `optimize`d copies, .tflite files).
Runtimes: ONNX Runtime for each .onnx, OpenVINO fp32 for each .onnx and bf16 for the FP32 one where the
CPU runs bf16 natively, LiteRT (XNNPACK) for each .tflite. A runtime that is not installed is skipped
with the one line that names its extra.

Checks: a file run by the runtime export measured it with (ORT for .onnx, LiteRT for .tflite) must score
what export recorded on the same images, within `tolerance` (the saturation check: a CPU whose int8
kernels compute something else); every candidate must stay within the accuracy bound of FP32 measured
here (bf16 and another runtime's int8 kernels change numbers: measured, never assumed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import show_path
from edgecnn.core.metadata import ModelMetadata, read_metadata
from edgecnn.core.progress import Progress, Tracker
from edgecnn.core.tflite_metadata import read_tflite_metadata

FP32_FILE = "model.onnx"
EXPORT_JSON = "export.json"
# The runtime whose numbers export recorded, per file kind: the saturation check compares against it.
EXPORT_RUNTIME = {".onnx": "ort", ".tflite": "litert"}


@dataclass
class Candidate:
    variant: str
    file: str
    suits: list[str]
    export_accuracy: float | None
    device_accuracy: float | None = None
    accepted: bool = False
    reason: str = ""
    latency_ms: dict[int, dict[int, float]] = field(default_factory=dict)  # batch -> threads -> median
    # batch -> threads -> its median in each interleaved round of the first pass (tune_finalists pairs them)
    round_ms: dict[int, dict[int, tuple[float, ...]]] = field(default_factory=dict)
    # 95% interval (pp) of (accuracy here on all export's images) - (export's): a point when all were used
    difference_pp: tuple[float, float] | None = None
    runtime: str = "ort"
    precision: str | None = None  # OpenVINO's inference precision hint; None: the runtime's own

    @property
    def label(self) -> str:
        """How tables name it: file, and the runtime when it is not ONNX Runtime."""
        if self.runtime == "ort":
            return self.file
        return f"{self.file} @ {self.runtime}" + (f":{self.precision}" if self.precision else "")

    @property
    def bench_runtime(self) -> str:
        """The candidate's entry in BenchConfig.model_runtimes ("runtime" or "runtime:precision")."""
        return self.runtime + (f":{self.precision}" if self.precision else "")


def file_metadata(path: Path) -> ModelMetadata | None:
    return read_tflite_metadata(path) if path.suffix == ".tflite" else read_metadata(path)


def _foreign(path: Path) -> str | None:
    """Why an `edgecnn optimize`d copy made on another machine cannot be a candidate here, or None."""
    from edgecnn.runtime.target import check_target, file_props

    try:
        check_target(path, file_props(path), "cpu")
    except EdgecnnError as exc:
        return f"skipped {show_path(path.name)}: {exc}"
    return None


def bundle_files(
    bundle: Path, notes: list[str] | None = None
) -> tuple[list[Candidate], ModelMetadata, int | None]:
    """FP32 plus every file with export's accuracy in its metadata, each as an ORT/LiteRT candidate;
    (candidates, FP32's metadata, the number of test images export evaluated on, when recorded).
    `optimize`d copies made on another machine are skipped, with why appended to `notes`. Every file
    goes through the one file-argument check and the metadata reader's per-key validation."""
    meta = read_metadata(bundle / FP32_FILE)
    if meta is None:
        raise EdgecnnError(
            f"{show_path(bundle / FP32_FILE)} has no edgecnn metadata; export the bundle with edgecnn"
        )
    out = [Candidate("fp32", FP32_FILE, [], export_accuracy(bundle, "fp32"))]
    images: int | None = None
    for path in sorted([*bundle.glob("*.onnx"), *bundle.glob("*.tflite")]):
        m = file_metadata(path)
        if path.name == FP32_FILE or m is None or "export_accuracy" not in m.extra:
            continue
        foreign = _foreign(path) if path.name.endswith(".cpu.onnx") else None
        if foreign:
            if notes is not None:
                notes.append(foreign)
            continue
        suits = json.loads(m.extra.get("int8_suits", "[]"))
        variant = m.variant + (" (optimized)" if path.name.endswith(".cpu.onnx") else "")
        runtime = EXPORT_RUNTIME[path.suffix]
        out.append(Candidate(variant, path.name, suits, float(m.extra["export_accuracy"]), runtime=runtime))
        images = int(m.extra.get("export_eval_images", 0)) or images
    if images is None:  # no quantized file records it: FP32's accuracy was measured on export's --eval-limit
        limit = (export_doc(bundle).get("config") or {}).get("eval_limit")
        images = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None
    return out, meta, images


def export_doc(bundle: Path) -> dict[str, Any]:
    """The bundle's export.json ({} when missing or unreadable: tune then goes without its numbers)."""
    try:
        doc = json.loads((bundle / EXPORT_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def export_accuracy(bundle: Path, variant: str) -> float | None:
    try:
        return float(export_doc(bundle)["variants"][variant]["accuracy"])
    except (KeyError, TypeError, ValueError):
        return None


def with_runtimes(files: list[Candidate], installed: list[str], bf16: bool) -> list[Candidate]:
    """Each file under every installed runtime that opens it: FP32 first (the reference), then the
    rest; OpenVINO runs .onnx files with the fp32 hint, and the FP32 file with bf16 too when `bf16`."""
    out: list[Candidate] = []
    for f in files:
        if f.runtime not in installed:
            continue
        out.append(f)
    if "openvino" in installed:
        for f in files:
            if f.file.endswith(".onnx") and not f.file.endswith(".cpu.onnx"):
                hints = ("fp32", "bf16") if bf16 and f.file == FP32_FILE else ("fp32",)
                for hint in hints:
                    out.append(
                        Candidate(
                            f.variant, f.file, f.suits, f.export_accuracy, runtime="openvino", precision=hint
                        )
                    )
    return out


def skipped_runtimes(files: list[Candidate]) -> list[str]:
    """One line per runtime a bundle file needs that is not installed here."""
    from edgecnn.runtime.backends.registry import get_backend

    needed = {c.runtime for c in files} | {"openvino"}
    return [why for r in sorted(needed) if (why := get_backend(r).missing())]


def predict_here(bundle: Path, cand: Candidate, x: np.ndarray) -> np.ndarray:
    """The candidate's top-1 classes for `x` (uint8 test images), run here in its runtime."""
    from edgecnn.runtime.backends.registry import open_model_file
    from edgecnn.runtime.inference import as_probabilities
    from edgecnn.runtime.preprocess import prepare_batch
    from edgecnn.runtime.session_config import SessionConfig

    path = bundle / cand.file
    meta = file_metadata(path)
    assert meta is not None
    opened = open_model_file(path, SessionConfig(runtime=cand.runtime, precision=cand.precision))
    try:
        xb = prepare_batch(x, meta)
        scores = np.concatenate([opened.run(xb[i : i + 250]) for i in range(0, len(xb), 250)])
    finally:
        opened.close()
    probs, _ = as_probabilities(scores, meta.output)
    return probs.argmax(1)


def check_accuracy(
    bundle: Path,
    cands: list[Candidate],
    x: np.ndarray,
    y: np.ndarray,
    tol: float,
    population: int | None = None,
    progress: Progress | None = None,
) -> None:
    """The saturation check, in place: each candidate's accuracy here, and for a file run by the runtime
    export measured it with, agreement with export's number. With a sample of export's `population`
    images, a file is rejected only when the whole 95% interval of the difference lies beyond `tol`;
    with all of them the interval is the measured difference."""
    from edgecnn.benchmarking.tune_plan import difference_interval_pp

    n = len(y)
    with Tracker(progress, "tune accuracy", n * len(cands), "accuracy check") as bar:
        for cand in cands:
            bar.describe(f"accuracy {cand.label}")
            try:
                predicted = predict_here(bundle, cand, x)
            except EdgecnnError as exc:
                cand.reason = f"does not run here: {exc}"
                continue
            finally:
                bar.advance(n)
            cand.device_accuracy = float(np.mean(predicted == y))
            if cand.runtime != EXPORT_RUNTIME[Path(cand.file).suffix]:
                cand.accepted = True  # another runtime's kernels: only the bound vs FP32 applies (check_drop)
                continue
            if cand.export_accuracy is None:
                cand.accepted, cand.reason = cand.variant == "fp32", "no accuracy recorded by export"
                continue
            lo, hi = difference_interval_pp(
                round(cand.device_accuracy * n), n, population or n, cand.export_accuracy
            )
            cand.difference_pp = (lo, hi)
            cand.accepted = lo <= tol and hi >= -tol
            if not cand.accepted:
                diff = (cand.device_accuracy - cand.export_accuracy) * 100
                sampled = f", 95% interval {lo:+.2f}..{hi:+.2f} pp on {n} images" if lo != hi else ""
                cand.reason = (
                    f"accuracy here {cand.device_accuracy:.2%} vs {cand.export_accuracy:.2%} at export "
                    f"({diff:+.2f} pp{sampled}, over {tol:g} pp): this CPU's INT8 kernels compute "
                    "something else (U8S8 saturation without VNNI?)"
                )


def check_drop(candidates: list[Candidate], bound_pp: float) -> None:
    """Reject (in place) the candidates whose accuracy here is more than `bound_pp` below FP32's here."""
    fp32 = candidates[0].device_accuracy or 0.0
    for cand in candidates[1:]:
        drop = (fp32 - (cand.device_accuracy or 0.0)) * 100
        if cand.accepted and drop > bound_pp:
            cand.accepted = False
            cand.reason = f"{drop:.2f} pp below FP32 here, over the {bound_pp:g} pp bound"
