"""`make bench-peers`: edgecnn's ONNX exports against Keras and TFLite (XNNPACK) on this CPU.

For each reference net (keras-convnet, tf1-cnn) trained on real MNIST with `edgecnn.train` and
exported with `edgecnn.export --quantize all`, every runtime runs in ONE process per thread count,
with the same thread count, in interleaved rounds (each round times every runtime once, so a burst of
load from other processes hits all of them alike). ONNX variants run through `edgecnn bench`'s own
code path (runtime.open_session with BenchConfig's session options, IOBinding, bench.timed_loop);
Keras runs as a traced tf.function and TFLite through ai_edge_litert's interpreter, both with the
input bound before timing. Accuracy is measured on the full 10k real test set.

Ratios to TFLite INT8 are the median of per-round ratios; their spread across rounds is reported
as the noise. Results: results/bench_peers.json and results/bench_peers.md (atomic writes).
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

from edgecnn.core.environment import environment_info  # noqa: E402
from edgecnn.core.outputs import atomic_write_json, atomic_write_text  # noqa: E402

MODELS = ("keras-convnet", "tf1-cnn")
REFERENCE = "tflite-int8"
ACCURACY_BOUND_PP = 0.3  # the bound for "edgecnn's best export"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx",
              "dynamic": "model.dynamic.onnx", "int8-cpu": "model.int8.cpu.onnx"}  # fmt: skip
LABELS = {
    "keras": "Keras tf.function (FP32)",
    "tflite-fp32": "TFLite FP32 (XNNPACK)",
    "tflite-int8": "TFLite INT8 (XNNPACK)",
    "onnx-fp32": "edgecnn ONNX FP32",
    "onnx-int8": "edgecnn ONNX INT8",
    "onnx-fp16": "edgecnn ONNX FP16",
    "onnx-dynamic": "edgecnn ONNX dynamic INT8",
    "onnx-int8-cpu": "edgecnn ONNX INT8, `edgecnn optimize`d for this CPU",
}
ONE_THREAD_TAG = "onnx-int8-best-1thread"
LABELS[ONE_THREAD_TAG] = "(info) fastest ONNX INT8 with 1 ORT thread"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Stage 1 (parent): train, export, convert to TFLite, measure accuracy
# --------------------------------------------------------------------------------------------------
def _test_set(data_dir: Path | None) -> tuple[Any, np.ndarray, np.ndarray]:
    from edgecnn.data import load_dataset

    ds = load_dataset("mnist", data_dir, download=False)
    return ds, np.asarray(ds.x_test), np.asarray(ds.y_test)


def _train(name: str, work: Path, epochs: int | None, data_dir: Path | None) -> Path:
    from edgecnn.training import TrainConfig, train

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
    from edgecnn.exporting import ExportConfig, export

    bundle = work / name / "bundle"
    if (bundle / "export.json").exists():
        log(f"[{name}] reusing export bundle {bundle}")
        return bundle, json.loads((bundle / "export.json").read_text())
    log(f"[{name}] edgecnn export --quantize all")
    result = export(
        ExportConfig(
            model_path=model_path,
            output_dir=bundle,
            quantize=("all",),
            data_dir=data_dir,
            force=True,
            latency=False,
        )  # fmt: skip
    )
    return bundle, json.loads(Path(result.json_path).read_text())


def _optimize_for_this_cpu(name: str, bundle: Path, data_dir: Path | None) -> None:
    """`edgecnn optimize model.int8.onnx` on this machine (again if the cached one was made elsewhere)."""
    import onnx

    from edgecnn.runtime.cpu_optimize import OptimizeConfig, optimize
    from edgecnn.runtime.target import current_cpu_target, read_target, target_mismatch

    out = bundle / ONNX_FILES["int8-cpu"]
    if out.exists():
        props = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
        target = read_target(props)
        if target is not None and target_mismatch(target, current_cpu_target()) is None:
            return
    log(f"[{name}] edgecnn optimize model.int8.onnx (for this CPU)")
    optimize(OptimizeConfig(model=bundle / ONNX_FILES["int8"], output=out, force=True, data_dir=data_dir))


def _calibration_images(bundle: Path, data_dir: Path | None) -> np.ndarray:
    """Exactly the images export calibrated INT8 on: QuantizationConfig's seeded draw from x_train."""
    from edgecnn.core.metadata import read_metadata
    from edgecnn.data import load_dataset
    from edgecnn.exporting import QuantizationConfig, select_calibration_images
    from edgecnn.runtime.preprocess import prepare_batch

    meta = read_metadata(bundle / "model.onnx")
    qcfg = QuantizationConfig()
    ds = load_dataset("mnist", data_dir, download=False)
    picked = select_calibration_images(np.asarray(ds.x_train), qcfg.calibration_samples, qcfg.seed)
    return prepare_batch(picked, meta)


