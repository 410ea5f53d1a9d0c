"""The ONNX graph of an export: Keras -> ONNX conversion, I/O names, simplification, and the graph rewrites
shared by the FP32 and INT8 files (`onnx_graph` holds the helpers they all use).

Modules are imported by path (`edgecnn.exporting.graph.convert`); this face re-exports nothing."""
