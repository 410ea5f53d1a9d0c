"""Keras model -> ONNX bundle (FP32 + quantized variants) with a parity gate and measured numbers.

`export(ExportConfig, progress=None) -> ExportResult` runs the steps in order: load the Keras file and
its training facts (keras_source, dataset), convert and clean up the graph (fp32_graph), gate FP32
against Keras on real test images (parity), build and measure the variants (variants, int8_variant),
time them side by side (variant_eval) and write export.json (bundle). The bundle is built in a
temporary directory and moved into place only when everything succeeded.

TensorFlow is imported lazily (edgecnn.core.tfcompat), only inside the conversion step.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgecnn.core.outputs import atomic_dir, refuse_overwrite
from edgecnn.core.progress import Progress, Tracker
from edgecnn.core.scratch import scratch_dir
from edgecnn.exporting.bundle import (
    ExportParts,
    bundle_metadata,
    config_document,
    export_result,
    write_export_json,
    write_fp32,
)
from edgecnn.exporting.export_config import ExportConfig
from edgecnn.exporting.export_data import load_export_data, prepare_eval_images
from edgecnn.exporting.formats.tflite import build_tflite_variants
from edgecnn.exporting.graph.convert import keras_call
from edgecnn.exporting.graph.fp32_graph import build_fp32_graph
from edgecnn.exporting.guard import check_fp32_accuracy
from edgecnn.exporting.input_contract import normalization_name
from edgecnn.exporting.keras_source import check_keras_file, load_source
from edgecnn.exporting.parity import parity_gate
from edgecnn.exporting.quantization.int8_variant import Int8Outcome, build_int8, build_int8_recipe
from edgecnn.exporting.quantization.tensorrt import build_int8_trt
from edgecnn.exporting.report import ExportResult
from edgecnn.exporting.variants import (
    BuiltVariant,
    VariantContext,
    add_latency,
    bound_met,
    build_dynamic,
    build_fp16,
    fp32_report,
    select_auto,
)
from edgecnn.runtime.inference import accuracy, predict_probabilities
from edgecnn.runtime.sessions import open_cpu_session
from edgecnn.training.record import TrainRecord


@contextlib.contextmanager
def timed_step(tracker: Tracker, timings: dict[str, float], key: str, description: str) -> Iterator[None]:
    """Report `description` as the running step, and on success record its seconds under `key`."""
    tracker.describe(description)
    started = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - started
    tracker.advance()


def export(config: ExportConfig, *, progress: Progress | None = None) -> ExportResult:
    """Run the whole export; see the module docstring. Raises EdgecnnError with one line on bad input."""
    started = time.perf_counter()
    file_format = check_keras_file(config.model_path)
    refuse_overwrite(config.output_dir, config.force, "bundle", inputs=config.input_paths(), kind="export")
    record = TrainRecord.beside(config.model_path)  # read early: a broken train.json fails fast
    timings: dict[str, float] = {}
    with Tracker(progress, "export", config.step_count, "export") as tracker:
        tracker.describe("loading the Keras model")
        source = load_source(config, record, file_format)
        tracker.advance()
        tracker.describe(f"loading {source.dataset or 'unlabelled images'}")
        data = load_export_data(config, source, record is not None)
        timings["load_s"] = time.perf_counter() - started
        tracker.advance()
        with timed_step(tracker, timings, "convert_s", f"converting (opset {config.opset})"):
            graph = build_fp32_graph(config, source.model, source.input_shape, source.output_kind)
        metadata = bundle_metadata(config, source, data, graph)
        parts = ExportParts(source, data, graph, metadata, config_document(config, progress is not None))
        return build_bundle(config, parts, tracker, timings, started)


def build_bundle(
    config: ExportConfig, parts: ExportParts, tracker: Tracker, timings: dict[str, float], started: float
) -> ExportResult:
    """Write, gate and measure everything in a temporary bundle that replaces `output_dir` at the end."""
    images = prepare_eval_images(parts.data, parts.metadata)
    with (
        atomic_dir(config.output_dir, force=config.force, kind="export") as bundle,
        scratch_dir("export") as work,
    ):
        fp32_path = write_fp32(parts, bundle)
        with timed_step(tracker, timings, "parity_s", "parity gate (Keras vs ONNX Runtime)"):
            fp32_session, provider = open_cpu_session(fp32_path)
            kind = parts.source.output_kind
            serve, _ = keras_call(parts.source.model, parts.source.input_shape, kind)
            parity = parity_gate(serve, fp32_session, images.x_nhwc, images.x_graph, config)
        with timed_step(tracker, timings, "eval_fp32_s", f"evaluating FP32 on {len(images.x_graph)} images"):
            fp32_probs = predict_probabilities(fp32_session, images.x_graph)
            fp32_accuracy = None if images.y is None else accuracy(fp32_probs, images.y)
            if fp32_accuracy is not None and config.accuracy_guard:
                check_fp32_accuracy(
                    fp32_accuracy,
                    parts.source.num_classes,
                    str(parts.data.name),
                    normalization_name(parts.data.normalization),
                    parts.source.recorded_accuracy,
                )
            fp32 = BuiltVariant(fp32_report(fp32_path, fp32_accuracy, parity, config), fp32_session)
        ctx = VariantContext(
            bundle=bundle,
            work=Path(work),
            metadata=parts.metadata,
            x_graph=images.x_graph,
            y=images.y,
            fp32_probs=fp32_probs,
            fp32_accuracy=fp32_accuracy,
            fp32_size=fp32.report.size_bytes,
            max_drop=None if images.y is None else config.accuracy_bound,
            enforce_bound=config.bound_enforced,
        )
        built, int8 = build_variants(ctx, config, parts.data.x_train, tracker, timings)
        step = functools.partial(timed_step, tracker, timings)
        built = {"fp32": fp32, **built, **build_tflite_variants(ctx, config, parts, images, step)}
        if config.latency:
            batches = ", ".join(map(str, config.latency_batches))
            with timed_step(tracker, timings, "latency_s", f"latency side by side at batch {batches}"):
                add_latency(built, images.x_graph, config)
        reports = {name: b.report for name, b in built.items()}
        timings["total_s"] = time.perf_counter() - started
        selected, met = select_auto(reports, config), bound_met(reports, config)
        result = export_result(config, parts, parity, reports, int8, selected, met, timings, provider)
        built.clear()  # close the sessions before the bundle directory is moved into place
        del fp32, fp32_session
        write_export_json(result, bundle)
    return result


def build_variants(
    ctx: VariantContext,
    config: ExportConfig,
    x_train: np.ndarray | None,
    tracker: Tracker,
    timings: dict[str, float],
) -> tuple[dict[str, BuiltVariant], Int8Outcome | None]:
    """The variants `config` asks for, in report order (int8, fp16, dynamic), each timed as one step."""
    built: dict[str, BuiltVariant] = {}
    int8 = None
    if "int8" in config.variants:
        assert x_train is not None, "load_export_data refuses INT8 without calibration images"
        with timed_step(tracker, timings, "int8_s", "INT8 static quantization (calibrating)"):
            int8 = build_int8(ctx, config, x_train, tracker)
        if int8.variant is not None:
            built["int8"] = int8.variant
        for name in config.int8_recipes:
            with timed_step(tracker, timings, f"int8_{name}_s", f"INT8 for other CPUs: {name} recipe"):
                variant = build_int8_recipe(ctx, config, x_train, name)
            built[variant.report.name] = variant
    if "int8-trt" in config.variants:
        with timed_step(tracker, timings, "int8_trt_s", "TensorRT INT8 quantization (calibrating)"):
            built["int8-trt"] = build_int8_trt(ctx, config, x_train)
    if "fp16" in config.variants:
        with timed_step(tracker, timings, "fp16_s", "FP16 conversion"):
            built["fp16"] = build_fp16(ctx)
    if "dynamic" in config.variants:
        with timed_step(tracker, timings, "dynamic_s", "dynamic INT8 quantization"):
            built["dynamic"] = build_dynamic(ctx, config.quantization)
    return built, int8
