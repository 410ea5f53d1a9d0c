"""`make bench-zoo`: conformance of the models users bring, in two tables.

Trained user models (benchmarks/zoo_models.py): small classifiers with the layers users' models have
(Normalization adapted and explicit, in-model Resizing, squeeze-and-excitation, channel shuffle through
5-D, swish, hard-swish, a separate Softmax layer, grouped convolutions, LayerNormalization), each
trained for 300 steps on real MNIST, saved as .keras and exported with `edgecnn.export` (INT8 + FP16,
the default accuracy bound). Each row: parity vs Keras, the input contract detected, FP32/INT8/FP16
accuracy on the 10,000 MNIST test images next to Keras' own, and the INT8 setting that kept accuracy
(the accuracy-aware search's pick; the worst layers by SQNR when none did).

keras.applications architectures, keras.applications built with weights=None at
their usual input sizes plus two hand-built ones (Concatenate branches, SeparableConv2D), exported
through `edgecnn.export` with no labelled data (the path a user's own model takes).

For each model: export succeeds (or the one-line reason), the parity gate holds at batch 1 and 8
(max |Δ| <= 1e-4 on probabilities, random images), INT8 (calibrated on MNIST digits resized to the model
input and made RGB: real images, not noise) and FP16 are built, loaded and run, and the input contract is
right: raw pixels for the models that preprocess inside (EfficientNet, MobileNetV3, ConvNeXt), the
caller's `preprocess_input` stated with --normalization for the others. Weights stay random, but each
BatchNormalization layer gets the statistics of its input on 16 digit images (see
`set_batchnorm_statistics`) so that the logits have ordinary scale instead of ~1e-10. INT8 top-1
agreement is measured on the calibration images; with random weights many predictions are close calls,
so it is a plumbing check, not an accuracy claim. Latency is export's side-by-side check (interleaved rounds,
batch 1) on this CPU; the machine may be shared, so read the ratios, not the absolute numbers.

Results: results/bench_zoo.json and results/bench_zoo.md (atomic writes).

    .venv/bin/python benchmarks/bench_zoo.py [--models MobileNetV2,ResNet50] [--size 96]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgecnn.core.environment import environment_info  # noqa: E402
from edgecnn.core.errors import EdgecnnError  # noqa: E402
from edgecnn.core.outputs import atomic_write_json, atomic_write_text  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_models  # noqa: E402

CLASSES = 10
# keras.applications' preprocess_input for the models that do not preprocess inside (their source:
# mobilenet_v2/nasnet "tf", densenet "torch", resnet "caffe"). Caffe also flips RGB to BGR, which a
# per-channel normalization cannot express; with random weights the channel order is immaterial.
CAFFE = "scale=1,mean=103.939/116.779/123.68,std=1/1/1"
ZOO: dict[str, tuple[int, str | None]] = {  # name -> (usual input size, --normalization or None: in-model)
    "MobileNetV2": (224, "tf"),
    "MobileNetV3Small": (224, None),
    "EfficientNetB0": (224, None),
    "ResNet50": (224, CAFFE),
    "DenseNet121": (224, "imagenet"),
    "NASNetMobile": (224, "tf"),
    "ConvNeXtTiny": (224, None),
    "ConcatBranches": (96, None),
    "SeparableConvNet": (96, None),
}


def build(name: str, size: int) -> Any:
    from edgecnn.core.tfcompat import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    shape = (size, size, 3)
    if hasattr(keras.applications, name):
        # Logits (no softmax): random weights give near-uniform probabilities, on which parity and INT8
        # agreement would pass trivially; logits show the real differences.
        app = getattr(keras.applications, name)
        return app(weights=None, input_shape=shape, classes=CLASSES, classifier_activation=None)
    inp = keras.Input(shape, name="input")
    x = keras.layers.Rescaling(1.0 / 255.0)(inp)
    if name == "ConcatBranches":  # Inception-style: parallel 1x1 / 3x3 / pooled branches concatenated
        x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
        branches = [
            keras.layers.Conv2D(8, 1, activation="relu")(x),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x),
            keras.layers.Conv2D(8, 1)(keras.layers.MaxPooling2D(3, 1, padding="same")(x)),
        ]
        x = keras.layers.Concatenate()(branches)
    else:  # SeparableConvNet: depthwise-separable blocks
        for filters in (16, 32, 64):
            x = keras.layers.SeparableConv2D(filters, 3, padding="same", activation="relu")(x)
            x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(CLASSES)(x), name=name)


def set_batchnorm_statistics(model: Any, images: Any) -> None:
    """Give every BatchNormalization layer the statistics of its input on `images` (momentum 0 for one
    training-mode pass). With weights=None the moving statistics are mean 0 / variance 1, so the
    activations shrink layer after layer and a deep net's logits end near 1e-10, where any parity check
    passes trivially; with real statistics they have ordinary scale. The weights stay random."""
    layers = [layer for layer in model._flatten_layers() if type(layer).__name__ == "BatchNormalization"]
    if not layers:
        return
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(layers, saved, strict=True):
        layer.momentum = momentum


def statistics_images(size: int, data_dir: Path | None, count: int = 16) -> Any:
    """MNIST digits resized to the model input and made RGB: the images the BN statistics come from."""
    import numpy as np

    from edgecnn.exporting.unlabelled import load_calibration_images

    images, _ = load_calibration_images("mnist", (size, size, 3), data_dir, count, seed=1)
    return images.astype(np.float32)


def run_one(
    name: str, size: int, normalization: str | None, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Build, export (FP32 + INT8 + FP16) and check one model; a failure is one line in the row."""
    import edgecnn

    row: dict[str, Any] = {"model": name, "input": f"{size}x{size}x3", "normalization_option": normalization}
    started = time.perf_counter()
    try:
        model = build(name, size)
        x = statistics_images(size, args.data_dir)
        if normalization:
            from edgecnn.exporting.input_contract import parse_normalization

            x = parse_normalization(normalization).apply(x.astype("uint8"))
        set_batchnorm_statistics(model, x)
        row["params"] = int(model.count_params())
        options: dict[str, Any] = {"normalization": normalization} if normalization else {}
        result = edgecnn.export(
            model, work / name, quantize="int8,fp16", calibration_data="mnist", data_dir=args.data_dir,
            calibration_samples=args.calibration_samples, parity_batch=8, parity_samples=16,
            parity_batch1_samples=4, latency_batches=(1,), latency_rounds=args.rounds, **options,
        )  # fmt: skip
    except EdgecnnError as exc:
        row.update(ok=False, error=str(exc), seconds=round(time.perf_counter() - started, 1))
        return row
    variants = result.variants
    row.update(
        ok=True,
        nodes=result.node_counts["final"],
        route=result.route,
        parity={str(p.batch_size): p.max_abs_diff for p in result.parity},
        output_scale=max(p.output_scale for p in result.parity),
        parity_ok=all(p.passed for p in result.parity) and {p.batch_size for p in result.parity} == {1, 8},
        contract=result.normalization_source,
        raw_pixels=result.normalization_source == "model",
        in_model_preprocessing=result.in_model_preprocessing,
        output_kind=result.output_kind,
        int8_agreement=variants["int8"].top1_agreement if "int8" in variants else None,
        fp16_agreement=variants["fp16"].top1_agreement if "fp16" in variants else None,
        size_bytes={k: v.size_bytes for k, v in variants.items()},
        latency_ms_b1={k: v.latency_ms.get(1) for k, v in variants.items()},
        int8_speedup_b1=variants["int8"].speedup.get(1) if "int8" in variants else None,
        agreement_images=result.parity_inputs,
        seconds=round(time.perf_counter() - started, 1),
    )
    return row


