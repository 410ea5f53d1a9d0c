"""Quantized variants of an exported graph: calibration, `QuantizationConfig`, static/dynamic INT8 and FP16,
the accuracy-aware INT8 search with per-layer SQNR, the per-ISA INT8 recipes and TensorRT's Q/DQ format.

Modules are imported by path (`edgecnn.exporting.quantization.recipes`); this face re-exports nothing, so
importing one module never loads its siblings."""
