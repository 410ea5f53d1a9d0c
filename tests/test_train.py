"""`edgecnn train` on real MNIST: the session's trained run, resume, mirrored strategy and bad input."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

EXPECTED_PLOTS = {
    "training_curves.png",
    "confusion_matrix.png",
    "misclassified.png",
    "filters_first_conv.png",
    "feature_maps_conv1.png",
    "feature_maps_conv2.png",
    "feature_maps_conv3.png",
}


def _one_line_error(res) -> str:
    assert res.exit_code != 0
    err = res.stderr
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err  # one line, no traceback
    return err


# --------------------------------------------------------------------------- the session's real run


def test_one_epoch_reaches_published_grade_accuracy(trained_run) -> None:
    """keras-convnet after one epoch on real MNIST, scored on the full real test set."""
    doc = json.loads(Path(trained_run.train_json).read_text())
    assert doc["dataset"]["test_samples"] == 10_000
    assert doc["dataset"]["train_samples"] + doc["dataset"]["val_samples"] == 60_000
    assert doc["epochs_completed"] == 1
    assert trained_run.test_accuracy >= 0.985, trained_run.test_accuracy
    assert doc["test_accuracy"] == trained_run.test_accuracy
    assert doc["published_accuracy"] == 0.9916  # the tutorial's figure, on its own dataset


def test_model_file_really_is_the_trained_model(trained_run, mnist_dir: Path) -> None:
    """Reload model.keras and score it independently of train()."""
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.data import load_dataset

    keras = import_keras()
    model = keras.models.load_model(trained_run.model_path)
    ds = load_dataset("mnist", mnist_dir)
    probs = model.predict(ds.normalization.apply(ds.x_test), batch_size=1000, verbose=0)
    accuracy = float((probs.argmax(axis=1) == ds.y_test).mean())
    assert accuracy == pytest.approx(trained_run.test_accuracy, abs=1e-4)
    assert model.inputs[0].name == "input"
    assert model.count_params() == trained_run.params == 93_322


def test_train_json_fields(trained_run) -> None:
    doc = json.loads(Path(trained_run.train_json).read_text())
    for key in (
        "config",
        "model",
        "dataset",
        "history",
        "test_accuracy",
        "test_loss",
        "model_path",
        "timings",
        "environment",
        "plots",
        "strategy",
    ):
        assert key in doc, key
    assert doc["config"]["optimizer"] == "rmsprop" and doc["config"]["batch_size"] == 64  # the recipe
    assert doc["config"]["epochs"] == 1 and doc["config"]["seed"] == 0
    assert doc["model"]["name"] == "keras-convnet" and doc["model"]["params"] == 93_322
    assert doc["model"]["macs"] > 2_000_000 and doc["model"]["spec"]["layers"][0]["type"] == "conv"
    ds = doc["dataset"]
    assert ds["name"] == "mnist" and ds["class_labels"] == [str(i) for i in range(10)]
    assert ds["normalization"]["scale"] == pytest.approx(1 / 255) and ds["input_shape"] == [28, 28, 1]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(doc["history"][key]) == 1
    assert 0 < doc["test_loss"] < 0.2
    assert doc["timings"]["train_s"] > 0 and len(doc["timings"]["epoch_seconds"]) == 1
    assert "hardware" in doc["environment"] and "tensorflow" in doc["environment"]["versions"]
    assert Path(doc["model_path"]) == Path(trained_run.model_path)
    assert doc["strategy"] == {"name": "default", "replicas": 1}


def test_run_dir_holds_model_and_valid_plots_only(trained_run) -> None:
    from PIL import Image

    run_dir = Path(trained_run.run_dir)
    names = {p.name for p in run_dir.iterdir()}
    assert names == {"model.keras", "train.json", *EXPECTED_PLOTS}  # no checkpoint or temp files left
    for name in EXPECTED_PLOTS:
        data = (run_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        with Image.open(run_dir / name) as img:
            img.verify()
        with Image.open(run_dir / name) as img:
            assert img.width > 200 and img.height > 100
            assert len(np.unique(np.asarray(img.convert("L")))) > 10  # something was drawn


# --------------------------------------------------------------------------- interruption and resume


def _interrupt_after(epochs: int):
    from edgecnn.core.tfcompat import import_keras

    keras = import_keras()

    class Interrupt(keras.callbacks.Callback):
        """Stands in for Ctrl-C arriving right after an epoch's checkpoint was written."""

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            if epoch + 1 >= epochs:
                raise KeyboardInterrupt

    return Interrupt()


