"""Image-folder datasets end to end: real MNIST digits written as 40x40 RGB PNGs (a size and colour
the model does not take), streamed from disk for training, resized by the one decoder everywhere, a
recorded split that export and eval reproduce, and one `error:` line for each bad folder before any
training starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.data import Dataset, FolderImages, fit_image, list_folder, load_dataset
from edgecnn.data.images import load_image

runner = CliRunner()

PNG_SIZE = 40  # the folder's images; the model below takes 32x32x3
SPEC_32 = """
name = "folder-net"
input_shape = [32, 32, 3]
num_classes = 10
dataset = "mnist"
[recipe]
optimizer = "adam"
learning_rate = 0.003
epochs = 4
batch_size = 32
[[layers]]
type = "conv"
filters = 8
kernel = 3
activation = "relu"
[[layers]]
type = "pool"
[[layers]]
type = "conv"
filters = 16
kernel = 3
activation = "relu"
[[layers]]
type = "pool"
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 32
activation = "relu"
"""
SPEC_TWO_CLASSES = """
name = "two"
input_shape = [32, 32, 3]
num_classes = 2
dataset = "mnist"
[recipe]
optimizer = "adam"
learning_rate = 0.003
epochs = 1
batch_size = 8
[[layers]]
type = "conv"
filters = 4
kernel = 3
[[layers]]
type = "flatten"
"""


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path) -> Dataset:
    return load_dataset("mnist", mnist_dir)


def _write_digits(root: Path, mnist: Dataset, per_class: int, *, gray_every: int = 0) -> None:
    """MNIST training digits as PNGs of PNG_SIZE, RGB (every `gray_every`-th one grey when > 0)."""
    for digit in range(10):
        (root / f"digit{digit}").mkdir(parents=True)
        for n, i in enumerate(np.flatnonzero(mnist.y_train == digit)[:per_class]):
            img = Image.fromarray(mnist.x_train[i, ..., 0]).resize(
                (PNG_SIZE, PNG_SIZE), Image.Resampling.BILINEAR
            )
            gray = gray_every and n % gray_every == 0
            (img if gray else img.convert("RGB")).save(root / f"digit{digit}" / f"{i:05d}.png")


def _random_png(path: Path, channels: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(len(str(path))).integers(0, 256, (PNG_SIZE, PNG_SIZE, channels), np.uint8)
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(path)


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_folder_at_another_size_trains_exports_and_evals_on_the_same_held_out_images(
    tmp_path: Path, mnist: Dataset
) -> None:
    folder = tmp_path / "digits"
    _write_digits(folder, mnist, per_class=40)
    (folder / "digit3" / "notes.txt").write_text("not an image")  # skipped with a note, not refused
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        ["train", "--model", str(_spec(tmp_path, SPEC_32)), "--dataset", f"folder:{folder}"]
        + ["--output", str(run), "--no-plots", "--no-progress", "--json"],
    )
    assert res.exit_code == 0, res.output
    trained = json.loads(res.stdout)
    ds = trained["dataset"]
    assert ds["loader"]["kind"] == "tf.data" and ds["loader"]["cache"] == "disk"  # streamed from disk
    assert ds["input_shape"] == [32, 32, 3] and ds["test_samples"] == 80  # 20% of 40 per class
    split = list_folder(folder)
    assert ds["split"]["test_fingerprint"] == split.fingerprint() and ds["split"]["skipped_non_images"] == 1
    assert "notes.txt" in ds["source"]
    assert trained["test_accuracy"] > 0.5  # chance is 0.1: the resized digits were really learned

    bundle = tmp_path / "bundle"
    res = runner.invoke(app, ["export", str(run / "model.keras"), "--output", str(bundle), "--json"])
    assert res.exit_code == 0, res.output
    fp32 = json.loads(res.stdout)["variants"]["fp32"]
    # Same 80 held-out files, same decoder and resize: ONNX FP32 scores what Keras scored at training.
    assert abs(fp32["accuracy"] - trained["test_accuracy"]) <= 1 / 80 + 1e-9

    res = runner.invoke(
        app, ["eval", str(bundle / "model.onnx"), "--output", str(tmp_path / "eval"), "--json"]
    )
    assert res.exit_code == 0, res.output
    evaluated = json.loads(res.stdout)
    assert evaluated["accuracy"] == pytest.approx(fp32["accuracy"])

    # A model trained elsewhere (no train.json beside it): --dataset folder: resizes 40x40 to 32x32.
    alone = tmp_path / "elsewhere" / "model.keras"
    alone.parent.mkdir()
    shutil.copy(run / "model.keras", alone)
    res = runner.invoke(
        app,
        ["export", str(alone), "--dataset", f"folder:{folder}", "--output", str(tmp_path / "b2"), "--json"],
    )
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)["variants"]["fp32"]
    assert again["accuracy"] == pytest.approx(fp32["accuracy"])

    # Images added since training change the held-out set: export says so instead of comparing silently.
    some_three = next((folder / "digit3").glob("*.png"))
    for i in range(5):
        shutil.copy(some_three, folder / "digit3" / f"added{i}.png")
    res = runner.invoke(app, ["export", str(run / "model.keras"), "--output", str(tmp_path / "b3"), "--json"])
    assert res.exit_code == 0, res.output
    assert any("changed since training" in note for note in json.loads(res.stdout)["assumptions"])


def test_the_stream_feeds_the_pixels_predict_feeds(tmp_path: Path, mnist: Dataset) -> None:
    # One decoder: what training streams is exactly predict's resize of the same file, normalized.
    from edgecnn.data.normalization import UNIT_SCALE_NORMALIZATION
    from edgecnn.training.streaming import ImageFiles, image_stream

    _write_digits(tmp_path / "d", mnist, per_class=2, gray_every=2)
    paths = tuple(sorted((tmp_path / "d").glob("*/*.png")))
    files = ImageFiles(paths, np.arange(len(paths), dtype=np.int64), (32, 32), 3)
    batches = list(
        image_stream(files, UNIT_SCALE_NORMALIZATION, 7, cache_file=tmp_path / "c", shuffle_seed=None)
    )
    streamed = np.concatenate([np.asarray(x) for x, _ in batches])
    expected = np.stack([fit_image(p, (32, 32, 3)).pixels for p in paths])
    np.testing.assert_array_equal(streamed, UNIT_SCALE_NORMALIZATION.apply(expected))
    assert np.concatenate([np.asarray(y) for _, y in batches]).tolist() == list(range(len(paths)))


def test_mixed_gray_and_colour_become_the_models_channels(tmp_path: Path, mnist: Dataset) -> None:
    _write_digits(tmp_path / "d", mnist, per_class=3, gray_every=2)
    gray = load_dataset(f"folder:{tmp_path / 'd'}", image_size=(28, 28), channels=1)
    assert gray.x_train.shape[1:] == (28, 28, 1)
    assert "mixed RGB/gray images" in gray.source and "different sizes" not in gray.source
    no_model = load_dataset(f"folder:{tmp_path / 'd'}")
    assert no_model.input_shape == (PNG_SIZE, PNG_SIZE, 3)  # nothing decides: grey promoted to RGB
    lazy = FolderImages([p for p, _ in list_folder(tmp_path / "d").train], (28, 28), 1)
    np.testing.assert_array_equal(lazy[[0, 2]], np.stack([gray.x_train[0], gray.x_train[2]]))
    assert load_image(lazy.files[0], (28, 28), 1).shape == (28, 28, 1)


def _one_class(root: Path) -> None:
    for i in range(4):
        _random_png(root / "cats" / f"{i}.png")


def _empty_class(root: Path) -> None:
    _one_class(root)
    (root / "dogs").mkdir()


def _undecodable(root: Path) -> None:
    for cls in ("cats", "dogs"):
        for i in range(4):
            _random_png(root / cls / f"{i}.png")
    (root / "dogs" / "broken.png").write_bytes(b"not a png")


def _empty_test_folder(root: Path) -> None:
    for cls in ("cats", "dogs"):
        for i in range(4):
            _random_png(root / "train" / cls / f"{i}.png")
        (root / "test" / cls).mkdir(parents=True)


def _one_image_per_class(root: Path) -> None:
    for cls in ("cats", "dogs"):
        _random_png(root / cls / "0.png")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (_one_class, "needs at least two class sub-folders"),
        (_empty_class, "dogs holds no images"),
        (_undecodable, "cannot decode image .*broken.png"),
        (_empty_test_folder, "test holds no images"),
        (_one_image_per_class, "the test split holds no images .* at least 2 images"),
    ],
)
def test_bad_folders_are_one_line_before_training(tmp_path: Path, make, needle: str) -> None:  # noqa: ANN001
    import re

    make(tmp_path / "set")
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        [
            "train",
            "--model",
            str(_spec(tmp_path, SPEC_TWO_CLASSES)),
            "--dataset",
            f"folder:{tmp_path / 'set'}",
        ]
        + ["--output", str(run), "--no-plots", "--no-progress"],
    )
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(needle, lines[0]), res.stderr
    assert not run.exists() or not any(run.iterdir())  # refused before any training (no checkpoint)


def test_an_image_that_breaks_mid_stream_is_one_line(tmp_path: Path) -> None:
    # The header is fine (checked before training), the pixels are cut: the stream names the file.
    for cls in ("cats", "dogs"):
        for i in range(5):
            _random_png(tmp_path / "set" / cls / f"{i}.png")
    victim = tmp_path / "set" / "dogs" / "3.png"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    res = runner.invoke(
        app,
        [
            "train",
            "--model",
            str(_spec(tmp_path, SPEC_TWO_CLASSES)),
            "--dataset",
            f"folder:{tmp_path / 'set'}",
        ]
        + ["--output", str(tmp_path / "run"), "--no-plots", "--no-progress"],
    )
    assert res.exit_code == 1
    assert (
        res.stderr.strip()
        == f"error: while streaming images: cannot decode image {victim}: image file is truncated"
    )


def test_split_is_fixed_by_file_names(tmp_path: Path) -> None:
    for cls in ("cats", "dogs"):
        for i in range(10):
            _random_png(tmp_path / "set" / cls / f"{i}.png")
    first = list_folder(tmp_path / "set")
    assert len(first.test) == 4 and first.fingerprint() == list_folder(tmp_path / "set").fingerprint()
    # The same names elsewhere (another machine, another mount point) hold out the same files.
    shutil.copytree(tmp_path / "set", tmp_path / "copy")
    assert list_folder(tmp_path / "copy").fingerprint() == first.fingerprint()
    with pytest.raises(EdgecnnError, match="does not exist"):
        list_folder(tmp_path / "missing")


def test_a_zoo_model_on_a_folder_shows_no_published_figure(tmp_path: Path, mnist: Dataset) -> None:
    """The zoo's published accuracy was measured on the spec's own dataset (MNIST): beside a folder of
    the user's images it would read as a target, so train.json leaves it out."""
    folder = tmp_path / "mine"
    for digit in range(10):
        (folder / f"d{digit}").mkdir(parents=True)
        for i in np.flatnonzero(mnist.y_train == digit)[:30]:
            Image.fromarray(mnist.x_train[i, ..., 0]).save(folder / f"d{digit}" / f"{i:05d}.png")
    res = runner.invoke(
        app,
        ["train", "--model", "keras-convnet", "--dataset", f"folder:{folder}", "--epochs", "1"]
        + ["--output", str(tmp_path / "run"), "--no-plots", "--no-progress", "--json"],
    )
    assert res.exit_code == 0, res.output
    trained = json.loads(res.stdout)
    assert trained["dataset"]["name"].startswith("folder:") and trained["published_accuracy"] is None
    res = runner.invoke(app, ["models", "--json"])
    zoo = {m["name"]: m for m in json.loads(res.stdout)["models"]}
    assert zoo["keras-convnet"]["published_accuracy"] == 0.9916  # still listed where it belongs
