"""edgecnn from Python: `edgecnn.export`, `edgecnn.train`, `edgecnn.bench`, `edgecnn.evaluate`,
`edgecnn.predict`. Each takes keyword options named like the fields of the step's config dataclass
(or a ready config object), runs the same function the CLI runs, and returns its typed result
(`to_dict()` / `to_document()`); bad input raises `EdgecnnError` with one line, as the CLI prints it.

    import edgecnn
    result = edgecnn.export(keras_model, output_dir="bundle", quantize="int8,fp16", dataset="mnist")
    print(result.variants["int8"].accuracy)

Every stage package is imported when its function is called, so `import edgecnn` stays cheap and
TensorFlow-free."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError, EdgecnnTypeError


def _type_name(value: Any) -> str:
    return type(value).__name__


def _matches(value: Any, hint: Any) -> bool | None:
    """Whether `value` fits the annotation `hint` (None: a type this check does not judge)."""
    import os
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        verdicts = [_matches(value, h) for h in typing.get_args(hint)]
        return None if None in verdicts and not any(verdicts) else any(v for v in verdicts if v)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is Path:
        return isinstance(value, (str, os.PathLike))
    if origin is tuple or hint is tuple:
        return isinstance(value, (tuple, list))
    return None


def _check_types(cls: type, values: dict[str, Any]) -> None:
    """Refuse an option of the wrong type by name, as the CLI refuses `--top-k x`, before the config's
    own checks compare it with numbers (which would raise a bare TypeError deep inside)."""
    import typing

    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an annotation this Python cannot resolve: the config checks
        return
    for name, value in values.items():
        if name in hints and _matches(value, hints[name]) is False:
            raise EdgecnnTypeError(
                f"{name} must be {_describe(hints[name])}, not {value!r} ({_type_name(value)})"[:240]
            )


def _describe(hint: Any) -> str:
    import typing

    names = {int: "an integer", float: "a number", bool: "True or False", str: "a string", Path: "a path"}
    parts = [names.get(h, getattr(h, "__name__", str(h))) for h in (typing.get_args(hint) or (hint,))]
    return " or ".join("None" if p == "NoneType" else p for p in parts)


def _path(value: Any, what: str) -> Path:
    """A str or os.PathLike as a Path; anything else a TypeError naming `what`."""
    import os

    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    raise EdgecnnTypeError(f"{what} must be a file path (str or pathlib.Path), not {_type_name(value)}")


def _build(cls: type, config: Any, required: dict[str, Any], options: dict[str, Any]) -> Any:
    """`config` as given, or `cls(**required, **options)` with unknown option names refused by name."""
    if config is not None:
        if options or any(v is not None for v in required.values()):
            raise EdgecnnError(f"pass either config= or options, not both ({cls.__name__})")
        if not isinstance(config, cls):
            raise EdgecnnError(f"config must be a {cls.__name__}, not {type(config).__name__}")
        return config
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise EdgecnnError(
            f"unknown option {unknown[0]!r} for {cls.__name__}; "
            f"known: {', '.join(sorted(known - set(required)))}"
        )
    _check_types(cls, {**required, **options})
    return cls(**required, **options)


def _with_session(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """Session keywords (device=, threads=, runtime=, precision=, cuda_graphs=...) gathered into the
    `session` SessionConfig the step's config holds, so callers keep passing them flat."""
    from edgecnn.runtime.session_config import SessionConfig

    names = {f.name for f in dataclasses.fields(SessionConfig)}
    own = {f.name for f in dataclasses.fields(cls)}
    if "intra_op_threads" in options:  # the name the thread count had before it had one name
        options["threads"] = options.pop("intra_op_threads")
    session = {k: options.pop(k) for k in list(options) if k in names and k not in own}
    if session:
        if options.get("session") is not None:
            raise EdgecnnError("pass session= or its options (device=, threads=, ...), not both")
        options["session"] = SessionConfig(**session)
    return options


