"""`make bench-peers`: edgecnn's ONNX exports against Keras, TFLite (XNNPACK) and OpenVINO on this CPU.

For each reference net (keras-convnet, tf1-cnn trained on real MNIST with `edgecnn.train`; a
MobileNetV2(alpha=0.35) at 96x96x3 trained briefly on MNIST digits resized to RGB, peers_mobilenet.py)
exported with `edgecnn.export --quantize all --int8-recipes vnni-pc,avx2` and tuned on this machine with
`edgecnn tune` (the device pick per thread count and batch), every runtime runs in ONE process per
thread count, with the same thread count, in interleaved rounds (each round times every runtime once,
in a rotated order, so a burst of load from other processes hits all of them alike). ONNX variants
run through `edgecnn bench`'s own code path (runtime.open_session with BenchConfig's session options,
IOBinding, bench.timed_loop); Keras runs as a traced tf.function, TFLite through ai_edge_litert's
interpreter and OpenVINO through its CPU plugin (peers_openvino.py), all with the input bound before
timing. Accuracy is measured on each model's real test set.

Ratios to TFLite INT8, and the device pick's ratios to the fastest peer and to edgecnn's FP32, are
the median of per-round ratios; their spread across rounds is reported as the noise.
Results: results/bench_peers.json and results/bench_peers.md (atomic writes).
Trained models, bundles and TFLite files are cached under build/bench_peers (`--work`); delete it
to train and export again.

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
from peers_report import ACCURACY_BOUND_PP, PICK_TAG  # noqa: E402

from edgecnn.core.environment import environment_info  # noqa: E402
from edgecnn.core.outputs import atomic_write_json, atomic_write_text  # noqa: E402

MODELS = ("keras-convnet", "tf1-cnn", "mobilenetv2-96")
REFERENCE = "tflite-int8"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "int8-avx2": "model.int8-avx2.onnx",
              "int8-vnni-pc": "model.int8-vnni-pc.onnx",
              "fp16": "model.fp16.onnx", "dynamic": "model.dynamic.onnx",
              "int8-cpu": "model.int8.cpu.onnx"}  # fmt: skip


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

    from edgecnn.training import TrainConfig, train

    if name == peers_mobilenet.NAME:
        return peers_mobilenet.train_mobilenet(work, data_dir, epochs, log)
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
    """`edgecnn export --quantize all --int8-recipes vnni-pc,avx2` (cached)."""
    from edgecnn.exporting import ExportConfig, export

    bundle = work / name / "bundle"
    if (bundle / "export.json").exists():
        log(f"[{name}] reusing export bundle {bundle}")
        return bundle, json.loads((bundle / "export.json").read_text())
    log(f"[{name}] edgecnn export --quantize all --int8-recipes vnni-pc,avx2")
    result = export(
        ExportConfig(
            model_path=model_path,
            output_dir=bundle,
            quantize=("all",),
            int8_recipes=("vnni-pc", "avx2"),
            dataset=_dataset(name, work),
            data_dir=data_dir,
            force=True,
            latency=False,
        )  # fmt: skip
    )
    return bundle, json.loads(Path(result.json_path).read_text())


def _calibration_images(bundle: Path, dataset: str, data_dir: Path | None) -> np.ndarray:
    """Exactly the images export calibrated INT8 on: QuantizationConfig's seeded draw from x_train."""
    from edgecnn.core.metadata import read_metadata
    from edgecnn.exporting import QuantizationConfig, select_calibration_images
    from edgecnn.runtime.preprocess import prepare_batch

    meta = read_metadata(bundle / "model.onnx")
    qcfg = QuantizationConfig()
    x_train, _ = _test_set(dataset, data_dir, train=True)
    picked = select_calibration_images(x_train, qcfg.calibration_samples, qcfg.seed)
    return prepare_batch(picked, meta)


def prepare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data_dir = Path(args.data_dir) if args.data_dir else None
    manifest: dict[str, Any] = {"models": {}}
    for name in args.models:
        t0 = time.perf_counter()
        manifest["models"][name] = _prepare_model(name, args, work, data_dir)
        manifest["models"][name]["prepare_s"] = round(time.perf_counter() - t0, 1)
    return manifest


