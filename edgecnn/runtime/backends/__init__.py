"""Runtimes as backends of the runtime side: ONNX Runtime (base install), OpenVINO and LiteRT
(optional extras). The interface is in base.py; the one list of runtimes is registry.BACKENDS.
Importing this package imports no runtime: each is imported when a model is opened with it."""
