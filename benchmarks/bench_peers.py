"""`make bench-peers`: a check of `edgecnn tune` across runtimes on this CPU.

For each reference net (keras-convnet and tf1-cnn trained on real MNIST with `edgecnn.train`; a
MobileNetV2(alpha=0.35) at 96x96x3 trained briefly on MNIST digits resized to RGB, peers_mobilenet.py;
a ResNet-8 on MNIST, peers_resnet.py), exported with `edgecnn.export --quantize int8,fp16
--int8-recipes vnni-pc,avx2,openvino --formats onnx,tflite` and tuned on this machine with
`edgecnn tune` (ORT, OpenVINO f32/bf16 and LiteRT candidates), every candidate tune accepted runs in
ONE process per thread count, with that thread count, in interleaved rounds (each round times every
candidate once, in a rotated order, so a burst of load from other processes hits all of them alike).
ONNX Runtime runs through `edgecnn bench`'s own code path (its session options, IOBinding, ORT's
process-wide pool); OpenVINO and LiteRT through edgecnn's runtime backends (`OpenedModel.runner`).

Per model, thread count and batch it reports the pick, every runtime's best and the fastest accurate
(file, runtime) of the same rounds. Target: the pick within 5% of the fastest (within the 0.3 pp
accuracy bound of ORT FP32, measured on the device) and never slower than the bundle's ORT FP32; and
how far ORT alone stays behind the best. Ratios are medians of per-round ratios, with their range.
Results: results/bench_peers.json and results/bench_peers.md (atomic writes). Trained models and
bundles are cached under build/bench_peers (`--work`); delete it to train and export again.

    .venv/bin/python benchmarks/bench_peers.py [--epochs N] [--threads 1,2] [--rounds 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import peers_edgecnn  # noqa: E402
from peers_report import ACCURACY_BOUND_PP  # noqa: E402

from edgecnn.core.environment import environment_info  # noqa: E402
from edgecnn.core.outputs import atomic_write_json, atomic_write_text  # noqa: E402

MODELS = ("keras-convnet", "tf1-cnn", "mobilenetv2-96", "resnet8")
RECIPES = ("vnni-pc", "avx2", "openvino")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Stage 1 (parent): train, export, convert to TFLite, measure accuracy
# --------------------------------------------------------------------------------------------------
def _dataset(name: str, work: Path) -> str:
    import peers_mobilenet

    return peers_mobilenet.dataset_name(work) if name == peers_mobilenet.NAME else "mnist"


def _test_set(dataset: str, data_dir: Path | None, train: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """uint8 test (or train) images and labels, read by edgecnn's own loaders."""
    from edgecnn.data import load_dataset

    ds = load_dataset(dataset, None if dataset.startswith("folder:") else data_dir, download=False)
    return (np.asarray(ds.x_train), np.asarray(ds.y_train)) if train else (np.asarray(ds.x_test), ds.y_test)


def _train(name: str, work: Path, epochs: int | None, data_dir: Path | None) -> Path:
    import peers_mobilenet
    import peers_resnet

    from edgecnn.training import TrainConfig, train

    if name == peers_mobilenet.NAME:
        return peers_mobilenet.train_mobilenet(work, data_dir, epochs, log)
    if name == peers_resnet.NAME:
        return peers_resnet.train_resnet(work, data_dir, epochs or 1, log)
    run = work / name / "run"
    if (run / "model.keras").exists():
        log(f"[{name}] reusing trained model {run / 'model.keras'}")
        return run / "model.keras"
    log(f"[{name}] training on real MNIST ({'recipe' if epochs is None else epochs} epochs)")
    result = train(
        TrainConfig(
            model=name,
            dataset="mnist",
            epochs=epochs,
            output_dir=run,
            data_dir=data_dir,
            seed=0,
            plots=False,
            force=True,
        )  # fmt: skip
    )
    return Path(result.model_path)