def _as_tuple(value: Any) -> tuple[Any, ...]:
    """ "int8,fp16" or ["int8", "fp16"] -> ("int8", "fp16"), as the CLI accepts both."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(value)
    raise EdgecnnTypeError(
        f"expected a comma-separated string or a list, not {value!r} ({_type_name(value)})"
    )


def _is_keras_model(model: Any) -> bool:
    # Duck-typed so that passing a path never imports Keras.
    return hasattr(model, "save") and hasattr(model, "layers") and hasattr(model, "inputs")


def export(
    model: Any = None,
    output_dir: str | Path | None = None,
    *,
    config: Any = None,
    progress: Any = None,
    **options: Any,
) -> Any:
    """Export a Keras model (a .keras/.h5 path, or an in-memory `keras.Model`) to an ONNX bundle.

    Options are `ExportConfig` fields (quantize, dataset, data_dir, labels, normalization,
    calibration_data, max_accuracy_drop, eval_limit, latency, force, ...) plus the `QuantizationConfig`
    fields (per_channel, calibration_method, calibration_samples, ...). Returns the `ExportResult`."""
    from edgecnn.exporting import ExportConfig, QuantizationConfig
    from edgecnn.exporting import export as run_export

    if config is not None:
        return run_export(_build(ExportConfig, config, {}, options), progress=progress)
    if model is None:
        raise EdgecnnError("export needs a model: a .keras path or a keras.Model")
    quant_fields = {f.name for f in dataclasses.fields(QuantizationConfig)}
    quant = {k: options.pop(k) for k in list(options) if k in quant_fields}
    if quant:
        options["quantization"] = QuantizationConfig(**quant)
    if "quantize" in options:
        options["quantize"] = _as_tuple_named(options["quantize"], "quantize")
    if "labels" in options and options["labels"] is not None:
        options["labels"] = _as_tuple_named(options["labels"], "labels")
    if "formats" in options:  # "onnx,tflite" or ["onnx", "tflite"], as --formats takes it
        options["formats"] = _as_tuple_named(options["formats"], "formats")
    if not _is_keras_model(model):
        path = _path(model, "export's model (a .keras file or a keras.Model)")
        out = Path(output_dir) if output_dir is not None else path.parent / "bundle"
        cfg = _build(ExportConfig, None, {"model_path": path, "output_dir": out}, options)
        return run_export(cfg, progress=progress)
    return _export_in_memory(model, output_dir, options, progress)


def _export_in_memory(
    model: Any, output_dir: str | Path | None, options: dict[str, Any], progress: Any
) -> Any:
    """Save the model into a scratch directory (removed afterwards) and export that file: the same
    route, checks and metadata as a model from disk."""
    from edgecnn.core.files import timestamped_path
    from edgecnn.core.quiet import quiet_libraries
    from edgecnn.core.scratch import scratch_dir
    from edgecnn.core.text import one_line
    from edgecnn.exporting import ExportConfig
    from edgecnn.exporting import export as run_export

    out = Path(output_dir) if output_dir is not None else timestamped_path("bundle")
    name = getattr(model, "name", None) or "model"
    options.setdefault("model_origin", f"in-memory keras.Model {name!r} (saved to a scratch file for export)")
    with scratch_dir("api-export") as tmp:
        path = tmp / f"{name}.keras"
        try:
            with quiet_libraries():
                model.save(str(path))
        except Exception as exc:  # noqa: BLE001 - keras raises many types for unsavable models
            raise EdgecnnError(f"cannot save the keras.Model for export: {one_line(exc, 200)}") from None
        cfg = _build(ExportConfig, None, {"model_path": path, "output_dir": out}, options)
        return run_export(cfg, progress=progress)


def train(model: str | None = None, *, config: Any = None, progress: Any = None, **options: Any) -> Any:
    """Train a registry model or a .toml/.json spec (`TrainConfig` fields as options); returns the
    `TrainResult` (run directory with model.keras and train.json). Needs TensorFlow."""
    from edgecnn.training import TrainConfig
    from edgecnn.training import train as run_train

    required = {} if model is None else {"model": model}
    return run_train(_build(TrainConfig, config, required, options), progress=progress)


def bench(models: Any = None, *, config: Any = None, progress: Any = None, **options: Any) -> Any:
    """Benchmark .onnx/.tflite files (`BenchConfig` fields and session options as keywords, e.g.
    batch_sizes=(1, 8), threads=(1, 2), runtime="openvino");
    returns the `BenchResult` (or the thread-sweep result for several thread_counts)."""
    import os

    from edgecnn.benchmarking import BenchConfig
    from edgecnn.benchmarking import bench as run_bench

    if models is None and config is None:
        raise EdgecnnTypeError("bench needs at least one .onnx model path")
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    if models is not None and not isinstance(models, (list, tuple)):
        raise EdgecnnTypeError(f"bench's models must be a path or a list of paths, not {_type_name(models)}")
    required = {} if models is None else {"models": tuple(_path(m, "each bench model") for m in models)}
    if "threads" in options:  # bench sweeps thread counts: threads= is its thread_counts
        options["thread_counts"] = options.pop("threads")
    for key in ("batch_sizes", "thread_counts"):
        if isinstance(options.get(key), int):
            options[key] = (options[key],)
    options = _with_session(BenchConfig, options)
    return run_bench(_build(BenchConfig, config, required, options), progress=progress)


def evaluate(model: Any = None, *, config: Any = None, progress: Any = None, **options: Any) -> Any:
    """Accuracy of an .onnx/.tflite model on its dataset's test set (`EvalConfig` fields as options: data,
    data_dir, limit, output_dir, ...; session options: device, threads, runtime, precision, ...);
    returns the `EvalResult`."""
    from edgecnn.evaluation import EvalConfig
    from edgecnn.evaluation import evaluate as run_evaluate

    required = {} if model is None else {"model": _path(model, "evaluate's model (an .onnx file)")}
    options = _with_session(EvalConfig, options)
    return run_evaluate(_build(EvalConfig, config, required, options), progress=progress)


def predict(model: Any = None, inputs: Any = None, *, config: Any = None, **options: Any) -> Any:
    """Classify image files or folders with an .onnx model (`PredictConfig` fields as options: top_k,
    output, ...); returns the `PredictResult`."""
    from edgecnn.prediction import PredictConfig
    from edgecnn.prediction import predict as run_predict

    required: dict[str, Any] = {}
    import os

    if model is not None:
        required["model"] = _path(model, "predict's model (an .onnx file)")
    if inputs is not None:
        if not isinstance(inputs, (str, os.PathLike, list, tuple)):
            raise EdgecnnTypeError(
                f"predict's inputs must be image file or folder paths, not {_type_name(inputs)} (save an "
                "array with numpy.save and pass the .npy path)"
            )
        items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
        required["inputs"] = tuple(_path(i, "each predict input") for i in items)
    options = _with_session(PredictConfig, options)
    return run_predict(_build(PredictConfig, config, required, options))


def _as_tuple_named(value: Any, name: str) -> tuple[Any, ...]:
    try:
        return _as_tuple(value)
    except EdgecnnTypeError:
        raise EdgecnnTypeError(
            f"{name} must be a comma-separated string or a list of names, not {value!r} ({_type_name(value)})"
        ) from None
