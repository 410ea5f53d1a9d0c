"""The static INT8 variant: calibration images from the training set, edgecnn's INT8 graph layout
(proved exact on real images before it is used), then one quantization with the configured settings or
the accuracy-aware search when there is a bound."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import INPUT_NAME
from edgecnn.core.progress import Tracker
from edgecnn.exporting.export_config import PARITY_MAX_ABS_DIFF, ExportConfig
from edgecnn.exporting.quantization.calibration import check_calibration_images, select_calibration_images
from edgecnn.exporting.quantization.quant_config import QuantizationConfig
from edgecnn.exporting.quantization.quantize import preprocess_for_quantization, quantize_int8
from edgecnn.exporting.quantization.search import Attempt, search_int8
from edgecnn.exporting.variants import BuiltVariant, VariantContext, finish_variant, save_model
from edgecnn.runtime.inference import accuracy, compare_probabilities, predict_probabilities
from edgecnn.runtime.preprocess import prepare_batch
from edgecnn.runtime.sessions import open_cpu_session


@dataclass(frozen=True)
class Int8Source:
    """The float graph static quantization starts from, and the settings to quantize it with."""

    path: Path
    quantization: QuantizationConfig
    rewrites: tuple[str, ...]  # "int8:<name>" for each INT8 graph rewrite used
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Int8Outcome:
    variant: BuiltVariant | None  # None: the search scored no attempt at all
    attempts: tuple[Attempt, ...]
    rewrites: tuple[str, ...]
    warnings: tuple[str, ...]


def int8_source(ctx: VariantContext, config: ExportConfig) -> Int8Source:
    """edgecnn's INT8 layout (exact in float): the one-input-channel stem stays float as
    Conv -> MaxPool -> Relu so ORT starts int8 at the second conv in NHWC, and the flatten is NHWC so
    no transpose runs before the Dense layer. Used only when it reproduces FP32 on real images."""
    plain = Int8Source(ctx.fp32_path, config.quantization, (), ())
    if not config.graph_rewrites:
        return plain
    import onnx

    from edgecnn.exporting.quantization.qdq_rewrites import prepare_for_int8

    prepared, int8_rewrites, keep_float = prepare_for_int8(onnx.load(str(ctx.fp32_path)))
    if not int8_rewrites:
        return plain
    candidate = ctx.work / "model.int8src.onnx"
    save_model(prepared, candidate)
    # The rewrites are exact in float; prove it on real images like the FP32 gate does, and quantize
    # the plain FP32 graph rather than a graph that drifted.
    n = min(config.parity_samples, len(ctx.x_graph))
    session, _ = open_cpu_session(candidate)
    check = compare_probabilities(ctx.fp32_probs[:n], predict_probabilities(session, ctx.x_graph[:n]))
    del session
    if check.max_abs_diff <= PARITY_MAX_ABS_DIFF and check.top1_agreement == 1.0:
        excluded = tuple(dict.fromkeys((*config.quantization.nodes_to_exclude, *keep_float)))
        rewrites = tuple(f"int8:{r}" for r in int8_rewrites)
        return Int8Source(candidate, replace(config.quantization, nodes_to_exclude=excluded), rewrites, ())
    warning = (
        f"INT8 graph rewrites ({', '.join(int8_rewrites)}) changed the float outputs "
        f"(max abs diff {check.max_abs_diff:.3g}); quantized the plain FP32 graph"
    )
    return replace(plain, warnings=(warning,))


def build_int8(
    ctx: VariantContext, config: ExportConfig, x_train: np.ndarray, tracker: Tracker
) -> Int8Outcome:
    qcfg = config.quantization
    # Only the calibration sample is converted to float (60k MNIST images would be 190 MB).
    x_cal = prepare_batch(
        select_calibration_images(x_train, qcfg.calibration_samples, qcfg.seed), ctx.metadata
    )
    check_calibration_images(x_cal, ctx.metadata.graph_input_shape)
    source = int8_source(ctx, config)
    warnings = list(source.warnings)
    pre = preprocess_for_quantization(source.path, ctx.work / "model.pre.onnx")
    if pre == source.path:
        warnings.append("onnxruntime quant_pre_process failed; INT8 quantized without it")
    if ctx.max_drop is None:
        qcfg = source.quantization
        out = quantize_int8(
            source.path, ctx.work / "model.int8.onnx", x_cal, INPUT_NAME, qcfg, preprocessed=pre
        )
        built = finish_variant(ctx, "int8", out, qcfg.to_dict(), [qcfg.describe()])
        return Int8Outcome(built, (), source.rewrites, tuple(warnings))
    found, found_cfg, attempts = _search(
        ctx, config, source, pre, x_cal, ctx.work, on_attempt=functools.partial(_report_attempt, tracker)
    )
    variant = _searched_variant(ctx, found, found_cfg, attempts, pre)
    return Int8Outcome(variant, tuple(attempts), source.rewrites, tuple(warnings))


def _search(
    ctx: VariantContext,
    config: ExportConfig,
    source: Int8Source,
    pre: Path,
    x_cal: np.ndarray,
    work_dir: Path,
    **options: Any,
) -> tuple[Path | None, QuantizationConfig | None, list[Attempt]]:
    """The accuracy-aware search on this export's graph, calibration images, bound and test set; the
    default INT8 and the recipe files differ only in `options` (progress, what it may vary)."""
    return search_int8(
        fp32_path=source.path,
        preprocessed=pre,
        calibration_images=x_cal,
        input_name=INPUT_NAME,
        base=source.quantization,
        max_drop_pp=ctx.max_drop,
        evaluate=functools.partial(test_set_accuracy, ctx),
        fp32_accuracy=ctx.fp32_accuracy,
        work_dir=work_dir,
        max_attempts=config.search_limit,
        **options,
    )


def build_int8_recipe(
    ctx: VariantContext, config: ExportConfig, x_train: np.ndarray, recipe_name: str
) -> BuiltVariant:
    """One more INT8 file, quantized with the settings of an instruction-set recipe (recipes.py) on
    the same rewritten graph and calibration images as model.int8.onnx. Outside the accuracy bound,
    the search tries other calibrations and the worst layers in float, keeping the recipe's data types
    and weight granularity (what makes it suit its CPUs); the device then decides with `edgecnn tune`."""
    from edgecnn.exporting.quantization.recipes import RECIPES

    recipe = RECIPES[recipe_name]
    qcfg = recipe.quantization(config.quantization)
    x_cal = prepare_batch(
        select_calibration_images(x_train, qcfg.calibration_samples, qcfg.seed), ctx.metadata
    )
    rewrites = config.graph_rewrites and recipe.ort_graph_rewrites
    source = int8_source(ctx, replace(config, quantization=qcfg, graph_rewrites=rewrites))
    pre = preprocess_for_quantization(source.path, ctx.work / f"model.{recipe.variant}.pre.onnx")
    out = ctx.work / f"model.{recipe.variant}.onnx"
    quantize_int8(source.path, out, x_cal, INPUT_NAME, source.quantization, preprocessed=pre)
    used, notes = source.quantization.to_dict(), [f"{recipe.name} recipe: {recipe.why}"]
    if ctx.max_drop is not None and ctx.fp32_accuracy is not None:
        drop = (ctx.fp32_accuracy - test_set_accuracy(ctx, out)) * 100.0
        if drop > ctx.max_drop:
            out, used, tried = search_recipe(ctx, config, source, pre, x_cal, recipe.variant)
            notes.append(tried)
    settings = {**used, "recipe": recipe.to_dict()}
    return finish_variant(ctx, recipe.variant, out, settings, notes, float_reference=pre)


def search_recipe(
    ctx: VariantContext, config: ExportConfig, source: Int8Source, pre: Path, x_cal: np.ndarray, variant: str
) -> tuple[Path, dict[str, Any], str]:
    """The accuracy-aware search for a recipe file outside the bound: its file within the bound, or
    the most accurate one tried; its settings; and a note saying which."""
    assert ctx.max_drop is not None and ctx.fp32_accuracy is not None
    work = ctx.work / variant
    work.mkdir(exist_ok=True)
    found, found_cfg, attempts = _search(ctx, config, source, pre, x_cal, work, vary_per_channel=False)
    if found is not None and found_cfg is not None:
        note = f"search: within the bound on attempt {len(attempts)}: {found_cfg.describe()}"
        return found, found_cfg.to_dict(), note
    scored = [a for a in attempts if a.accuracy is not None]
    best = max(scored, key=lambda a: a.accuracy or 0.0)  # attempt 1 (the recipe as is) always scores
    path = work / f"attempt{best.index}.int8.onnx"
    return (
        path,
        best.config,
        f"search: none of {len(attempts)} settings within the bound; best: {best.settings}",
    )


def test_set_accuracy(ctx: VariantContext, path: Path) -> float:
    """search_int8's `evaluate`: a candidate file's accuracy on the export's test images."""
    session, _ = open_cpu_session(path)
    return accuracy(predict_probabilities(session, ctx.x_graph), ctx.y)


