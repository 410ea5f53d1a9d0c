"""edgecnn.core: what every stage shares — one-line errors, atomic outputs and what --force may replace,
scratch space, the ONNX metadata contract, hardware/ISA info, progress events, and the lazy door to
TensorFlow. Nothing here imports TensorFlow at import time."""
