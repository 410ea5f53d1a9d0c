"""`edgecnn predict`: real sample digits, metadata-driven preprocessing, notes, hints and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import ModelMetadata, write_metadata
from edgecnn.data import load_dataset
from edgecnn.data.images import expand_inputs, fit_image, label_from_filename
from edgecnn.prediction.predict import PredictConfig, predict

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
DIGITS = tuple(str(i) for i in range(10))


def centroid_model(path: Path, mnist_dir: Path, *, layout: str = "NHWC", metadata: bool = True) -> Path:
    """A real (non-TF) MNIST classifier: nearest class mean of the training images, as an ONNX graph.

    argmin ||x - mu||^2 = argmax (2 x.mu - ||mu||^2), so it is one MatMul + Add + Softmax (~82% on MNIST).
    """
    ds = load_dataset("mnist", mnist_dir, download=False)
    x = ds.x_train.reshape(len(ds.x_train), -1).astype(np.float64) / 255.0
    mu = np.stack([x[ds.y_train == k].mean(axis=0) for k in range(10)])
    w, b = (2.0 * mu.T).astype(np.float32), (-(mu**2).sum(axis=1)).astype(np.float32)
    shape = ["batch", 28, 28, 1] if layout == "NHWC" else ["batch", 1, 28, 28]
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["input", "flat_shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["mm"]),
            helper.make_node("Add", ["mm", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "centroid",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        [
            numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "flat_shape"),
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(b, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        meta = ModelMetadata(input_shape=(28, 28, 1), layout=layout, class_labels=DIGITS, dataset="mnist")
        write_metadata(model, meta)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def shaped_model(path: Path, hwc: tuple[int, int, int]) -> Path:
    """A small real classifier over per-channel means, for models whose input differs from 28x28x1."""
    h, w, c = hwc
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["input", "axes"], ["pooled"], keepdims=0),
            helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "pooled",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", h, w, c])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        [
            numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes"),
            numpy_helper.from_array(rng.normal(size=(c, 10)).astype(np.float32), "w"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    write_metadata(model, ModelMetadata(input_shape=hwc, class_labels=DIGITS, dataset="cifar10"))
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def centroid(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    return centroid_model(tmp_path_factory.mktemp("centroid") / "centroid.onnx", mnist_dir)


def _reference_probabilities(model_path: Path, images: np.ndarray) -> np.ndarray:
    """The centroid model's maths in numpy, from its own weights: what predict must reproduce."""
    m = onnx.load(str(model_path))
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    logits = (images.reshape(len(images), -1).astype(np.float64) / 255.0) @ init["w"] + init["b"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_samples_are_real_mnist_test_digits(mnist_dir: Path) -> None:
    files = sorted(SAMPLES.glob("*.png"))
    assert len(files) == 10
    ds = load_dataset("mnist", mnist_dir, download=False)
    seen = set()
    for f in files:
        label, index = f.stem.removeprefix("digit_").split("_idx")
        pixels = np.asarray(Image.open(f))
        assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
        np.testing.assert_array_equal(pixels, ds.x_test[int(index), :, :, 0])
        assert int(ds.y_test[int(index)]) == int(label)
        seen.add(int(label))
    assert seen == set(range(10))


def test_make_samples_is_deterministic(tmp_path: Path, mnist_dir: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "benchmarks" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    assert module.main(["--data-dir", str(mnist_dir), "--output", str(tmp_path / "s")]) == 0
    for f in SAMPLES.glob("*.png"):
        assert (tmp_path / "s" / f.name).read_bytes() == f.read_bytes()


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_exported_model_labels_the_sample_digits_correctly(
    exported_bundle, tmp_path: Path, variant: str
) -> None:
    model = Path(exported_bundle.variants[variant].path)
    result = predict(PredictConfig(model=model, inputs=(SAMPLES,), output=tmp_path / "p.json"))
    assert result.provider == "CPUExecutionProvider"
    assert len(result.predictions) == 10 and len(result.labelled) == 10
    wrong = [(p.path.name, p.predicted.label) for p in result.predictions if not p.correct]
    assert wrong == []
    assert not result.assumptions and not result.hints  # edgecnn metadata: nothing guessed
    assert all(p.notes == () for p in result.predictions)  # 28x28 grayscale: nothing converted


def test_predict_matches_the_models_maths_and_saves_json(
    centroid: Path, mnist_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pred.json"
    result = predict(PredictConfig(model=centroid, inputs=(SAMPLES,), top_k=3, output=out))
    files = sorted(SAMPLES.glob("*.png"))
    assert [p.path for p in result.predictions] == files  # directory expanded, sorted
    images = np.stack([np.asarray(Image.open(f)) for f in files])
    ref = _reference_probabilities(centroid, images)
    for p, row in zip(result.predictions, ref, strict=True):
        assert [s.index for s in p.top] == list(np.argsort(-row, kind="stable")[:3])
        np.testing.assert_allclose([s.probability for s in p.top], np.sort(row)[::-1][:3], atol=1e-4)
        assert p.correct == (p.top[0].index == p.true_index)
    doc = json.loads(out.read_text())
    assert doc["provider"] == "CPUExecutionProvider"
    assert any(k.startswith("onnxruntime") for k in doc["environment"]["versions"])
    assert doc["environment"]["hardware"]["cpu"]["model"]
    assert doc["summary"]["images"] == 10 and doc["summary"]["correct"] == result.n_correct
    assert doc["config"]["top_k"] == 3 and len(doc["predictions"][0]["top_k"]) == 3


def test_nchw_layout_gives_the_same_answers(mnist_dir: Path, centroid: Path, tmp_path: Path) -> None:
    nchw = centroid_model(tmp_path / "nchw.onnx", mnist_dir, layout="NCHW")
    a = predict(PredictConfig(model=centroid, inputs=(SAMPLES,), output=tmp_path / "a.json"))
    b = predict(PredictConfig(model=nchw, inputs=(SAMPLES,), output=tmp_path / "b.json"))
    assert [p.top for p in a.predictions] == [p.top for p in b.predictions]


def test_model_without_metadata_says_what_it_assumed(mnist_dir: Path, tmp_path: Path) -> None:
    bare = centroid_model(tmp_path / "bare.onnx", mnist_dir, metadata=False)
    result = predict(
        PredictConfig(model=bare, inputs=(SAMPLES / "digit_7_idx0.png",), output=tmp_path / "p.json")
    )
    assert any("no edgecnn metadata" in a for a in result.assumptions)
    assert result.predictions[0].true_label == "7"


def test_inverted_image_gets_a_hint_and_invert_fixes_it(centroid: Path, tmp_path: Path) -> None:
    src = SAMPLES / "digit_7_idx0.png"
    inv = tmp_path / "digit_7_paper.png"
    Image.fromarray(255 - np.asarray(Image.open(src))).save(inv)
    plain = predict(PredictConfig(model=centroid, inputs=(inv,), output=tmp_path / "a.json"))
    assert plain.predictions[0].looks_inverted and "--invert" in plain.hints[0]
    fixed = predict(PredictConfig(model=centroid, inputs=(inv,), invert=True, output=tmp_path / "b.json"))
    original = predict(PredictConfig(model=centroid, inputs=(src,), output=tmp_path / "c.json"))
    assert fixed.hints == () and "inverted (--invert)" in fixed.predictions[0].notes
    assert fixed.predictions[0].top == original.predictions[0].top
    assert not original.predictions[0].looks_inverted
    assert "this mnist model was trained on light shapes" in plain.hints[0]


def test_inverted_hint_without_a_known_dataset_is_conditional(mnist_dir: Path, tmp_path: Path) -> None:
    bare = centroid_model(tmp_path / "bare.onnx", mnist_dir, metadata=False)
    inv = tmp_path / "paper.png"
    Image.fromarray(255 - np.asarray(Image.open(SAMPLES / "digit_1_idx2.png"))).save(inv)
    result = predict(PredictConfig(model=bare, inputs=(inv,), output=tmp_path / "p.json"))
    assert "if the model was trained on light shapes" in result.hints[0]


def test_npy_and_jpg_inputs(centroid: Path, tmp_path: Path) -> None:
    pixels = np.asarray(Image.open(SAMPLES / "digit_2_idx1.png"))
    np.save(tmp_path / "digit_2_u8.npy", pixels)
    np.save(tmp_path / "digit_2_f.npy", pixels.astype(np.float32) / 255.0)
    np.save(tmp_path / "digit_2_batch.npy", pixels[None, :, :, None])
    Image.fromarray(pixels).convert("RGB").save(tmp_path / "digit_2_rgb.jpg", quality=95)
    result = predict(PredictConfig(model=centroid, inputs=(tmp_path,), output=tmp_path / "out" / "p.json"))
    by_name = {p.path.name: p for p in result.predictions}
    assert len(by_name) == 4
    exact = by_name["digit_2_u8.npy"].top
    assert by_name["digit_2_batch.npy"].top == exact
    assert [s.index for s in by_name["digit_2_f.npy"].top] == [s.index for s in exact]
    assert "scaled 0-1 floats to 0-255 pixels" in by_name["digit_2_f.npy"].notes
    assert "converted RGB to grayscale" in by_name["digit_2_rgb.jpg"].notes
    assert all(p.true_label == "2" for p in result.predictions)


def test_rgb_32px_model_resizes_and_says_so(tmp_path: Path) -> None:
    model = shaped_model(tmp_path / "rgb32.onnx", (32, 32, 3))
    result = predict(PredictConfig(model=model, inputs=(SAMPLES,), output=tmp_path / "p.json"))
    notes = result.predictions[0].notes
    assert notes == ("converted grayscale to RGB", "resized 28x28 to 32x32")


def test_resizing_that_would_distort_is_refused(tmp_path: Path) -> None:
    model = shaped_model(tmp_path / "wide.onnx", (28, 56, 1))
    with pytest.raises(EdgecnnError, match="aspect ratio"):
        predict(PredictConfig(model=model, inputs=(SAMPLES,), output=tmp_path / "p.json"))


def test_label_from_filename() -> None:
    assert label_from_filename(Path("digit_7_idx0.png"), DIGITS) == 7
    assert label_from_filename(Path("x/label-3.jpg"), DIGITS) == 3
    assert label_from_filename(Path("cat_class_dog.png"), ("cat", "dog")) == 1
    assert label_from_filename(Path("photo_12.png"), DIGITS) is None
    assert label_from_filename(Path("digit_12.png"), DIGITS) is None


def test_fit_image_keeps_matching_images_untouched() -> None:
    f = fit_image(SAMPLES / "digit_0_idx3.png", (28, 28, 1))
    assert f.notes == () and f.pixels.shape == (28, 28, 1) and not f.looks_inverted
    assert expand_inputs([SAMPLES]) == sorted(p for p in SAMPLES.glob("*.png"))


def test_cli_json_is_one_document_on_stdout(centroid: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    r = CliRunner().invoke(app, ["predict", str(centroid), str(SAMPLES), "--json", "-k", "2", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc == json.loads(out.read_text())
    assert "digit_7_idx0.png" in r.stderr  # the table went to stderr
    r = CliRunner().invoke(app, ["predict", str(centroid), str(SAMPLES), "-o", str(out)])
    assert r.exit_code == 1 and "--force" in r.stderr  # never overwrites silently


def _bad_inputs(tmp: Path, centroid: Path) -> dict[str, tuple[list[str], str]]:
    (tmp / "empty").mkdir()
    (tmp / "broken.png").write_bytes(b"not a png at all")
    (tmp / "model.txt.onnx").write_text("hello")
    (tmp / "garbage.onnx").write_bytes(np.random.default_rng(1).bytes(400))
    wide = shaped_model(tmp / "wide.onnx", (28, 56, 1))
    s, c = str(SAMPLES), str(centroid)
    return {
        "missing model": (["predict", str(tmp / "nope.onnx"), s], "does not exist"),
        "text model": (["predict", str(tmp / "model.txt.onnx"), s], "onnx"),
        "garbage model": (["predict", str(tmp / "garbage.onnx"), s], "cannot load"),
        "directory as model": (["predict", str(tmp / "empty"), s], "directory"),
        "undecodable image": (["predict", c, str(tmp / "broken.png")], "cannot decode image"),
        "empty dir": (["predict", c, str(tmp / "empty")], "no image files"),
        "missing image": (["predict", c, str(tmp / "gone.png")], "does not exist"),
        "unknown device": (["predict", c, s, "--device", "tpu"], "unknown device"),
        "cuda here": (["predict", c, s, "--device", "cuda"], "cuda"),
        "top-k 0": (["predict", c, s, "--top-k", "0"], "top-k"),
        "top-k too big": (["predict", c, s, "--top-k", "11"], "10 classes"),
        "batch 0": (["predict", c, s, "--batch-size", "0"], "batch-size"),
        "distorting resize": (["predict", str(wide), s], "aspect ratio"),
    }


def test_bad_input_is_one_line_error(centroid: Path, tmp_path: Path) -> None:
    for name, (args, expected) in _bad_inputs(tmp_path, centroid).items():
        r = CliRunner().invoke(app, [*args, "-o", str(tmp_path / f"{name}.json")])
        assert r.exit_code == 1, (name, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, r.stderr)
        assert expected.lower() in lines[0].lower(), (name, lines[0])
        assert "Traceback" not in r.stderr and r.stdout == ""
        assert not (tmp_path / f"{name}.json").exists()


def test_a_corrupt_png_among_good_ones_is_named_and_the_rest_classified(
    centroid: Path, tmp_path: Path
) -> None:
    import shutil

    from edgecnn.prediction.predict import PARTIAL_EXIT

    folder = tmp_path / "mixed"
    shutil.copytree(SAMPLES, folder, ignore=shutil.ignore_patterns("*.md"))
    good = sorted(p.name for p in folder.iterdir())
    (folder / "digit_5_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"cut off here")
    out = tmp_path / "p.json"
    r = CliRunner().invoke(app, ["predict", str(centroid), str(folder), "-o", str(out)])
    assert r.exit_code == PARTIAL_EXIT == 3, r.output
    doc = json.loads(out.read_text())
    assert sorted(Path(p["path"]).name for p in doc["predictions"]) == good
    assert [Path(f["path"]).name for f in doc["failed"]] == ["digit_5_broken.png"]
    assert "cannot decode image" in doc["failed"][0]["error"] and doc["summary"]["failed"] == 1
    row = next(line for line in r.stdout.splitlines() if "digit_5_broken.png" in line)
    assert "unreadable" in row and "failed: cannot decode image" in r.stdout
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: 1 of {len(good) + 1} images could not be read")
    # --json: still one document on stdout, the same one saved.
    r = CliRunner().invoke(app, ["predict", str(centroid), str(folder), "--json", "-o", str(out), "--force"])
    assert r.exit_code == PARTIAL_EXIT and json.loads(r.stdout)["failed"] == doc["failed"]
    # --strict stops at the first bad image: one error line, nothing written.
    strict_out = tmp_path / "strict.json"
    r = CliRunner().invoke(app, ["predict", str(centroid), str(folder), "--strict", "-o", str(strict_out)])
    assert r.exit_code == 1 and r.stderr.strip().startswith("error: cannot decode image")
    assert len(r.stderr.strip().splitlines()) == 1 and not strict_out.exists()