def _onnx_accuracy(path: Path, x_test_u8: np.ndarray, y: np.ndarray) -> float:
    from edgecnn import runtime
    from edgecnn.core.metadata import read_metadata
    from edgecnn.runtime.preprocess import prepare_batch

    session, _ = runtime.open_session(path, runtime.SessionConfig(device="cpu"))
    meta = read_metadata(path)
    name = session.get_inputs()[0].name
    correct = 0
    for i in range(0, len(x_test_u8), 500):
        probs = session.run(None, {name: prepare_batch(x_test_u8[i : i + 500], meta)})[0]
        correct += int((probs.argmax(-1) == y[i : i + 500]).sum())
    return correct / len(y)


def prepare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import peers_stages as stages_mod
    import peers_tflite as peers

    from edgecnn.core.metadata import read_metadata
    from edgecnn.runtime.preprocess import prepare_batch

    data_dir = Path(args.data_dir) if args.data_dir else None
    _, x_test_u8, y_test = _test_set(data_dir)
    manifest: dict[str, Any] = {"models": {}}
    for name in args.models:
        t0 = time.perf_counter()
        model_path = _train(name, work, args.epochs, data_dir)
        bundle, export_doc = _export(name, model_path, work, data_dir)
        _optimize_for_this_cpu(name, bundle, data_dir)
        meta = read_metadata(bundle / "model.onnx")
        x_test = prepare_batch(x_test_u8, meta)
        calib = _calibration_images(bundle, data_dir)
        keras_model = peers.load_keras(model_path)
        files: dict[str, str] = {"keras": str(model_path)}
        for tag, cal in (("tflite-fp32", None), ("tflite-int8", calib)):
            path = work / name / f"model.{tag.split('-')[1]}.tflite"
            if not path.exists():
                log(f"[{name}] TFLite {tag.split('-')[1].upper()} conversion")
                path.write_bytes(peers.tflite_bytes(keras_model, cal))
            files[tag] = str(path)
        for variant, fname in ONNX_FILES.items():
            if (bundle / fname).exists():
                files[f"onnx-{variant}"] = str(bundle / fname)
        stages: list[dict[str, str]] = []
        if args.stages and "onnx-int8" in files:
            stages = stages_mod.build_cuts(
                keras_model, Path(files["onnx-int8"]), calib, work / name / "stages", log
            )
            stages.append({"stage": "output", "tflite": files["tflite-int8"], "onnx": files["onnx-int8"]})
        log(f"[{name}] accuracy on the {len(y_test)} real test images")
        acc: dict[str, float] = {}
        keras_runner = peers.KerasRunner(keras_model)
        acc["keras"] = peers.accuracy(keras_runner.predict, x_test, y_test)
        for tag in ("tflite-fp32", "tflite-int8"):
            runner = peers.TfliteRunner(Path(files[tag]).read_bytes(), threads=2)
            acc[tag] = peers.accuracy(runner.predict, x_test, y_test)
        for tag, path in files.items():
            if tag.startswith("onnx-"):
                acc[tag] = _onnx_accuracy(Path(path), x_test_u8, y_test)
        manifest["models"][name] = {
            "files": files,
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
            "prepare_s": round(time.perf_counter() - t0, 1),
        }
        log(f"[{name}] ready: " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items()))
    return manifest


# --------------------------------------------------------------------------------------------------
# Stage 2 (one child process per thread count): interleaved timing
# --------------------------------------------------------------------------------------------------
def _onnx_runner(path: Path, threads: int, x: np.ndarray) -> tuple[Any, Any]:
    """`edgecnn bench`'s code path: its session options, IOBinding with pre-bound OrtValues."""
    from edgecnn import runtime
    from edgecnn.benchmarking import BenchConfig

    cfg = BenchConfig(models=(path,), batch_sizes=(x.shape[0],), thread_counts=(threads,))
    session, provider = runtime.open_session(path, cfg.session_config(threads), [])
    feeds = {session.get_inputs()[0].name: np.ascontiguousarray(x)}
    bound = runtime.bind_io(session, provider, feeds)
    return bound.run, (session, bound)


