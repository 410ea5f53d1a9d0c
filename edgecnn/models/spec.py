"""The model registry: classic MNIST-family CNNs by name, user spec files, params/MACs, Keras builders.

A model is described by a `ModelSpec`: an input shape, a body of `LayerSpec`s and a training `Recipe`.
The classifier head (Dense(num_classes) with softmax, named "probabilities") is always appended by
`build_keras_model`, so specs list only the body. Parameter and MAC counts are computed here in pure
Python from the layer list, so `edgecnn models` never needs TensorFlow.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError

LAYER_KINDS = ("conv", "pool", "dropout", "dense", "flatten", "relu", "batchnorm", "gap")
PADDINGS = ("valid", "same")
POOL_MODES = ("max", "avg")
ACTIVATIONS = ("relu", "linear", "tanh", "sigmoid", "elu", "gelu", "swish")
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd")
LR_SCHEDULES = ("constant", "onecycle")
DATASETS = ("mnist", "fashion_mnist", "cifar10")
HEAD_NAME = "probabilities"
SPEC_SUFFIXES = (".toml", ".json")


@dataclass(frozen=True)
class LayerSpec:
    """One body layer. `kernel` is the conv kernel or the pool window; `stride` defaults as in Keras."""

    kind: str
    filters: int | None = None  # conv
    units: int | None = None  # dense
    kernel: tuple[int, int] | None = None  # conv kernel / pool window
    stride: tuple[int, int] | None = None  # None: 1 for conv, the window for pool
    padding: str = "valid"
    activation: str | None = None  # conv/dense; None = linear
    rate: float | None = None  # dropout
    mode: str = "max"  # pool: max | avg
    use_bias: bool = True  # conv/dense

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise EdgecnnError(f"unknown layer type {self.kind!r}; use one of {', '.join(LAYER_KINDS)}")
        if self.padding not in PADDINGS:
            raise EdgecnnError(f"{self.kind} padding must be 'valid' or 'same', not {self.padding!r}")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise EdgecnnError(
                f"{self.kind} activation {self.activation!r} is unknown; use one of {', '.join(ACTIVATIONS)}"
            )
        if self.kind == "conv":
            _require_positive_int(self.filters, "conv", "filters")
            if self.kernel is None:
                raise EdgecnnError("conv layer needs 'kernel'")
        if self.kind == "dense":
            _require_positive_int(self.units, "dense", "units")
        if self.kind == "dropout" and (self.rate is None or not 0.0 <= self.rate < 1.0):
            raise EdgecnnError(f"dropout 'rate' must be in [0, 1), got {self.rate!r}")
        if self.kind == "pool" and self.mode not in POOL_MODES:
            raise EdgecnnError(f"pool 'mode' must be 'max' or 'avg', not {self.mode!r}")
        for name in ("kernel", "stride"):
            value = getattr(self, name)
            if value is not None and (
                len(value) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in value)
            ):
                raise EdgecnnError(
                    f"{self.kind} '{name}' must be a positive integer or [h, w], got {value!r}"
                )

    @property
    def window(self) -> tuple[int, int]:
        return self.kernel or (2, 2)  # pool default window, as in Keras

    @property
    def strides(self) -> tuple[int, int]:
        if self.stride is not None:
            return self.stride
        return self.window if self.kind == "pool" else (1, 1)


@dataclass(frozen=True)
class Recipe:
    """How the source tutorial trained the model, so defaults reproduce it."""

    optimizer: str
    learning_rate: float
    epochs: int
    batch_size: int
    published_accuracy: float | None = None  # fraction, on the real test set
    published_note: str = ""
    lr_schedule: str = "constant"  # onecycle: linear warm-up to learning_rate, cosine decay to ~0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise EdgecnnError(
                f"recipe optimizer {self.optimizer!r} is unknown; use one of {', '.join(OPTIMIZERS)}"
            )
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < 10):
            raise EdgecnnError(
                f"recipe 'learning_rate' must be a number in (0, 10), got {self.learning_rate!r}"
            )
        _require_positive_int(self.epochs, "recipe", "epochs")
        _require_positive_int(self.batch_size, "recipe", "batch_size")
        if self.lr_schedule not in LR_SCHEDULES:
            raise EdgecnnError(f"recipe 'lr_schedule' must be one of {', '.join(LR_SCHEDULES)}")
        if self.published_accuracy is not None and not 0 < self.published_accuracy <= 1:
            raise EdgecnnError("recipe 'published_accuracy' must be a fraction in (0, 1]")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_shape: tuple[int, int, int]  # (H, W, C)
    num_classes: int
    layers: tuple[LayerSpec, ...]
    recipe: Recipe
    source: str = ""  # where the architecture and recipe come from
    default_dataset: str = "mnist"
    spec_path: str | None = None  # set for user spec files
    notes: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name or ""):
            raise EdgecnnError(f"model name {self.name!r} must be letters, digits, '-', '_' or '.'")
        if len(self.input_shape) != 3 or any(
            not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in self.input_shape
        ):
            raise EdgecnnError(
                f"'input_shape' must be three positive integers [H, W, C], got {self.input_shape!r}"
            )
        _require_positive_int(self.num_classes, "model", "num_classes")
        if self.num_classes < 2:
            raise EdgecnnError("'num_classes' must be at least 2")
        if not self.layers:
            raise EdgecnnError("a model needs at least one layer")
        layer_table(self)  # raises on shapes that collapse or a dense on a spatial input

    def to_dict(self) -> dict[str, Any]:
        """The spec in the same form a user spec file uses (so a run's spec can be saved and reused)."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "dataset": self.default_dataset,
            "source": self.source,
            "recipe": {
                "optimizer": self.recipe.optimizer,
                "learning_rate": self.recipe.learning_rate,
                "epochs": self.recipe.epochs,
                "batch_size": self.recipe.batch_size,
                "lr_schedule": self.recipe.lr_schedule,
                "published_accuracy": self.recipe.published_accuracy,
                "published_note": self.recipe.published_note,
            },
            "layers": [_layer_to_dict(layer) for layer in self.layers],
        }


