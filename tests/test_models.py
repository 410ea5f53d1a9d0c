"""The model registry: counts, Keras builds, user spec files and `edgecnn models`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.models import (
    HEAD_NAME,
    get_model_spec,
    layer_table,
    list_model_specs,
    load_spec_file,
    model_names,
    params_and_macs,
)

runner = CliRunner()

REQUIRED = ("keras-convnet", "tf1-cnn", "hvass", "deep-mnist", "cifar10-cnn", "fashion-cnn", "mnist-fast")


def test_registry_has_the_classics() -> None:
    names = model_names()
    for name in REQUIRED:
        assert name in names
    assert [s.name for s in list_model_specs()] == names


def test_keras_convnet_counts_by_hand() -> None:
    spec = get_model_spec("keras-convnet")
    params, macs = params_and_macs(spec)
    assert params == 93_322  # the published parameter count of the Keras book convnet
    # conv 26x26x32x(3x3x1) + 11x11x64x(3x3x32) + 3x3x64x(3x3x64) + dense 576x64 + 64x10
    assert macs == 26 * 26 * 32 * 9 + 11 * 11 * 64 * 288 + 3 * 3 * 64 * 576 + 576 * 64 + 64 * 10
    assert [r.output_shape for r in layer_table(spec)][-3:] == [(576,), (64,), (10,)]


def test_params_equal_keras_count_params_for_every_model() -> None:
    from edgecnn.models import build_keras_model

    for spec in list_model_specs():
        model = build_keras_model(spec)
        assert params_and_macs(spec)[0] == model.count_params(), spec.name
        assert model.inputs[0].name == "input"
        assert model.layers[-1].name == HEAD_NAME
        assert model.layers[-1].get_config()["activation"] == "softmax"
        assert tuple(model.output.shape) == (None, spec.num_classes)
        assert tuple(model.inputs[0].shape[1:]) == spec.input_shape


def test_recipes_match_the_issue() -> None:
    r = get_model_spec("keras-convnet").recipe
    assert (r.optimizer, r.learning_rate, r.epochs, r.batch_size, r.published_accuracy) == (
        "rmsprop",
        1e-3,
        5,
        64,
        0.9916,
    )
    assert get_model_spec("tf1-cnn").recipe.batch_size == 100
    assert get_model_spec("hvass").recipe.learning_rate == 1e-4
    assert get_model_spec("deep-mnist").recipe.batch_size == 50
    assert get_model_spec("cifar10-cnn").input_shape == (32, 32, 3)
    assert get_model_spec("fashion-cnn").default_dataset == "fashion_mnist"


def test_unknown_model_is_one_line_error() -> None:
    with pytest.raises(EdgecnnError, match="unknown model 'nope'.*keras-convnet"):
        get_model_spec("nope")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD_TOML = """
name = "tiny"
input_shape = [28, 28, 1]
num_classes = 10
[recipe]
optimizer = "adam"
learning_rate = 0.002
epochs = 2
batch_size = 32
[[layers]]
type = "conv"
filters = 8
kernel = 3
padding = "same"
[[layers]]
type = "pool"
[[layers]]
type = "dropout"
rate = 0.25
[[layers]]
type = "dense"
units = 16
"""


def test_toml_spec_file(tmp_path: Path) -> None:
    spec = get_model_spec(str(_write(tmp_path, "tiny.toml", GOOD_TOML)))
    assert spec.name == "tiny"
    assert spec.recipe.epochs == 2 and spec.recipe.batch_size == 32
    kinds = [layer.kind for layer in spec.layers]
    assert kinds == ["conv", "pool", "dropout", "flatten", "dense"]  # flatten inserted before the dense
    params, macs = params_and_macs(spec)
    assert params == (9 * 8 + 8) + (14 * 14 * 8 * 16 + 16) + (16 * 10 + 10)
    assert macs == 28 * 28 * 8 * 9 + 14 * 14 * 8 * 16 + 16 * 10


def test_json_spec_roundtrip(tmp_path: Path) -> None:
    spec = get_model_spec("keras-convnet")
    path = _write(tmp_path, "copy.json", json.dumps(spec.to_dict()))
    again = load_spec_file(path)
    assert again.layers == spec.layers
    assert params_and_macs(again) == params_and_macs(spec)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('input_shape = [28, 28, 1]\n[[layers]]\ntype = "conv"\nfilters = 0\nkernel = 3\n', "filters"),
        (
            'input_shape = [28, 28, 1]\n[[layers]]\ntype = "conv"\nfilters = 8\nkernel = 3\npadding = "x"\n',
            "padding",
        ),
        ('input_shape = [28, 28, 1]\n[[layers]]\ntype = "conv"\nfilters = 8\nkernal = 3\n', "kernal"),
        ('input_shape = [28, 28, 1]\n[[layers]]\ntype = "lstm"\n', "layers[0].type"),
        ('input_shape = [28, 28, 1]\n[[layers]]\ntype = "dropout"\nrate = 1.5\n', "rate"),
        (
            'input_shape = [28, 28, 1]\n[[layers]]\ntype = "dense"\nunits = 8\nactivation = "relux"\n',
            "activation",
        ),
        ('input_shape = [4, 4, 1]\n[[layers]]\ntype = "conv"\nfilters = 8\nkernel = 5\n', "does not fit"),
        ('input_shape = [28, 28]\n[[layers]]\ntype = "flatten"\n', "input_shape"),
        ("layers = []\n", "input_shape"),
        ('input_shape = [28, 28, 1]\ncolour = "red"\n[[layers]]\ntype = "flatten"\n', "colour"),
        (
            'input_shape = [28, 28, 1]\n[recipe]\noptimizer = "adagrad"\n[[layers]]\ntype = "flatten"\n',
            "optimizer",
        ),
        ("input_shape = [28, 28, 1\n", "not valid TOML"),
    ],
)
def test_bad_spec_files_name_the_field(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, "bad.toml", text)
    with pytest.raises(EdgecnnError) as info:
        get_model_spec(str(path))
    message = str(info.value)
    assert needle in message
    assert "\n" not in message
    assert str(path) in message


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(EdgecnnError, match="does not exist"):
        get_model_spec(str(tmp_path / "missing.toml"))


def test_models_cli_table_and_json() -> None:
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0, res.output
    assert "keras-convnet" in res.output and "93,322" in res.output
    res = runner.invoke(app, ["models", "--json"])
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    by_name = {m["name"]: m for m in doc["models"]}
    assert by_name["keras-convnet"]["params"] == 93_322
    assert by_name["keras-convnet"]["published_accuracy"] == 0.9916
    assert by_name["cifar10-cnn"]["input_shape"] == [32, 32, 3]


def test_models_cli_one_spec_and_bad_spec(tmp_path: Path) -> None:
    res = runner.invoke(app, ["models", str(_write(tmp_path, "tiny.toml", GOOD_TOML)), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["layers"][-1]["name"] == HEAD_NAME
    res = runner.invoke(app, ["models", "no-such-model"])
    assert res.exit_code == 1
    assert res.stderr.startswith("error: unknown model") and res.stderr.count("\n") == 1