def _export(name: str, model_path: Path, work: Path, data_dir: Path | None) -> tuple[Path, dict[str, Any]]:
    """`edgecnn export --quantize int8,fp16 --int8-recipes ... --formats onnx,tflite` (cached)."""
    from edgecnn.exporting import ExportConfig, export

    bundle = work / name / "bundle"
    if (bundle / "export.json").exists():
        log(f"[{name}] reusing export bundle {bundle}")
        return bundle, json.loads((bundle / "export.json").read_text())
    log(f"[{name}] edgecnn export --quantize int8,fp16 --int8-recipes {','.join(RECIPES)} --formats tflite")
    result = export(
        ExportConfig(
            model_path=model_path,
            output_dir=bundle,
            quantize=("int8", "fp16"),
            int8_recipes=RECIPES,
            formats=("onnx", "tflite"),
            dataset=_dataset(name, work),
            data_dir=data_dir,
            force=True,
            latency=False,
        )  # fmt: skip
    )
    return bundle, json.loads(Path(result.json_path).read_text())


def prepare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data_dir = Path(args.data_dir) if args.data_dir else None
    manifest: dict[str, Any] = {"models": {}}
    for name in args.models:
        t0 = time.perf_counter()
        manifest["models"][name] = _prepare_model(name, args, work, data_dir)
        manifest["models"][name]["prepare_s"] = round(time.perf_counter() - t0, 1)
    return manifest


def _prepare_model(name: str, args: argparse.Namespace, work: Path, data_dir: Path | None) -> dict[str, Any]:
    """Train, export, optimize and tune: the candidates tune accepted, with their accuracy here."""
    epochs = args.mobilenet_epochs if "mobilenet" in name else args.epochs
    model_path = _train(name, work, epochs, data_dir)
    bundle, export_doc = _export(name, model_path, work, data_dir)
    peers_edgecnn.optimize_for_this_cpu(name, bundle, data_dir)
    tuned = peers_edgecnn.tune_bundle(name, bundle, args, data_dir)
    log(f"[{name}] ready: " + ", ".join(f"{c['label']} {c['accuracy']:.4f}" for c in tuned["candidates"]))
    return {
        "dataset": _dataset(name, work),
        "bundle": str(bundle),
        **tuned,
        "export": {
            "graph_rewrites": export_doc.get("graph_rewrites"),
            "variants": {
                k: {kk: v.get(kk) for kk in ("kept", "accuracy", "path") if kk in v}
                for k, v in (export_doc.get("variants") or {}).items()
                if isinstance(v, dict)
            },
        },
    }


# --------------------------------------------------------------------------------------------------
# Stage 2 (one child process per thread count): interleaved timing
# --------------------------------------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    """One thread count: every accepted candidate of every model, per batch, in interleaved rounds."""
    manifest = json.loads(Path(args.manifest).read_text())
    out: dict[str, Any] = {}
    for name, entry in manifest["models"].items():
        x_test_u8, _ = _test_set(entry["dataset"], Path(args.data_dir) if args.data_dir else None)
        out[name] = {}
        for batch in args.batches:
            images = x_test_u8[np.arange(batch) % len(x_test_u8)]
            calls: dict[str, Any] = {}
            keep: list[Any] = []  # sessions and bound inputs must outlive the timing
            for cand in entry["candidates"]:
                fn, owner = peers_edgecnn.candidate_runner(Path(entry["bundle"]), cand, args.threads, images)
                calls[cand["label"]] = fn
                keep.append(owner)
            rounds, per_round = _interleaved_round_medians(calls, args)
            out[name][str(batch)] = {
                label: {"median_ms": statistics.median(ms), "round_medians_ms": ms,
                        "calls_per_round": per_round[label]}
                for label, ms in rounds.items()
            }  # fmt: skip
            pick = entry["picks"][str(args.threads)][str(batch)]
            log(f"[t{args.threads}] {name} batch {batch}: pick {pick} " + ", ".join(
                f"{t} {s['median_ms']:.4f}ms" for t, s in out[name][str(batch)].items()))  # fmt: skip
            del keep
    atomic_write_json(args.part, {"threads": args.threads, "results": out})


