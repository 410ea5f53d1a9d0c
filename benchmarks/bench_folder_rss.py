"""`make bench-folder-rss`: peak memory of training on an image folder stays bounded as the folder grows.

Generates synthetic image folders (96x96 RGB PNGs in 4 classes, each class its own colour pattern plus
noise; generated here, never downloaded) at two sizes, then in a fresh process per folder:
- `stream`: `edgecnn train --dataset folder:DIR` for one epoch (the tf.data path: files streamed from
  disk, decoded images cached in a scratch file on disk);
- `arrays`: the same folder loaded the way training loaded it before streaming (every image decoded into
  one numpy array, then normalized to float32), without training, for contrast.
Each child reports its peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) and its RSS after
importing TensorFlow and building the model (what any training process pays before touching data).

Results: a table on stdout and results/bench_folder_rss.json (with the CPU's ISA flags). Takes a few
minutes on 2 cores (mostly PNG encoding and decoding).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.core.environment import environment_info  # noqa: E402
from edgecnn.core.outputs import atomic_write_json  # noqa: E402

IMAGE_SIDE = 96
CLASSES = ("red", "green", "blue", "gray")
SPEC = f"""
name = "rss-net"
input_shape = [{IMAGE_SIDE}, {IMAGE_SIDE}, 3]
num_classes = {len(CLASSES)}
dataset = "cifar10"
[recipe]
optimizer = "adam"
learning_rate = 0.003
epochs = 1
batch_size = 64
[[layers]]
type = "conv"
filters = 8
kernel = 3
stride = 2
activation = "relu"
[[layers]]
type = "pool"
[[layers]]
type = "conv"
filters = 16
kernel = 3
stride = 2
activation = "relu"
[[layers]]
type = "gap"
"""


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def make_folder(root: Path, n_images: int, seed: int = 0) -> Path:
    """`n_images` PNGs spread over CLASSES; a class is a tint the model can learn, plus noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    tints = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [128, 128, 128]], np.int16)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(c, n_images, len(CLASSES)):
            noise = rng.integers(-60, 61, (IMAGE_SIDE, IMAGE_SIDE, 3), np.int16)
            pixels = np.clip(tints[c] + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:06d}.png", compress_level=1)
    return root


def child_stream(folder: Path, spec: Path, run_dir: Path) -> dict[str, Any]:
    """One epoch of `edgecnn train` on the folder: the streaming path."""
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.models import build_keras_model, get_model_spec
    from edgecnn.training import TrainConfig, train

    import_keras()
    build_keras_model(get_model_spec(str(spec)))  # the fixed cost: TensorFlow, Keras, one model
    before_data = _peak_rss_mb()
    t0 = time.perf_counter()
    result = train(
        TrainConfig(model=str(spec), dataset=f"folder:{folder}", epochs=1, output_dir=run_dir, plots=False)
    )
    return {
        "rss_before_data_mb": before_data,
        "peak_rss_mb": _peak_rss_mb(),
        "seconds": time.perf_counter() - t0,
        "loader": result.document["dataset"]["loader"]["kind"],
        "train_images": result.document["dataset"]["train_samples"],
        "test_accuracy": result.test_accuracy,
    }


def child_arrays(folder: Path) -> dict[str, Any]:
    """The folder as one decoded array, normalized to float32: what training held before streaming."""
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.data import load_dataset

    import_keras()
    before_data = _peak_rss_mb()
    t0 = time.perf_counter()
    ds = load_dataset(f"folder:{folder}", image_size=(IMAGE_SIDE, IMAGE_SIDE), channels=3)
    x = ds.normalization.apply(ds.x_train)
    return {
        "rss_before_data_mb": before_data,
        "peak_rss_mb": _peak_rss_mb(),
        "seconds": time.perf_counter() - t0,
        "loader": "arrays",
        "train_images": int(x.shape[0]),
        "array_mb": (x.nbytes + ds.x_train.nbytes + ds.x_test.nbytes) / 2**20,
    }


def run_child(mode: str, folder: Path, spec: Path, run_dir: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, str(folder), str(spec), str(run_dir)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} child on {folder} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,8000", help="images per folder, comma-separated")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "bench_folder_rss.json")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "FOLDER", "SPEC", "RUN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, folder, spec, run_dir = args.child
        if mode == "stream":
            doc = child_stream(Path(folder), Path(spec), Path(run_dir))
        else:
            doc = child_arrays(Path(folder))
        print(json.dumps(doc))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgecnn-bench-rss-") as tmp:
        spec = Path(tmp) / "rss-net.toml"
        spec.write_text(SPEC)
        for n in sizes:
            t0 = time.perf_counter()
            folder = make_folder(Path(tmp) / f"folder{n}", n)
            took = time.perf_counter() - t0
            print(f"generated {n} PNGs of {IMAGE_SIDE}x{IMAGE_SIDE} in {took:.0f} s", flush=True)
            for mode in ("stream", "arrays"):
                measured = run_child(mode, folder, spec, Path(tmp) / f"run-{mode}-{n}")
                row = {"images": n, "mode": mode, **measured}
                rows.append(row)
                print(
                    f"  {mode:7s} {n:6d} images: peak RSS {row['peak_rss_mb']:7.0f} MB "
                    f"(before data {row['rss_before_data_mb']:.0f} MB), {row['seconds']:.0f} s",
                    flush=True,
                )
    env = environment_info()
    flags = " ".join(env["hardware"]["cpu"]["flags"])
    print(f"CPU ISA flags: {flags}")
    atomic_write_json(args.output, {"image_side": IMAGE_SIDE, "rows": rows, "environment": env})
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
