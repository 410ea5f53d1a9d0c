"""PNG plots of a training run: curves, confusion matrix, mistakes, first-layer filters, feature maps.

numpy + matplotlib only (the object-oriented API on an Agg canvas, so no global backend is touched);
train.py computes every array, this module only draws. Every file is written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from edgecnn.core.outputs import atomic_path


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def _show_image(ax, image: np.ndarray) -> None:
    """uint8 or float (H, W, C) image: grayscale when C == 1."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        ax.imshow(img, cmap="gray_r" if img.dtype == np.uint8 else "viridis", interpolation="nearest")
    else:
        ax.imshow(
            img.astype(np.uint8) if img.dtype == np.uint8 else _unit_range(img), interpolation="nearest"
        )
    ax.set_xticks([])
    ax.set_yticks([])


def _unit_range(a: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(a)), float(np.max(a))
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def plot_training_curves(history: dict[str, Sequence[float]], path: Path) -> Path:
    fig = Figure(figsize=(10, 4))
    for i, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        for key, style in ((metric, "o-"), (f"val_{metric}", "s--")):
            values = history.get(key)
            if values:
                ax.plot(
                    range(1, len(values) + 1), values, style, label="train" if key == metric else "validation"
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per epoch")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
            epochs = max(len(history.get(metric, [])), 1)
            ax.set_xticks(range(1, epochs + 1))
    return _save(fig, path)


def _mosaic(tiles: np.ndarray, cols: int, pad: int = 1, fill: float = np.nan) -> np.ndarray:
    """(N, h, w[, 3]) tiles -> one (rows*(h+pad), cols*(w+pad)[, 3]) image: one imshow instead of N axes."""
    n, h, w = tiles.shape[:3]
    rows = math.ceil(n / cols)
    shape = (rows * (h + pad) - pad, cols * (w + pad) - pad, *tiles.shape[3:])
    out = np.full(shape, fill, dtype=np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = tiles[k]
    return out


def _display(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) -> float tiles in [0, 1]: (N, H, W) for grayscale, (N, H, W, 3) for colour."""
    x = np.asarray(images, dtype=np.float32) / 255.0
    return x[..., 0] if x.shape[-1] == 1 else x


def plot_misclassified(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    path: Path,
    max_images: int = 36,
) -> Path:
    """The most confidently wrong test images first, each captioned 'true -> predicted (confidence)'."""
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))
    confidence = probs[wrong, y_pred[wrong]] if wrong.size else np.empty(0)
    order = wrong[np.argsort(-confidence)][:max_images]
    if not len(order):
        fig = Figure(figsize=(4, 2))
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no misclassified test images", ha="center", va="center")
        ax.axis("off")
        return _save(fig, path)

    def name(i: int) -> str:
        return labels[i] if i < len(labels) else str(i)

    cols = min(6, len(order))
    rows = math.ceil(len(order) / cols)
    tiles = _display(images[order])
    h, w = tiles.shape[1:3]
    pad = max(2, h // 2)  # room for the caption under each image
    fig = Figure(figsize=(1.7 * cols, 1.9 * rows + 0.6))
    ax = fig.add_subplot(1, 1, 1)
    mosaic = _mosaic(tiles, cols, pad=pad, fill=0.0 if tiles.ndim == 3 else 1.0)  # white in both colour maps
    ax.imshow(mosaic, cmap="gray_r" if tiles.ndim == 3 else None, vmin=0, vmax=1, interpolation="nearest")
    for k, idx in enumerate(order):
        r, c = divmod(k, cols)
        ax.text(
            c * (w + pad) + w / 2,
            r * (h + pad) + h + 0.5,
            f"{name(int(y_true[idx]))} -> {name(int(y_pred[idx]))} ({probs[idx, y_pred[idx]]:.0%})",
            ha="center",
            va="top",
            fontsize=7,
            color="firebrick",
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(
        f"{len(wrong)} misclassified test images (true -> predicted), most confident first", fontsize=9
    )
    return _save(fig, path)


def plot_filters(kernel: np.ndarray, path: Path, title: str = "conv1") -> Path:
    """First-layer kernels (kh, kw, cin, filters): RGB when cin == 3, else the first input channel."""
    kh, kw, cin, nf = kernel.shape
    cols = min(8, nf)
    fig = Figure(figsize=(1.0 * cols + 1, 1.0 * math.ceil(nf / cols) + 0.8))
    ax = fig.add_subplot(1, 1, 1)
    if cin == 3:
        tiles = np.stack([_unit_range(kernel[..., f]) for f in range(nf)])
        ax.imshow(_mosaic(tiles, cols, fill=1.0), interpolation="nearest")
    else:
        tiles = np.moveaxis(kernel[:, :, 0, :], -1, 0)
        lim = float(np.abs(tiles).max()) or 1.0
        ax.imshow(_mosaic(tiles, cols), cmap="seismic", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"first-layer filters ({title}: {nf} x {kh}x{kw}x{cin}; red +, blue -)", fontsize=9)
    return _save(fig, path)


def plot_feature_maps(
    image: np.ndarray,
    maps: np.ndarray,
    layer_name: str,
    path: Path,
    image_label: str = "",
    max_maps: int = 64,
) -> Path:
    """One input image beside the (H, W, C) activations a conv layer produces for it."""
    c = maps.shape[-1]
    shown = min(c, max_maps)
    cols = min(8, shown)
    tiles = np.stack([_unit_range(maps[..., k]) for k in range(shown)])
    fig = Figure(figsize=(2.2 + 1.1 * cols, max(2.2, 1.1 * math.ceil(shown / cols) + 0.6)))
    ax_in = fig.add_axes((0.02, 0.3, 0.16, 0.5))
    _show_image(ax_in, image)
    ax_in.set_title(f"input {image_label}".strip(), fontsize=8)
    ax = fig.add_axes((0.22, 0.05, 0.76, 0.82))
    ax.imshow(_mosaic(tiles, cols), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    extra = f", first {shown} of {c}" if shown < c else ""
    ax.set_title(f"feature maps of {layer_name} ({maps.shape[0]}x{maps.shape[1]}x{c}{extra})", fontsize=9)
    return _save(fig, path)
