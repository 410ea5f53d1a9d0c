"""The bundle's own files: the FP32 model with edgecnn's metadata, and export.json, the document of the
whole export (`ExportResult.to_document()`), with paths pointing into the final bundle directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.core.environment import environment_info
from edgecnn.core.files import sha256_file
from edgecnn.core.metadata import ModelMetadata, write_metadata
from edgecnn.core.outputs import atomic_write_json, to_jsonable
from edgecnn.core.version import __version__
from edgecnn.exporting.export_config import EXPORT_JSON, VARIANT_FILES, ExportConfig
from edgecnn.exporting.export_data import ExportData
from edgecnn.exporting.graph.fp32_graph import Fp32Graph
from edgecnn.exporting.keras_source import KerasSource
from edgecnn.exporting.quantization.int8_variant import Int8Outcome
from edgecnn.exporting.quantization.quantize import DYNAMIC_WARNING
from edgecnn.exporting.report import ExportResult, Parity, VariantReport
from edgecnn.exporting.variants import save_model
from edgecnn.runtime.graph_stats import count_macs


@dataclass(frozen=True)
class ExportParts:
    """Everything settled before the bundle is written: the model, its data and its FP32 graph."""

    source: KerasSource
    data: ExportData
    graph: Fp32Graph
    metadata: ModelMetadata  # the FP32 model's
    config_document: dict[str, Any]  # export.json's "config"


def config_document(config: ExportConfig, progress_shown: bool) -> dict[str, Any]:
    """export.json's "config": the ExportConfig fields, the whole QuantizationConfig, and `progress`
    (whether progress was reported, as export.json has always recorded it)."""
    return {**to_jsonable(config), "progress": progress_shown, "quantization": config.quantization.to_dict()}


def bundle_metadata(
    config: ExportConfig, source: KerasSource, data: ExportData, graph: Fp32Graph
) -> ModelMetadata:
    """What every model file in the bundle records about itself (variants change only `variant`)."""
    return ModelMetadata(
        input_shape=source.input_shape,
        layout="NCHW" if config.nchw else "NHWC",
        class_labels=data.class_labels,
        normalization=data.normalization,
        dataset=data.name,
        model_name=source.model_name,
        variant="fp32",
        source_sha256=sha256_file(config.model_path),
        export_route=graph.route,
        macs_per_image=source.macs or count_macs(graph.model),
        edgecnn_version=__version__,
        output=source.output_kind,
        # Recorded only when the graph really takes raw pixels because of those layers.
        in_model_preprocessing=source.preprocessing if data.normalization.is_raw else None,
    )


def write_fp32(parts: ExportParts, bundle: Path) -> Path:
    """Stamp the metadata on the FP32 graph and save it as the bundle's model.onnx."""
    path = bundle / VARIANT_FILES["fp32"]
    write_metadata(parts.graph.model, parts.metadata)
    save_model(parts.graph.model, path)
    return path


def export_result(
    config: ExportConfig,
    parts: ExportParts,
    parity: list[Parity],
    reports: dict[str, VariantReport],
    int8: Int8Outcome | None,
    selected: str | None,
    bound_met: bool,
    timings: dict[str, float],
    provider: str,
) -> ExportResult:
    warnings = [*parts.source.warnings, *parts.graph.warnings, *(int8.warnings if int8 else ())]
    if "dynamic" in config.variants:
        warnings.append(DYNAMIC_WARNING)
    return ExportResult(
        output_dir=config.output_dir,
        model_path=config.output_dir / VARIANT_FILES["fp32"],
        source_model=config.model_path,
        route=parts.graph.route,
        opset=config.opset,
        layout=parts.metadata.layout,
        node_counts=dict(parts.graph.node_counts),
        graph_rewrites=[*parts.graph.rewrites, *(int8.rewrites if int8 else ())],
        parity=parity,
        variants=reports,
        attempts=list(int8.attempts) if int8 else [],
        selected=selected,
        max_accuracy_drop=config.accuracy_bound if parts.data.labelled else None,
        bound_met=bound_met,
        warnings=warnings,
        assumptions=[*parts.source.assumptions, *parts.data.assumptions],
        dataset=parts.data.name,
        class_labels=parts.data.class_labels,
        config=parts.config_document,
        timings=timings,
        environment={**environment_info(), "execution_provider": provider},
        json_path=config.output_dir / EXPORT_JSON,
        output_kind=parts.source.output_kind,
        normalization=parts.data.normalization.to_dict(),
        normalization_source=parts.data.normalization_source,
        in_model_preprocessing=parts.source.preprocessing,
        parity_inputs=parts.data.parity_inputs,
        notes=[*([f"model: {config.model_origin}"] if config.model_origin else []), *parts.data.notes],
        bound_source="--max-accuracy-drop" if config.bound_enforced else "default",
    )


def write_export_json(result: ExportResult, bundle: Path) -> None:
    """Point the variant paths into the final bundle (not the temporary directory), then save the document."""
    for report in result.variants.values():
        if report.path is not None:
            report.path = result.output_dir / report.path.name
    atomic_write_json(bundle / EXPORT_JSON, result.to_document())
