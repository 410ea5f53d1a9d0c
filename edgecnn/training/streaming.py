"""Training on an image folder without holding it in memory: a `tf.data` pipeline over the file list.

Each file is decoded and resized by `edgecnn.data.images.load_image` (called through
`tf.numpy_function`), the one decoder `predict`, `eval` and `export` use, so a PNG becomes the same
pixels at training and at inference; TensorFlow's own decode/resize would differ from Pillow's
antialiased bilinear. The decoded uint8 images are cached in a file on disk (not in RAM) during the
first epoch, so later epochs read raw pixels instead of decoding again, then shuffled within a bounded
buffer, batched, normalized and prefetched. Peak memory is the shuffle buffer and a few batches,
whatever the folder's size (`benchmarks/bench_folder_rss.py` measures it).

The file order written into the cache is a seeded permutation, so the bounded shuffle buffer mixes
classes even though a folder lists them one after another.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import Normalization
from edgecnn.core.tfcompat import import_tensorflow
from edgecnn.data.images import load_image

# Decoded images the shuffle buffer may hold, in bytes: bounds memory for any image size.
SHUFFLE_BUFFER_BYTES = 64 * 1024 * 1024
MIN_SHUFFLE_IMAGES = 256
# Images decoded at once while scoring the test set (no cache: it is read once).
PREDICT_BATCH = 256


@dataclass(frozen=True)
class ImageFiles:
    """Image files with their labels, and the geometry every image is loaded at."""

    paths: tuple[Path, ...]
    labels: np.ndarray  # int64 (N,)
    size: tuple[int, int]  # (H, W)
    channels: int

    def __len__(self) -> int:
        return len(self.paths)

    def permuted(self, seed: int) -> ImageFiles:
        order = np.random.default_rng(seed).permutation(len(self.paths))
        return ImageFiles(tuple(self.paths[i] for i in order), self.labels[order], self.size, self.channels)

    def first(self, n: int | None) -> ImageFiles:
        if n is None:
            return self
        return ImageFiles(self.paths[:n], self.labels[:n], self.size, self.channels)


def shuffle_buffer_images(size: tuple[int, int], channels: int, n: int) -> int:
    per_image = size[0] * size[1] * channels
    return int(min(n, max(MIN_SHUFFLE_IMAGES, SHUFFLE_BUFFER_BYTES // per_image)))


def image_stream(
    files: ImageFiles,
    normalization: Normalization,
    batch_size: int,
    *,
    cache_file: Path | None,
    shuffle_seed: int | None,
) -> Any:
    """A batched `tf.data.Dataset` of (normalized float32 images, int64 labels) read from disk.

    `cache_file`: where the decoded pixels are kept after the first pass (None: decode every pass).
    `shuffle_seed`: reshuffle every epoch within a bounded buffer (None: file order, for scoring)."""
    tf = import_tensorflow()
    h, w = files.size
    c = files.channels

    def decode(path: bytes) -> np.ndarray:
        return load_image(Path(path.decode()), files.size, c)

    def normalize(batch: np.ndarray) -> np.ndarray:
        return normalization.apply(batch).astype(np.float32)

    def decode_one(path: Any, label: Any) -> tuple[Any, Any]:
        pixels = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
        return tf.ensure_shape(pixels, (h, w, c)), label

    def normalize_batch(pixels: Any, label: Any) -> tuple[Any, Any]:
        x = tf.numpy_function(normalize, [pixels], tf.float32, stateful=False)
        return tf.ensure_shape(x, (None, h, w, c)), label

    paths = [str(p) for p in files.paths]
    ds = tf.data.Dataset.from_tensor_slices((paths, files.labels.astype(np.int64)))
    ds = ds.map(decode_one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache_file is not None:
        ds = ds.cache(str(cache_file))
    if shuffle_seed is not None:
        buffer = shuffle_buffer_images(files.size, c, len(files))
        ds = ds.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(normalize_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


# The EdgecnnError a decode raised inside tf.numpy_function, as TensorFlow quotes it in its op error.
_QUOTED_ERROR = re.compile(r"EdgecnnError: (.+?)(?:\s+Traceback \(most recent|\s*\n|$)")


@contextlib.contextmanager
def stream_errors() -> Iterator[None]:
    """Turn a failure inside the pipeline (a file that stopped decoding after its header was checked,
    a full disk under the cache) into one line naming its cause, instead of TensorFlow's op error."""
    try:
        yield
    except Exception as exc:
        tf = import_tensorflow()
        if not isinstance(exc, tf.errors.OpError):
            raise
        message = str(getattr(exc, "message", "") or exc)
        quoted = _QUOTED_ERROR.findall(message)
        if quoted:
            raise EdgecnnError(f"while streaming images: {quoted[-1].strip()}") from None
        first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        raise EdgecnnError(f"while streaming images from disk: {first[:300]}") from None