def child(args: argparse.Namespace) -> None:
    import peers_tflite as peers

    peers.configure_tf_threads(args.threads)
    from edgecnn.core.metadata import read_metadata
    from edgecnn.runtime.preprocess import prepare_batch

    manifest = json.loads(Path(args.manifest).read_text())
    _, x_test_u8, _ = _test_set(Path(args.data_dir) if args.data_dir else None)
    out: dict[str, Any] = {}
    stage_ms: dict[str, Any] = {}
    for name, entry in manifest["models"].items():
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
            for tag, path in files.items():
                if tag.startswith("onnx-"):
                    fn, owner = _onnx_runner(Path(path), args.threads, x)
                    calls[tag] = fn
                    keep.append(owner)  # the session and its bound OrtValues must outlive the timing
            best_int8 = files.get("onnx-int8-cpu") or files.get("onnx-int8")
            if args.threads > 1 and best_int8:
                # Shown for information, never counted as "same threads": on tiny batch-1 kernels ORT's
                # thread pool costs more than it gains, so a deployment would pin one thread.
                fn, owner = _onnx_runner(Path(best_int8), 1, x)
                calls[ONE_THREAD_TAG] = fn
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
    for _ in range(args.rounds):
        for tag, fn in calls.items():
            ns = timed_loop(fn, warmup=1, iterations=per_round[tag], duration_s=None)
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
        fn, owner = _onnx_runner(Path(st["onnx"]), args.threads, x)
        calls[f"onnx:{st['stage']}"] = fn
        keep += [runner, owner]
    rounds, _ = _interleaved_round_medians(calls, args)
    del keep
    return {
        st["stage"]: {rt: statistics.median(rounds[f"{rt}:{st['stage']}"]) for rt in ("tflite", "onnx")}
        for st in stages
    }