def _peer_files(name: str, work: Path, model_path: Path, bundle: Path, keras_model: Any, calib: Any) -> dict:
    import peers_openvino
    import peers_tflite as peers

    files: dict[str, str] = {"keras": str(model_path)}
    for tag, cal in (("tflite-fp32", None), ("tflite-int8", calib)):
        path = work / name / f"model.{tag.split('-')[1]}.tflite"
        if not path.exists():
            log(f"[{name}] TFLite {tag.split('-')[1].upper()} conversion")
            path.write_bytes(peers.tflite_bytes(keras_model, cal))
        files[tag] = str(path)
    if peers_openvino.available():
        files["openvino-fp32"] = str(bundle / ONNX_FILES["fp32"])
        files["openvino-int8"] = str(bundle / ONNX_FILES["int8"])
    for variant, fname in ONNX_FILES.items():
        if (bundle / fname).exists():
            files[f"onnx-{variant}"] = str(bundle / fname)
    return files


def _accuracies(files: dict[str, str], keras_model: Any, x_test_u8: np.ndarray, y: np.ndarray, meta: Any):
    import peers_openvino
    import peers_tflite as peers

    from edgecnn.runtime.preprocess import prepare_batch

    x_test = prepare_batch(x_test_u8, meta)
    acc: dict[str, float] = {"keras": peers.accuracy(peers.KerasRunner(keras_model).predict, x_test, y)}
    for tag in ("tflite-fp32", "tflite-int8"):
        runner = peers.TfliteRunner(Path(files[tag]).read_bytes(), threads=2)
        acc[tag] = peers.accuracy(runner.predict, x_test, y)
    for tag in ("openvino-fp32", "openvino-int8"):
        if tag in files:
            ov = peers_openvino.OpenVinoRunner(Path(files[tag]), threads=2)
            acc[tag] = peers.accuracy(ov.predict, x_test, y)
    for tag, path in files.items():
        if tag.startswith("onnx-"):
            acc[tag] = peers_edgecnn.onnx_accuracy(Path(path), x_test_u8, y)
    return acc


def _prepare_model(name: str, args: argparse.Namespace, work: Path, data_dir: Path | None) -> dict[str, Any]:
    """Train, export, optimize, tune, convert for the peers, cut the stages, measure accuracy."""
    import peers_stages as stages_mod
    import peers_tflite as peers

    from edgecnn.core.metadata import read_metadata

    dataset = _dataset(name, work)
    model_path = _train(name, work, args.mobilenet_epochs if "mobilenet" in name else args.epochs, data_dir)
    bundle, export_doc = _export(name, model_path, work, data_dir)
    peers_edgecnn.optimize_for_this_cpu(name, bundle, data_dir)
    pick = peers_edgecnn.tune_bundle(name, bundle, args, data_dir)
    meta = read_metadata(bundle / "model.onnx")
    calib = _calibration_images(bundle, dataset, data_dir)
    keras_model = peers.load_keras(model_path)
    files = _peer_files(name, work, model_path, bundle, keras_model, calib)
    stages: list[dict[str, str]] = []
    if args.stages and "onnx-int8" in files and dataset == "mnist":
        stages = stages_mod.build_cuts(
            keras_model, Path(files["onnx-int8"]), calib, work / name / "stages", log
        )
        stages.append({"stage": "output", "tflite": files["tflite-int8"], "onnx": files["onnx-int8"]})
    x_test_u8, y_test = _test_set(dataset, data_dir)
    log(f"[{name}] accuracy on the {len(y_test)} real test images")
    acc = _accuracies(files, keras_model, x_test_u8, y_test, meta)
    log(f"[{name}] ready: " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items()))
    return {
        "dataset": dataset,
        "files": files,
        "pick": pick,
        "accuracy": acc,
        "export": {
            "graph_rewrites": export_doc.get("graph_rewrites"),
            "node_counts": export_doc.get("node_counts"),
            "variants": {
                k: {kk: v.get(kk) for kk in ("settings", "notes", "kept", "accuracy") if kk in v}
                for k, v in (export_doc.get("variants") or {}).items()
                if isinstance(v, dict)
            },
        },
        "stages": stages,
    }


