"""The TFLite format beside ONNX (`--formats onnx,tflite`): model.tflite (FP32), model.int8.tflite
(full-integer ops, float input/output, calibrated on the ONNX INT8's images) and model.fp16.tflite,
converted from the Keras model with TensorFlow's TFLiteConverter.

Each file passes the gates the ONNX files pass: FP32 matches Keras on real images at batch 1 and at the
parity batch (else the export fails, nothing written) and is checked by the chance-accuracy guard;
every file is scored on the test set against FP32 ONNX, a quantized file at chance level or over an
explicit accuracy bound is measured but not kept (over the default bound: kept and marked). Every
kept file carries edgecnn's metadata (core.tflite_metadata), so the runtime side runs it with neither
TensorFlow nor export.json.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import ModelMetadata
from edgecnn.core.quiet import quiet_libraries
from edgecnn.core.text import one_line
from edgecnn.core.tflite_metadata import write_tflite_metadata
from edgecnn.exporting.bundle import ExportParts
from edgecnn.exporting.export_config import PARITY_MAX_ABS_DIFF, ExportConfig
from edgecnn.exporting.export_data import EvalImages
from edgecnn.exporting.graph.convert import keras_call
from edgecnn.exporting.guard import CHANCE_FACTOR, check_fp32_accuracy
from edgecnn.exporting.input_contract import normalization_name
from edgecnn.exporting.parity import keras_predict
from edgecnn.exporting.quantization.calibration import select_calibration_images
from edgecnn.exporting.report import Parity
from edgecnn.exporting.variants import BuiltVariant, VariantContext, report_for
from edgecnn.runtime.backends.base import OpenedModel
from edgecnn.runtime.backends.litert import open_with
from edgecnn.runtime.backends.registry import get_backend
from edgecnn.runtime.inference import accuracy, as_probabilities, compare_probabilities, run_batches
from edgecnn.runtime.preprocess import prepare_batch
from edgecnn.runtime.session_config import SessionConfig, usable_cores

FORMAT = "tflite"
# variant name -> (bundle file, what the converter is asked for)
FILES = {
    "tflite-fp32": "model.tflite",
    "tflite-int8": "model.int8.tflite",
    "tflite-fp16": "model.fp16.tflite",
}


def tflite_variants(config: ExportConfig) -> tuple[str, ...]:
    """The .tflite files an export writes: FP32 always with --formats tflite, INT8 and FP16 when the
    ONNX side builds them too (so `--quantize all --formats onnx,tflite` writes all three)."""
    if FORMAT not in config.formats:
        return ()
    return ("tflite-fp32", *(f"tflite-{v}" for v in ("int8", "fp16") if v in config.variants))


def open_tflite(path: Path) -> OpenedModel:
    """The .tflite in LiteRT through the runtime's own backend (the code tune, bench, eval and predict
    open it with), on every core the process may use like the ONNX sessions it is timed against. Where
    ai-edge-litert is not installed, TensorFlow's copy of the same interpreter (this side has it)."""
    config = SessionConfig(runtime="litert", threads=usable_cores())
    backend = get_backend("litert")
    if backend.missing() is None:
        return backend.open(path, config)
    from edgecnn.core.tfcompat import import_tensorflow

    tf = import_tensorflow()
    return open_with(tf.lite.Interpreter, path, config, f"tensorflow {tf.__version__}")


@dataclass(frozen=True)
class GraphFed:
    """An opened .tflite as the export's latency check feeds it: the ONNX graph's images (NCHW under
    --nchw) transposed to the NHWC every .tflite takes, once when bound, outside the timed call."""

    model: OpenedModel
    nchw: bool

    def runner(self, batch: np.ndarray) -> Callable[[], Any]:
        return self.model.runner(np.ascontiguousarray(batch.transpose(0, 2, 3, 1)) if self.nchw else batch)


def convert(
    model: Any,
    input_shape: tuple[int, int, int],
    output_kind: str,
    kind: str,
    calibration: np.ndarray | None = None,
) -> bytes:
    """Keras -> .tflite bytes: kind "fp32", "int8" (full-integer ops with float input/output, calibrated
    one image at a time on `calibration`, NHWC float32) or "fp16" (float16 weights)."""
    from edgecnn.core.tfcompat import import_tensorflow

    tf = import_tensorflow()
    serve, _ = keras_call(model, input_shape, output_kind)
    # No trackable object: handing it the Keras 3 model makes the converter read unset variables (NaN
    # outputs); the concrete function captures the weights it needs.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])
    if kind == "int8":
        assert calibration is not None
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif kind == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    try:
        with quiet_libraries():
            return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises many types (ConverterError, ValueError...)
        raise EdgecnnError(
            f"TFLite {kind} conversion failed ({one_line(str(exc))[:200]}); export without --formats tflite"
        ) from None


