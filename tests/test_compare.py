"""`edgecnn compare`: merging real bench results into one table, speedups, validation, CLI errors."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_bench import tiny_cnn
from typer.testing import CliRunner

from edgecnn.benchmarking import BenchConfig, bench
from edgecnn.benchmarking.compare import CompareConfig, compare
from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two real bench runs of the same model: batches 1,4 and 1,8 (so one row exists in each only)."""
    base = tmp_path_factory.mktemp("cmp")
    model = tiny_cnn(base / "tiny.onnx")
    a = bench(BenchConfig(models=(model,), batch_sizes=(1, 4), iterations=10, output_dir=base / "run-a"))
    b = bench(BenchConfig(models=(model,), batch_sizes=(1, 8), iterations=10, output_dir=base / "run-b"))
    return a.files["json"], b.files["json"]


def test_merge_rows_and_speedups(results: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = results
    out = tmp_path / "c"
    result = compare(CompareConfig(results=(a, b.parent), output_dir=out))  # a directory works too
    doc = result.document
    assert doc["kind"] == "edgecnn.compare" and len(doc["runs"]) == 2
    assert doc["runs"][0]["label"] != doc["runs"][1]["label"]  # same host: told apart by directory
    assert [(r["key"], r["batch"]) for r in doc["rows"]] == [
        ("tiny:fp32", 1),
        ("tiny:fp32", 4),
        ("tiny:fp32", 8),
    ]
    one = doc["rows"][0]["runs"]
    assert one[0]["speedup"] == pytest.approx(1.0)
    assert one[1]["speedup"] == pytest.approx(one[0]["p50_ms"] / one[1]["p50_ms"])
    assert doc["rows"][1]["runs"][1] is None and doc["rows"][2]["runs"][0] is None
    assert doc["rows"][2]["runs"][1]["speedup"] is None  # nothing to compare with
    assert json.loads((out / "compare.json").read_text())["rows"] == json.loads(json.dumps(doc["rows"]))
    rows = list(csv.DictReader(io.StringIO((out / "compare.csv").read_text())))
    assert len(rows) == 4
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_speedup_direction_for_latency_and_throughput(results: tuple[Path, Path], tmp_path: Path) -> None:
    # A second "device" twice as fast: same document with halved latencies, doubled throughput.
    doc = json.loads(results[0].read_text())
    fast = copy.deepcopy(doc)
    fast["environment"]["hardware"]["hostname"] = "fastbox"
    for m in fast["models"]:
        for r in m["results"]:
            r["p50_ms"] /= 2
            r["throughput"] *= 2
    fast_path = tmp_path / "fast.json"
    fast_path.write_text(json.dumps(fast))
    for metric in ("p50_ms", "throughput"):
        merged = compare(CompareConfig(results=(results[0], fast_path), metric=metric)).document
        assert merged["runs"][1]["label"].startswith("fastbox ")
        for row in merged["rows"]:
            assert row["runs"][1]["speedup"] == pytest.approx(2.0)


def test_labels_and_validation(results: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = results
    doc = compare(CompareConfig(results=(a, b), labels=("laptop", "pi"))).document
    assert [r["label"] for r in doc["runs"]] == ["laptop", "pi"]
    with pytest.raises(EdgecnnError, match="one per result"):
        CompareConfig(results=(a, b), labels=("x",))
    with pytest.raises(EdgecnnError, match="distinct"):
        CompareConfig(results=(a, b), labels=("x", "x"))
    with pytest.raises(EdgecnnError, match="--metric"):
        CompareConfig(results=(a,), metric="speed")
    with pytest.raises(EdgecnnError, match="contains the input"):  # issue 21: never over an input
        compare(CompareConfig(results=(a,), output_dir=a.parent))


def _one_line_error(res, *needles: str) -> None:
    assert res.exit_code != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output + res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_json_and_bad_files(results: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = results
    runner = CliRunner()
    res = runner.invoke(
        app, ["compare", str(a), str(b), "-l", "A", "-l", "B", "-o", str(tmp_path / "o"), "--json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [r["label"] for r in doc["runs"]] == ["A", "B"] and "speedup vs A" in res.stderr

    not_json = tmp_path / "notes.json"
    not_json.write_text("hello")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"kind": "edgecnn.eval", "accuracy": 0.99}))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"kind": "edgecnn.bench", "schema_version": 1, "models": [{"key": "x"}]}))
    for path, needle in (
        (tmp_path / "missing.json", "does not exist"),
        (not_json, "not a JSON file"),
        (other, "not an edgecnn bench result"),
        (broken, "damaged"),
        (tmp_path, "without a bench.json"),
    ):
        _one_line_error(runner.invoke(app, ["compare", str(a), str(path), "-o", str(tmp_path / "x")]), needle)
    _one_line_error(runner.invoke(app, ["compare", str(a), "--metric", "fast"]), "--metric")
    assert not (tmp_path / "x").exists()


def test_bench_and_compare_modules_never_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "for m in ('tensorflow', 'keras', 'tf2onnx'): sys.modules[m] = None  # import now raises\n"
        "import edgecnn.benchmarking.bench_run, edgecnn.benchmarking.compare\n"
        "import edgecnn.benchmarking.bench_plots\n"
        "import edgecnn.runtime.sessions\n"
        "import edgecnn.commands.bench, edgecnn.commands.compare\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx')"
        " and sys.modules[m] is not None]\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
