"""edgecnn.runtime: running exported ONNX models with ONNX Runtime, never TensorFlow.

Owns sessions on a named device (providers, the shared thread pool, session options), IOBinding,
tensor shapes and types, real-or-random model inputs, metadata-driven preprocessing, batched
inference and output agreement, opening a classifier with its metadata, graph MAC counts, the
target lock of CPU-specific graphs, and `edgecnn optimize`. Importing it loads numpy only; onnx and
onnxruntime are imported when first used."""

from edgecnn.runtime.feeds import INPUT_SOURCES, DatasetSamples, make_feeds, random_feeds
from edgecnn.runtime.graph_stats import count_macs
from edgecnn.runtime.inference import (
    Agreement,
    BatchedRun,
    accuracy,
    as_probabilities,
    compare_probabilities,
    predict_probabilities,
    run_batches,
)
from edgecnn.runtime.io_binding import BoundIO, bind_io, run_options
from edgecnn.runtime.loaded_model import LoadedModel, load_model

# `optimize` the function is not re-exported: it would shadow the module `edgecnn.runtime.optimize`.
from edgecnn.runtime.optimize import OptimizeConfig, OptimizeResult
from edgecnn.runtime.ort_library import available_providers, import_ort
from edgecnn.runtime.preprocess import prepare_batch
from edgecnn.runtime.providers import PROVIDER_FOR_DEVICE, ort_device
from edgecnn.runtime.session_config import DEVICES, SessionConfig
from edgecnn.runtime.sessions import check_model_file, open_cpu_session, open_session, session_options
from edgecnn.runtime.shapes import numpy_dtype, resolve_shape
from edgecnn.runtime.target import TARGET_KEY, check_target, current_cpu_target, read_target, target_mismatch
from edgecnn.runtime.thread_pool import allow_shared_thread_pool, can_share_thread_pool

__all__ = [
    "DEVICES",
    "INPUT_SOURCES",
    "PROVIDER_FOR_DEVICE",
    "TARGET_KEY",
    "Agreement",
    "BatchedRun",
    "BoundIO",
    "DatasetSamples",
    "LoadedModel",
    "OptimizeConfig",
    "OptimizeResult",
    "SessionConfig",
    "accuracy",
    "allow_shared_thread_pool",
    "as_probabilities",
    "available_providers",
    "bind_io",
    "can_share_thread_pool",
    "check_model_file",
    "check_target",
    "compare_probabilities",
    "count_macs",
    "current_cpu_target",
    "import_ort",
    "load_model",
    "make_feeds",
    "numpy_dtype",
    "open_cpu_session",
    "open_session",
    "ort_device",
    "predict_probabilities",
    "prepare_batch",
    "random_feeds",
    "read_target",
    "resolve_shape",
    "run_batches",
    "run_options",
    "session_options",
    "target_mismatch",
]