# --------------------------------------------------------------------------------------------------
# Stage 2 (one child process per thread count): interleaved timing
# --------------------------------------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    import peers_openvino
    import peers_tflite as peers

    peers.configure_tf_threads(args.threads)
    from edgecnn.core.metadata import read_metadata
    from edgecnn.runtime.preprocess import prepare_batch

    manifest = json.loads(Path(args.manifest).read_text())
    out: dict[str, Any] = {}
    stage_ms: dict[str, Any] = {}
    for name, entry in manifest["models"].items():
        x_test_u8, _ = _test_set(entry["dataset"], Path(args.data_dir) if args.data_dir else None)
        files = entry["files"]
        meta = read_metadata(files["onnx-fp32"])
        keras = peers.KerasRunner(peers.load_keras(files["keras"]))
        tfl = {
            t: peers.TfliteRunner(Path(files[t]).read_bytes(), args.threads)
            for t in ("tflite-fp32", "tflite-int8")
        }
        out[name] = {}
        for batch in args.batches:
            x = prepare_batch(x_test_u8[np.arange(batch) % len(x_test_u8)], meta)
            calls: dict[str, Any] = {"keras": keras.bind(x)}
            keep: list[Any] = []
            for t, r in tfl.items():
                calls[t] = r.bind(x)
            for tag in ("openvino-fp32", "openvino-int8"):
                if tag in files:
                    ov = peers_openvino.OpenVinoRunner(Path(files[tag]), args.threads)
                    calls[tag] = ov.bind(x)
                    keep.append(ov)
            for tag, path in files.items():
                if tag.startswith("onnx-"):
                    fn, owner = peers_edgecnn.onnx_runner(Path(path), args.threads, x)
                    calls[tag] = fn
                    keep.append(owner)  # the session and its bound OrtValues must outlive the timing
            pick = entry["pick"]["per_threads"][str(args.threads)][str(batch)]
            pick_path = Path(files["onnx-fp32"]).parent / pick
            fn, owner = peers_edgecnn.onnx_runner(pick_path, args.threads, x)
            calls[PICK_TAG] = fn
            keep.append(owner)
            rounds, per_round = _interleaved_round_medians(calls, args)
            ref = rounds[REFERENCE]
            stats = {}
            for tag, ms in rounds.items():
                ratios = [m / r for m, r in zip(ms, ref, strict=True)]
                stats[tag] = {
                    "median_ms": statistics.median(ms),
                    "round_medians_ms": ms,
                    "calls_per_round": per_round[tag],
                    "ratio_to_tflite_int8": statistics.median(ratios),
                    "ratio_min": min(ratios),
                    "ratio_max": max(ratios),
                }
            pick_tag = next(t for t, p in files.items() if t.startswith("onnx-") and Path(p) == pick_path)
            stats[PICK_TAG].update(file=pick, accuracy_tag=pick_tag)
            out[name][str(batch)] = stats
            log(f"[t{args.threads}] {name} batch {batch}: " + ", ".join(
                f"{t} {s['median_ms']:.4f}ms x{s['ratio_to_tflite_int8']:.2f}" for t, s in stats.items()
            ))  # fmt: skip
            del keep
            if entry.get("stages"):
                stage_ms.setdefault(name, {})[str(batch)] = _time_stages(entry["stages"], x, args)
    atomic_write_json(args.part, {"threads": args.threads, "results": out, "stages": stage_ms})


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


def _time_stages(stages: list[dict[str, str]], x: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """Cumulative median ms of every INT8 cut, TFLite and ONNX, all in the same interleaved rounds."""
    import peers_tflite as peers

    calls: dict[str, Any] = {}
    keep: list[Any] = []
    for st in stages:
        runner = peers.TfliteRunner(Path(st["tflite"]).read_bytes(), args.threads)
        calls[f"tflite:{st['stage']}"] = runner.bind(x)
        fn, owner = peers_edgecnn.onnx_runner(Path(st["onnx"]), args.threads, x)
        calls[f"onnx:{st['stage']}"] = fn
        keep += [runner, owner]
    rounds, _ = _interleaved_round_medians(calls, args)
    del keep
    return {
        st["stage"]: {rt: statistics.median(rounds[f"{rt}:{st['stage']}"]) for rt in ("tflite", "onnx")}
        for st in stages
    }


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
    ap.add_argument("--no-stages", dest="stages", action="store_false",
                    help="skip the stage-by-stage INT8 breakdown")  # fmt: skip
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
    import peers_openvino
    from peers_report import markdown, summarize, summarize_stages

    from edgecnn.core.isa import this_isa_class

    env = {**environment_info(), "isa_class": this_isa_class(), "openvino": peers_openvino.available()}
    rows, cells = summarize(manifest, parts)
    stage_rows = summarize_stages(manifest, parts)
    document = {
        "benchmark": "bench_peers",
        "config": {k: v for k, v in vars(args).items() if k not in ("child", "manifest", "part", "threads")},
        "environment": env,
        "load_average": os.getloadavg(),
        "accuracy_bound_pp": ACCURACY_BOUND_PP,
        "models": manifest["models"],
        "rows": rows,
        "device_pick_vs_peers": cells,
        "stages": stage_rows,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    out = Path(args.output)
    atomic_write_json(out / "bench_peers.json", document)
    md = markdown(rows, cells, env, args, stage_rows)
    atomic_write_text(out / "bench_peers.md", md)
    print(md)
    log(f"wrote {out / 'bench_peers.json'} and {out / 'bench_peers.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
