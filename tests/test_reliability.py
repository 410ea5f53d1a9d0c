"""Issue 14's catalogue: every bad input is one `error:` line with the documented exit code, no
traceback and nothing touched outside the output; kills at chosen points leave a state the next
command handles (fault tests use EDGECNN_TEST_PAUSE_AT to stop a real subprocess there)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_cases import Case, build_workspace, cases, run_case

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    ws = tmp_path_factory.mktemp("reliability") / "ws"
    build_workspace(ws, mnist_dir)
    (ws.parent / "home").mkdir()
    return ws


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=f"{c.item}-{c.name}", marks=() if c.fast else pytest.mark.slow) for c in cases()],
)
def test_bad_input_is_one_clean_line(case: Case, workspace: Path, mnist_dir: Path, tmp_path: Path) -> None:
    outcome = run_case(case, workspace, mnist_dir, tmp_path)
    assert outcome.verdict == "clean", (
        f"{outcome.verdict}: rc={outcome.code} touched={outcome.changed} tf={outcome.tf_attempts}\n"
        f"{outcome.stderr[-2000:]}"
    )


# --- fault tests: real subprocesses stopped at a named point and killed there ---------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgecnn.cli", *args]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _start_paused(args: list[str], point: str, signal_file: Path) -> subprocess.Popen:
    """Start the CLI and wait until a process of it (it or a child) sleeps at `point`."""
    env = _env(EDGECNN_TEST_PAUSE_AT=point, EDGECNN_TEST_PAUSE_SIGNAL=str(signal_file))
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while not signal_file.exists() or not signal_file.read_text():
        if proc.poll() is not None:
            pytest.fail(f"exited before pausing at {point}: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"never reached {point}")
        time.sleep(0.1)
    return proc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def _kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    proc.send_signal(sig)
    proc.wait(timeout=30)


@pytest.fixture
def model(workspace: Path) -> Path:
    return workspace / "centroid.onnx"


def test_kill_during_bench_write_leaves_nothing_the_next_run_does_not_sweep(
    model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    args = _cli("bench", str(model), "-n", "3", "--warmup", "1", "-o", str(out))
    proc = _start_paused(args, "output-write", tmp_path / "paused")
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".edgecnn-tmp-")]
    assert leftovers, "the result is built under a temporary name"
    _kill(proc)
    assert not out.exists(), "no partial output at the final path"
    again = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "bench.json").read_text())["models"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgecnn-tmp-")], (
        "stale temp entries swept"
    )


def test_concurrent_runs_into_one_output_the_second_fails_at_once(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = _cli("bench", str(model), "-n", "3", "--warmup", "1", "-o", str(out))
    first = _start_paused(args, "output-write", tmp_path / "paused")
    try:
        second = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    finally:
        _kill(first)
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 1 and len(lines) == 1, second.stderr
    assert lines[0].startswith("error:") and "being written by another edgecnn run" in lines[0]


@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)], ids=["SIGKILL", "SIGTERM"]
)
def test_thread_sweep_child_dies_with_its_parent(model: Path, tmp_path: Path, sig: int) -> None:
    """`bench --threads 1,2`: the child benchmark must not outlive a killed parent."""
    args = _cli(
        "bench", str(model), "-n", "3", "--warmup", "1", "--threads", "1,2", "-o", str(tmp_path / "t")
    )
    parent = _start_paused(args, "output-write", tmp_path / "paused")  # the first child pauses
    child = int((tmp_path / "paused").read_text())
    assert child != parent.pid and _alive(child)
    _kill(parent, sig)
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the sweep's child kept running after its parent died"


def test_usage_errors_and_version_keep_their_exit_codes() -> None:
    ok = subprocess.run(_cli("--version"), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("edgecnn ")
    bare = subprocess.run(_cli(), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert bare.returncode == 2 and "Usage" in bare.stdout + bare.stderr  # no command: the help


# --- training faults (TensorFlow; slow) ---------------------------------------------------------------


def _train_args(run: Path, mnist_dir: Path, *extra: str) -> list[str]:
    return _cli(
        "train", "--model", "mnist-fast", "--epochs", "1", "--limit", "1200", "--data-dir", str(mnist_dir),
        "--no-plots", "--no-progress", "-o", str(run), *extra,
    )  # fmt: skip


@pytest.mark.slow
def test_kill_during_first_checkpoint_then_rerun_works(mnist_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start_paused(_train_args(run, mnist_dir), "checkpoint-write", tmp_path / "paused")
    try:  # item 3: a second train into the same run directory fails at once, before loading anything
        second = subprocess.run(
            _train_args(run, mnist_dir), cwd=ROOT, env=_env(), capture_output=True, text=True
        )
    finally:
        _kill(proc)
    assert second.returncode == 1 and "being written by another edgecnn run" in second.stderr, second.stderr
    assert not (run / "model.keras").exists()
    resume = subprocess.run(
        _train_args(run, mnist_dir, "--resume"), cwd=ROOT, env=_env(), capture_output=True, text=True
    )
    assert resume.returncode == 1 and "nothing to resume" in resume.stderr, resume.stderr
    assert not [p for p in run.iterdir() if p.name.startswith(".edgecnn-tmp-")], "no 0-byte temp .keras"
    again = subprocess.run(_train_args(run, mnist_dir), cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in run.iterdir()) == ["model.keras", "train.json"]


@pytest.mark.slow
def test_train_force_killed_in_epoch_one_keeps_the_old_run(mnist_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = subprocess.run(_train_args(run, mnist_dir), cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    old_model, old_doc = (run / "model.keras").read_bytes(), (run / "train.json").read_text()
    proc = _start_paused(_train_args(run, mnist_dir, "--force"), "checkpoint-write", tmp_path / "paused")
    _kill(proc)
    # The next edgecnn command on the directory puts the finished run back before anything else.
    resume = subprocess.run(
        _train_args(run, mnist_dir, "--resume"), cwd=ROOT, env=_env(), capture_output=True, text=True
    )
    assert resume.returncode == 1 and "already finished" in resume.stderr, resume.stderr
    assert (run / "model.keras").read_bytes() == old_model and (run / "train.json").read_text() == old_doc
    assert sorted(p.name for p in run.iterdir()) == ["model.keras", "train.json"]


# --- checks below the CLI that need no subprocess ---------------------------------------------------


def test_export_counts_beyond_the_data_are_refused(mnist_dir: Path, tmp_path: Path) -> None:
    """--eval-limit / --calibration-samples larger than the data: refused, never silently capped while
    export.json records the requested number."""
    from edgecnn.core.errors import EdgecnnError
    from edgecnn.data import load_dataset
    from edgecnn.exporting.export_config import ExportConfig
    from edgecnn.exporting.export_data import refuse_counts_beyond_data
    from edgecnn.exporting.quantization.quant_config import QuantizationConfig

    ds = load_dataset("mnist", mnist_dir, download=False)
    n_train, n_test = len(ds.x_train), len(ds.x_test)
    base = {"model_path": tmp_path / "m.keras", "output_dir": tmp_path / "b"}
    refuse_counts_beyond_data(ExportConfig(**base, eval_limit=n_test), "mnist", n_train, n_test)
    with pytest.raises(EdgecnnError, match=f"--eval-limit {n_test + 1} exceeds the {n_test} test images"):
        refuse_counts_beyond_data(ExportConfig(**base, eval_limit=n_test + 1), "mnist", n_train, n_test)
    too_many = ExportConfig(**base, quantization=QuantizationConfig(calibration_samples=n_train + 1))
    with pytest.raises(EdgecnnError, match="--calibration-samples"):
        refuse_counts_beyond_data(too_many, "mnist", n_train, n_test)


def test_mixed_grey_and_colour_folder_becomes_rgb_for_both_splits(tmp_path: Path) -> None:
    """Grey train images and a colour test image: both splits RGB, not a 'different sizes' error."""
    import numpy as np
    from PIL import Image

    from edgecnn.data import load_dataset

    digit = np.asarray(Image.open(ROOT / "samples" / "digit_7_idx0.png"))
    for cls in ("a", "b"):
        (tmp_path / "d" / "train" / cls).mkdir(parents=True)
        (tmp_path / "d" / "test" / cls).mkdir(parents=True)
        Image.fromarray(digit).save(tmp_path / "d" / "train" / cls / "g.png")
        Image.fromarray(np.stack([digit] * 3, axis=-1)).save(tmp_path / "d" / "test" / cls / "c.png")
    ds = load_dataset(f"folder:{tmp_path / 'd'}", download=False)
    assert ds.x_train.shape[-1] == ds.x_test.shape[-1] == 3
    assert np.array_equal(ds.x_train[0, ..., 0], digit) and np.array_equal(ds.x_train[0, ..., 2], digit)


def test_force_over_a_file_leaves_no_hidden_copy(model: Path, tmp_path: Path) -> None:
    """Item 9: replacing a result file with --force keeps no `.edgecnn-tmp-old-*` beside it."""
    out = tmp_path / "p.json"
    for extra in ((), ("--force",)):
        args = _cli("predict", str(model), "samples", "-o", str(out), *extra)
        proc = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


@pytest.mark.slow
def test_interrupted_training_messages_name_the_truth(mnist_dir: Path, tmp_path: Path) -> None:
    """Ctrl-C after the last epoch's checkpoint says so (not 'during epoch 3/2'); resuming with another
    --limit names --limit (not the EMA momentum it changes)."""
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.training import TrainConfig, train
    from edgecnn.training.train_config import TrainingInterrupted

    keras = import_keras()

    class CtrlCAfterEpoch(keras.callbacks.Callback):
        def __init__(self, epoch: int) -> None:
            super().__init__()
            self.at = epoch

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if epoch + 1 == self.at:  # after the checkpoint callback (it runs first) wrote this epoch
                raise KeyboardInterrupt

    base = {"model": "mnist-fast", "epochs": 2, "limit": 1200, "data_dir": mnist_dir, "plots": False}
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match=r"after the last epoch \(2/2\)"):
        train(TrainConfig(**base, output_dir=run), callbacks=[CtrlCAfterEpoch(2)])
    with pytest.raises(Exception, match="--limit differs"):
        train(TrainConfig(**{**base, "limit": 1000}, output_dir=run, resume=True))
    finished = train(TrainConfig(**base, output_dir=run, resume=True))  # finishes: scores, model.keras
    assert finished.epochs == 2 and finished.resumed_from_epoch == 2 and (run / "model.keras").exists()


@pytest.mark.slow
def test_kill_during_export_bundle_write_leaves_nothing_behind(mnist_dir: Path, tmp_path: Path) -> None:
    """Item 9: a kill while the bundle is complete under its temporary name; the next export sweeps both
    the `.edgecnn-tmp-*` folder beside the output and the `edgecnn-export-<pid>-*` scratch dir."""
    import tempfile

    run = tmp_path / "run"
    trained = subprocess.run(
        _train_args(run, mnist_dir), cwd=ROOT, env=_env(), capture_output=True, text=True
    )
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / "bundle"
    # A 1-epoch, 1200-image model is near chance; the accuracy guard is tested elsewhere, this is the kill.
    args = _cli("export", str(run / "model.keras"), "-q", "int8", "--eval-limit", "500", "--no-latency",
                "--no-accuracy-guard", "--data-dir", str(mnist_dir), "-o", str(out))  # fmt: skip
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = Path(tempfile.mkdtemp(prefix=f"edgecnn-export-{int(dead.stdout)}-"))  # as a kill -9 leaves it
    (stale / "model.onnx").write_bytes(b"x" * 1000)
    proc = _start_paused(args, "output-write", tmp_path / "paused")
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".edgecnn-tmp-")]
    _kill(proc)
    assert not out.exists()
    again = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert (out / "model.int8.onnx").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgecnn-tmp-")]
    assert not stale.exists(), "a dead process's export scratch dir was swept"


def test_optimize_a_model_with_external_data(workspace: Path, mnist_dir: Path, tmp_path: Path) -> None:
    """Item 13: a valid model whose weights live in an external data file optimizes (weights inline in
    the result) and passes the parity check on real images."""
    out = tmp_path / "ext.cpu.onnx"
    args = _cli(
        "optimize", str(workspace / "ext_ok" / "model.onnx"), "--data-dir", str(mnist_dir), "-o", str(out)
    )
    proc = subprocess.run(
        [*args, "--json"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    parity = json.loads(proc.stdout)["parity"]
    assert parity["inputs"] == "real:mnist" and parity["top1_agreement"] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ext.cpu.json", "ext.cpu.onnx"]


# --- issue 21: signals, the API's boundary, tables at 80 columns ---------------------------------


def test_sigterm_is_one_line_exit_130_and_no_output(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = _cli("bench", str(model), "-n", "3", "--warmup", "1", "-o", str(out))
    proc = _start_paused(args, "output-write", tmp_path / "paused")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), err[-2000:]
    assert not out.exists(), "the output of an interrupted run never appears"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgecnn-tmp-")]


@pytest.mark.parametrize(
    "call",
    [
        "export(123)",
        "evaluate(123)",
        "predict(MODEL, np.zeros((28, 28)))",
        "bench(None)",
        "predict(MODEL, 'samples', top_k='x')",
        "evaluate(MODEL, limit='5')",
        "export('model.keras', quantize=8)",
    ],
)
def test_api_refuses_wrong_types_at_the_boundary(call: str, model: Path) -> None:
    import numpy as np

    import edgecnn
    from edgecnn.core.errors import EdgecnnError

    scope = {
        "np": np,
        "MODEL": str(model),
        **{n: getattr(edgecnn, n) for n in ("export", "evaluate", "predict", "bench")},
    }
    with pytest.raises(EdgecnnError) as info:
        eval(call, scope)  # noqa: S307 - the calls above, spelled as a user would
    assert isinstance(info.value, TypeError)
    assert "\n" not in str(info.value) and len(str(info.value)) < 240


def _tune_result_with(cands: list[tuple[str, str, str | None]]) -> object:
    from types import SimpleNamespace

    from edgecnn.benchmarking.tune_candidates import Candidate

    candidates = [
        Candidate("int8", f, ["vnni"], 0.99, device_accuracy=0.99, accepted=True, runtime=rt, precision=pr,
                  latency_ms={1: {1: 0.123, 2: 0.1}, 64: {1: 1.5, 2: 0.9}})
        for f, rt, pr in cands
    ]  # fmt: skip
    config = SimpleNamespace(batch_sizes=(1, 64), bundle=Path("runs/some-model/bundle"), tolerance_pp=0.1)
    return SimpleNamespace(config=config, isa_class="avx512-vnni", candidates=candidates, picks={}, notes=[],
                           wall_s=1.0, accuracy_check={}, skipped_runtimes=(), finalists=(),
                           record_path=Path("runs/some-model/bundle/device.json"))  # fmt: skip


def test_tables_never_cut_file_names_at_80_columns() -> None:
    import io

    from rich.console import Console

    from edgecnn.commands.tune import show

    cands = [
        ("model.onnx", "ort", None),
        ("model.int8.onnx", "ort", None),
        ("model.int8-vnni-pc.onnx", "ort", None),
        ("model.int8-avx2.onnx", "ort", None),
        ("model.int8-arm.onnx", "ort", None),
        ("model.onnx", "openvino", "bf16"),
        ("model.int8-vnni-pc.onnx", "openvino", "fp32"),
        ("model.int8.tflite", "litert", None),
        ("model.fp16.tflite", "litert", None),
    ]
    buffer = io.StringIO()
    show(_tune_result_with(cands), Console(file=buffer, width=80, markup=False))  # type: ignore[arg-type]
    text = buffer.getvalue()
    assert "…" not in text
    for file, runtime, precision in cands:
        label = file if runtime == "ort" else f"{file} @ {runtime}" + (f":{precision}" if precision else "")
        assert label in text, text


def test_export_table_never_cuts_variant_names_at_80_columns() -> None:
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from edgecnn.commands.export import result_table

    names = ["fp32", "int8", "int8-vnni-pc", "fp16", "tflite-fp32", "tflite-int8", "tflite-fp16"]
    variants = {
        n: SimpleNamespace(name=n, kept=True, within_bound=n != "tflite-int8", accuracy=0.9876,
                           accuracy_drop_pp=0.12, top1_agreement=0.995, size_bytes=123456, size_ratio=0.26,
                           latency_ms={1: 0.1234, 64: 2.345}, speedup={1: 1.23, 64: 1.87})
        for n in names
    }  # fmt: skip
    result = SimpleNamespace(
        variants=variants, selected="tflite-int8", labelled_data=True, output_dir=Path("runs/[red]m/bundle")
    )
    buffer = io.StringIO()
    Console(file=buffer, width=80, markup=False).print(result_table(result))  # type: ignore[arg-type]
    text = buffer.getvalue()
    assert "…" not in text and "runs/[red]m/bundle" in text, text
    for name in names:
        assert name in text, text
