"""The variants beside the FP32 model: each one stamped with metadata, saved into the bundle, measured
against FP32 on the test set and dropped from the bundle when it misses the accuracy bound; FP16 and
dynamic INT8 built here (static INT8 in `int8_variant`), the side-by-side latency, and auto's pick."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.metadata import ModelMetadata, write_metadata
from edgecnn.exporting.export_config import VARIANT_FILES, ExportConfig, variant_file
from edgecnn.exporting.quantization.quant_config import QuantizationConfig
from edgecnn.exporting.quantization.quantize import (
    DYNAMIC_WARNING,
    FP16_NOTE,
    convert_fp16,
    quantize_dynamic_int8,
)
from edgecnn.exporting.report import Parity, VariantReport
from edgecnn.exporting.variant_eval import score_variant, side_by_side_latency
from edgecnn.runtime.inference import Agreement
from edgecnn.runtime.sessions import open_cpu_session


@dataclass(frozen=True)
class VariantContext:
    """What every variant is built from and measured against."""

    bundle: Path  # the (temporary) bundle directory variants are saved into
    work: Path  # scratch files: candidates, pre-processed graphs
    metadata: ModelMetadata  # the FP32 model's; variants change only `variant`
    x_graph: np.ndarray  # test images in the graph's layout
    y: np.ndarray | None  # None: no labelled data (agreement with FP32 only)
    fp32_probs: np.ndarray
    fp32_accuracy: float | None
    fp32_size: int
    max_drop: float | None  # percentage points; None: no bound (no labelled data)
    # An explicit --max-accuracy-drop: a file outside it is not written. Under the default bound it is
    # kept and marked (core.accuracy_bound).
    enforce_bound: bool = True

    @property
    def fp32_path(self) -> Path:
        return self.bundle / VARIANT_FILES["fp32"]


@dataclass
class BuiltVariant:
    report: VariantReport
    # Kept open for the latency check (an ORT session, or a model with `runner(batch)`); None when the
    # file was not kept.
    session: Any | None


def save_model(model: Any, path: Path) -> int:
    """Write an ONNX model; returns its size in bytes."""
    import onnx

    onnx.save(model, str(path))
    return path.stat().st_size


def measure_variant(
    ctx: VariantContext, name: str, path: Path, settings: dict[str, Any], notes: list[str]
) -> BuiltVariant:
    session, _ = open_cpu_session(path)
    score = score_variant(session, ctx.x_graph, ctx.y, ctx.fp32_probs)
    return BuiltVariant(
        report_for(ctx, name, path, score.accuracy, score.agreement, settings, notes), session
    )


def report_for(
    ctx: VariantContext,
    name: str,
    path: Path,
    acc: float | None,
    agreement: Agreement,
    settings: dict[str, Any],
    notes: list[str],
) -> VariantReport:
    """A variant's row: its accuracy and drop against FP32 ONNX, agreement, size and the bound's verdict
    (whatever format the file is in)."""
    drop = None
    if acc is not None and ctx.fp32_accuracy is not None:
        drop = (ctx.fp32_accuracy - acc) * 100.0
    return VariantReport(
        name=name,
        path=path,
        accuracy=acc,
        accuracy_drop_pp=drop,
        top1_agreement=agreement.top1_agreement,
        max_abs_diff=agreement.max_abs_diff,
        size_bytes=path.stat().st_size,
        size_ratio=path.stat().st_size / ctx.fp32_size,
        within_bound=None if ctx.max_drop is None or drop is None else drop <= ctx.max_drop,
        settings=settings,
        notes=notes,
    )


def finish_variant(
    ctx: VariantContext,
    name: str,
    model_file: Path,
    settings: dict[str, Any],
    notes: list[str],
    metadata: ModelMetadata | None = None,
    float_reference: Path | None = None,
) -> BuiltVariant:
    """Stamp metadata (the FP32 model's with `variant=name`, unless given) on a variant built in the
    work dir, save it into the bundle, measure it. An INT8 file outside the bound gets the report of
    the layers that lose the most, measured against `float_reference` (the graph it was quantized from)."""
    import onnx

    from edgecnn.exporting.quantization.recipes import recipe_metadata

    model = onnx.load(str(model_file))
    meta = metadata or replace(
        ctx.metadata, variant=name, extra={**ctx.metadata.extra, **recipe_metadata(name)}
    )
    write_metadata(model, meta)
    target = ctx.bundle / variant_file(name)
    save_model(model, target)
    built = measure_variant(ctx, name, target, settings, notes)
    if built.report.within_bound is False and float_reference is not None:
        from edgecnn.exporting.quantization.layer_sqnr import worst_layers_report

        built.report.worst_layers, why = worst_layers_report(
            float_reference, model_file, ctx.x_graph[:128], ctx.work
        )
        if why:
            built.report.notes.append(why)
    if built.report.within_bound is False and ctx.enforce_bound:
        # Outside the bound: measured and reported, but not shipped in the bundle.
        built.report.kept = False
        built.report.path = None
        built.session = None
        target.unlink()
    elif recipe_metadata(name) and ctx.y is not None:
        # The accuracy export measured travels with the file: `edgecnn tune` re-measures it on the
        # device (the saturation check) against exactly these images. Without labelled data there is
        # no accuracy to carry: tune then compares speed alone.
        measured = {"export_accuracy": repr(built.report.accuracy), "export_eval_images": str(len(ctx.y))}
        write_metadata(model, replace(meta, extra={**meta.extra, **measured}))
        save_model(model, target)
    return built


def build_fp16(ctx: VariantContext) -> BuiltVariant:
    import onnx

    fp16 = convert_fp16(onnx.load(str(ctx.fp32_path)))
    save_model(fp16, ctx.work / "model.fp16.onnx")
    return finish_variant(ctx, "fp16", ctx.work / "model.fp16.onnx", {"keep_io_types": True}, [FP16_NOTE])


def build_dynamic(ctx: VariantContext, quantization: QuantizationConfig) -> BuiltVariant:
    out = quantize_dynamic_int8(ctx.fp32_path, ctx.work / "model.dynamic.onnx", quantization)
    settings = {"per_channel": quantization.per_channel, "weight_type": quantization.weight_type}
    return finish_variant(ctx, "dynamic", out, settings, [DYNAMIC_WARNING.split(",")[0]])


def add_latency(built: dict[str, BuiltVariant], x_graph: np.ndarray, config: ExportConfig) -> None:
    """Time the kept variants side by side with FP32 and record medians and speed-ups in their reports."""
    sessions = {name: b.session for name, b in built.items() if b.session is not None}
    latency = side_by_side_latency(
        sessions, x_graph[:256], config.latency_batches, rounds=config.latency_rounds
    )
    fp32_ms = {batch: stats.p50_ms for batch, stats in latency["fp32"].items()}
    for name, per_batch in latency.items():
        report = built[name].report
        report.latency_ms = {batch: stats.p50_ms for batch, stats in per_batch.items()}
        report.fp32_latency_ms = dict(fp32_ms)
        report.speedup = {b: report.fp32_latency_ms[b] / report.latency_ms[b] for b in report.latency_ms}
        report.slower_than_fp32 = name != "fp32" and any(v < 1.0 for v in report.speedup.values())


def select_auto(reports: dict[str, VariantReport], config: ExportConfig) -> str | None:
    """`--quantize auto`: the fastest kept ONNX variant at the smallest batch (the smallest without
    latency). Other formats are `edgecnn tune`'s to pick, on the device."""
    if "auto" not in config.quantize:
        return None
    ok = [r for r in reports.values() if r.kept and r.within_bound is not False and r.path.suffix == ".onnx"]
    if config.latency:
        b = min(config.latency_batches)
        return min(ok, key=lambda r: r.latency_ms.get(b, float("inf"))).name
    return min(ok, key=lambda r: r.size_bytes).name


def bound_met(reports: dict[str, VariantReport], config: ExportConfig) -> bool:
    """Every measured variant is within the bound, and INT8 (when asked for) was measured at all."""
    met = all(r.within_bound is not False for r in reports.values())
    return met and not any(v in config.variants and v not in reports for v in ("int8", "int8-trt"))


def fp32_report(
    path: Path, accuracy: float | None, parity: list[Parity], config: ExportConfig
) -> VariantReport:
    """The FP32 row: its differences are those the parity gate measured against Keras."""
    return VariantReport(
        name="fp32",
        path=path,
        accuracy=accuracy,
        accuracy_drop_pp=None if accuracy is None else 0.0,
        top1_agreement=1.0,
        max_abs_diff=max(p.max_abs_diff for p in parity),
        size_bytes=path.stat().st_size,
        size_ratio=1.0,
        within_bound=None if accuracy is None else True,
        settings={"parity_images": max(parity, key=lambda p: p.n).n},
    )