# --------------------------------------------------------------------------------------------------
# Stage 3 (parent): merge, pick edgecnn's best export, write JSON + markdown
# --------------------------------------------------------------------------------------------------
def summarize(manifest: dict[str, Any], parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for part in parts:
        t = part["threads"]
        for name, by_batch in part["results"].items():
            acc = manifest["models"][name]["accuracy"]
            fp32 = acc.get("onnx-fp32", acc["keras"])
            for batch, stats in by_batch.items():
                onnx_ok = [
                    tag for tag in stats
                    if tag.startswith("onnx-") and tag != ONE_THREAD_TAG
                    and acc.get(tag, 0.0) >= fp32 - ACCURACY_BOUND_PP / 100 - 1e-12
                ]  # fmt: skip
                best = min(onnx_ok, key=lambda tg: stats[tg]["median_ms"]) if onnx_ok else None
                for tag, s in stats.items():
                    acc_tag = "onnx-int8" if tag == ONE_THREAD_TAG else tag
                    rows.append({
                        "model": name, "threads": t, "batch": int(batch), "runtime": tag,
                        "label": LABELS.get(tag, tag), "median_ms": s["median_ms"],
                        "ratio_to_tflite_int8": s["ratio_to_tflite_int8"],
                        "ratio_range": [s["ratio_min"], s["ratio_max"]],
                        "accuracy": acc.get(acc_tag), "best_export": tag == best,
                        "round_medians_ms": s["round_medians_ms"], "calls_per_round": s["calls_per_round"],
                    })  # fmt: skip
    return rows


def summarize_stages(manifest: dict[str, Any], parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import peers_stages as stages_mod

    rows = []
    for part in parts:
        for name, by_batch in (part.get("stages") or {}).items():
            order = [st["stage"] for st in manifest["models"][name]["stages"]]
            for batch, cumulative in by_batch.items():
                for row in stages_mod.stage_rows(cumulative, order):
                    rows.append({"model": name, "threads": part["threads"], "batch": int(batch), **row})
    return rows


def stages_markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "## Where the time goes: INT8, stage by stage",
        "",
        "Both INT8 models cut after each stage (TFLite: the Keras model cut and converted with the same "
        "calibration and int8 output; ONNX: edgecnn's portable INT8 export cut at the same layer's int8 "
        "tensor, in NHWC), so every cut ends on an int8 tensor with no extra dequantize or transpose. "
        "Timed unprofiled in the same interleaved rounds. Stage time = difference of consecutive "
        "cumulative medians, so a stage of a few µs can read slightly negative from noise (no ratio is "
        "shown under 1 µs). `output` = the rest of the network.",
        "",
        "| model | threads | batch | stage ends at | TFLite INT8 µs | edgecnn ONNX INT8 µs | ONNX / TFLite |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        small = min(r["tflite_ms"], r["onnx_ms"]) < 1e-3  # differences of ~1 µs are noise
        ratio = "-" if r["onnx_over_tflite"] is None or small else f"{r['onnx_over_tflite']:.2f}"
        lines.append(
            f"| {r['model']} | {r['threads']} | {r['batch']} | {r['stage']} | {r['tflite_ms'] * 1e3:.1f} | "
            f"{r['onnx_ms'] * 1e3:.1f} | {ratio} |"
        )
    return lines


def markdown(
    rows: list[dict[str, Any]],
    env: dict[str, Any],
    args: argparse.Namespace,
    stage_rows: list[dict[str, Any]],
) -> str:
    cpu = env["hardware"]["cpu"]
    v = env["versions"]
    lines = [
        "# edgecnn vs Keras and TFLite (XNNPACK): latency and accuracy on real MNIST",
        "",
        f"Machine: {cpu['model']} ({cpu['arch']}, {cpu['usable_cores']} usable cores; "
        f"{', '.join(cpu['flags'])}). onnxruntime {v.get('onnxruntime-gpu') or v.get('onnxruntime')}, "
        f"tensorflow {v.get('tensorflow')}, ai-edge-litert {v.get('ai-edge-litert')}.",
        "",
        f"Median latency per call over {args.rounds} interleaved rounds (~{args.round_seconds}s per "
        "runtime per round), same thread count for every runtime. Ratio = median of per-round ratios "
        "to TFLite INT8 (range across rounds in brackets: the noise). Accuracy on the 10k test set. "
        f"**bold** = edgecnn's best export within {ACCURACY_BOUND_PP} pp of ONNX FP32.",
        "",
        "| model | threads | batch | runtime | median ms | x TFLite INT8 [range] | accuracy |",
        "| --- | ---: | ---: | --- | ---: | --- | ---: |",
    ]
    for r in rows:
        label = f"**{r['label']}**" if r["best_export"] else r["label"]
        lo, hi = r["ratio_range"]
        acc = f"{r['accuracy'] * 100:.2f}%" if r["accuracy"] is not None else "-"
        lines.append(
            f"| {r['model']} | {r['threads']} | {r['batch']} | {label} | {r['median_ms']:.4f} | "
            f"{r['ratio_to_tflite_int8']:.2f} [{lo:.2f}-{hi:.2f}] | {acc} |"
        )
    lines += ["", "Best export vs TFLite INT8 (target <= 1.00x):", ""]
    for r in rows:
        if r["best_export"]:
            ok = "meets" if r["ratio_to_tflite_int8"] <= 1.0 else "misses"
            lines.append(
                f"- {r['model']}, {r['threads']} thread(s), batch {r['batch']}: {r['label']} "
                f"{r['ratio_to_tflite_int8']:.2f}x ({ok} the target)"
            )
    lines += stages_markdown(stage_rows)
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS), type=lambda s: [m for m in s.split(",") if m])
    ap.add_argument("--threads-list", "--threads", dest="threads_list", default="1,2",
                    type=lambda s: [int(t) for t in s.split(",")])  # fmt: skip
    ap.add_argument("--batches", default="1,64", type=lambda s: [int(b) for b in s.split(",")])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--round-seconds", type=float, default=0.15)
    ap.add_argument("--epochs", type=int, default=None, help="default: each model's published recipe")
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
    env = environment_info()
    rows = summarize(manifest, parts)
    stage_rows = summarize_stages(manifest, parts)
    document = {
        "benchmark": "bench_peers",
        "config": {k: v for k, v in vars(args).items() if k not in ("child", "manifest", "part", "threads")},
        "environment": env,
        "load_average": os.getloadavg(),
        "accuracy_bound_pp": ACCURACY_BOUND_PP,
        "models": manifest["models"],
        "rows": rows,
        "stages": stage_rows,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    out = Path(args.output)
    atomic_write_json(out / "bench_peers.json", document)
    md = markdown(rows, env, args, stage_rows)
    atomic_write_text(out / "bench_peers.md", md)
    print(md)
    log(f"wrote {out / 'bench_peers.json'} and {out / 'bench_peers.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