def _report_attempt(tracker: Tracker, attempt: Attempt) -> None:
    tracker.describe(f"INT8 search: attempt {attempt.index} ({attempt.settings[:60]})")


def _searched_variant(
    ctx: VariantContext,
    found: Path | None,
    found_cfg: QuantizationConfig | None,
    attempts: list[Attempt],
    pre: Path,
) -> BuiltVariant | None:
    """The search's INT8 row: the model within the bound, or else the best attempt, marked outside it
    (and not kept under an enforced bound)."""
    if found is not None and found_cfg is not None:
        notes = [f"found on attempt {len(attempts)}: {found_cfg.describe()}"]
        return finish_variant(ctx, "int8", found, found_cfg.to_dict(), notes, float_reference=pre)
    scored = [a for a in attempts if a.accuracy is not None]
    if not scored:
        if not ctx.enforce_bound:  # no bound was asked for: a quantization that fails is the error
            raise EdgecnnError(attempts[0].note if attempts else "INT8 quantization failed")
        return None
    best = max(scored, key=lambda a: a.accuracy or 0.0)
    best_path = ctx.work / f"attempt{best.index}.int8.onnx"
    notes = [f"best of {len(attempts)} attempts, none within the bound: {best.settings}"]
    return finish_variant(ctx, "int8", best_path, best.config, notes, float_reference=pre)
