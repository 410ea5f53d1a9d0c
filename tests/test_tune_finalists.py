"""`edgecnn tune`'s second pass: the close finalists re-timed head to head and decided by the median of
per-round ratios (benchmarking.tune_finalists), on data shaped like this VM's mode flips and on a real
bundle."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest

from edgecnn.benchmarking.speedup import median_round_ratio
from edgecnn.benchmarking.tune_candidates import Candidate
from edgecnn.benchmarking.tune_finalists import finalists, paired_decision
from edgecnn.benchmarking.tune_plan import FINALIST_MARGIN, FINALIST_ROUND_FACTOR, MAX_FINALISTS
from edgecnn.runtime.device_record import DEVICE_JSON

ROUNDS = 14
# The 2-vCPU VM's two modes (docs/bench-peers-amx.md: keras-convnet, 2 threads, batch 1, ms per call):
# a fast one and one about 1.35x slower, each lasting seconds, so a flip can fall between two
# candidates' blocks of one round.
FAST_MS, SLOW = 0.0245, 1.35


def _mode_flip_rounds() -> dict[str, list[float]]:
    """B is 4% faster than A whenever both ran in the same mode, but caught the slow mode in more
    rounds (8 of 14, A 5): by medians A looks faster, round by round B is. C is 6% slower than A."""
    rng = np.random.default_rng(0)
    a_slow = set(range(5))  # both slow in rounds 0-4
    b_slow = a_slow | {5, 6, 7}  # a flip between A's block and B's in rounds 5-7
    out: dict[str, list[float]] = {"A": [], "B": [], "C": []}
    for r in range(ROUNDS):
        jitter = rng.uniform(0.995, 1.005, size=3)
        out["A"].append(FAST_MS * (SLOW if r in a_slow else 1.0) * jitter[0])
        out["B"].append(FAST_MS * 0.96 * (SLOW if r in b_slow else 1.0) * jitter[1])
        out["C"].append(FAST_MS * 1.06 * (SLOW if r in a_slow else 1.0) * jitter[2])
    return out


def test_paired_rounds_decide_where_comparing_medians_would_not() -> None:
    rounds = _mode_flip_rounds()
    by_median = min(rounds, key=lambda k: statistics.median(rounds[k]))
    assert by_median == "A"  # the data discriminates: medians pick the candidate that is slower
    decision = paired_decision(["A", "B", "C"], rounds)
    assert decision.winner == "B"
    first, second = decision.challenges
    assert (first["challenger"], first["leader"], first["won"]) == ("B", "A", True)
    assert first["ratio"] == pytest.approx(0.96, abs=0.01)
    assert (second["challenger"], second["leader"], second["won"]) == ("C", "B", False)
    assert decision.ratio_to_winner["B"] == 1.0
    assert decision.ratio_to_winner["A"] == pytest.approx(1 / 0.96, abs=0.01)
    # A candidate whose rounds do not pair with the leader's (another run's) cannot take the lead.
    assert paired_decision(["A", "B"], {**rounds, "B": rounds["B"][:-1]}).winner == "A"


def _cand(name: str, ms: float, rounds: list[float]) -> Candidate:
    c = Candidate(name, f"{name}.onnx", [], 0.99, accepted=True)
    c.latency_ms, c.round_ms = {1: {2: ms}}, {1: {2: tuple(rounds)}}
    return c


def test_finalists_are_the_close_ones_by_median_or_by_paired_rounds_at_most_four() -> None:
    rounds = _mode_flip_rounds()
    best = _cand("best", statistics.median(rounds["A"]), rounds["A"])
    # By median 1.35x the best (its median fell in the slow mode), round by round 0.96x: a finalist.
    flipped = _cand("flipped", statistics.median(rounds["B"]), rounds["B"])
    far = [_cand(f"far{i}", best.latency_ms[1][2] * 1.3, [v * 1.3 for v in rounds["A"]]) for i in range(2)]
    near = [_cand(f"near{i}", best.latency_ms[1][2] * (1.01 + i / 100), rounds["C"]) for i in range(4)]
    rejected = _cand("rejected", 0.001, rounds["A"])
    rejected.accepted = False
    chosen = finalists([best, flipped, *far, *near, rejected], batch=1, threads=2)
    assert len(chosen) == MAX_FINALISTS and chosen[0] is best
    assert [c.file for c in chosen] == ["best.onnx", "flipped.onnx", "near0.onnx", "near1.onnx"]
    assert flipped.latency_ms[1][2] > best.latency_ms[1][2] * (1 + FINALIST_MARGIN)
    assert finalists([best, *far], batch=1, threads=2) == [best]  # alone within the margin
    # Another runtime's closest is not crowded out by one runtime's near-twins (ORT's INT8 recipes).
    litert = _cand("litert", best.latency_ms[1][2] * 1.1, [v * 1.1 for v in rounds["A"]])
    litert.runtime = "litert"
    chosen = finalists([best, flipped, *near, litert], batch=1, threads=2)
    assert [c.file for c in chosen] == ["best.onnx", "litert.onnx", "flipped.onnx", "near0.onnx"]


def test_a_real_bundle_retimes_its_finalists_and_records_them(
    exported_bundle, tmp_path: Path, mnist_dir: Path
) -> None:
    """Two files that run at the same speed (model.int8.onnx and a byte copy) are always within the
    margin of each other and of the best: the second pass must run, decide between them by paired
    rounds, and put all of it in device.json."""
    from edgecnn.benchmarking.tune import TuneConfig, plan_tune, tune

    bundle = tmp_path / "bundle"
    shutil.copytree(exported_bundle.output_dir, bundle)
    shutil.copyfile(bundle / "model.int8.onnx", bundle / "model.int8-twin.onnx")
    config = TuneConfig(
        bundle=bundle,
        batch_sizes=(64,),
        thread_counts=(1,),
        rounds=3,
        round_seconds=0.02,
        runtime_list=("ort",),
        images=500,
        data_dir=mnist_dir,
    )
    plan = plan_tune(config)
    e = plan.estimate
    assert e.finalist_rounds == FINALIST_ROUND_FACTOR * 3 and 0 < e.finalists_s
    assert e.total_s == pytest.approx(e.accuracy_s + e.timing_s + e.finalists_s)
    events = []
    result = tune(config, events.append, plan)
    (cell,) = result.finalists
    assert {"model.int8.onnx", "model.int8-twin.onnx"} <= set(cell.finalists)
    assert cell.rounds == FINALIST_ROUND_FACTOR * 3 and cell.wall_s > 0
    assert all(len(cell.round_ms[f]) == cell.rounds for f in cell.finalists)
    assert cell.winner in cell.finalists and cell.ratio_to_winner[cell.winner] == 1.0
    assert paired_decision(cell.finalists, cell.round_ms).winner == cell.winner  # the recorded data decides
    for label in cell.finalists:
        assert cell.ratio_to_winner[label] == median_round_ratio(
            cell.round_ms[label], cell.round_ms[cell.winner]
        )
    pick = result.picks[64]
    assert (pick["file"], pick["threads"], pick["decided_by"]) == (cell.winner, 1, "paired finalist rounds")
    assert pick["p50_ms"] == cell.winner_ms == cell.p50_ms[cell.winner]
    tasks = [ev.task for ev in events]
    assert "tune finalists" in tasks and tasks.index("tune timing") < tasks.index("tune finalists")
    doc = json.loads((bundle / DEVICE_JSON).read_text())
    (recorded,) = doc["finalists"]
    assert recorded["winner"] == cell.winner and recorded["rounds"] == cell.rounds
    assert recorded["round_ms"] == {k: list(v) for k, v in cell.round_ms.items()}
    assert recorded["ratio_to_winner"] == cell.ratio_to_winner and recorded["challenges"]
    assert doc["picks"]["64"]["decided_by"] == "paired finalist rounds"
    assert doc["estimate"]["finalists_s"] == e.finalists_s
    first_pass = {c["file"]: c for c in doc["candidates"] if c["accepted"]}
    assert all(len(c["round_ms"]["64"]["1"]) == 3 for c in first_pass.values())