def tflite_parity(serve: Any, model: OpenedModel, x_nhwc: np.ndarray, config: ExportConfig) -> list[Parity]:
    """The FP32 .tflite against Keras on the parity gate's images and batches, with its tolerance."""
    results = []
    n1 = min(config.parity_batch1_samples, len(x_nhwc))
    nb = min(config.parity_samples, len(x_nhwc))
    for batch, n in ((1, n1), (config.parity_batch, nb)):
        ref = keras_predict(serve, x_nhwc[:n], batch)
        agree = compare_probabilities(ref, run_batches(model, x_nhwc[:n], batch).scores)
        scale = float(np.max(np.abs(ref)))
        passed = agree.max_abs_diff <= PARITY_MAX_ABS_DIFF * max(1.0, scale) and agree.top1_agreement == 1.0
        results.append(Parity(batch, n, agree.max_abs_diff, agree.top1_agreement, passed, scale))
        if not passed:
            raise EdgecnnError(
                f"parity gate failed, TFLite FP32 does not match Keras: batch {batch} on {n} images: max abs "
                f"diff {agree.max_abs_diff:.3g}, top-1 agreement {agree.top1_agreement * 100:.2f}%; "
                "nothing was written"
            )
    return results


def tflite_metadata(ctx: VariantContext, name: str, acc: float | None) -> ModelMetadata:
    """The ONNX FP32 model's metadata with this file's variant, its layout (TFLite is always NHWC) and
    the accuracy export measured on it (what `tune` re-measures on the device)."""
    measured = (
        {}
        if acc is None or ctx.y is None
        else {"export_accuracy": repr(acc), "export_eval_images": str(len(ctx.y))}
    )
    extra = {**ctx.metadata.extra, "format": FORMAT, **measured}
    route = "TFLiteConverter.from_concrete_functions"
    return replace(ctx.metadata, variant=name, layout="NHWC", export_route=route, extra=extra)


def build_tflite(
    ctx: VariantContext, config: ExportConfig, parts: ExportParts, images: EvalImages, name: str
) -> BuiltVariant:
    """Convert, gate, measure and (when kept) write one .tflite file into the bundle."""
    kind = name.split("-", 1)[1]
    calibration = None
    settings: dict[str, Any] = {"format": FORMAT, "converter": "TFLiteConverter", "kind": kind}
    if kind == "int8":
        q = config.quantization
        picked = select_calibration_images(parts.data.x_train, q.calibration_samples, q.seed)
        calibration = prepare_batch(picked, replace(ctx.metadata, layout="NHWC"))
        settings.update(
            calibration_samples=len(calibration), seed=q.seed, ops="TFLITE_BUILTINS_INT8", io="float32"
        )
    source = parts.source
    content = convert(source.model, source.input_shape, source.output_kind, kind, calibration)
    # Written first (without the accuracy, not yet measured) so the runtime's LiteRT backend opens the
    # very file the bundle ships; NHWC images always (a .tflite is NHWC whatever --nchw says).
    path = ctx.bundle / FILES[name]
    path.write_bytes(write_tflite_metadata(content, tflite_metadata(ctx, name, None)))
    model = open_tflite(path)
    if kind == "fp32":
        serve, _ = keras_call(source.model, source.input_shape, source.output_kind)
        settings["parity"] = [p.__dict__ for p in tflite_parity(serve, model, images.x_nhwc, config)]
    probs, _ = as_probabilities(run_batches(model, images.x_nhwc).scores, source.output_kind)
    acc = None if ctx.y is None else accuracy(probs, ctx.y)
    if acc is not None:
        # A new file renamed over the old one: the open interpreter keeps reading the file it mapped.
        staged = path.with_name(f".{path.name}.measured")
        staged.write_bytes(write_tflite_metadata(content, tflite_metadata(ctx, name, acc)))
        os.replace(staged, path)
    notes: list[str] = []
    if acc is not None and kind == "fp32" and config.accuracy_guard:
        check_fp32_accuracy(
            acc,
            source.num_classes,
            str(parts.data.name),
            normalization_name(parts.data.normalization),
            source.recorded_accuracy,
        )
    report = report_for(ctx, name, path, acc, compare_probabilities(ctx.fp32_probs, probs), settings, notes)
    at_chance = acc is not None and acc <= CHANCE_FACTOR / source.num_classes
    if at_chance:
        notes.append(f"accuracy {acc * 100:.2f}% is at chance level for {source.num_classes} classes")
    # As the ONNX variants: outside an explicit bound (or, quantized, at chance) it is not written;
    # outside the default bound it is kept and marked (core.accuracy_bound).
    if (report.within_bound is False and ctx.enforce_bound) or (at_chance and kind != "fp32"):
        report.kept, report.path = False, None
        path.unlink()
        return BuiltVariant(report, None)
    return BuiltVariant(report, GraphFed(model, nchw=ctx.metadata.layout == "NCHW"))


def build_tflite_variants(
    ctx: VariantContext,
    config: ExportConfig,
    parts: ExportParts,
    images: EvalImages,
    step: Callable[[str, str], Any],
) -> dict[str, BuiltVariant]:
    """Every .tflite the config asks for; `step(key, description)` times each like the ONNX variants."""
    built: dict[str, BuiltVariant] = {}
    for name in tflite_variants(config):
        with step(f"{name.replace('-', '_')}_s", f"TFLite {name.split('-')[1].upper()} conversion"):
            built[name] = build_tflite(ctx, config, parts, images, name)
    return built
