"""Is this machine's speed stable? Times N identical ONNX Runtime sessions of one model in rotated
interleaved blocks (the way bench-peers does) and prints each session's per-block medians.

On a steady machine every block is alike. The 2-core Zen 4 VM of stop 9 flipped between about 0.31 ms
and 0.45-0.50 ms per block for MobileNetV2 INT8 at batch 1, at random: that is why bench-peers reports
a best-rounds ratio beside the per-round median.

    .venv/bin/python benchmarks/vm_mode_probe.py BUNDLE/model.int8.onnx [--threads 1] [--rounds 21]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgecnn import runtime  # noqa: E402
from edgecnn.benchmarking import BenchConfig  # noqa: E402
from edgecnn.benchmarking.timing import timed_loop  # noqa: E402
from edgecnn.runtime.thread_pool import allow_shared_thread_pool  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--calls", type=int, default=150, help="timed calls per block")
    ap.add_argument("--pause", type=float, default=0.0, help="seconds idle before each block")
    args = ap.parse_args()
    allow_shared_thread_pool()
    cfg = BenchConfig(models=(args.model,), batch_sizes=(1,), thread_counts=(args.threads,))
    keep, calls = [], []
    for _ in range(args.sessions):
        session, provider = runtime.open_session(
            args.model, cfg.session_config(args.threads, shared_thread_pool=True), []
        )
        arg = session.get_inputs()[0]
        x = np.random.default_rng(0).random([1, *arg.shape[1:]], dtype=np.float32)
        bound = runtime.bind_io(session, provider, {arg.name: x})
        keep.append((session, bound))
        calls.append(bound.run)
    blocks: list[list[float]] = [[] for _ in calls]
    order = list(range(len(calls)))
    for r in range(args.rounds):
        for i in order[r % len(order) :] + order[: r % len(order)]:
            time.sleep(args.pause)
            ns = timed_loop(calls[i], warmup=1, iterations=args.calls, duration_s=None)
            blocks[i].append(float(np.median(ns)) / 1e6)
    for i, ms in enumerate(blocks):
        print(f"session {i}: median {np.median(ms):.4f} ms, min {min(ms):.4f}, max {max(ms):.4f}; blocks:",
              " ".join(f"{m:.3f}" for m in ms))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
