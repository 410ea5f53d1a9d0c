"""User spec files: a TOML/JSON architecture parsed into a validated `ModelSpec`.

The file form is what `ModelSpec.to_dict` writes; every error names the file and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file
from edgecnn.data.dataset_registry import names_help, parse_name
from edgecnn.models.layers import ACTIVATIONS, FLATTEN, LayerSpec
from edgecnn.models.spec import ModelSpec, Recipe

SPEC_SUFFIXES = (".toml", ".json")

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
    check_input_file(path, "model spec file")
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


def _dataset_of(value: Any) -> str:
    """A dataset of the table (its canonical name) or a user source (PREFIX:PATH, as written)."""
    if isinstance(value, str):
        try:
            return parse_name(value).name or value
        except EdgecnnError:
            pass
    raise EdgecnnError(f"'dataset' must be one of {names_help()}, got {value!r}")


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
    dataset = _dataset_of(data.get("dataset", "mnist"))
    layers = _body_from_list(data["layers"])
    recipe = _recipe_from_dict(data.get("recipe", {}))
    return ModelSpec(
        name=str(data.get("name", default_name)),
        input_shape=tuple(shape),  # type: ignore[arg-type]
        num_classes=data.get("num_classes", 10),
        layers=layers,
        recipe=recipe,
        source=str(data.get("source", "user spec file")),
        default_dataset=dataset,
        spec_path=spec_path,
        notes=str(data.get("notes", "")),
    )


def _body_from_list(layers_raw: Any) -> tuple[LayerSpec, ...]:
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
    return tuple(out)


def _recipe_from_dict(recipe_raw: Any) -> Recipe:
    """Fields the file leaves out come from `_DEFAULT_RECIPE`; published figures default to none."""
    if not isinstance(recipe_raw, dict):
        raise EdgecnnError("'recipe' must be a table/object")
    bad = set(recipe_raw) - _RECIPE_FIELDS
    if bad:
        raise EdgecnnError(
            f"recipe.{sorted(bad)[0]} is not a recipe field (allowed: {', '.join(sorted(_RECIPE_FIELDS))})"
        )
    base = _DEFAULT_RECIPE
    return Recipe(
        optimizer=recipe_raw.get("optimizer", base.optimizer),
        learning_rate=recipe_raw.get("learning_rate", base.learning_rate),
        epochs=recipe_raw.get("epochs", base.epochs),
        batch_size=recipe_raw.get("batch_size", base.batch_size),
        published_accuracy=recipe_raw.get("published_accuracy"),
        published_note=str(recipe_raw.get("published_note", "")),
        lr_schedule=recipe_raw.get("lr_schedule", base.lr_schedule),
    )