def _interleaved_round_medians(
    calls: dict[str, Any], args: argparse.Namespace
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Per call, its median ms in each of `args.rounds` rounds; every round runs every call once."""
    from edgecnn.benchmarking.timing import timed_loop

    # Calls per round from a short warm-up, so every runtime gets about the same wall time.
    per_round = {}
    for tag, fn in calls.items():
        warm = timed_loop(fn, warmup=3, iterations=5, duration_s=None)
        est_s = max(float(np.median(warm)) / 1e9, 1e-6)
        per_round[tag] = int(min(2000, max(3, args.round_seconds / est_s)))
    rounds: dict[str, list[float]] = {tag: [] for tag in calls}
    tags = list(calls)
    for r in range(args.rounds):
        # Rotated order, so no runtime always follows the same one (a 20 ms idle pause before each
        # block was tried against spinning neighbours and made the VM's slow mode more frequent).
        for tag in tags[r % len(tags) :] + tags[: r % len(tags)]:
            ns = timed_loop(calls[tag], warmup=1, iterations=per_round[tag], duration_s=None)
            rounds[tag].append(float(np.median(ns)) / 1e6)
    return rounds, per_round


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS), type=lambda s: [m for m in s.split(",") if m])
    ap.add_argument("--threads-list", "--threads", dest="threads_list", default="1,2",
                    type=lambda s: [int(t) for t in s.split(",")])  # fmt: skip
    ap.add_argument("--batches", default="1,64", type=lambda s: [int(b) for b in s.split(",")])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--round-seconds", type=float, default=0.15)
    ap.add_argument("--epochs", type=int, default=None, help="default: each model's published recipe")
    ap.add_argument("--mobilenet-epochs", type=int, default=2, help="MobileNet's short training")
    ap.add_argument("--work", default=str(ROOT / "build" / "bench_peers"), help="trained models, bundles")
    ap.add_argument("--output", default=str(ROOT / "results"))
    ap.add_argument("--data-dir", default=os.environ.get("EDGECNN_DATA_DIR"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads-one", dest="threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--manifest", help=argparse.SUPPRESS)
    ap.add_argument("--part", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.round_seconds <= 0 or any(b < 1 for b in args.batches):
        ap.error("rounds, round seconds and batch sizes must be positive")
    if any(t < 1 for t in args.threads_list):
        ap.error("thread counts must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args)
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    manifest = prepare(args, work)
    manifest_path = work / "manifest.json"
    atomic_write_json(manifest_path, manifest)
    parts = []
    for threads in args.threads_list:
        part = work / f"timings.t{threads}.json"
        log(f"timing with {threads} thread(s) in a fresh process (interleaved rounds)")
        cmd = [
            sys.executable, __file__, "--child", "--threads-one", str(threads),
            "--manifest", str(manifest_path), "--part", str(part),
            "--batches", ",".join(map(str, args.batches)),
            "--rounds", str(args.rounds), "--round-seconds", str(args.round_seconds),
        ]  # fmt: skip
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        subprocess.run(cmd, check=True)
        parts.append(json.loads(part.read_text()))
    from peers_report import markdown, summarize

    from edgecnn.core.isa import this_isa_class
    from edgecnn.runtime.backends.registry import BACKENDS

    env = {**environment_info(), "isa_class": this_isa_class(),
           "runtimes": {n: (b.missing() or b.version()) for n, b in BACKENDS.items()}}  # fmt: skip
    rows, cells = summarize(manifest, parts)
    document = {
        "benchmark": "bench_peers",
        "config": {k: v for k, v in vars(args).items() if k not in ("child", "manifest", "part", "threads")},
        "environment": env,
        "load_average": os.getloadavg(),
        "accuracy_bound_pp": ACCURACY_BOUND_PP,
        "models": manifest["models"],
        "rows": rows,
        "cells": cells,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    out = Path(args.output)
    atomic_write_json(out / "bench_peers.json", document)
    md = markdown(rows, cells, env, args, manifest["models"])
    atomic_write_text(out / "bench_peers.md", md)
    print(md)
    log(f"wrote {out / 'bench_peers.json'} and {out / 'bench_peers.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
