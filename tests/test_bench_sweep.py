"""`edgecnn bench --threads 1,2`: one child process per thread count, merged, fastest count per batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_bench import tiny_cnn
from typer.testing import CliRunner

from edgecnn.benchmarking.bench_config import BenchConfig, parse_thread_counts
from edgecnn.benchmarking.sweep import fastest_by_model_and_batch
from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError


def test_parse_thread_counts() -> None:
    assert parse_thread_counts("2") == (2,)
    assert parse_thread_counts("1, 2,0") == (1, 2, 0)
    for bad in ("", "1,,2", "-1", "two", "1.5", "99999"):
        with pytest.raises(EdgecnnError, match="--threads takes counts"):
            parse_thread_counts(bad)
    with pytest.raises(EdgecnnError, match="repeats"):
        parse_thread_counts("1,1")


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    model = tiny_cnn(tmp_path / "t.onnx")
    cfg = BenchConfig(
        models=(model,), batch_sizes=(1, 8), iterations=7, data_dir=tmp_path, output_dir=tmp_path / "o",
        op_profile=True, thread_counts=(2,),
    )  # fmt: skip
    assert BenchConfig.from_json(cfg.to_json()) == cfg


def test_fastest_picks_the_lowest_p50_per_model_and_batch() -> None:
    def doc(p50s):
        return {"models": [{"name": "m", "results": [{"batch": b, "p50_ms": v} for b, v in p50s.items()]}]}

    rows = fastest_by_model_and_batch((1, 2), (doc({1: 0.02, 64: 1.3}), doc({1: 0.03, 64: 0.9})))
    assert [(r["batch"], r["fastest_threads"]) for r in rows] == [(1, 1), (64, 2)]
    assert rows[0]["p50_ms"] == {"1": 0.02, "2": 0.03}
    assert rows[1]["speedup_vs_slowest"] == pytest.approx(1.3 / 0.9)


def test_cli_thread_sweep(tmp_path: Path) -> None:
    model = tiny_cnn(tmp_path / "tiny.onnx")
    out = tmp_path / "sweep"
    args = ["bench", str(model), "--batch", "1,4", "-n", "10", "--warmup", "2", "--inputs", "random",
            "--threads", "1,2", "-o", str(out)]  # fmt: skip
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["kind"] == "edgecnn.bench-threads" and doc["thread_counts"] == [1, 2]
    assert [r["config"]["intra_op_threads"] for r in doc["runs"]] == [1, 2]
    for run in doc["runs"]:
        assert run["providers_ran"] == ["CPUExecutionProvider"]
        assert [r["batch"] for r in run["models"][0]["results"]] == [1, 4]
    assert {(r["batch"], r["fastest_threads"] in (1, 2)) for r in doc["fastest"]} == {(1, True), (4, True)}
    # Everything saved where it says, under one directory written atomically.
    assert json.loads((out / "threads.json").read_text()) == doc
    for t in (1, 2):
        assert doc["runs"][t - 1]["files"]["json"] == str(out / f"threads-{t}" / "bench.json")
        assert (
            json.loads((out / f"threads-{t}" / "bench.json").read_text())["config"]["intra_op_threads"] == t
        )
    assert "p50 ms per intra-op thread count" in res.stderr
    # The result directory is not overwritten without --force.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "already exists" in again.output


def test_cli_thread_sweep_child_error_is_one_line(tmp_path: Path) -> None:
    model = tiny_cnn(tmp_path / "tiny.onnx", metadata=False)  # --inputs real then fails in the child
    res = CliRunner().invoke(
        app, ["bench", str(model), "--threads", "1,2", "--inputs", "real", "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 2 and lines[0] == "--threads 1 (own process)"
    assert lines[1].startswith("error: bench with --threads 1 failed: ") and "no edgecnn metadata" in lines[1]
    assert not (tmp_path / "o").exists()
