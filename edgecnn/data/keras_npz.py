"""The `<name>.npz` files Keras downloads (x_train, y_train, x_test, y_test): read and check them."""

from __future__ import annotations

import functools
import zipfile
import zlib
from pathlib import Path

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.files import sha256_file
from edgecnn.data.checksums import (
    KERAS_MNIST_NPZ_SHA256,
    MNIST_CONTENT_MD5,
    UNPUBLISHED,
    check_against_manifest,
    md5_hex,
    read_manifest,
)
from edgecnn.data.dataset import FileCheck, FileKey, LoadedArrays, readonly
from edgecnn.data.idx import IDX_FILES, idx_bytes
from edgecnn.data.normalization import MNIST_NORMALIZATION, channel_stats

NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in NPZ_ARRAYS}
    except KeyError as exc:
        raise EdgecnnError(
            f"{path} lacks the array {exc}; it needs x_train, y_train, x_test, y_test"
        ) from None
    except (OSError, ValueError, zlib.error, EOFError, zipfile.BadZipFile) as exc:
        raise EdgecnnError(f"{path} is not a readable .npz ({exc}); delete it and fetch it again") from None


def _validated_split(path: Path, split: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(images NHWC uint8, labels int64) of one split, both read-only."""
    y = y.reshape(-1)
    if x.ndim == 3:
        x = x[..., None]
    if x.dtype != np.uint8 or x.ndim != 4:
        raise EdgecnnError(f"{path}: x_{split} must be uint8 (N, H, W[, C]), got {x.dtype} {x.shape}")
    if x.shape[0] != y.shape[0]:
        raise EdgecnnError(f"{path} holds {x.shape[0]} {split} images but {y.shape[0]} labels")
    if not np.issubdtype(y.dtype, np.integer):
        raise EdgecnnError(f"{path}: y_{split} must hold integer labels, not {y.dtype}")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() > 9):
        raise EdgecnnError(f"{path} holds {split} labels outside 0..9 (corrupt file?)")
    return readonly(np.ascontiguousarray(x)), readonly(y)


def _check_official_mnist(path: Path, arrays: list[np.ndarray]) -> FileCheck:
    """The arrays re-encoded as IDX are byte-identical to the official files: check those md5s."""
    squeezed = (a[..., 0] if a.ndim == 4 else a for a in arrays)
    for stem, arr in zip(IDX_FILES.values(), squeezed, strict=True):
        if md5_hex(idx_bytes(arr)) != MNIST_CONTENT_MD5[stem]:
            raise EdgecnnError(
                f"{path} is corrupt: its {stem} arrays do not match the published MNIST md5; "
                "delete it and fetch it again"
            )
    status = "md5 ok (published, arrays re-encoded as IDX)"
    if sha256_file(path) == KERAS_MNIST_NPZ_SHA256:
        status += "; sha256 matches Keras' mnist.npz"
    return FileCheck(str(path), path.stat().st_size, status, True)


@functools.lru_cache(maxsize=4)
def load_npz(name: str, key: FileKey) -> LoadedArrays:
    """The .npz of `key` for dataset `name`, validated and checked; cached per process."""
    path = Path(key[0][0])
    manifest = read_manifest(path.parent)
    arrays = _read_npz(path)
    x_train, y_train = _validated_split(path, "train", arrays["x_train"], arrays["y_train"])
    x_test, y_test = _validated_split(path, "test", arrays["x_test"], arrays["y_test"])
    expected = (32, 32, 3) if name == "cifar10" else (28, 28, 1)
    if x_train.shape[1:] != expected or x_test.shape[1:] != expected:
        raise EdgecnnError(f"{path} holds {x_train.shape[1:]} images; {name} images are {expected}")
    out = [x_train, y_train, x_test, y_test]
    size = path.stat().st_size
    if name == "mnist" and (x_train.shape[0], x_test.shape[0]) == (60000, 10000):
        check = _check_official_mnist(path, out)
    else:
        check = check_against_manifest(path, size, manifest, "") or FileCheck(
            str(path), size, UNPUBLISHED, False
        )
    norm = channel_stats(x_train) if name == "cifar10" else MNIST_NORMALIZATION
    return LoadedArrays(x_train, y_train, x_test, y_test, (check,), norm)
