"""ORT profiler reduction (`edgecnn.op_profile`) and `edgecnn bench --op-profile`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from test_bench import tiny_cnn
from typer.testing import CliRunner

from edgecnn.benchmarking.op_profile import feeds_from_arrays, parse_profile, profile_session_ops
from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.sessions import SessionConfig


def _events(runs: list[dict[str, float]]) -> list[dict]:
    """A profile shaped like ORT's: per run, one kernel_time event per node then one model_run."""
    ops = {"a": "Conv", "b": "Gemm"}
    events: list[dict] = [{"cat": "Session", "name": "session_initialization", "dur": 900}]
    for run in runs:
        for node, dur in run.items():
            events.append({"cat": "Node", "name": f"{node}_fence_before", "dur": 0})
            events.append(
                {"cat": "Node", "name": f"{node}_kernel_time", "dur": dur,
                 "args": {"op_name": ops[node], "provider": "CPUExecutionProvider"}}
            )  # fmt: skip
        events.append({"cat": "Session", "name": "model_run", "dur": sum(run.values()) + 3})
    return events


def test_parse_profile_medians_shares_and_warmup() -> None:
    # Warmup runs are slow (first-touch, packing): they must not reach the medians.
    runs = [{"a": 500, "b": 500}] * 2 + [{"a": 30, "b": 10}, {"a": 32, "b": 10}, {"a": 28, "b": 14}]
    prof = parse_profile(_events(runs), batch=4, warmup=2)
    assert prof.batch == 4 and prof.runs == 3 and prof.warmup == 2
    assert [(n.node, n.op_type) for n in prof.nodes] == [("a", "Conv"), ("b", "Gemm")]
    a, b = prof.nodes
    assert a.median_us == 30 and b.median_us == 10
    assert a.share == pytest.approx(0.75) and b.share == pytest.approx(0.25)
    assert prof.run_median_us == 45  # run totals 43, 45, 45
    assert prof.node_sum_us == 40
    assert prof.by_op_type()[0] == ("Conv", 1, 30.0, pytest.approx(0.75))


def test_parse_profile_without_runs_is_an_error() -> None:
    with pytest.raises(EdgecnnError, match="nothing to report"):
        parse_profile(_events([{"a": 1, "b": 1}]), batch=1, warmup=5)


def test_profile_session_ops_names_the_nodes_ort_ran(tmp_path: Path) -> None:
    model = tiny_cnn(tmp_path / "tiny.onnx")
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    prof, provider = profile_session_ops(
        model, SessionConfig(threads=1), feeds_from_arrays({"input": x}), batch=8, runs=30, warmup=5
    )
    assert provider == "CPUExecutionProvider" and prof.runs == 30
    ops = [n.op_type for n in prof.nodes]
    # ORT fuses and relayouts the graph: the profile shows what ran, not the ONNX file's node list.
    assert "Softmax" in ops and any(op in ops for op in ("Conv", "FusedConv"))
    assert len(ops) <= len(onnx.load(str(model)).graph.node) + 4  # reorders may be added, nothing is lost
    assert sum(n.share for n in prof.nodes) == pytest.approx(1.0)
    assert all(n.median_us >= 0 for n in prof.nodes) and prof.run_median_us > 0
    assert not list(tmp_path.glob("*.json"))  # the raw profile went to a temporary directory


def test_profile_runs_out_of_range_is_refused(tmp_path: Path) -> None:
    model = tiny_cnn(tmp_path / "tiny.onnx")
    with pytest.raises(EdgecnnError, match="profiled runs"):
        profile_session_ops(model, SessionConfig(), feeds_from_arrays({}), batch=1, runs=0)


def test_cli_bench_op_profile(tmp_path: Path) -> None:
    model = tiny_cnn(tmp_path / "tiny.onnx")
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        ["bench", str(model), "--batch", "1,4", "-n", "10", "--warmup", "2", "--inputs", "random",
         "--op-profile", "--profile-runs", "25", "-o", str(out), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    profiles = doc["models"][0]["op_profiles"]
    assert [p["batch"] for p in profiles] == [1, 4]
    for p in profiles:
        assert p["runs"] == 25 and p["nodes"]
        assert {n["provider"] for n in p["nodes"]} == {"CPUExecutionProvider"}
    assert "where the time goes: tiny.onnx batch 4" in res.stderr
    # The saved document is the printed one.
    assert json.loads((out / "bench.json").read_text())["models"][0]["op_profiles"] == profiles


def test_cli_bench_profile_runs_bad_value_is_one_line(tmp_path: Path) -> None:
    model = tiny_cnn(tmp_path / "tiny.onnx")
    res = CliRunner().invoke(
        app, ["bench", str(model), "--op-profile", "--profile-runs", "0", "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == ["error: --profile-runs must be between 1 and 100000, got 0"]
