"""edgecnn.prediction: `edgecnn predict`, classifying the user's image files with an ONNX model
(preprocessing from the model's own metadata; top-k classes, checked against labels in file names).
Runtime side: numpy, Pillow and onnxruntime, never TensorFlow."""

from edgecnn.prediction.predict import ClassScore, ImagePrediction, PredictConfig, PredictResult, predict

__all__ = ["ClassScore", "ImagePrediction", "PredictConfig", "PredictResult", "predict"]
