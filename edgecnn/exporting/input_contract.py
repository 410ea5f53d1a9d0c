"""The model's input and output contract, read from the Keras model itself rather than guessed from a
dataset: which preprocessing layers it starts with (then the graph takes raw 0-255 pixels), whether it
ends in softmax (probabilities) or not (logits), and `--normalization` as the user states it.

keras.applications differ here (read from keras/src/applications in Keras 3): EfficientNet starts with
Rescaling(1/255) + Normalization, MobileNetV3 with Rescaling(1/127.5, offset -1) and ConvNeXt with
Normalization(ImageNet mean/variance), so they take raw pixels; MobileNetV2 and NASNetMobile expect the
caller's preprocess_input "tf" mode ([-1, 1]: `--normalization tf`), DenseNet121 "torch" mode (ImageNet
mean/std: `--normalization imagenet`), ResNet50 "caffe" mode (BGR order minus the mean, which a
per-channel normalization cannot express: the channel flip must happen before the graph).

Only the layers' class names and attributes are read: no TensorFlow import here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import LOGITS_NAME, OUTPUT_NAME, Normalization

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATION_PRESETS: dict[str, Normalization] = {
    "raw": Normalization(scale=1.0, mean=(0.0,), std=(1.0,)),
    "unit": Normalization(scale=1.0 / 255.0, mean=(0.0,), std=(1.0,)),
    "tf": Normalization(scale=1.0 / 127.5, mean=(1.0,), std=(1.0,)),  # keras preprocess_input "tf": [-1, 1]
    "imagenet": Normalization(scale=1.0 / 255.0, mean=IMAGENET_MEAN, std=IMAGENET_STD),
}
NORMALIZATION_HELP = 'raw (0-255), unit (0-1), tf (-1..1), imagenet, or "scale=S,mean=M1/M2/M3,std=S1/S2/S3"'
# Layers that scale pixels inside the model: the model then takes raw pixels.
SCALING_LAYERS = ("Rescaling", "Normalization")
# Layers that may sit before them and do not change pixel values at inference time.
PASS_THROUGH_LAYERS = (
    "InputLayer", "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom", "RandomCrop",
    "RandomTranslation", "RandomContrast", "RandomBrightness", "Dropout", "GaussianNoise",
)  # fmt: skip


def parse_normalization(text: str) -> Normalization:
    """`--normalization`: a preset name or "scale=S,mean=M[/M..],std=S[/S..]" (per channel, 0-255 input)."""
    spec = text.strip().lower()
    if spec in NORMALIZATION_PRESETS:
        return NORMALIZATION_PRESETS[spec]
    if spec == "caffe":
        raise EdgecnnError(
            "--normalization caffe (ResNet50/VGG preprocess_input) flips RGB to BGR, which the graph input "
            "cannot express; convert images to BGR before the model and pass explicit scale/mean/std"
        )
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("scale", "mean", "std") or key.strip() in fields:
            raise EdgecnnError(f"--normalization {text!r} is not understood; use {NORMALIZATION_HELP}")
        fields[key.strip()] = value.strip()
    try:
        scale = float(fields.get("scale", "1"))
        mean = tuple(float(v) for v in fields.get("mean", "0").split("/"))
        std = tuple(float(v) for v in fields.get("std", "1").split("/"))
    except ValueError:
        raise EdgecnnError(f"--normalization {text!r} has a value that is not a number") from None
    if len(mean) != len(std):  # one value applies to every channel
        mean, std = (mean * len(std), std) if len(mean) == 1 else (mean, std * len(mean))
    if scale <= 0:
        raise EdgecnnError("--normalization scale must be > 0")
    return Normalization(scale=scale, mean=mean, std=std)


def normalization_name(norm: Normalization) -> str:
    """The preset name of `norm`, or its explicit form."""
    for name, preset in NORMALIZATION_PRESETS.items():
        if preset == norm:
            return name
    mean, std = "/".join(f"{m:g}" for m in norm.mean), "/".join(f"{s:g}" for s in norm.std)
    return f"scale={norm.scale:g},mean={mean},std={std}"


def _sublayers(model: Any) -> list[Any]:
    return list(getattr(model, "layers", None) or [])


def _describe(layer: Any) -> str:
    kind = type(layer).__name__
    if kind == "Rescaling":
        scale, offset = getattr(layer, "scale", None), getattr(layer, "offset", 0.0)
        scale_text = f"{scale:.6g}" if isinstance(scale, (int, float)) else "per-channel"
        return f"Rescaling(scale={scale_text}" + (f", offset={offset:g})" if offset else ")")
    return kind


def in_model_preprocessing(model: Any) -> str | None:
    """The scaling layers the model starts with, described ("Rescaling(scale=0.00392) + Normalization"),
    or None when its first real layer gets the pixels as the caller passes them. Nested models at the
    start (e.g. a Sequential of augmentation layers) are looked into."""
    found: list[str] = []

    def walk(layers: list[Any]) -> bool:  # True: stopped at a layer that computes on the pixels
        for layer in layers:
            kind = type(layer).__name__
            if kind in SCALING_LAYERS:
                found.append(_describe(layer))
            elif kind in PASS_THROUGH_LAYERS:
                continue
            elif _sublayers(layer):
                if walk(_sublayers(layer)):
                    return True
            else:
                return True
        return False

    walk(_sublayers(model))
    return " + ".join(found) if found else None


def _last_layer(model: Any) -> Any:
    """The layer that produces the model's (single) output, looking into a nested model at the end."""
    layer = None
    outputs = getattr(model, "outputs", None) or []
    history = getattr(outputs[0], "_keras_history", None) if outputs else None
    if history is not None:
        layer = getattr(history, "operation", None) or history[0]
    if layer is None and _sublayers(model):
        layer = _sublayers(model)[-1]
    if layer is not None and layer is not model and _sublayers(layer):
        return _last_layer(layer)
    return layer


