"""Stand-alone multi-worker training run used by tests/test_multiworker.py (and to measure it by hand).

Start it once per worker, each with its own TF_CONFIG task index:

    TF_CONFIG='{"cluster": {"worker": ["localhost:23451", "localhost:23452"]}, "task": {"type": "worker",
    "index": 0}}' python tests/multiworker_driver.py --output /tmp/mw --limit 3000 --epochs 1 --batch 32

It trains keras-convnet on real MNIST with edgecnn.training.multiworker (the path `edgecnn train
--strategy multiworker` will take), writes checkpoint-epochN.keras + checkpoint-state.json after each epoch
and model.keras at the end (chief only), and prints one JSON line with the results on stdout. This is test
scaffolding until `train()` calls fit_multiworker; the checkpoint format matches train()'s."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.outputs import atomic_path, atomic_write_json
from edgecnn.core.progress import ProgressEvent
from edgecnn.training.cluster import cluster_from_env
from edgecnn.training.multiworker import (
    EpochEnd,
    FitData,
    MultiWorkerFitConfig,
    ResumePoint,
    fit_multiworker,
    make_multiworker_strategy,
    predict_local,
)
from edgecnn.training.rendezvous import RendezvousConfig, rendezvous
from edgecnn.training.watchdog import Watchdog

STATE_FILE = "checkpoint-state.json"
MODEL_FILE = "model.keras"


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--limit", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=32, help="per-worker batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--connect-timeout", type=float, default=120.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--grace", type=float, default=10.0, help="seconds a stop signal waits for Python")
    p.add_argument("--step-delay", type=float, default=0.0, help="test hook: slow each epoch's end")
    return p.parse_args(argv)


def _preflight(args: argparse.Namespace, is_chief: bool) -> tuple[str | None, ResumePoint | None]:
    """What the chief must refuse before the cluster forms, and its resume point."""
    if not is_chief:
        return None, None
    state_path = args.output / STATE_FILE
    if args.resume:
        if not state_path.exists():
            return f"nothing to resume in {args.output}: no {STATE_FILE}", None
        state = json.loads(state_path.read_text())
        resume = ResumePoint(
            args.output / state["checkpoint"], int(state["epoch"]), state["history"], state["epoch_seconds"]
        )
        return None, resume
    if args.output.exists() and any(args.output.iterdir()):
        return f"run directory {args.output} already exists; pass --force to replace it", None
    return None, None


def _load(args: argparse.Namespace, spec: Any) -> tuple[FitData, np.ndarray, np.ndarray]:
    try:
        from edgecnn.data import load_dataset, train_val_split  # after the layout refactor
    except ImportError:
        from edgecnn.data.datasets import load_dataset, train_val_split
    ds = load_dataset("mnist", args.data_dir)
    x, y = ds.x_train[: args.limit], ds.y_train[: args.limit]
    x_tr, y_tr, x_val, y_val = train_val_split(x, y, 0.1, args.seed)
    norm = ds.normalization
    data = FitData(
        norm.apply(x_tr), np.asarray(y_tr, np.int64), norm.apply(x_val), np.asarray(y_val, np.int64)
    )
    return data, norm.apply(ds.x_test[: args.limit]), np.asarray(ds.y_test[: args.limit], np.int64)


def _model_builder(spec: Any, args: argparse.Namespace, total_steps: int) -> Any:
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.models.spec import build_keras_model

    keras = import_keras()
    horizon = min(100, max(1, total_steps // 10))  # train()'s EMA rule (ema_momentum_for)

    def build() -> Any:
        model = build_keras_model(spec, seed=args.seed)
        optimizer = keras.optimizers.RMSprop(
            learning_rate=spec.recipe.learning_rate, use_ema=True, ema_momentum=round(1 - 1 / horizon, 6)
        )
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        return model

    return build


def _checkpoint_writer(args: argparse.Namespace) -> Any:
    def write(end: EpochEnd) -> None:
        ckpt = args.output / f"checkpoint-epoch{end.epoch}.keras"
        with atomic_path(ckpt) as tmp:
            end.model.save(tmp)
        state = {
            "epoch": end.epoch,
            "checkpoint": ckpt.name,
            "config": {"limit": args.limit, "epochs": args.epochs, "batch": args.batch, "seed": args.seed},
            "history": end.history,
            "epoch_seconds": end.epoch_seconds,
        }
        atomic_write_json(args.output / STATE_FILE, state)
        for old in args.output.glob("checkpoint-epoch*.keras"):
            if old != ckpt:
                old.unlink()
        time.sleep(args.step_delay)

    return write


def _print_progress(event: ProgressEvent) -> None:
    if event.description and event.completed in (0, event.total) or event.task == "cluster":
        print(f"[{event.task}] {event.description}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    cluster = cluster_from_env()
    refusal, resume = _preflight(args, cluster.is_chief)
    rendezvous(
        RendezvousConfig(cluster, timeout_s=args.connect_timeout, refusal=refusal), progress=_print_progress
    )
    from edgecnn.core.tfcompat import import_tensorflow
    from edgecnn.models.spec import get_model_spec

    tf = import_tensorflow()
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    with Watchdog(cluster, stall_timeout_s=args.connect_timeout, grace_s=args.grace) as watchdog:
        t0 = time.perf_counter()
        strategy = make_multiworker_strategy(cluster, watchdog)
        spec = get_model_spec("keras-convnet")
        data, x_test, y_test = _load(args, spec)
        config = MultiWorkerFitConfig(cluster, args.epochs, args.batch, seed=args.seed)
        total_steps = args.epochs * math.ceil(len(data.x_train) / config.global_batch)
        if cluster.is_chief:
            args.output.mkdir(parents=True, exist_ok=True)
        result = fit_multiworker(
            config,
            strategy,
            _model_builder(spec, args, total_steps),
            data,
            watchdog=watchdog,
            resume=resume,
            on_epoch_end=_checkpoint_writer(args),
            progress=_print_progress,
        )
        train_s = time.perf_counter() - t0
        probs = predict_local(result.model, x_test)
        accuracy = float((probs.argmax(axis=1) == y_test).mean())
        if cluster.is_chief:
            with atomic_path(args.output / MODEL_FILE) as tmp:
                result.model.save(tmp)
            with contextlib.suppress(FileNotFoundError):
                (args.output / STATE_FILE).unlink()
            for old in args.output.glob("checkpoint-epoch*.keras"):
                old.unlink()
    return {
        "rank": cluster.rank,
        "workers": cluster.size,
        "replicas": result.replicas,
        "global_batch": result.global_batch,
        "initial_epoch": result.initial_epoch,
        "test_accuracy": accuracy,
        "history": result.history,
        "train_s": train_s,
    }


def main(argv: list[str] | None = None) -> int:
    try:
        doc = run(_args(sys.argv[1:] if argv is None else argv))
    except EdgecnnError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr, flush=True)
        return exc.exit_code
    print(json.dumps(doc), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
