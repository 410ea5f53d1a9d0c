"""Image files in, uint8 (H, W, C) arrays shaped for a model out (Pillow + numpy; never TensorFlow).

Every change made to an image on its way to the model (channel conversion, resize, inversion,
rescaling of float arrays) is recorded as a note, so `predict` can say what it did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.text import one_line

PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGE_SUFFIXES = (*PIL_SUFFIXES, ".npy")
# Resizing keeps its meaning only while the shape of the content survives: a 32x32 image becomes a
# 28x28 one, but squashing a 640x480 photo into 28x28 distorts it, so that is refused instead.
MAX_ASPECT_CHANGE = 0.10
# An MNIST-style image has a black background; a median above this suggests dark ink on white paper.
BRIGHT_BACKGROUND = 127
# `digit_7_idx0.png`, `label-cat_12.jpg`, `class_3.npy`: the true label carried by a file name.
LABEL_PATTERN = re.compile(r"(?:^|[_\-.])(?:digit|label|class)[_\-]([A-Za-z0-9]+)", re.IGNORECASE)


@dataclass(frozen=True)
class FittedImage:
    path: Path
    pixels: np.ndarray  # uint8 (H, W, C), exactly the model's per-image input shape
    original_shape: tuple[int, int, int]  # (H, W, C) as decoded
    notes: tuple[str, ...]  # what was done to the image, in order
    looks_inverted: bool  # bright background on a grayscale model: probably dark ink on white


def expand_inputs(inputs: tuple[Path, ...] | list[Path]) -> list[Path]:
    """Files as given; directories become their image files, sorted by name (not recursive)."""
    if not inputs:
        raise EdgecnnError("no input images given; pass image files or directories")
    files: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise EdgecnnError(f"input {path} does not exist")
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                kinds = ", ".join(s.lstrip(".") for s in IMAGE_SUFFIXES)
                raise EdgecnnError(f"directory {path} holds no image files ({kinds})")
            files.extend(found)
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            raise EdgecnnError(
                f"{path} is not a supported image; use {', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}"
            )
        else:
            files.append(path)
    return files


def _decode_npy(path: Path, notes: list[str]) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise EdgecnnError(f"cannot read {path} as a numpy array: {one_line(exc, 2000)}") from None
    # A single image saved with a batch axis of 1 is still one image.
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))  # saved channels-first
        notes.append("transposed CHW array to HWC")
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise EdgecnnError(
            f"{path} holds an array shaped {arr.shape}; expected one image (H, W) or (H, W, C)"
        )
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise EdgecnnError(f"{path} holds {arr.dtype} values; expected pixel values (uint8 0-255 or floats)")
    if not np.all(np.isfinite(arr)):
        raise EdgecnnError(f"{path} contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 255:
        raise EdgecnnError(
            f"{path} holds values from {lo:g} to {hi:g}; expected raw pixels (0-255) or floats in 0-1 "
            "(the model's own normalization is applied after loading)"
        )
    if np.issubdtype(arr.dtype, np.floating) and hi <= 1.0:
        notes.append("scaled 0-1 floats to 0-255 pixels")
        arr = arr * 255.0
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def decode_image(path: Path) -> tuple[np.ndarray, list[str]]:
    """Decode one file into uint8 (H, W, C) with C in (1, 3, 4), plus notes on any conversion."""
    notes: list[str] = []
    if path.suffix.lower() == ".npy":
        return _decode_npy(path, notes), notes
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("L", "RGB", "RGBA"):
                decoded = img
            elif img.mode in ("LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                decoded = img.convert("RGBA")
            elif img.mode in ("1", "I", "I;16", "I;16B", "I;16L", "F"):
                decoded = _to_8bit_gray(img, notes)
            else:  # P, CMYK, YCbCr, ...
                decoded = img.convert("RGB")
            arr = np.asarray(decoded, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = one_line(exc, 2000)
        raise EdgecnnError(f"cannot decode image {path}: {reason}") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    return arr, notes


def _to_8bit_gray(img: object, notes: list[str]) -> object:
    from PIL import Image

    assert isinstance(img, Image.Image)
    if img.mode == "1":
        return img.convert("L")
    arr = np.asarray(img, dtype=np.float64)
    hi = float(arr.max()) if arr.size else 0.0
    # 16-bit and float images: map their real range down, since 8-bit pixels are what models were trained on.
    top = 65535.0 if img.mode.startswith("I;16") or hi > 255 else 255.0
    if img.mode == "F" and hi <= 1.0:
        top = 1.0
    notes.append(f"converted {img.mode} image to 8-bit grayscale")
    return Image.fromarray(np.clip(np.rint(arr / top * 255.0), 0, 255).astype(np.uint8), mode="L")


def _convert_channels(arr: np.ndarray, channels: int, notes: list[str]) -> np.ndarray:
    from PIL import Image

    have = arr.shape[-1]
    if have == 4:
        # Transparent pixels composite onto black, the background MNIST-style models know.
        rgb = arr[..., :3].astype(np.float32)
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        arr = np.clip(np.rint(rgb * alpha), 0, 255).astype(np.uint8)
        if np.any(alpha < 1.0):
            notes.append("composited transparency onto black")
        have = 3
    if have == channels:
        return arr
    if channels == 1:
        notes.append("converted RGB to grayscale")
        return np.asarray(Image.fromarray(arr, mode="RGB").convert("L"), dtype=np.uint8)[..., None]
    if channels == 3 and have == 1:
        notes.append("converted grayscale to RGB")
        return np.repeat(arr, 3, axis=-1)
    raise EdgecnnError(f"cannot turn a {have}-channel image into the model's {channels} channels")


def _resize(arr: np.ndarray, height: int, width: int, path: Path, notes: list[str]) -> np.ndarray:
    from PIL import Image

    h, w = arr.shape[:2]
    if (h, w) == (height, width):
        return arr
    change = abs((w / h) / (width / height) - 1.0)
    if change > MAX_ASPECT_CHANGE:
        raise EdgecnnError(
            f"image {path} is {w}x{h} (WxH) but the model expects {width}x{height}; resizing would distort "
            "its aspect ratio, so crop or pad it to the same proportions first"
        )
    mode = "L" if arr.shape[-1] == 1 else "RGB"
    img = Image.fromarray(arr[..., 0] if mode == "L" else arr, mode=mode)
    # Bilinear in Pillow antialiases when shrinking, which is how MNIST's 28x28 digits were made.
    out = np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
    notes.append(f"resized {w}x{h} to {width}x{height}")
    return out[..., None] if out.ndim == 2 else out


def fit_image(path: Path, input_shape: tuple[int, int, int], *, invert: bool = False) -> FittedImage:
    """Decode `path` and bring it to `input_shape` (H, W, C) as uint8, noting every change made."""
    arr, notes = decode_image(path)
    original = (int(arr.shape[0]), int(arr.shape[1]), int(arr.shape[2]))
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise EdgecnnError(f"image {path} is empty (0 pixels)")
    height, width, channels = input_shape
    arr = _convert_channels(arr, channels, notes)
    looks_inverted = False
    if invert:
        arr = 255 - arr
        notes.append("inverted (--invert)")
    elif channels == 1:
        looks_inverted = bool(np.median(arr) > BRIGHT_BACKGROUND)
    arr = _resize(arr, height, width, path, notes)
    return FittedImage(
        path=path,
        pixels=np.ascontiguousarray(arr, dtype=np.uint8),
        original_shape=original,
        notes=tuple(notes),
        looks_inverted=looks_inverted,
    )


def label_from_filename(path: Path, class_labels: tuple[str, ...]) -> int | None:
    """The class index a file name declares (`digit_7_idx0.png` -> 7), or None if it declares none."""
    match = LABEL_PATTERN.search(path.stem)
    if not match:
        return None
    token = match.group(1)
    for i, name in enumerate(class_labels):
        if name.lower() == token.lower():
            return i
    if token.isdigit() and int(token) < len(class_labels):
        return int(token)
    return None
