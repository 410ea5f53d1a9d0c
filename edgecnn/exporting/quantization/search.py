"""The accuracy-aware INT8 search: try quantization settings in a fixed order until the accuracy drop
against FP32 is within the bound, keeping the worst layers in float as the last resort. Candidates are
evaluated by a caller-given function and left as files in a caller-owned directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.exporting.quantization.layer_sqnr import quantizable_nodes, worst_quantized_nodes
from edgecnn.exporting.quantization.quant_config import CALIBRATION_METHODS, QuantizationConfig
from edgecnn.exporting.quantization.quantize import quantize_int8


@dataclass(frozen=True)
class Attempt:
    """One INT8 setting tried by the accuracy-aware search, with what it measured."""

    index: int
    settings: str
    config: dict[str, Any]
    accuracy: float | None
    accuracy_drop_pp: float | None
    within_bound: bool
    note: str = ""


def candidate_configs(
    base: QuantizationConfig, compute_nodes: list[str], vary_per_channel: bool = True
) -> list[tuple[str, QuantizationConfig]]:
    """The search order: the user's setting, then per-channel flipped, other calibration methods,
    and first/last compute layers kept in float. Worst-layer exclusions are added by the caller once
    they have been measured. `vary_per_channel=False` keeps the weight granularity (an ISA recipe's)."""
    seen: set[tuple[Any, ...]] = set()
    out: list[tuple[str, QuantizationConfig]] = []

    def add(label: str, cfg: QuantizationConfig) -> None:
        key = (cfg.per_channel, cfg.calibration_method, cfg.nodes_to_exclude)
        if key not in seen:
            seen.add(key)
            out.append((label, cfg))

    add("as configured", base)
    granularities = (base.per_channel, not base.per_channel) if vary_per_channel else (base.per_channel,)
    if vary_per_channel:
        add("per-channel flipped", replace(base, per_channel=not base.per_channel))
    for method in CALIBRATION_METHODS:
        for pc in granularities:
            add(f"{method} calibration", replace(base, calibration_method=method, per_channel=pc))
    if compute_nodes:
        ends = tuple(dict.fromkeys((compute_nodes[0], compute_nodes[-1])))
        add("first/last layers in float", replace(base, nodes_to_exclude=base.nodes_to_exclude + ends))
    return out


def search_int8(
    *,
    fp32_path: Path,
    preprocessed: Path,
    calibration_images: np.ndarray,
    input_name: str,
    base: QuantizationConfig,
    max_drop_pp: float,
    evaluate: Callable[[Path], float],
    fp32_accuracy: float,
    work_dir: Path,
    on_attempt: Callable[[Attempt], None] | None = None,
    max_attempts: int | None = None,
    vary_per_channel: bool = True,
) -> tuple[Path | None, QuantizationConfig | None, list[Attempt]]:
    """Try INT8 settings until the accuracy drop vs FP32 is within `max_drop_pp` percentage points.

    Returns (path of the first model within the bound or None, its config, every attempt).
    `evaluate(path) -> accuracy` runs the candidate on the real test set. `max_attempts` caps the
    number of quantized models tried (None: the whole search).
    """
    attempts: list[Attempt] = []
    queue = candidate_configs(base, quantizable_nodes(preprocessed), vary_per_channel)
    worst_added = False
    best: tuple[float, Path, QuantizationConfig] | None = None
    i = 0
    while i < len(queue) and (max_attempts is None or i < max_attempts):
        label, cfg = queue[i]
        i += 1
        out = work_dir / f"attempt{i}.int8.onnx"
        note = ""
        try:
            quantize_int8(fp32_path, out, calibration_images, input_name, cfg, preprocessed=preprocessed)
            acc: float | None = evaluate(out)
        except EdgecnnError as exc:
            acc, note = None, str(exc)
        drop = None if acc is None else (fp32_accuracy - acc) * 100.0
        ok = drop is not None and drop <= max_drop_pp
        attempt = Attempt(i, f"{label}: {cfg.describe()}", cfg.to_dict(), acc, drop, ok, note)
        attempts.append(attempt)
        if on_attempt is not None:
            on_attempt(attempt)
        if ok:
            return out, cfg, attempts
        if acc is not None and (best is None or acc > best[0]):
            best = (acc, out, cfg)
        if (
            i == len(queue)
            and not worst_added
            and best is not None
            and (max_attempts is None or i < max_attempts)
        ):
            # Last resort: measure which layers lose the most signal in the best candidate so far and
            # keep the worst 1, 2, 3 of them in float (on top of that candidate's settings).
            worst_added = True
            more, notes = worst_layer_candidates(
                preprocessed, best[1], best[2], calibration_images[:128], input_name, work_dir, i + 1
            )
            queue.extend(more)
            attempts.extend(notes)
    return None, None, attempts


def worst_layer_candidates(
    preprocessed: Path,
    best_path: Path,
    best_config: QuantizationConfig,
    images: np.ndarray,
    input_name: str,
    work_dir: Path,
    next_index: int,
) -> tuple[list[tuple[str, QuantizationConfig]], list[Attempt]]:
    """Settings that keep the worst 1, 2, 3 layers of the best candidate in float (cumulatively), and
    an unscored attempt saying why when the analysis could not single out a layer."""
    notes: list[Attempt] = []
    analysis = "worst-layer analysis"
    try:
        worst = worst_quantized_nodes(preprocessed, best_path, images, input_name, work_dir)
    except Exception as exc:  # noqa: BLE001 - the debug tools are best effort
        worst = []
        notes.append(Attempt(next_index, analysis, {}, None, None, False, str(exc)[:200]))
    if not worst:
        notes.append(Attempt(next_index, analysis, {}, None, None, False, "no layer could be singled out"))
    candidates: list[tuple[str, QuantizationConfig]] = []
    names: tuple[str, ...] = ()
    for node, sqnr in worst:
        if node in best_config.nodes_to_exclude:
            continue
        names = names + (node,)
        excluded = tuple(dict.fromkeys(best_config.nodes_to_exclude + names))
        candidates.append(
            (
                f"worst layers in float (+{node}, channel SQNR {sqnr:.1f} dB)",
                replace(best_config, nodes_to_exclude=excluded),
            )
        )
    return candidates, notes
