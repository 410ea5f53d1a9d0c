"""`edgecnn tune` on a slow board: progress events, the estimate before it starts, and `--images` /
`--rounds`, with the 95% interval a sampled accuracy check gives (real bundle, real MNIST)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_device_pick import _broken_copy
from typer.testing import CliRunner

from edgecnn.benchmarking.tune_plan import accuracy_interval, sample_indices
from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.device_record import DEVICE_JSON

EXPORT_IMAGES = 1000
SAMPLE = 200


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory, trained_run, mnist_dir: Path) -> Path:
    """The session's trained keras-convnet with one INT8 file, export's accuracy on 1000 test images."""
    from edgecnn.exporting import ExportConfig, export

    out = tmp_path_factory.mktemp("small") / "bundle"
    export(
        ExportConfig(
            model_path=Path(trained_run.model_path),
            output_dir=out,
            quantize=("int8",),
            data_dir=mnist_dir,
            eval_limit=EXPORT_IMAGES,
            latency=False,
        )
    )
    return out


def _config(bundle: Path, mnist_dir: Path, **kw):
    from edgecnn.benchmarking.tune import TuneConfig

    # ORT only: these tests are about the accuracy sample and the estimate (test_device_pick and
    # test_tflite_export cover the other runtimes' candidates).
    base = dict(
        bundle=bundle,
        batch_sizes=(1,),
        thread_counts=(1,),
        rounds=2,
        round_seconds=0.02,
        runtime_list=("ort",),
    )
    return TuneConfig(**{**base, "data_dir": mnist_dir, **kw})


def test_progress_events_estimate_and_the_sampled_bound(small_bundle: Path, tmp_path: Path, mnist_dir: Path):
    from edgecnn.benchmarking.tune import plan_tune, tune

    bundle = tmp_path / "bundle"
    shutil.copytree(small_bundle, bundle)
    config = _config(bundle, mnist_dir, images=SAMPLE)
    plan = plan_tune(config)
    e = plan.estimate
    assert (e.images, e.export_images, e.candidates, e.rounds) == (SAMPLE, EXPORT_IMAGES, 2, 2)
    assert e.fp32_ms_per_image > 0 and e.accuracy_s == pytest.approx(SAMPLE * 2 * e.fp32_ms_per_image / 1e3)
    events = []
    result = tune(config, events.append, plan)
    acc = [ev for ev in events if ev.task == "tune accuracy"]
    assert acc[0].completed == 0 and acc[0].total == SAMPLE * 2
    assert [ev.completed for ev in acc] == sorted(ev.completed for ev in acc)  # never goes back
    assert acc[-1].finished and acc[-1].completed == SAMPLE * 2
    assert {"accuracy model.onnx", "accuracy model.int8.onnx"} <= {ev.description for ev in acc}
    timing = [ev for ev in events if ev.task == "tune timing"]
    assert timing[-1].finished and timing[-1].total == 1 and "--threads 1" in timing[0].description
    assert events.index(acc[-1]) < events.index(timing[0])  # accuracy first, then timing
    for c in result.candidates:
        lo, hi = c.difference_pp
        # Same machine, same kernels: the file's accuracy on all 1000 images IS export's, so the true
        # difference is 0 and the interval from 200 of them must hold it; it is a real interval.
        assert lo < 0 < hi and hi - lo > 0.5, (c.file, lo, hi)
        assert c.accepted
    doc = json.loads((bundle / DEVICE_JSON).read_text())
    assert doc["accuracy_check"]["images"] == SAMPLE and doc["accuracy_check"]["of"] == EXPORT_IMAGES
    assert doc["estimate"]["images"] == SAMPLE and doc["wall_s"] > 0
    assert all(len(c["difference_pp"]) == 2 for c in doc["candidates"])


def test_all_images_is_the_exact_check_and_a_saturating_file_is_caught_on_a_sample(
    small_bundle: Path, tmp_path: Path, mnist_dir: Path
) -> None:
    from edgecnn.benchmarking.tune import tune

    bundle = tmp_path / "bundle"
    shutil.copytree(small_bundle, bundle)
    _broken_copy(bundle)  # computes something else, keeps export's accuracy claim
    result = tune(_config(bundle, mnist_dir))
    by_file = {c.file: c for c in result.candidates}
    for c in by_file.values():
        diff = (c.device_accuracy - c.export_accuracy) * 100
        assert c.difference_pp == (pytest.approx(diff), pytest.approx(diff))  # a point: no sampling
    assert result.accuracy_check["images"] == result.accuracy_check["of"] == EXPORT_IMAGES
    assert not by_file["model.int8-broken.onnx"].accepted
    sampled = tune(_config(bundle, mnist_dir, images=SAMPLE, force=True))
    broken = next(c for c in sampled.candidates if c.file == "model.int8-broken.onnx")
    assert not broken.accepted and "95% interval" in broken.reason and broken.difference_pp[1] < -0.1
    with pytest.raises(EdgecnnError, match="exceeds the 1000 images"):
        tune(_config(bundle, mnist_dir, images=EXPORT_IMAGES + 1, force=True))
    with pytest.raises(EdgecnnError, match="--images"):
        _config(bundle, mnist_dir, images=0, force=True)


def test_the_interval_holds_the_truth_95_percent_of_the_time() -> None:
    """Coverage of the finite-population Wilson interval, by simulation: samples without replacement
    from a population whose accuracy is known."""
    rng = np.random.default_rng(1)
    for population, n, accuracy in ((10_000, 500, 0.985), (10_000, 2000, 0.9), (2000, 1500, 0.97)):
        truth = np.zeros(population, dtype=bool)
        truth[: int(population * accuracy)] = True
        hits = 0
        trials = 2000
        for _ in range(trials):
            correct = int(truth[rng.choice(population, size=n, replace=False)].sum())
            lo, hi = accuracy_interval(correct, n, population)
            hits += lo <= accuracy <= hi
        assert 0.93 <= hits / trials <= 0.99, (population, n, hits / trials)
    assert accuracy_interval(990, 1000, 1000) == (0.99, 0.99)
    assert list(sample_indices(5, None)) == [0, 1, 2, 3, 4]
    assert list(sample_indices(100, 10)) == list(sample_indices(100, 10))  # seeded: the same every run


def test_cli_prints_the_estimate_first_and_records_it(small_bundle: Path, tmp_path: Path, mnist_dir: Path):
    from edgecnn.cli import app

    bundle = tmp_path / "bundle"
    shutil.copytree(small_bundle, bundle)
    args = ["tune", str(bundle), "--images", str(SAMPLE), "--rounds", "2", "--batch", "1", "--threads", "1"]
    args += ["--runtimes", "ort"]
    r = CliRunner().invoke(app, [*args, "--data-dir", str(mnist_dir), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"tune: {SAMPLE} images (a sample of {EXPORT_IMAGES}: --images) x 2 files")
    assert f"about {doc['estimate']['total_s']:.0f} s here" in first
    stderr = " ".join(r.stderr.split())  # rich wraps lines at the terminal width
    assert "95% interval" in stderr and "model.int8.onnx: " in stderr