def run_trained(name: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train one user-style model on MNIST, export it (INT8 + FP16) and compare with Keras."""
    import edgecnn

    row: dict[str, Any] = {"model": name, "kind": "trained", "input": "28x28x1"}
    started = time.perf_counter()
    x, y, xt, yt = zoo_models.raw_mnist(args.data_dir)
    model = zoo_models.train_briefly(name, x, y, steps=args.steps)
    path = work / f"{name}.keras"
    model.save(str(path))
    row.update(params=int(model.count_params()), keras_accuracy=zoo_models.keras_accuracy(model, xt, yt))
    try:
        result = edgecnn.export(
            path, work / f"{name}-bundle", quantize="int8,fp16", dataset="mnist", data_dir=args.data_dir,
            latency=False,
        )  # fmt: skip
    except EdgecnnError as exc:
        row.update(ok=False, error=str(exc), seconds=round(time.perf_counter() - started, 1))
        return row
    v = result.variants
    found = [a for a in result.attempts if a.within_bound]
    row.update(
        ok=True,
        parity={str(p.batch_size): p.max_abs_diff for p in result.parity},
        parity_ok=all(p.passed for p in result.parity),
        contract=result.normalization_source,
        in_model_preprocessing=result.in_model_preprocessing,
        output_kind=result.output_kind,
        accuracy={k: r.accuracy for k, r in v.items()},
        int8_within_bound=v["int8"].within_bound,
        int8_setting=found[0].settings if found else None,
        int8_attempts=len(result.attempts),
        worst_layers=v["int8"].worst_layers,
        bound_pp=result.max_accuracy_drop,
        seconds=round(time.perf_counter() - started, 1),
    )
    return row


def markdown_trained(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | params | parity b1 / b64 max abs diff | input contract | Keras | FP32 | INT8 (Δ vs FP32) "
        "| FP16 | INT8 setting that kept accuracy |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        if not r["ok"]:
            lines.append(f"| {r['model']} | {r['params']:,} | export failed: {r['error']} | | | | | | |")
            continue
        acc, p = r["accuracy"], r["parity"]
        drop = (acc["fp32"] - acc["int8"]) * 100
        mark = "" if r["int8_within_bound"] else f" ⚠ over {r['bound_pp']:g} pp"
        setting = r["int8_setting"] or "none; lowest SQNR: " + ", ".join(
            f"{w['layer']} {w['sqnr_db']:.1f} dB" for w in r["worst_layers"]
        )
        lines.append(
            f"| {r['model']} | {r['params']:,} | {p['1']:.1e} / {p['64']:.1e} "
            f"{'ok' if r['parity_ok'] else 'FAIL'} | raw 0-255 ({r['contract']}: "
            f"{(r['in_model_preprocessing'] or '').split('(')[0]}) | {r['keras_accuracy'] * 100:.2f}% | "
            f"{acc['fp32'] * 100:.2f}% | {acc['int8'] * 100:.2f}% ({-drop:+.2f} pp){mark} | "
            f"{acc['fp16'] * 100:.2f}% | {setting} (of {r['int8_attempts']} tried) |"
        )
    return "\n".join(lines) + "\n"


def markdown(rows: list[dict[str, Any]], env: dict[str, Any]) -> str:
    cpu = env.get("hardware", {}).get("cpu", {})
    lines = [
        "| model | input | params | nodes | parity b1 / b8 max abs diff (max abs logit) | input contract "
        "| INT8 top-1 agreement | size FP32 / INT8 | FP32 / INT8 b1 ms (INT8 speed-up) |",
        "| --- | --- | ---: | ---: | --- | --- | ---: | --- | --- |",
    ]
    trained = [r for r in rows if r.get("kind") == "trained"]
    rows = [r for r in rows if r.get("kind") != "trained"]
    head = markdown_trained(trained) + "\n" if trained else ""
    for r in rows:
        if not r["ok"]:
            failed = f"export failed: {r['error']}"
            lines.append(f"| {r['model']} | {r['input']} | {r.get('params', '-')} | {failed} | | | | | |")
            continue
        contract = (
            "raw 0-255 (in-model)" if r["raw_pixels"] else f"--normalization {r['normalization_option']}"
        )
        size, ms, parity = r["size_bytes"], r["latency_ms_b1"], r["parity"]
        mib = f"{size['fp32'] / 2**20:.2f} / {size['int8'] / 2**20:.2f} MiB"
        lines.append(
            f"| {r['model']} | {r['input']} | {r['params']:,} | {r['nodes']} | "
            f"{parity['1']:.1e} / {parity['8']:.1e} ({r['output_scale']:.2g}) "
            f"{'ok' if r['parity_ok'] else 'FAIL'} | {contract} | "
            f"{r['int8_agreement'] * 100:.1f}% | {mib} | "
            f"{ms['fp32']:.2f} / {ms['int8']:.2f} (x{r['int8_speedup_b1']:.2f}) |"
        )
    lines.append("")
    lines.append(
        f"CPU: {cpu.get('model', '?')}, {cpu.get('usable_cores', '?')} usable cores; ISA flags: "
        f"{' '.join(cpu.get('flags', []))}; latency from interleaved rounds, the machine may be shared"
    )
    if not rows:
        lines = lines[-1:]
    return head + "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    every = (*zoo_models.NAMES, *ZOO)
    ap.add_argument(
        "--models", default=",".join(every), help="comma-separated subset of: " + ", ".join(every)
    )
    ap.add_argument("--steps", type=int, default=300, help="training steps of the trained user models")
    ap.add_argument("--size", type=int, default=None, help="override every input size (quick runs)")
    ap.add_argument("--calibration-samples", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=10, help="latency rounds at batch 1")
    ap.add_argument("--data-dir", type=Path, default=None, help="where MNIST is (default: edgecnn's lookup)")
    ap.add_argument("--output", type=Path, default=ROOT / "results")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in ZOO and n not in zoo_models.NAMES]
    if unknown:
        every = ", ".join((*zoo_models.NAMES, *ZOO))
        print(f"error: unknown model {unknown[0]!r}; choose from {every}", file=sys.stderr)
        return 1
    env = environment_info()
    rows: list[dict[str, Any]] = []
    args.output.mkdir(parents=True, exist_ok=True)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    with tempfile.TemporaryDirectory(prefix="edgecnn-zoo-") as tmp:
        for name in names:
            if name in zoo_models.NAMES:
                row = run_trained(name, Path(tmp), args)
            else:
                size, normalization = ZOO[name]
                row = run_one(name, args.size or size, normalization, Path(tmp), args)
            rows.append(row)
            print(f"{name}: {'ok' if row['ok'] else row['error']} ({row['seconds']} s)", flush=True)
            # Written after every model: a long run stopped half-way still leaves its rows.
            complete = len(rows) == len(names)
            document = {"config": config, "rows": rows, "complete": complete, "environment": env}
            atomic_write_json(args.output / "bench_zoo.json", document)
            table = markdown(rows, env)
            atomic_write_text(args.output / "bench_zoo.md", table)
    print(table)
    return 0 if all(r["ok"] and r["parity_ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
