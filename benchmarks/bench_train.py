"""`make bench-train`: train each MNIST model with its recipe on real MNIST; accuracy and time to accuracy.

For every model: test accuracy after the recipe's epochs beside the published figure, wall time, and
the training wall time until the real test set first reached 99.0% and 99.2% (scored at the end of
every epoch with the weights train() would keep; the scoring time is not counted as training time).
The test set is only ever scored, never used to choose anything: the reported accuracy is the last
epoch's. Models train on all 60,000 training images (no validation split), as the tutorials did.

Results: a table on stdout, results/bench_train.json and results/bench_train.md.
Not a test: it takes ~15-20 minutes on 2 CPU cores for all models (see --models to pick some).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.core.environment import environment_info  # noqa: E402
from edgecnn.core.outputs import atomic_write_json, atomic_write_text  # noqa: E402

MNIST_MODELS = ("keras-convnet", "tf1-cnn", "hvass", "deep-mnist", "mnist-fast")
THRESHOLDS = (0.990, 0.992)
FAST_BUDGET_S = 30.0


def _test_set_timer(keras: Any, x_test: Any, y_test: Any, record: list[dict[str, float]]) -> Any:
    import numpy as np

    from edgecnn.training import averaged_weights

    class TestSetTimer(keras.callbacks.Callback):
        """Score the real test set after each epoch; keep scoring time out of the training clock."""

        def on_train_begin(self, logs: dict | None = None) -> None:
            self._t0 = time.perf_counter()
            self._c0 = time.process_time()
            self._excluded = self._excluded_cpu = 0.0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            t, c = time.perf_counter(), time.process_time()
            train_time = t - self._t0 - self._excluded
            # CPU seconds of this process: on a shared machine wall time >> cpu/cores shows contention.
            cpu_time = c - self._c0 - self._excluded_cpu
            with averaged_weights(self.model):
                probs = self.model.predict(x_test, batch_size=1000, verbose=0)
            acc = float((np.argmax(probs, axis=1) == y_test).mean())
            record.append(
                {"epoch": epoch + 1, "train_s": train_time, "cpu_s": cpu_time, "test_accuracy": acc}
            )
            print(
                f"  epoch {epoch + 1}: test accuracy {acc:.4f} after {train_time:.1f} s "
                f"({cpu_time:.1f} CPU s)",
                file=sys.stderr,
            )
            self._excluded += time.perf_counter() - t
            self._excluded_cpu += time.process_time() - c

    return TestSetTimer()


def run_model(name: str, args: argparse.Namespace, data_dir: Path | None, out_root: Path) -> dict[str, Any]:
    from edgecnn.commands.progress_bars import rich_progress
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.data import load_dataset
    from edgecnn.models import get_model_spec
    from edgecnn.training import TrainConfig, train

    keras = import_keras()
    ds = load_dataset("mnist", data_dir)
    x_test, y_test = ds.normalization.apply(ds.x_test), ds.y_test
    record: list[dict[str, float]] = []
    spec = get_model_spec(name)  # a registry name or a spec file (for trying recipe variants)
    config = TrainConfig(
        model=name,
        dataset="mnist",
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        validation_split=0.0,
        output_dir=out_root / spec.name,
        data_dir=data_dir,
        force=True,
        plots=False,
    )
    print(f"{name}: training ({spec.recipe.published_note})", file=sys.stderr)
    t0 = time.perf_counter()
    bars = contextlib.nullcontext(None) if args.no_progress else rich_progress()
    with bars as progress:
        result = train(config, callbacks=[_test_set_timer(keras, x_test, y_test, record)], progress=progress)
    wall = time.perf_counter() - t0
    reached = {}
    for th in THRESHOLDS:
        hit = next((r for r in record if r["test_accuracy"] >= th), None)
        reached[f"{th:.3f}"] = None if hit is None else {"train_s": hit["train_s"], "epoch": hit["epoch"]}
    within_budget = [r for r in record if r["train_s"] <= FAST_BUDGET_S]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cfg = result.document["config"]
    return {
        "model": spec.name,
        "epochs": result.epochs,
        "optimizer": cfg["optimizer"],
        "learning_rate": cfg["learning_rate"],
        "batch_size": cfg["batch_size"],
        "lr_schedule": cfg["lr_schedule"],
        "ema_momentum": cfg["ema_momentum"],
        "test_accuracy": result.test_accuracy,
        "test_loss": result.test_loss,
        "published_accuracy": spec.recipe.published_accuracy,
        "published_note": spec.recipe.published_note,
        "meets_published": None
        if spec.recipe.published_accuracy is None
        else result.test_accuracy >= spec.recipe.published_accuracy,
        "train_s_including_scoring": result.timings["train_s"],
        "train_s_excluding_scoring": record[-1]["train_s"] if record else None,
        "train_cpu_s": record[-1]["cpu_s"] if record else None,
        "wall_s": wall,
        "per_epoch": record,
        "time_to_accuracy": reached,
        "best_within_30s": max((r["test_accuracy"] for r in within_budget), default=None),
        "load_average_1min_after": load,
        "params": result.params,
        "macs": result.macs,
    }


def _fmt_time(hit: dict[str, Any] | None) -> str:
    return "not reached" if hit is None else f"{hit['train_s']:.1f} s (ep {hit['epoch']})"


def markdown(rows: list[dict[str, Any]], env: dict[str, Any]) -> str:
    cpu = env["hardware"]["cpu"]
    lines = [
        "# edgecnn bench-train: MNIST recipes on real MNIST",
        "",
        f"Machine: {cpu['model']} ({cpu['usable_cores']} usable cores), "
        f"TensorFlow {env['versions'].get('tensorflow', '?')}, Keras {env['versions'].get('keras', '?')}.",
        "Trained on all 60,000 training images; test accuracy on the real 10,000-image test set after the "
        "last epoch. Times are training wall time (test scoring excluded); CPU time is the process's CPU "
        f"seconds over the same span (wall time well above CPU time / {cpu['usable_cores']} means the "
        "machine was busy with other work).",
        "",
        "| model | epochs | recipe | test accuracy | published | train time | CPU time | to 99.0% "
        "| to 99.2% |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        pub = "-" if r["published_accuracy"] is None else f"{r['published_accuracy']:.2%}"
        recipe = f"{r['optimizer']} {r['learning_rate']:g}, batch {r['batch_size']}"
        if r["lr_schedule"] != "constant":
            recipe += f", {r['lr_schedule']}"
        lines.append(
            f"| {r['model']} | {r['epochs']} | {recipe} | {r['test_accuracy']:.2%} | {pub} | "
            f"{r['train_s_excluding_scoring']:.1f} s | {r['train_cpu_s']:.1f} s | "
            f"{_fmt_time(r['time_to_accuracy']['0.990'])} | "
            f"{_fmt_time(r['time_to_accuracy']['0.992'])} |"
        )
    fast = [r for r in rows if r["model"] == "mnist-fast"]
    if fast:
        f = fast[0]
        best = f["best_within_30s"]
        lines += [
            "",
            f"Fast recipe (mnist-fast): best test accuracy within {FAST_BUDGET_S:.0f} s of training: "
            + ("-" if best is None else f"{best:.2%}")
            + f"; time to 99.2%: {_fmt_time(f['time_to_accuracy']['0.992'])}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MNIST_MODELS), help="comma-separated registry names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs (tuning only)")
    parser.add_argument("--batch-size", type=int, default=None, help="override (tuning only)")
    parser.add_argument("--lr", type=float, default=None, help="override (tuning only)")
    parser.add_argument("--data-dir", type=Path, default=None, help="[default: $EDGECNN_DATA_DIR, cache]")
    parser.add_argument("--output", type=Path, default=ROOT / "results", help="where the JSON/markdown go")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from edgecnn.core.errors import EdgecnnError

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    data_dir = args.data_dir or (
        Path(os.environ["EDGECNN_DATA_DIR"]) if os.environ.get("EDGECNN_DATA_DIR") else None
    )
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="edgecnn-bench-train-") as tmp:
            for name in names:
                rows.append(run_model(name, args, data_dir, Path(tmp)))
    except EdgecnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    env = environment_info()
    overrides = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr") if getattr(args, k) is not None}
    doc = {
        "benchmark": "bench-train",
        "seed": args.seed,
        "overrides": overrides,
        "results": rows,
        "environment": env,
    }
    suffix = "" if not overrides and set(names) == set(MNIST_MODELS) else "_partial"
    atomic_write_json(args.output / f"bench_train{suffix}.json", doc)
    md = markdown(rows, env)
    atomic_write_text(args.output / f"bench_train{suffix}.md", md)
    print(md)
    print(f"saved {args.output / f'bench_train{suffix}.json'} and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