def test_interrupt_keeps_checkpoint_and_resume_finishes(tmp_path: Path, mnist_dir: Path) -> None:
    from edgecnn.training import STATE_FILE, TrainConfig, TrainingInterrupted, train

    out = tmp_path / "run"
    base = dict(
        model="keras-convnet",
        epochs=2,
        limit=1000,
        output_dir=out,
        data_dir=mnist_dir,
        plots=False,
    )
    with pytest.raises(TrainingInterrupted, match="epoch 1 is checkpointed") as info:
        train(TrainConfig(**base), callbacks=[_interrupt_after(1)])
    assert info.value.exit_code == 130
    names = {p.name for p in out.iterdir()}
    assert names == {STATE_FILE, "checkpoint-epoch1.keras"}  # no model.keras before training finished
    state = json.loads((out / STATE_FILE).read_text())
    assert state["epoch"] == 1 and len(state["history"]["loss"]) == 1

    # Without --resume the run directory is protected; with a different config the resume is refused.
    with pytest.raises(EdgecnnError, match="--resume"):
        train(TrainConfig(**base))
    with pytest.raises(EdgecnnError, match="--batch-size differs"):
        train(TrainConfig(**{**base, "batch_size": 32}, resume=True))

    res = runner.invoke(
        app,
        [
            "train",
            "--model",
            "keras-convnet",
            "--epochs",
            "2",
            "--limit",
            "1000",
            "--output",
            str(out),
            "--data-dir",
            str(mnist_dir),
            "--no-plots",
            "--no-progress",
            "--resume",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["resumed_from_epoch"] == 1 and doc["epochs_completed"] == 2
    assert len(doc["history"]["loss"]) == 2 and len(doc["timings"]["epoch_seconds"]) == 2
    assert {p.name for p in out.iterdir()} == {"model.keras", "train.json"}
    assert doc["test_accuracy"] > 0.7  # 2 epochs on 900 images: far above chance (0.1)

    res = runner.invoke(app, ["train", "--limit", "1000", "--epochs", "2", "--output", str(out), "--resume"])
    assert "already finished" in _one_line_error(res)


def test_interrupt_after_the_last_epoch_resumes_to_a_finished_run(tmp_path: Path, mnist_dir: Path) -> None:
    from edgecnn.training import TrainConfig, TrainingInterrupted, train

    cfg = TrainConfig(epochs=1, limit=1000, batch_size=16, output_dir=tmp_path / "run", data_dir=mnist_dir,
                      plots=False)  # fmt: skip
    with pytest.raises(TrainingInterrupted):
        train(cfg, callbacks=[_interrupt_after(1)])
    result = train(dataclasses.replace(cfg, resume=True))
    assert result.resumed_from_epoch == 1 and result.epochs == 1 and Path(result.model_path).is_file()
    # The kept weights are those an uninterrupted run keeps (the averaged ones), not the raw checkpoint's.
    reference = train(dataclasses.replace(cfg, output_dir=tmp_path / "reference"))
    assert result.test_accuracy == reference.test_accuracy
    assert result.test_loss == pytest.approx(reference.test_loss, rel=1e-5)


def test_interrupt_in_first_epoch_keeps_nothing(tmp_path: Path, mnist_dir: Path) -> None:
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.training import TrainConfig, TrainingInterrupted, train

    keras = import_keras()

    class Early(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs=None) -> None:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match="no epoch finished"):
        train(
            TrainConfig(epochs=1, limit=300, output_dir=out, data_dir=mnist_dir),
            callbacks=[Early()],
        )
    assert not (out / "model.keras").exists()
    res = runner.invoke(app, ["train", "--limit", "300", "--epochs", "1", "--output", str(out), "--resume"])
    assert "nothing to resume" in _one_line_error(res)


# --------------------------------------------------------------------------- CLI, spec files, strategies


TINY_TOML = """
name = "tiny"
input_shape = [28, 28, 1]
[recipe]
optimizer = "adam"
learning_rate = 0.003
epochs = 1
batch_size = 32
[[layers]]
type = "conv"
filters = 4
kernel = 5
stride = 2
[[layers]]
type = "dense"
units = 16
"""


def test_cli_trains_a_user_spec_with_json_on_stdout(tmp_path: Path, mnist_dir: Path) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_TOML)
    out = tmp_path / "run"
    res = runner.invoke(
        app,
        [
            "train",
            "--model",
            str(spec),
            "--limit",
            "2000",
            "--output",
            str(out),
            "--data-dir",
            str(mnist_dir),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # exactly one JSON document: progress went to stderr
    assert doc["model"]["name"] == "tiny" and doc["model"]["spec_path"] == str(spec.resolve())
    assert doc["config"]["optimizer"] == "adam" and doc["config"]["batch_size"] == 32
    assert doc["dataset"]["test_samples"] == 2000 and doc["test_accuracy"] > 0.6
    assert Path(doc["model_path"]).is_file()
    assert {"feature_maps_conv1.png", "filters_first_conv.png"} <= set(doc["plots"])

    # --force replaces a finished run; the replaced run's files are gone.
    res = runner.invoke(
        app,
        [
            "train",
            "--model",
            str(spec),
            "--limit",
            "500",
            "--output",
            str(out),
            "--data-dir",
            str(mnist_dir),
            "--force",
            "--no-plots",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "test accuracy" in res.stdout
    assert not (out / "misclassified.png").exists()
    assert json.loads((out / "train.json").read_text())["dataset"]["test_samples"] == 500


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "nope"], "unknown model 'nope'"),
        (["--epochs", "0"], "epochs must be a positive integer"),
        (["--epochs", "-3"], "epochs must be a positive integer"),
        (["--batch-size", "0"], "batch size must be a positive integer"),
        (["--lr", "0"], "learning rate"),
        (["--optimizer", "adagrad"], "unknown optimizer"),
        (["--val-split", "1.0"], "validation split"),
        (["--strategy", "tpu"], "unknown strategy"),
        (["--resume", "--force"], "pass only one"),
        (["--model", "cifar10-cnn", "--dataset", "mnist"], "expects 32x32x3"),
    ],
)
def test_bad_options_are_one_line_errors(
    tmp_path: Path, mnist_dir: Path, args: list[str], needle: str
) -> None:
    res = runner.invoke(
        app,
        ["train", "--limit", "100", "--output", str(tmp_path / "run"), "--data-dir", str(mnist_dir), *args],
    )
    assert needle in _one_line_error(res)
    assert not (tmp_path / "run" / "model.keras").exists()


