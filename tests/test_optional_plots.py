"""Plots are the optional `edgecnn[plot]` extra: without matplotlib, eval, bench and compare still write
their results and say in one note which extra draws the picture (the import failure is simulated)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from test_predict import centroid_model
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.core.plotting import NO_MATPLOTLIB

EXTRA = "edgecnn[plot]"


@pytest.fixture()
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    return centroid_model(tmp_path_factory.mktemp("plots") / "model.onnx", mnist_dir)


def test_pyproject_keeps_matplotlib_in_the_plot_extra() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("matplotlib") for d in project["dependencies"])
    extras = project["optional-dependencies"]
    assert any(d.startswith("matplotlib") for d in extras["plot"])
    assert EXTRA in extras["train"] and any("plot" in d for d in extras["dev"] if d.startswith("edgecnn["))


def test_eval_bench_compare_without_matplotlib(no_matplotlib, model: Path, tmp_path: Path, mnist_dir: Path):
    r = CliRunner().invoke(
        app, ["eval", str(model), "--data-dir", str(mnist_dir), "--limit", "200", "-o", str(tmp_path / "e")]
    )
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "e" / "confusion_matrix.png").exists()
    assert EXTRA in r.stdout and "saved" in r.stdout
    doc = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert NO_MATPLOTLIB in doc["assumptions"]
    for name in ("b1", "b2"):
        r = CliRunner().invoke(app, ["bench", str(model), "--iterations", "5", "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
        assert not (tmp_path / name / "bench.png").exists() and EXTRA in r.output
        assert NO_MATPLOTLIB in json.loads((tmp_path / name / "bench.json").read_text())["notes"]
    r = CliRunner().invoke(
        app, ["compare", str(tmp_path / "b1"), str(tmp_path / "b2"), "-o", str(tmp_path / "c")]
    )
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "c" / "compare.png").exists() and EXTRA in r.output
    assert NO_MATPLOTLIB in json.loads((tmp_path / "c" / "compare.json").read_text())["notes"]


def test_with_matplotlib_the_plots_are_drawn(model: Path, tmp_path: Path, mnist_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    r = CliRunner().invoke(
        app, ["eval", str(model), "--data-dir", str(mnist_dir), "--limit", "200", "-o", str(tmp_path / "e")]
    )
    assert r.exit_code == 0 and (tmp_path / "e" / "confusion_matrix.png").exists()
    assert EXTRA not in r.output
