"""Image files in, uint8 (H, W, C) arrays shaped for a model out (Pillow + numpy; never TensorFlow).

The one place that opens image files and changes pixels: `predict` (`fit_image`), image-folder
datasets (`load_image`) and dataset arrays (`convert_images`) all decode, convert grey/colour and resize
through the functions here, so the same PNG becomes the same pixels for training and for prediction.

Every change made to an image on its way to the model (channel conversion, resize, inversion,
rescaling of float arrays) is recorded as a note, so `predict` can say what it did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file, show_path
from edgecnn.core.text import one_line

PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGE_SUFFIXES = (*PIL_SUFFIXES, ".npy")
IMAGE_KINDS = ", ".join(s.lstrip(".") for s in IMAGE_SUFFIXES)  # "png, jpg, ..." for messages
# Pillow modes that hold grey pixels (with or without transparency): such a file is a 1-channel image.
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
# ITU-R 601-2 luma in 16-bit fixed point, rounded: exactly what Pillow's convert("L") computes.
LUMA_WEIGHTS_16BIT = (19595, 38470, 7471)
# Resizing keeps its meaning only while the shape of the content survives: a 32x32 image becomes a
# 28x28 one, but squashing a 640x480 photo into 28x28 distorts it, so that is refused instead.
MAX_ASPECT_CHANGE = 0.10
# An MNIST-style image has a black background; a median above this suggests dark ink on white paper.
BRIGHT_BACKGROUND = 127
# `digit_7_idx0.png`, `label-cat_12.jpg`, `class_3.npy`: the true label carried by a file name.
LABEL_PATTERN = re.compile(r"(?:^|[_\-.])(?:digit|label|class)[_\-]([A-Za-z0-9]+)", re.IGNORECASE)


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # uint8 (H, W, C) with C in (1, 3, 4)
    notes: tuple[str, ...]  # conversions decoding needed (16-bit to 8-bit, CHW to HWC, ...)
    grayscale: bool  # the file holds grey pixels (transparency aside): its natural channel count is 1


@dataclass(frozen=True)
class FittedImage:
    path: Path
    pixels: np.ndarray  # uint8 (H, W, C), exactly the model's per-image input shape
    original_shape: tuple[int, int, int]  # (H, W, C) as decoded
    notes: tuple[str, ...]  # what was done to the image, in order
    looks_inverted: bool  # bright background on a grayscale model: probably dark ink on white


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def expand_inputs(inputs: tuple[Path, ...] | list[Path]) -> list[Path]:
    """Files as given; directories become their image files, sorted by name (not recursive)."""
    if not inputs:
        raise EdgecnnError("no input images given; pass image files or directories")
    files: list[Path] = []
    for raw in inputs:
        # A FIFO or device would block the read forever (or never end): only regular files.
        path = check_input_file(raw, "input", allow_dir=True)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if is_image_file(p))
            if not found:
                raise EdgecnnError(f"directory {path} holds no image files ({IMAGE_KINDS})")
            files.extend(found)
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            raise EdgecnnError(f"{path} is not a supported image; use {IMAGE_KINDS}")
        else:
            files.append(path)
    return files


# One image's pixels at most (Pillow's decompression-bomb limit, times channels): a header that claims
# more is refused before anything is allocated.
MAX_NPY_VALUES = 4 * 89_478_485


def check_npy_header(path: Path) -> None:
    """Refuse what is not one plain .npy array before allocating it: a zip (.npz renamed .npy), a
    header whose shape is larger than an image can be or than the file holds."""
    from numpy.lib import format as npy_format

    with open(path, "rb") as fh:
        head = fh.read(6)
        if head.startswith(b"PK"):
            raise EdgecnnError(
                f"{show_path(path)} is a .npz archive (zip), not a .npy array; save one image with np.save"
            )
        fh.seek(0)
        try:
            version = npy_format.read_magic(fh)
            read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = read(fh, max_header_size=10_000)
        except (ValueError, OSError, EOFError, TypeError) as exc:
            raise EdgecnnError(
                f"cannot read {show_path(path)} as a numpy array: {one_line(exc, 300)}"
            ) from None
        offset = fh.tell()
    values = int(np.prod(shape, dtype=object)) if shape else 1
    if values > MAX_NPY_VALUES:
        raise EdgecnnError(
            f"{show_path(path)} claims an array shaped {shape} ({values:,} values): more than one image can "
            f"hold ({MAX_NPY_VALUES:,}); nothing was loaded"
        )
    need, have = values * dtype.itemsize, path.stat().st_size - offset
    if dtype.hasobject or need > have:
        raise EdgecnnError(
            f"{show_path(path)} claims an array shaped {shape} of {dtype} ({need:,} bytes) but holds "
            f"{max(have, 0):,} bytes: truncated or not a plain array"
        )


def _decode_npy(path: Path, notes: list[str]) -> np.ndarray:
    check_npy_header(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise EdgecnnError(f"cannot read {path} as a numpy array: {one_line(exc, 2000)}") from None
    # A single image saved with a batch axis of 1 is still one image.
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if np.iscomplexobj(arr):
        raise EdgecnnError(f"{path} holds complex numbers ({arr.dtype}); expected real pixel values")
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] not in (1, 3, 4):
        # One channels-first RGB image or three stacked grey images: guessing would be silently wrong.
        raise EdgecnnError(
            f"{path} holds an array shaped {arr.shape}: ambiguous between one channels-first RGB image and "
            "3 stacked grey images; save one image as (H, W, 3) or each image in its own file"
        )
    if arr.ndim == 3 and arr.shape[0] == 1 and arr.shape[-1] not in (1, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))  # one grey image saved channels-first
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


def read_image(path: Path) -> DecodedImage:
    """Decode one file (.npy or anything Pillow reads) into uint8 (H, W, C) with C in (1, 3, 4)."""
    notes: list[str] = []
    if path.suffix.lower() == ".npy":
        arr = _decode_npy(path, notes)
        return DecodedImage(arr, tuple(notes), grayscale=arr.shape[-1] == 1)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            grayscale = img.mode in GRAY_MODES
            if img.mode in ("L", "RGB", "RGBA"):
                decoded = img
            elif img.mode in ("LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                decoded = img.convert("RGBA")
            elif img.mode in ("1", "I", "I;16", "I;16B", "I;16L", "F"):
                decoded = _to_8bit_gray(img, notes, path)
            else:  # P, CMYK, YCbCr, ...
                decoded = img.convert("RGB")
            arr = np.asarray(decoded, dtype=np.uint8)
    except Image.DecompressionBombError:
        raise EdgecnnError(
            f"image {path} has more pixels than Pillow's safety limit of {Image.MAX_IMAGE_PIXELS:,} "
            "(a decompression bomb?); shrink it before classifying it"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = one_line(exc, 2000)
        raise EdgecnnError(f"cannot decode image {path}: {reason}") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    return DecodedImage(arr, tuple(notes), grayscale)


def probe_image(path: Path) -> tuple[int, int, bool]:
    """(height, width, grayscale) of an image file from its header, without decoding the pixels: cheap
    enough to check every file of a large folder before training starts."""
    if path.suffix.lower() == ".npy":
        pixels = read_image(path)
        return int(pixels.pixels.shape[0]), int(pixels.pixels.shape[1]), pixels.grayscale
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
            return int(height), int(width), img.mode in GRAY_MODES
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise EdgecnnError(f"cannot decode image {path}: {one_line(exc, 2000)}") from None


def decode_image(path: Path) -> tuple[np.ndarray, list[str]]:
    """Decode one file into uint8 (H, W, C) with C in (1, 3, 4), plus notes on any conversion."""
    decoded = read_image(path)
    return decoded.pixels, list(decoded.notes)


def _to_8bit_gray(img: object, notes: list[str], path: Path) -> object:
    from PIL import Image

    assert isinstance(img, Image.Image)
    if img.mode == "1":
        return img.convert("L")
    arr = np.asarray(img, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise EdgecnnError(f"image {path} contains NaN or infinite pixels")
    hi = float(arr.max()) if arr.size else 0.0
    # 16-bit and float images: map their real range down, since 8-bit pixels are what models were trained on.
    top = 65535.0 if img.mode.startswith("I;16") or hi > 255 else 255.0
    if img.mode == "F" and hi <= 1.0:
        top = 1.0
    notes.append(f"converted {img.mode} image to 8-bit grayscale")
    return Image.fromarray(np.clip(np.rint(arr / top * 255.0), 0, 255).astype(np.uint8), mode="L")


def convert_channels(pixels: np.ndarray, channels: int, notes: list[str] | None = None) -> np.ndarray:
    """uint8 (..., C) -> (..., channels): one image (H, W, C) or a batch (N, H, W, C) alike.

    Transparency composites onto black, colour becomes grey by Pillow's luma, grey is repeated."""
    notes = [] if notes is None else notes
    have = pixels.shape[-1]
    if have == 4:
        # Transparent pixels composite onto black, the background MNIST-style models know.
        rgb = pixels[..., :3].astype(np.float32)
        alpha = pixels[..., 3:4].astype(np.float32) / 255.0
        pixels = np.clip(np.rint(rgb * alpha), 0, 255).astype(np.uint8)
        if np.any(alpha < 1.0):
            notes.append("composited transparency onto black")
        have = 3
    if have == channels:
        return pixels
    if channels == 1 and have == 3:
        notes.append("converted RGB to grayscale")
        return _luma(pixels)
    if channels == 3 and have == 1:
        notes.append("converted grayscale to RGB")
        return np.repeat(pixels, 3, axis=-1)
    raise EdgecnnError(f"cannot turn a {have}-channel image into the model's {channels} channels")


