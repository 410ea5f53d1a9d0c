"""edgecnn's side of `make bench-peers`: optimize the INT8 export for this CPU, tune the bundle on this
machine across runtimes (the device pick), and the timed call of every candidate (ORT through edgecnn
bench's code path, OpenVINO and LiteRT through edgecnn's runtime backends).

Benchmark code, not part of the edgecnn package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from peers_report import ACCURACY_BOUND_PP

INT8_FILE = "model.int8.onnx"
INT8_CPU_FILE = "model.int8.cpu.onnx"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def optimize_for_this_cpu(name: str, bundle: Path, data_dir: Path | None) -> None:
    """`edgecnn optimize model.int8.onnx` on this machine (again if the cached one was made elsewhere)."""
    import onnx

    from edgecnn.runtime.optimize import OptimizeConfig, optimize
    from edgecnn.runtime.target import current_cpu_target, read_target, target_mismatch

    out = bundle / INT8_CPU_FILE
    if out.exists():
        props = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
        target = read_target(props)
        if target is not None and target_mismatch(target, current_cpu_target()) is None:
            return
    log(f"[{name}] edgecnn optimize model.int8.onnx (for this CPU)")
    from edgecnn.core.errors import EdgecnnError

    try:
        optimize(OptimizeConfig(model=bundle / INT8_FILE, output=out, force=True, data_dir=data_dir))
    except EdgecnnError as exc:  # its parity gate refused: the row is left out, and said so
        log(f"[{name}] edgecnn optimize refused: {exc}")


def tune_bundle(name: str, bundle: Path, args: argparse.Namespace, data_dir: Path | None) -> dict[str, Any]:
    """`edgecnn tune BUNDLE` on this machine, every installed runtime: per (threads, batch) the
    candidate it finds fastest, and every candidate it accepted (with its accuracy here) for the
    timing children to measure in the same rounds."""
    from edgecnn.benchmarking.tune import TuneConfig, tune

    log(f"[{name}] edgecnn tune (threads {args.threads_list}, batches {args.batches})")
    result = tune(
        TuneConfig(
            bundle=bundle,
            batch_sizes=tuple(args.batches),
            thread_counts=tuple(args.threads_list),
            rounds=args.rounds,
            max_accuracy_drop=ACCURACY_BOUND_PP,
            data_dir=data_dir,
            force=True,
        )
    )
    accepted = [c for c in result.candidates if c.accepted]
    picks: dict[str, dict[str, str]] = {}
    for cell in result.finalists:  # per (threads, batch): what tune decided, finalist pass included
        picks.setdefault(str(cell.threads), {})[str(cell.batch)] = cell.winner
    candidates = [
        {
            "label": c.label,
            "file": c.file,
            "variant": c.variant,
            "runtime": c.runtime,
            "precision": c.precision,
            "accuracy": c.device_accuracy,
        }
        for c in accepted
    ]
    return {
        "picks": picks,
        "candidates": candidates,
        "record": str(result.record_path),
        "rejected": {c.label: c.reason for c in result.candidates if not c.accepted},
        "skipped_runtimes": list(result.skipped_runtimes),
        "finalists": [
            {
                k: getattr(cell, k)
                for k in ("threads", "batch", "finalists", "winner", "rounds", "ratio_to_winner")
            }
            for cell in result.finalists
        ],
    }


def candidate_runner(bundle: Path, cand: dict[str, Any], threads: int, images: np.ndarray) -> tuple[Any, Any]:
    """The timed call of one candidate on `images` (uint8): ORT through `onnx_runner` (bench's path),
    OpenVINO and LiteRT through edgecnn's runtime backends with the input bound once."""
    from edgecnn.benchmarking.tune_candidates import file_metadata
    from edgecnn.runtime.backends.registry import open_model_file
    from edgecnn.runtime.preprocess import prepare_batch
    from edgecnn.runtime.session_config import SessionConfig

    path = bundle / cand["file"]
    x = prepare_batch(images, file_metadata(path))
    if cand["runtime"] == "ort":
        return onnx_runner(path, threads, x)
    opened = open_model_file(
        path, SessionConfig(runtime=cand["runtime"], precision=cand["precision"], threads=threads)
    )
    return opened.runner(x), (opened, x)


def onnx_runner(path: Path, threads: int, x: np.ndarray) -> tuple[Any, Any]:
    """`edgecnn bench`'s code path: its session options, IOBinding with pre-bound OrtValues, and, like
    `edgecnn bench` interleaving several models, ORT's process-wide thread pool (this timing process
    is one per thread count). With a pool per session, the idle sessions' spinning workers steal the
    timed one's core: measured here, tf1-cnn INT8 at 2 threads ran 1.2-2x slower that way."""
    from edgecnn import runtime
    from edgecnn.benchmarking import BenchConfig
    from edgecnn.runtime.thread_pool import allow_shared_thread_pool

    allow_shared_thread_pool()  # this process times one thread count, like one `edgecnn bench`
    cfg = BenchConfig(models=(path,), batch_sizes=(x.shape[0],), thread_counts=(threads,))
    session, provider = runtime.open_session(path, cfg.session_config(threads, shared_thread_pool=True), [])
    feeds = {session.get_inputs()[0].name: np.ascontiguousarray(x)}
    bound = runtime.bind_io(session, provider, feeds)
    return bound.run, (session, bound)
