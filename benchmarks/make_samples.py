"""Write samples/: the first test image of each digit from the real MNIST test set (t10k) as PNG.

Deterministic: the same MNIST files always give byte-identical PNGs, named `digit_<label>_idx<i>.png`
where <i> is the image's index in the t10k test set, so anyone can check them against the dataset.

    python benchmarks/make_samples.py [--data-dir ../shared/data/mnist] [--output samples]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.core.outputs import atomic_dir, atomic_write_text  # noqa: E402
from edgecnn.data import load_dataset  # noqa: E402

README = """# Sample digits

The first image of each digit 0-9 in the real MNIST test set (t10k, LeCun, Cortes and Burges,
CC BY-SA 3.0), written by `benchmarks/make_samples.py`. The file name carries the true label and the
index in the test set (`digit_7_idx0.png` is test image 0, a 7), which `edgecnn predict` reads to mark
each prediction correct or wrong:

    edgecnn predict bundle/model.int8.onnx samples/

White digit on black, 28x28 grayscale, exactly as in the dataset (no resizing or inversion).
"""


def sample_indices(labels: list[int], per_class: int = 1) -> list[tuple[int, int]]:
    """(label, index) of the first `per_class` test images of each class, in label order."""
    picked: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        if len(picked.setdefault(y, [])) < per_class:
            picked[y].append(i)
    return [(y, i) for y in sorted(picked) for i in picked[y]]


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="MNIST files (default: EDGECNN_DATA_DIR)")
    parser.add_argument("--output", type=Path, default=ROOT / "samples")
    parser.add_argument("--per-class", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="replace an existing output directory")
    args = parser.parse_args(argv)

    ds = load_dataset("mnist", args.data_dir, download=False)
    chosen = sample_indices([int(y) for y in ds.y_test], args.per_class)
    with atomic_dir(args.output, force=args.force) as tmp:
        for label, index in chosen:
            # optimize=False and no metadata chunks keep the bytes identical from run to run.
            Image.fromarray(ds.x_test[index, :, :, 0], mode="L").save(tmp / f"digit_{label}_idx{index}.png")
        atomic_write_text(tmp / "README.md", README)
    print(f"wrote {len(chosen)} sample digits from {ds.source} to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
