"""`edgecnn eval`: accuracy on the real MNIST test set, equal to export's figure and to a numpy reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# The centroid model (a real nearest-class-mean MNIST classifier, no TF) lives in the predict tests.
from test_predict import _reference_probabilities, centroid_model, shaped_model
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.data import load_dataset
from edgecnn.evaluation.evaluate import CONFUSION_PNG, RESULT_JSON, EvalConfig, evaluate


@pytest.fixture(scope="module")
def centroid(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    return centroid_model(tmp_path_factory.mktemp("centroid") / "centroid.onnx", mnist_dir)


def _export_accuracy(bundle, variant: str) -> float:
    """Export's own test accuracy for one variant, as it saved it in export.json."""
    doc = json.loads(Path(bundle.json_path).read_text())
    assert doc["variants"][variant]["accuracy"] == bundle.variants[variant].accuracy
    return float(doc["variants"][variant]["accuracy"])


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_eval_accuracy_equals_the_export_figure(
    exported_bundle, mnist_dir: Path, tmp_path: Path, variant: str
) -> None:
    model = Path(exported_bundle.variants[variant].path)
    result = evaluate(EvalConfig(model=model, data="mnist", data_dir=mnist_dir, output_dir=tmp_path / "e"))
    assert result.num_images == 10_000 and result.provider == "CPUExecutionProvider"
    assert result.accuracy > 0.95  # one epoch of keras-convnet
    assert result.accuracy == _export_accuracy(exported_bundle, variant)


def test_eval_matches_a_numpy_reference(centroid: Path, mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = evaluate(EvalConfig(model=centroid, data="mnist", data_dir=mnist_dir, output_dir=out))
    ds = load_dataset("mnist", mnist_dir, download=False)
    predicted = np.argmax(_reference_probabilities(centroid, ds.x_test[..., 0]), axis=1)
    y = ds.y_test
    assert result.correct == int(np.sum(predicted == y))
    assert 0.75 < result.accuracy < 0.90  # nearest class mean on MNIST is ~82%
    for k, c in enumerate(result.per_class):
        assert c.support == int(np.sum(y == k)) and c.correct == int(np.sum((y == k) & (predicted == k)))
    cm = np.asarray(result.confusion)
    assert cm.sum() == 10_000 and np.trace(cm) == result.correct
    assert cm[3, 5] == int(np.sum((y == 3) & (predicted == 5)))

    doc = json.loads((out / RESULT_JSON).read_text())
    assert doc["accuracy"] == result.accuracy and doc["provider"] == "CPUExecutionProvider"
    assert doc["confusion_matrix"]["counts"] == cm.tolist()
    assert doc["dataset"]["name"] == "mnist" and doc["dataset"]["images"] == 10_000
    assert "hardware" in doc["environment"] and doc["config"]["data"] == "mnist"
    with Image.open(out / CONFUSION_PNG) as img:
        assert img.format == "PNG" and img.size[0] > 300


def test_limit_takes_the_first_images(centroid: Path, mnist_dir: Path, tmp_path: Path) -> None:
    full = evaluate(EvalConfig(model=centroid, data_dir=mnist_dir, output_dir=tmp_path / "a"))
    part = evaluate(
        EvalConfig(
            model=centroid, data_dir=mnist_dir, limit=500, batch_size=7, output_dir=tmp_path / "b", plot=False
        )
    )
    assert full.num_images == 10_000 and part.num_images == 500
    assert part.plot_path is None and not (tmp_path / "b" / CONFUSION_PNG).exists()
    ds = load_dataset("mnist", mnist_dir, download=False)
    predicted = np.argmax(_reference_probabilities(centroid, ds.x_test[:500, ..., 0]), axis=1)
    assert part.correct == int(np.sum(predicted == ds.y_test[:500]))


def test_dataset_is_checked_against_the_model(centroid: Path, mnist_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(EdgecnnError, match="trained on mnist"):
        evaluate(EvalConfig(model=centroid, data="fashion_mnist", output_dir=tmp_path / "x"))
    bare = centroid_model(tmp_path / "bare.onnx", mnist_dir, metadata=False)
    with pytest.raises(EdgecnnError, match="pass --data"):
        evaluate(EvalConfig(model=bare, data_dir=mnist_dir, output_dir=tmp_path / "y"))
    r = evaluate(
        EvalConfig(model=bare, data="mnist", data_dir=mnist_dir, limit=100, output_dir=tmp_path / "z")
    )
    assert any("no edgecnn metadata" in a for a in r.assumptions)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_eval_json(centroid: Path, mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "e"
    args = [
        "eval",
        str(centroid),
        "--data",
        "mnist",
        "--data-dir",
        str(mnist_dir),
        "--limit",
        "300",
        "-o",
        str(out),
    ]
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc == json.loads((out / RESULT_JSON).read_text())
    assert doc["num_images"] == 300 and 0 < doc["accuracy"] <= 1
    assert "accuracy" in r.stderr  # the table went to stderr
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1 and "--force" in r.stderr
    r = CliRunner().invoke(app, [*args, "--force"])
    assert r.exit_code == 0 and "accuracy" in r.stdout


def test_bad_input_is_one_line_error(centroid: Path, mnist_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "text.onnx").write_text("not a model")
    rgb = shaped_model(tmp_path / "rgb.onnx", (32, 32, 3))
    c, d = str(centroid), ["--data-dir", str(mnist_dir)]
    cases = {
        "missing model": (["eval", str(tmp_path / "nope.onnx"), *d], "does not exist"),
        "not onnx": (["eval", str(tmp_path / "text.onnx"), *d], "onnx"),
        "unknown dataset": (["eval", c, "--data", "imagenet", *d], "unknown dataset"),
        "wrong dataset": (["eval", c, "--data", "cifar10", *d], "trained on mnist"),
        "cifar model on mnist": (["eval", str(rgb), "--data", "mnist", *d], "trained on cifar10"),
        "unknown device": (["eval", c, "--device", "npu", *d], "unknown device"),
        "cuda here": (["eval", c, "--device", "cuda", *d], "cuda"),
        "batch 0": (["eval", c, "--batch-size", "0", *d], "batch-size"),
        "limit 0": (["eval", c, "--limit", "0", *d], "limit"),
        "limit too big": (["eval", c, "--limit", "10001", *d], "exceeds"),
        "missing data dir": (["eval", c, "--data-dir", str(tmp_path / "nodata")], "not a directory"),
    }
    for name, (args, expected) in cases.items():
        out = tmp_path / name.replace(" ", "_")
        r = CliRunner().invoke(app, [*args, "-o", str(out)])
        assert r.exit_code == 1, (name, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, r.stderr)
        assert expected.lower() in lines[0].lower(), (name, lines[0])
        assert "Traceback" not in r.stderr and r.stdout == "" and not out.exists()