def test_existing_run_dir_and_unwritable_output(trained_run, tmp_path: Path, mnist_dir: Path) -> None:
    common = ["--limit", "100", "--data-dir", str(mnist_dir)]
    res = runner.invoke(app, ["train", *common, "--output", str(trained_run.run_dir)])
    assert "already exists; pass --force" in _one_line_error(res)
    stranger = tmp_path / "notes"
    stranger.mkdir()
    (stranger / "thesis.txt").write_text("precious")
    res = runner.invoke(app, ["train", *common, "--output", str(stranger), "--force"])
    assert "not an edgecnn run directory" in _one_line_error(res)
    assert (stranger / "thesis.txt").read_text() == "precious"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = runner.invoke(app, ["train", *common, "--output", str(blocker / "run")])
    assert "is a file" in _one_line_error(res)
    if os.geteuid() != 0:  # root ignores permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        res = runner.invoke(app, ["train", *common, "--output", str(locked / "run")])
        assert "not writable" in _one_line_error(res)


def test_missing_and_corrupt_data_are_one_line_errors(tmp_path: Path, mnist_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(
        app, ["train", "--limit", "100", "--output", str(tmp_path / "a"), "--data-dir", str(empty)]
    )
    _one_line_error(res)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for f in mnist_dir.glob("*-ubyte.gz"):
        shutil.copy(f, corrupt / f.name)
    images = gzip.decompress((mnist_dir / "train-images-idx3-ubyte.gz").read_bytes())
    (corrupt / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(images[: len(images) // 2], compresslevel=1)
    )
    res = runner.invoke(
        app, ["train", "--limit", "100", "--output", str(tmp_path / "b"), "--data-dir", str(corrupt)]
    )
    _one_line_error(res)
    assert not (tmp_path / "b" / "model.keras").exists()


def test_multiworker_needs_valid_tf_config(tmp_path: Path, mnist_dir: Path, monkeypatch) -> None:
    common = [
        "train",
        "--limit",
        "100",
        "--output",
        str(tmp_path / "run"),
        "--data-dir",
        str(mnist_dir),
        "--strategy",
        "multiworker",
    ]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert "needs TF_CONFIG" in _one_line_error(runner.invoke(app, common))
    monkeypatch.setenv("TF_CONFIG", "{not json")
    assert "not valid JSON" in _one_line_error(runner.invoke(app, common))
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "chief"}})
    )
    assert "does not name a job" in _one_line_error(runner.invoke(app, common))


