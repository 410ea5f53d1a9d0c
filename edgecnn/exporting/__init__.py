"""Keras model -> ONNX bundle: conversion, graph clean-up, the parity gate, quantized variants (INT8,
FP16, dynamic INT8) with the accuracy-aware INT8 search, and export.json.

Importing the package is cheap (no TensorFlow, tf2onnx or onnx): those load when a step runs. The graph
rewrites import onnx at module level, so they are imported from their modules
(`edgecnn.exporting.graph.rewrites`, `edgecnn.exporting.quantization.qdq_rewrites`), not re-exported here."""

from edgecnn.exporting.export import export
from edgecnn.exporting.export_config import (
    DEFAULT_OPSET,
    EXPORT_JSON,
    QUANTIZE_CHOICES,
    VARIANT_FILES,
    ExportConfig,
)
from edgecnn.exporting.graph.convert import ROUTE_KERAS, ROUTE_TF2ONNX, convert, convert_keras_export
from edgecnn.exporting.graph.names import name_batch_dim, rename_io, tidy_names
from edgecnn.exporting.keras_source import check_keras_file, load_keras_model, model_io
from edgecnn.exporting.quantization.calibration import (
    check_calibration_images,
    make_data_reader,
    select_calibration_images,
)
from edgecnn.exporting.quantization.layer_sqnr import channel_sqnr, quantizable_nodes, worst_quantized_nodes
from edgecnn.exporting.quantization.quant_config import CALIBRATION_METHODS, QuantizationConfig
from edgecnn.exporting.quantization.quantize import (
    DYNAMIC_WARNING,
    FP16_NOTE,
    convert_fp16,
    preprocess_for_quantization,
    quantize_dynamic_int8,
    quantize_int8,
)
from edgecnn.exporting.quantization.search import Attempt, candidate_configs, search_int8
from edgecnn.exporting.report import ExportResult, Parity, VariantReport
from edgecnn.exporting.variant_eval import side_by_side_latency

__all__ = [
    "CALIBRATION_METHODS",
    "DEFAULT_OPSET",
    "DYNAMIC_WARNING",
    "EXPORT_JSON",
    "FP16_NOTE",
    "QUANTIZE_CHOICES",
    "ROUTE_KERAS",
    "ROUTE_TF2ONNX",
    "VARIANT_FILES",
    "Attempt",
    "ExportConfig",
    "ExportResult",
    "Parity",
    "QuantizationConfig",
    "VariantReport",
    "candidate_configs",
    "channel_sqnr",
    "check_calibration_images",
    "check_keras_file",
    "convert",
    "convert_fp16",
    "convert_keras_export",
    "export",
    "load_keras_model",
    "make_data_reader",
    "model_io",
    "name_batch_dim",
    "preprocess_for_quantization",
    "quantizable_nodes",
    "quantize_dynamic_int8",
    "quantize_int8",
    "rename_io",
    "search_int8",
    "select_calibration_images",
    "side_by_side_latency",
    "tidy_names",
    "worst_quantized_nodes",
]
