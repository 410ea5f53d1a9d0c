"""edgecnn: train small CNNs in Keras, export them to quantized ONNX, and measure them on the target."""

__version__ = "0.1.0"
