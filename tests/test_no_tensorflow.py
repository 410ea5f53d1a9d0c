"""The runtime side works where TensorFlow is not installed: predict/eval/bench in a subprocess that
cannot import tensorflow, keras or tf2onnx (and never even tries), while train says it needs TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_predict import centroid_model

ROOT = Path(__file__).resolve().parents[1]

# Runs edgecnn's CLI with a meta-path finder in front that makes tensorflow/keras/tf2onnx look absent
# (ModuleNotFoundError, as on a device with only the base install) and logs every attempt, so a
# runtime command that merely *tries* an import (and swallows the error) is caught too.
WRAPPER = r"""
import atexit, importlib.abc, os, sys
BLOCKED = ("tensorflow", "keras", "tf2onnx", "tf_keras")
LOG = os.environ["EDGECNN_BLOCK_LOG"]

def _log(line):
    with open(LOG, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")

class _NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in BLOCKED or top.startswith("tensorflow"):
            _log("attempt " + name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

assert not any(m.partition(".")[0] in BLOCKED for m in sys.modules), "already imported"
sys.meta_path.insert(0, _NoTensorFlow())
def _loaded():
    return " ".join(sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED))

atexit.register(lambda: _log("loaded " + _loaded()))
atexit.register(lambda: _log("onnxruntime " + str("onnxruntime" in sys.modules)))
sys.argv = ["edgecnn", *sys.argv[1:]]
from edgecnn.cli import main
main()
"""


def run_without_tf(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = tmp_path / f"block-{len(list(tmp_path.glob('block-*')))}.log"
    log.write_text("")
    env = {**os.environ, "EDGECNN_BLOCK_LOG": str(log), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    return proc, log.read_text().splitlines()


def _assert_clean(proc: subprocess.CompletedProcess, log: list[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    assert [line for line in log if line.startswith("attempt")] == [], "a runtime command tried to import TF"
    assert "loaded " in log and "onnxruntime True" in log


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    return centroid_model(tmp_path_factory.mktemp("notf") / "centroid.onnx", mnist_dir)


def test_blocker_really_blocks(tmp_path: Path) -> None:
    proc, log = run_without_tf(["--version"], tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("edgecnn ")
    probe = subprocess.run(
        [sys.executable, "-c", WRAPPER.replace("from edgecnn.cli import main\nmain()", "import tensorflow")],
        env={**os.environ, "EDGECNN_BLOCK_LOG": str(tmp_path / "probe.log")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr


def test_predict_without_tensorflow(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    proc, log = run_without_tf(["predict", str(model), "samples", "--json", "-o", str(out)], tmp_path)
    _assert_clean(proc, log)
    doc = json.loads(proc.stdout)
    assert doc["summary"]["images"] == 10 and doc["provider"] == "CPUExecutionProvider"
    assert out.exists()


def test_eval_without_tensorflow(model: Path, mnist_dir: Path, tmp_path: Path) -> None:
    args = ["eval", str(model), "--data", "mnist", "--data-dir", str(mnist_dir), "--limit", "1000"]
    proc, log = run_without_tf([*args, "--json", "-o", str(tmp_path / "e")], tmp_path)
    _assert_clean(proc, log)
    doc = json.loads(proc.stdout)
    assert doc["num_images"] == 1000 and doc["accuracy"] > 0.7
    assert (tmp_path / "e" / "confusion_matrix.png").exists()


def test_bench_without_tensorflow(model: Path, tmp_path: Path) -> None:
    args = ["bench", str(model), "--batch", "1,4", "--iterations", "5", "--output", str(tmp_path / "b")]
    proc, log = run_without_tf([*args, "--json"], tmp_path)
    _assert_clean(proc, log)
    assert json.loads(proc.stdout)


def test_optimize_and_op_profile_without_tensorflow(model: Path, mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "centroid.cpu.onnx"
    args = ["optimize", str(model), "-o", str(out), "--data-dir", str(mnist_dir), "--check-images", "64"]
    proc, log = run_without_tf([*args, "--json"], tmp_path)
    _assert_clean(proc, log)
    assert json.loads(proc.stdout)["parity"]["top1_agreement"] == 1.0 and out.exists()
    args = ["bench", str(out), "-n", "5", "--op-profile", "--profile-runs", "5", "-o", str(tmp_path / "b")]
    proc, log = run_without_tf([*args, "--json"], tmp_path)
    _assert_clean(proc, log)
    assert json.loads(proc.stdout)["models"][0]["op_profiles"][0]["nodes"]


def test_train_says_it_needs_tensorflow(tmp_path: Path) -> None:
    args = ["train", "--model", "keras-convnet", "--epochs", "1", "--output", str(tmp_path / "run")]
    proc, log = run_without_tf(args, tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "needs TensorFlow" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real .tflite (TensorFlow's converter, in this test process only)."""
    import keras
    import tensorflow as tf

    net = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Flatten(),
         keras.layers.Dense(10, activation="softmax")]
    )  # fmt: skip
    out = tmp_path_factory.mktemp("notf-tfl") / "tiny.tflite"
    out.write_bytes(tf.lite.TFLiteConverter.from_keras_model(net).convert())
    return out


def test_openvino_and_litert_without_tensorflow(
    model: Path, tiny_tflite: Path, mnist_dir: Path, tmp_path: Path
) -> None:
    """The new backends: OpenVINO eval of an .onnx, LiteRT predict of a .tflite, and bench of both side
    by side, in a process where TensorFlow cannot be imported (and is never tried)."""
    runs = [
        ["eval", str(model), "--runtime", "openvino", "--data-dir", str(mnist_dir), "--limit", "200",
         "--no-plot", "-o", str(tmp_path / "e")],
        ["predict", str(tiny_tflite), "samples", "-o", str(tmp_path / "p.json")],
        ["bench", str(model), str(tiny_tflite), "--iterations", "5", "--inputs", "random",
         "-o", str(tmp_path / "b")],
    ]  # fmt: skip
    for args in runs:
        proc, log = run_without_tf([*args, "--json"], tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert [line for line in log if line.startswith("attempt")] == [], "a runtime command tried TF"
        assert "loaded " in log
    doc = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert [m["runtime"]["runtime"] for m in doc["models"]] == ["ort", "litert"]
    assert json.loads((tmp_path / "e" / "eval.json").read_text())["runtime"]["runtime"] == "openvino"