def test_mirrored_on_one_device_says_so(tmp_path: Path, mnist_dir: Path) -> None:
    args = ["train", "--strategy", "mirrored", "--limit", "300", "--epochs", "1", "--no-plots", "--json"]
    res = runner.invoke(app, [*args, "--output", str(tmp_path / "run"), "--data-dir", str(mnist_dir)])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    saved = json.loads((tmp_path / "run" / "train.json").read_text())
    if doc["strategy"]["replicas"] == 1:  # this machine: one CPU device, or one GPU
        assert "only one" in doc["strategy"]["note"] and saved["strategy"] == doc["strategy"]
        notes = [line for line in res.stderr.splitlines() if line.startswith("note: ")]
        assert len(notes) == 1 and "--strategy default" in notes[0], res.stderr
    else:
        assert "note" not in doc["strategy"]


MIRRORED_SCRIPT = """
import json, sys
from edgecnn.core.tfcompat import import_tensorflow
tf = import_tensorflow()
cpu = tf.config.list_physical_devices("CPU")[0]
# Two logical CPU devices: must be configured before TensorFlow initialises its devices.
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from edgecnn.training import TrainConfig, train
r = train(TrainConfig(model="keras-convnet", epochs=2, limit=2000, batch_size=64, strategy="mirrored",
                      output_dir=sys.argv[1], data_dir=sys.argv[2], plots=False))
print(json.dumps({"replicas": r.document["strategy"]["replicas"], "acc": r.test_accuracy,
                  "devices": r.document["environment"]["tensorflow_devices"]}))
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path: Path, mnist_dir: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path / "run"), str(mnist_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert sum("CPU" in d for d in result["devices"]) == 2
    assert result["acc"] > 0.7  # trained for real across both replicas
    assert (tmp_path / "run" / "model.keras").is_file()


def test_multiworker_strategy_with_a_one_worker_cluster(tmp_path: Path, mnist_dir: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    tf_config = {"cluster": {"worker": [f"localhost:{port}"]}, "task": {"type": "worker", "index": 0}}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps(tf_config)}
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "edgecnn.cli",
        "train",
        "--limit",
        "1000",
        "--epochs",
        "2",
        "--output",
        str(out),
        "--data-dir",
        str(mnist_dir),
        "--strategy",
        "multiworker",
        "--no-plots",
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    batch = doc["config"]["batch_size"]
    assert doc["strategy"] == {
        "name": "multiworker",
        "replicas": 1,
        "workers": 1,
        "per_worker_batch": batch,
        "global_batch": batch,
        "chief": f"worker 0 at localhost:{port}",
        "this_worker": f"worker 0 at localhost:{port}",
    }
    assert doc["test_accuracy"] > 0.5
    assert (out / "model.keras").is_file()