@dataclass(frozen=True)
class LayerInfo:
    name: str  # the Keras layer name build_keras_model gives it
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


def _require_positive_int(value: Any, where: str, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise EdgecnnError(f"{where} '{name}' must be a positive integer, got {value!r}")


def _out_size(size: int, window: int, stride: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


def layer_table(spec: ModelSpec) -> list[LayerInfo]:
    """Per-layer output shape, parameters and MACs (conv and dense multiply-accumulates), head included.

    Parameter counts follow Keras exactly (BatchNorm counts its 4 vectors, as `count_params` does).
    """
    h, w, c = spec.input_shape
    flat: int | None = None
    rows: list[LayerInfo] = []
    counters: dict[str, int] = {}
    for i, layer in enumerate(spec.layers, start=1):
        counters[layer.kind] = counters.get(layer.kind, 0) + 1
        name = f"{layer.kind}{counters[layer.kind]}"
        where = f"layer {i} ({layer.kind})"
        params = macs = 0
        if layer.kind in ("conv", "pool"):
            if flat is not None:
                raise EdgecnnError(f"{where} needs a spatial input but comes after flatten/gap")
            kh, kw = layer.window
            sh, sw = layer.strides
            oh, ow = _out_size(h, kh, sh, layer.padding), _out_size(w, kw, sw, layer.padding)
            if oh < 1 or ow < 1:
                raise EdgecnnError(
                    f"{where}: a {kh}x{kw} window does not fit the {h}x{w} input; "
                    "use padding 'same' or fewer pooling layers"
                )
            if layer.kind == "conv":
                assert layer.filters is not None
                params = kh * kw * c * layer.filters + (layer.filters if layer.use_bias else 0)
                macs = oh * ow * layer.filters * kh * kw * c
                c = layer.filters
            h, w = oh, ow
        elif layer.kind == "batchnorm":
            params = 4 * (flat if flat is not None else c)
        elif layer.kind == "flatten":
            if flat is None:
                flat = h * w * c
        elif layer.kind == "gap":
            if flat is not None:
                raise EdgecnnError(f"{where} needs a spatial input but comes after flatten/gap")
            flat = c
        elif layer.kind == "dense":
            if flat is None:
                raise EdgecnnError(f"{where} needs a flat input; add a flatten layer before it")
            assert layer.units is not None
            params = flat * layer.units + (layer.units if layer.use_bias else 0)
            macs = flat * layer.units
            flat = layer.units
        shape = (flat,) if flat is not None else (h, w, c)
        rows.append(LayerInfo(name, layer.kind, shape, params, macs))
    if flat is None:
        raise EdgecnnError(
            "the last layer must be flat before the classifier; end with flatten, gap or dense"
        )
    rows.append(
        LayerInfo(
            HEAD_NAME,
            "dense",
            (spec.num_classes,),
            flat * spec.num_classes + spec.num_classes,
            flat * spec.num_classes,
        )
    )
    return rows


def params_and_macs(spec: ModelSpec) -> tuple[int, int]:
    """(parameters, multiply-accumulates per image), computed from the layer list without TensorFlow."""
    rows = layer_table(spec)
    return sum(r.params for r in rows), sum(r.macs for r in rows)


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[[], ModelSpec]] = {}


def register_model(name: str) -> Callable[[Callable[[], ModelSpec]], Callable[[], ModelSpec]]:
    """Decorator: register a zero-argument function returning the ModelSpec called `name`."""

    def wrap(fn: Callable[[], ModelSpec]) -> Callable[[], ModelSpec]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = fn
        return fn

    return wrap


def model_names() -> list[str]:
    return list(_REGISTRY)


def list_model_specs() -> list[ModelSpec]:
    return [fn() for fn in _REGISTRY.values()]


def get_model_spec(name_or_path: str | Path) -> ModelSpec:
    """A registered model by name, or a user's architecture from a .toml/.json spec file."""
    text = str(name_or_path)
    if text in _REGISTRY:
        return _REGISTRY[text]()
    path = Path(text).expanduser()
    if path.suffix.lower() in SPEC_SUFFIXES or path.exists():
        return load_spec_file(path)
    raise EdgecnnError(
        f"unknown model {text!r}; known models: {', '.join(_REGISTRY)} (or give a .toml/.json spec file)"
    )


# Short constructors keep the registry readable.
def conv(
    filters: int,
    k: int,
    *,
    stride: int = 1,
    padding: str = "valid",
    act: str | None = "relu",
    bias: bool = True,
) -> LayerSpec:
    return LayerSpec(
        "conv",
        filters=filters,
        kernel=(k, k),
        stride=(stride, stride),
        padding=padding,
        activation=act,
        use_bias=bias,
    )


def pool(size: int = 2, stride: int | None = None, padding: str = "valid", mode: str = "max") -> LayerSpec:
    s = stride or size
    return LayerSpec("pool", kernel=(size, size), stride=(s, s), padding=padding, mode=mode)


def dense(units: int, act: str | None = "relu", bias: bool = True) -> LayerSpec:
    return LayerSpec("dense", units=units, activation=act, use_bias=bias)


def dropout(rate: float) -> LayerSpec:
    return LayerSpec("dropout", rate=rate)


FLATTEN = LayerSpec("flatten")
RELU = LayerSpec("relu")
BATCHNORM = LayerSpec("batchnorm")

MNIST_SHAPE = (28, 28, 1)


@register_model("keras-convnet")
def _keras_convnet() -> ModelSpec:
    return ModelSpec(
        name="keras-convnet",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        layers=(conv(32, 3), pool(), conv(64, 3), pool(), conv(64, 3), FLATTEN, dense(64)),
        recipe=Recipe(
            "rmsprop",
            1e-3,
            epochs=5,
            batch_size=64,
            published_accuracy=0.9916,
            published_note="Chollet, Deep Learning with Python, ch. 5: RMSprop, 5 epochs, batch 64",
        ),
        source="Keras convnet from F. Chollet, 'Deep Learning with Python' (introduction to convnets)",
    )


@register_model("tf1-cnn")
def _tf1_cnn() -> ModelSpec:
    return ModelSpec(
        name="tf1-cnn",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        layers=(
            conv(64, 3, padding="same"),
            pool(),
            conv(128, 3, padding="same"),
            pool(),
            FLATTEN,
            dense(256),
            dropout(0.3),
        ),
        recipe=Recipe(
            "adam",
            1e-3,
            epochs=10,
            batch_size=100,
            published_accuracy=0.9922,
            published_note="TensorFlow 1.x layers-API MNIST CNN: Adam 1e-3, batch 100; the tutorial "
            "trains by steps, edgecnn picks 10 epochs",
        ),
        source="TensorFlow 1.x tf.layers MNIST CNN tutorial",
    )


@register_model("hvass")
def _hvass() -> ModelSpec:
    return ModelSpec(
        name="hvass",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        # The tutorial pools before the ReLU (same result, cheaper), so the convs are linear here.
        layers=(
            conv(16, 5, padding="same", act=None),
            pool(),
            RELU,
            conv(36, 5, padding="same", act=None),
            pool(),
            RELU,
            FLATTEN,
            dense(128),
        ),
        recipe=Recipe(
            "adam",
            1e-4,
            epochs=12,
            batch_size=64,
            published_accuracy=0.99,
            published_note="Hvass-Labs TensorFlow tutorial #02: ~99% after 10,000 iterations of "
            "batch 64; edgecnn picks 12 epochs (~10,100 steps on 54,000 images)",
        ),
        source="Hvass-Labs TensorFlow-Tutorials #02 (Convolutional Neural Network)",
    )


@register_model("deep-mnist")
def _deep_mnist() -> ModelSpec:
    return ModelSpec(
        name="deep-mnist",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        # Dropout(0.5) before the classifier as in the tutorial (keep_prob 0.5); it has no parameters.
        layers=(
            conv(32, 5, padding="same"),
            pool(),
            conv(64, 5, padding="same"),
            pool(),
            FLATTEN,
            dense(1024),
            dropout(0.5),
        ),
        recipe=Recipe(
            "adam",
            1e-4,
            epochs=3,
            batch_size=50,
            published_accuracy=0.983,
            published_note="TensorFlow 'Deep MNIST for Experts': 98.3% after 3,000 steps of batch 50; "
            "edgecnn picks 3 epochs (3,240 steps on 54,000 images)",
        ),
        source="TensorFlow 1.x tutorial 'Deep MNIST for Experts'",
    )


@register_model("cifar10-cnn")
def _cifar10_cnn() -> ModelSpec:
    return ModelSpec(
        name="cifar10-cnn",
        input_shape=(32, 32, 3),
        num_classes=10,
        layers=(
            conv(64, 5, padding="same"),
            pool(3, 2, padding="same"),
            conv(64, 5, padding="same"),
            pool(3, 2, padding="same"),
            conv(128, 3, padding="same"),
            conv(128, 3, padding="same"),
            conv(128, 3, padding="same"),
            FLATTEN,
            dense(384),
            dropout(0.5),
        ),
        recipe=Recipe(
            "adam",
            1e-3,
            epochs=20,
            batch_size=128,
            published_accuracy=None,
            published_note="after the TensorFlow CIFAR-10 tutorial (~86% with its own LRN/local "
            "layers and SGD schedule); no published figure for this variant",
        ),
        source="TensorFlow CIFAR-10 convolutional tutorial (architecture family)",
        default_dataset="cifar10",
    )


@register_model("fashion-cnn")
def _fashion_cnn() -> ModelSpec:
    return ModelSpec(
        name="fashion-cnn",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        layers=(
            conv(64, 2, padding="same"),
            pool(),
            dropout(0.3),
            conv(32, 2, padding="same"),
            pool(),
            dropout(0.3),
            FLATTEN,
            dense(256),
            dropout(0.5),
        ),
        recipe=Recipe(
            "adam",
            1e-3,
            epochs=10,
            batch_size=64,
            published_accuracy=None,
            published_note="after the TensorFlow blog 'Fashion-MNIST with tf.Keras' (2018); "
            "no verified published figure recorded",
        ),
        source="TensorFlow blog: Fashion-MNIST with tf.Keras (dropout after each conv block)",
        default_dataset="fashion_mnist",
    )


@register_model("mnist-fast")
def _mnist_fast() -> ModelSpec:
    return ModelSpec(
        name="mnist-fast",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        # Small convs (0.9 M MACs/image) train fast on a CPU; BatchNorm lets a high one-cycle LR converge
        # in two epochs. Measured (3 seeds): 99.23-99.28% after 2 epochs, ~21-23 CPU-seconds of training.
        layers=(
            conv(16, 5, act=None, bias=False),
            BATCHNORM,
            RELU,
            pool(),
            conv(32, 3, act=None, bias=False),
            BATCHNORM,
            RELU,
            pool(),
            FLATTEN,
            dense(256, act=None, bias=False),
            BATCHNORM,
            RELU,
        ),
        recipe=Recipe(
            "adam",
            5e-3,
            epochs=2,
            batch_size=128,
            published_accuracy=None,
            published_note="no published figure: edgecnn's own time-to-accuracy recipe (BatchNorm, "
            "batch 128, one-cycle LR: 20% warm-up then cosine decay, 2 epochs); target >= 99.2% in "
            "<= 30 s of training on 2 CPU cores",
            lr_schedule="onecycle",
        ),
        source="edgecnn (designed for time to accuracy on small CPUs)",
    )


# --------------------------------------------------------------------------- user spec files

_LAYER_FIELDS = {
    "conv": {"filters", "kernel", "stride", "padding", "activation", "use_bias"},
    "pool": {"kernel", "size", "stride", "padding", "mode"},
    "dropout": {"rate"},
    "dense": {"units", "activation", "use_bias"},
    "flatten": set(),
    "relu": set(),
    "batchnorm": set(),
    "gap": set(),
}
_TOP_FIELDS = {"name", "input_shape", "num_classes", "dataset", "source", "recipe", "layers", "notes"}
_RECIPE_FIELDS = {
    "optimizer",
    "learning_rate",
    "epochs",
    "batch_size",
    "lr_schedule",
    "published_accuracy",
    "published_note",
}
_DEFAULT_RECIPE = Recipe("adam", 1e-3, epochs=5, batch_size=64)


def load_spec_file(path: Path) -> ModelSpec:
    """Parse and validate a user's TOML/JSON architecture; every error names the file and the field."""
    if not path.is_file():
        raise EdgecnnError(f"model spec file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        raw = path.read_bytes()
        if suffix == ".json":
            data = json.loads(raw.decode("utf-8"))
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(raw.decode("utf-8"))
        else:
            raise EdgecnnError(f"model spec file {path} must end in .toml or .json")
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise EdgecnnError(f"model spec file {path} is not valid {suffix[1:].upper()}: {exc}") from None
    except OSError as exc:
        raise EdgecnnError(f"cannot read model spec file {path}: {exc.strerror or exc}") from None
    try:
        return spec_from_dict(data, default_name=path.stem, spec_path=str(path.resolve()))
    except EdgecnnError as exc:
        raise EdgecnnError(f"{path}: {exc}") from None


def _int_pair(value: Any, field_name: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise EdgecnnError(f"'{field_name}' must be an integer or [h, w], got {value!r}")


def _layer_from_dict(i: int, d: Any) -> LayerSpec:
    where = f"layers[{i}]"
    if not isinstance(d, dict):
        raise EdgecnnError(f"{where} must be a table/object with a 'type'")
    kind = d.get("type")
    if kind not in _LAYER_FIELDS:
        raise EdgecnnError(f"{where}.type {kind!r} is unknown; use one of {', '.join(_LAYER_FIELDS)}")
    unknown = set(d) - _LAYER_FIELDS[kind] - {"type"}
    if unknown:
        raise EdgecnnError(
            f"{where}.{sorted(unknown)[0]} is not a field of a {kind} layer "
            f"(allowed: {', '.join(sorted(_LAYER_FIELDS[kind])) or 'none'})"
        )
    kw: dict[str, Any] = {"kind": kind}
    try:
        if kind == "conv":
            if "filters" not in d or "kernel" not in d:
                raise EdgecnnError(f"{where}: a conv layer needs 'filters' and 'kernel'")
            kw["filters"] = d["filters"]
            kw["kernel"] = _int_pair(d["kernel"], "kernel")
            kw["stride"] = _int_pair(d.get("stride", 1), "stride")
            kw["activation"] = _activation(d.get("activation", "relu"))
            kw["use_bias"] = _bool(d.get("use_bias", True), "use_bias")
        elif kind == "pool":
            window = d.get("kernel", d.get("size", 2))
            kw["kernel"] = _int_pair(window, "kernel")
            kw["stride"] = _int_pair(d["stride"], "stride") if "stride" in d else kw["kernel"]
            kw["mode"] = d.get("mode", "max")
        elif kind == "dense":
            if "units" not in d:
                raise EdgecnnError(f"{where}: a dense layer needs 'units'")
            kw["units"] = d["units"]
            kw["activation"] = _activation(d.get("activation", "relu"))
            kw["use_bias"] = _bool(d.get("use_bias", True), "use_bias")
        elif kind == "dropout":
            rate = d.get("rate")
            if not isinstance(rate, (int, float)) or isinstance(rate, bool):
                raise EdgecnnError(f"{where}: a dropout layer needs a numeric 'rate' in [0, 1)")
            kw["rate"] = float(rate)
        if "padding" in d:
            kw["padding"] = d["padding"]
        return LayerSpec(**kw)
    except EdgecnnError as exc:
        msg = str(exc)
        raise EdgecnnError(msg if msg.startswith(where) else f"{where}: {msg}") from None


def _activation(value: Any) -> str | None:
    if value in (None, "linear", "none", ""):
        return None
    if value not in ACTIVATIONS:
        raise EdgecnnError(f"'activation' {value!r} is unknown; use one of {', '.join(ACTIVATIONS)}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise EdgecnnError(f"'{name}' must be true or false, got {value!r}")
    return value


def spec_from_dict(data: Any, *, default_name: str = "custom", spec_path: str | None = None) -> ModelSpec:
    """Build a ModelSpec from the spec-file structure (see `ModelSpec.to_dict`)."""
    if not isinstance(data, dict):
        raise EdgecnnError("the spec must be a table/object at the top level")
    unknown = set(data) - _TOP_FIELDS
    if unknown:
        raise EdgecnnError(
            f"'{sorted(unknown)[0]}' is not a spec field (allowed: {', '.join(sorted(_TOP_FIELDS))})"
        )
    for required in ("input_shape", "layers"):
        if required not in data:
            raise EdgecnnError(f"the spec needs '{required}'")
    shape = data["input_shape"]
    if not isinstance(shape, list) or len(shape) != 3:
        raise EdgecnnError(f"'input_shape' must be [H, W, C], got {shape!r}")
    dataset = data.get("dataset", "mnist")
    if not isinstance(dataset, str) or not (dataset in DATASETS or dataset.startswith("folder:")):
        raise EdgecnnError(f"'dataset' must be one of {', '.join(DATASETS)} or folder:PATH, got {dataset!r}")
    layers_raw = data["layers"]
    if not isinstance(layers_raw, list) or not layers_raw:
        raise EdgecnnError("'layers' must be a non-empty list of layer tables")
    layers = [_layer_from_dict(i, d) for i, d in enumerate(layers_raw)]
    # Keras would apply a Dense to every pixel of a spatial tensor, which is never what a classifier means;
    # an implicit flatten before the first dense (or the head) is what every tutorial writes explicitly.
    out: list[LayerSpec] = []
    flat = False
    for layer in layers:
        if layer.kind == "dense" and not flat:
            out.append(FLATTEN)
            flat = True
        flat = flat or layer.kind in ("flatten", "gap")
        out.append(layer)
    if not flat:
        out.append(FLATTEN)
    recipe_raw = data.get("recipe", {})
    if not isinstance(recipe_raw, dict):
        raise EdgecnnError("'recipe' must be a table/object")
    bad = set(recipe_raw) - _RECIPE_FIELDS
    if bad:
        raise EdgecnnError(
            f"recipe.{sorted(bad)[0]} is not a recipe field (allowed: {', '.join(sorted(_RECIPE_FIELDS))})"
        )
    base = _DEFAULT_RECIPE
    recipe = Recipe(
        optimizer=recipe_raw.get("optimizer", base.optimizer),
        learning_rate=recipe_raw.get("learning_rate", base.learning_rate),
        epochs=recipe_raw.get("epochs", base.epochs),
        batch_size=recipe_raw.get("batch_size", base.batch_size),
        published_accuracy=recipe_raw.get("published_accuracy"),
        published_note=str(recipe_raw.get("published_note", "")),
        lr_schedule=recipe_raw.get("lr_schedule", base.lr_schedule),
    )
    return ModelSpec(
        name=str(data.get("name", default_name)),
        input_shape=tuple(shape),  # type: ignore[arg-type]
        num_classes=data.get("num_classes", 10),
        layers=tuple(out),
        recipe=recipe,
        source=str(data.get("source", "user spec file")),
        default_dataset=dataset,
        spec_path=spec_path,
        notes=str(data.get("notes", "")),
    )


def _layer_to_dict(layer: LayerSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"type": layer.kind}
    if layer.kind == "conv":
        d.update(
            filters=layer.filters,
            kernel=list(layer.window),
            stride=list(layer.strides),
            padding=layer.padding,
            activation=layer.activation or "linear",
            use_bias=layer.use_bias,
        )
    elif layer.kind == "pool":
        d.update(
            kernel=list(layer.window), stride=list(layer.strides), padding=layer.padding, mode=layer.mode
        )
    elif layer.kind == "dense":
        d.update(units=layer.units, activation=layer.activation or "linear", use_bias=layer.use_bias)
    elif layer.kind == "dropout":
        d.update(rate=layer.rate)
    return d


# --------------------------------------------------------------------------- Keras


def build_keras_model(spec: ModelSpec, *, seed: int | None = None) -> Any:
    """A functional Keras model for `spec`: input named "input", softmax head named "probabilities"."""
    from edgecnn.core.tfcompat import import_keras

    keras = import_keras()
    layers = keras.layers
    inputs = keras.Input(shape=spec.input_shape, name="input")
    x = inputs
    infos = layer_table(spec)
    for layer, info in zip(spec.layers, infos, strict=False):
        name = info.name
        if layer.kind == "conv":
            x = layers.Conv2D(
                layer.filters,
                layer.window,
                strides=layer.strides,
                padding=layer.padding,
                activation=layer.activation,
                use_bias=layer.use_bias,
                name=name,
            )(x)
        elif layer.kind == "pool":
            cls = layers.MaxPooling2D if layer.mode == "max" else layers.AveragePooling2D
            x = cls(layer.window, strides=layer.strides, padding=layer.padding, name=name)(x)
        elif layer.kind == "dense":
            x = layers.Dense(layer.units, activation=layer.activation, use_bias=layer.use_bias, name=name)(x)
        elif layer.kind == "dropout":
            x = layers.Dropout(layer.rate, seed=seed, name=name)(x)
        elif layer.kind == "flatten":
            x = layers.Flatten(name=name)(x)
        elif layer.kind == "relu":
            x = layers.ReLU(name=name)(x)
        elif layer.kind == "batchnorm":
            # momentum 0.9 (PyTorch's default) so the moving statistics settle within a few dozen steps;
            # Keras' 0.99 leaves them near their initial values in short --limit runs.
            x = layers.BatchNormalization(momentum=0.9, name=name)(x)
        elif layer.kind == "gap":
            x = layers.GlobalAveragePooling2D(name=name)(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name=HEAD_NAME)(x)
    return keras.Model(inputs, outputs, name=spec.name)