def output_kind(model: Any) -> str:
    """ "probabilities" when the model ends in softmax, "logits" when it ends without an activation;
    any other final activation (sigmoid: multi-label) is refused: its outputs are not class scores
    that edgecnn's top-1/softmax contract describes."""
    layer = _last_layer(model)
    kind = type(layer).__name__
    if kind == "Softmax":
        return OUTPUT_NAME
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None) if activation is not None else "linear"
    if kind == "Activation" or activation is not None:
        if name == "softmax":
            return OUTPUT_NAME
        if name == "linear":
            return LOGITS_NAME
        raise EdgecnnError(
            f"the model ends in a {name} activation ({getattr(layer, 'name', kind)}); export supports "
            "single-label classifiers that end in softmax or in logits (no activation)"
        )
    return LOGITS_NAME


@dataclass(frozen=True)
class SettledNormalization:
    normalization: Normalization
    source: str  # "--normalization" | "model" | "train.json" | "dataset"
    assumption: str | None  # set when it was taken from the dataset, i.e. guessed


def settle_normalization(
    stated: str | None,
    preprocessing: str | None,
    recorded: Normalization | None,
    dataset: tuple[str, Normalization] | None,
    channels: int,
) -> SettledNormalization:
    """How uint8 pixels become the graph input, in order of authority: what the user states (refused when
    it contradicts the model or train.json), train.json (what training really fed), the model's own
    preprocessing layers (raw pixels), else the dataset's convention, said to be an assumption."""
    if stated is not None:
        norm = parse_normalization(stated)
        if len(norm.mean) not in (1, channels):
            raise EdgecnnError(
                f"--normalization {stated} has {len(norm.mean)} channel values but the model input has "
                f"{channels} channel(s)"
            )
        if preprocessing and not norm.is_raw:
            raise EdgecnnError(
                f"the model starts with {preprocessing}, so it takes raw 0-255 pixels; --normalization "
                f"{stated} would scale them twice; leave the option out or pass --normalization raw"
            )
        if recorded is not None and recorded != norm:
            raise EdgecnnError(
                f"train.json says the model was trained on pixels normalized as "
                f"{normalization_name(recorded)}; --normalization {stated} contradicts it; leave it out"
            )
        return SettledNormalization(norm, "--normalization", None)
    if recorded is not None:
        return SettledNormalization(recorded, "train.json", None)
    if preprocessing:
        return SettledNormalization(NORMALIZATION_PRESETS["raw"], "model", None)
    if dataset is None:
        raise EdgecnnError(
            "no labelled data and the model has no preprocessing layers, so nothing says how it wants its "
            f"pixels; pass --normalization ({NORMALIZATION_HELP}), or --dataset with its training data"
        )
    name, norm = dataset
    return SettledNormalization(
        norm, "dataset", f"normalization taken from dataset {name}: {normalization_name(norm)}"
    )