def _luma(rgb: np.ndarray) -> np.ndarray:
    # Integer maths identical to Pillow's convert("L") for every colour, without a Pillow round trip
    # per image (dataset arrays hold tens of thousands).
    r, g, b = (rgb[..., i].astype(np.uint32) * w for i, w in enumerate(LUMA_WEIGHTS_16BIT))
    return ((r + g + b + 0x8000) >> 16).astype(np.uint8)[..., None]


def resize_pixels(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (H, W, C) with C in (1, 3) -> (height, width, C), bilinear; the input itself if no change."""
    from PIL import Image

    if pixels.shape[:2] == (height, width):
        return pixels
    gray = pixels.shape[-1] == 1
    img = Image.fromarray(pixels[..., 0] if gray else pixels, mode="L" if gray else "RGB")
    # Bilinear in Pillow antialiases when shrinking, which is how MNIST's 28x28 digits were made.
    out = np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out


def _resize_keeping_aspect(
    arr: np.ndarray, height: int, width: int, path: Path, notes: list[str]
) -> np.ndarray:
    h, w = arr.shape[:2]
    if (h, w) == (height, width):
        return arr
    change = abs((w / h) / (width / height) - 1.0)
    if change > MAX_ASPECT_CHANGE:
        raise EdgecnnError(
            f"image {path} is {w}x{h} (WxH) but the model expects {width}x{height}; resizing would distort "
            "its aspect ratio, so crop or pad it to the same proportions first"
        )
    notes.append(f"resized {w}x{h} to {width}x{height}")
    return resize_pixels(arr, height, width)


def load_image(path: Path, size: tuple[int, int] | None, channels: int | None) -> np.ndarray:
    """One image file as uint8 (H, W, C) for a dataset: `channels` (default: the file's own, grey 1
    or colour 3) and `size` (H, W; default: as stored, whatever its aspect ratio)."""
    decoded = read_image(path)
    wanted = channels if channels is not None else (1 if decoded.grayscale else 3)
    pixels = convert_channels(decoded.pixels, wanted)
    return resize_pixels(pixels, *size) if size is not None else pixels


def convert_images(x: np.ndarray, image_size: tuple[int, int] | None, channels: int | None) -> np.ndarray:
    """Resize (bilinear) and/or change channel count of uint8 NHWC images; returns x itself if no change."""
    if channels is not None and channels not in (1, 3):
        raise EdgecnnError(f"channels must be 1 or 3, not {channels}")
    if channels is not None and x.shape[-1] != channels:
        x = convert_channels(x, channels)
    if image_size is not None and tuple(x.shape[1:3]) != tuple(image_size):
        h, w = image_size
        out = np.empty((x.shape[0], h, w, x.shape[-1]), np.uint8)
        for i, im in enumerate(x):
            out[i] = resize_pixels(im, h, w)
        x = out
    return x


def fit_image(path: Path, input_shape: tuple[int, int, int], *, invert: bool = False) -> FittedImage:
    """Decode `path` and bring it to `input_shape` (H, W, C) as uint8, noting every change made."""
    arr, notes = decode_image(path)
    original = (int(arr.shape[0]), int(arr.shape[1]), int(arr.shape[2]))
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise EdgecnnError(f"image {path} is empty (0 pixels)")
    height, width, channels = input_shape
    arr = convert_channels(arr, channels, notes)
    looks_inverted = False
    if invert:
        arr = 255 - arr
        notes.append("inverted (--invert)")
    elif channels == 1:
        looks_inverted = bool(np.median(arr) > BRIGHT_BACKGROUND)
    arr = _resize_keeping_aspect(arr, height, width, path, notes)
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
