"""Why OpenVINO ran edgecnn's QDQ INT8 slower than its own FP32 (issue 19): one bundle's files through
OpenVINO's CPU plugin, side by side in interleaved rounds with ONNX Runtime as the reference:

- OpenVINO f32 and bf16 (INFERENCE_PRECISION_HINT) on model.onnx;
- OpenVINO on every QDQ INT8 file of the bundle (model.int8.onnx and each recipe's model.int8-*.onnx);
- NNCF's post-training quantization of the same model.onnx on the same calibration images, twice: NNCF's
  ONNX backend (a QDQ .onnx in NNCF's layout) and NNCF's OpenVINO backend (an OpenVINO IR);
- ORT FP32 and ORT on model.int8.onnx, for the ratio that matters to tune.

Each row's test-set accuracy is measured too (bf16 changes numbers). Prints a markdown table with the
CPU's instruction sets and writes the same as JSON. Benchmark code, not part of the edgecnn package.

    python benchmarks/openvino_int8.py BUNDLE --dataset mnist --threads 1,2 --batches 1,64
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


class OvRunner:
    """One model (ONNX or IR) compiled by OpenVINO's CPU plugin with a static batch and a precision hint."""

    def __init__(self, path: Path, threads: int, precision: str) -> None:
        import openvino as ov

        self.ov, self.core, self.path = ov, ov.Core(), path
        self.threads, self.precision, self.batch = threads, precision, -1

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape[0] != self.batch:
            model = self.core.read_model(str(self.path))
            model.reshape({model.inputs[0].get_any_name(): list(x.shape)})
            config = {"INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                      "INFERENCE_PRECISION_HINT": self.precision, "ENABLE_CPU_PINNING": False}  # fmt: skip
            self.compiled = self.core.compile_model(model, "CPU", config)
            self.request = self.compiled.create_infer_request()
            self.batch = x.shape[0]
        self.keep = x
        self.request.set_input_tensor(self.ov.Tensor(x, shared_memory=True))
        return self.request.infer

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.bind(x)()
        return np.array(self.request.get_output_tensor(0).data, copy=True)

    def exec_precisions(self) -> dict[str, int]:
        """Per runtime precision, how many Convolution layers of the compiled model ran in it (the
        runtime graph's own word: OpenVINO's CPU plugin runs a conv in int8 only with symmetric weights)."""
        counts: dict[str, int] = {}
        for op in self.compiled.get_runtime_model().get_ops():
            info = op.get_rt_info()
            if str(info["layerType"].astype(str)) == "Convolution":
                p = str(info["runtimePrecision"].astype(str))
                counts[p] = counts.get(p, 0) + 1
        return counts


class OrtRunner:
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.name = self.session.get_inputs()[0].name

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        feeds = {self.name: np.ascontiguousarray(x, dtype=np.float32)}
        return lambda: self.session.run(None, feeds)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def nncf_models(fp32: Path, calibration: np.ndarray, out: Path) -> dict[str, Path]:
    """NNCF's INT8 of model.onnx on the export's calibration images: ONNX backend and OpenVINO backend."""
    import nncf
    import onnx
    import openvino as ov

    made: dict[str, Path] = {}
    items = [calibration[i : i + 1] for i in range(len(calibration))]
    model = onnx.load(str(fp32))
    name = model.graph.input[0].name
    q_onnx = nncf.quantize(model, nncf.Dataset(items, lambda x: {name: x}), subset_size=len(items))
    made["nncf-onnx"] = out / "model.int8-nncf.onnx"
    onnx.save(q_onnx, str(made["nncf-onnx"]))
    q_ov = nncf.quantize(ov.Core().read_model(str(fp32)), nncf.Dataset(items), subset_size=len(items))
    made["nncf-ir"] = out / "model.int8-nncf.xml"
    ov.save_model(q_ov, str(made["nncf-ir"]))
    return made


def images(bundle: Path, dataset: str, data_dir: Path | None, limit: int) -> tuple[Any, ...]:
    from edgecnn.core.metadata import read_metadata
    from edgecnn.data import load_dataset
    from edgecnn.exporting import QuantizationConfig, select_calibration_images
    from edgecnn.runtime.preprocess import prepare_batch

    meta = read_metadata(bundle / "model.onnx")
    ds = load_dataset(dataset, None if dataset.startswith("folder:") else data_dir, download=False)
    q = QuantizationConfig()
    cal = prepare_batch(
        select_calibration_images(np.asarray(ds.x_train), q.calibration_samples, q.seed), meta
    )
    return cal, prepare_batch(np.asarray(ds.x_test[:limit]), meta), np.asarray(ds.y_test[:limit])


def candidates(bundle: Path, extra: dict[str, Path], threads: int) -> dict[str, Any]:
    rows: dict[str, Any] = {
        "ort fp32": OrtRunner(bundle / "model.onnx", threads),
        "ort int8": OrtRunner(bundle / "model.int8.onnx", threads),
        "ov f32": OvRunner(bundle / "model.onnx", threads, "f32"),
        "ov bf16": OvRunner(bundle / "model.onnx", threads, "bf16"),
    }
    for path in sorted(bundle.glob("model.int8*.onnx")):
        if not path.name.endswith(".cpu.onnx"):  # `edgecnn optimize`d: ORT's own graph, not for OpenVINO
            rows[f"ov {path.name}"] = OvRunner(path, threads, "f32")
    for tag, path in extra.items():
        rows[f"ov {tag}"] = OvRunner(path, threads, "f32")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--round-seconds", type=float, default=0.15)
    ap.add_argument("--eval-limit", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from edgecnn.benchmarking.timing import interleaved_rounds_by_round
    from edgecnn.core.environment import environment_info

    work = args.out or args.bundle.parent / "openvino-int8"
    work.mkdir(parents=True, exist_ok=True)
    cal, x_test, y = images(args.bundle, args.dataset, args.data_dir, args.eval_limit)
    t0 = time.perf_counter()
    extra = nncf_models(args.bundle / "model.onnx", cal, work)
    doc: dict[str, Any] = {
        "nncf_s": round(time.perf_counter() - t0, 1),
        "env": environment_info(),
        "cells": [],
    }
    accuracy, precisions = {}, {}
    for name, runner in candidates(args.bundle, extra, 2).items():
        probs = np.concatenate([runner.predict(x_test[i : i + 250]) for i in range(0, len(x_test), 250)])
        accuracy[name] = float(np.mean(probs.argmax(1) == y))
        if isinstance(runner, OvRunner):
            precisions[name] = runner.exec_precisions()
    doc["accuracy"], doc["exec_precisions"] = accuracy, precisions
    for threads in map(int, args.threads.split(",")):
        rows = candidates(args.bundle, extra, threads)
        for batch in map(int, args.batches.split(",")):
            x = np.concatenate([x_test] * (1 + batch // len(x_test)))[:batch]
            runners = {name: r.bind(x) for name, r in rows.items()}
            by_round = interleaved_rounds_by_round(
                runners, args.rounds, duration_per_round_s=args.round_seconds, warmup=3)  # fmt: skip
            ms = {n: float(np.median([np.median(b) for b in blocks])) for n, blocks in by_round.items()}
            doc["cells"].append({"threads": threads, "batch": batch, "median_ms": ms})
            print(f"threads {threads} batch {batch}: " + ", ".join(f"{n} {v:.4g}" for n, v in ms.items()))
    (work / "openvino_int8.json").write_text(json.dumps(doc, indent=1))
    print(markdown(doc))


def markdown(doc: dict[str, Any]) -> str:
    cells = doc["cells"]
    names = list(cells[0]["median_ms"])
    head = (
        "| runtime / file | acc % | " + " | ".join(f"{c['threads']}t b{c['batch']} ms" for c in cells) + " |"
    )
    cpu = doc["env"]["hardware"]["cpu"]
    lines = [f"CPU {cpu['model']}, {cpu['usable_cores']} cores; ISA flags: {', '.join(cpu['flags'])}", "",
             head, "| --- | ---: |" + " ---: |" * len(cells)]  # fmt: skip
    for n in names:
        times = " | ".join(f"{c['median_ms'][n]:.4g}" for c in cells)
        lines.append(f"| {n} | {doc['accuracy'][n] * 100:.2f} | {times} |")
    lines += ["", "OpenVINO: Convolution layers per runtime precision:"]
    lines += [f"- {n}: {p}" for n, p in doc["exec_precisions"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
