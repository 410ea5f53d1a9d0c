"""The `<name>.npz` files Keras downloads (x_train, y_train, x_test, y_test): read and check them."""

from __future__ import annotations

import functools
import io
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.files import sha256_file
from edgecnn.data.checksums import UNPUBLISHED, check_against_manifest, md5_hex, read_manifest
from edgecnn.data.dataset import DatasetSpec, FileCheck, FileKey, LoadedArrays, file_key, readonly
from edgecnn.data.idx import IDX_FILES, idx_bytes

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


def _validated_split(
    path: Path, split: str, x: np.ndarray, y: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
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
    if y.size and (y.min() < 0 or y.max() > num_classes - 1):
        raise EdgecnnError(f"{path} holds {split} labels outside 0..{num_classes - 1} (corrupt file?)")
    return readonly(np.ascontiguousarray(x)), readonly(y)


def _check_published_content(spec: DatasetSpec, path: Path, arrays: list[np.ndarray]) -> FileCheck:
    """The arrays re-encoded as IDX are byte-identical to the published files: check those md5s."""
    squeezed = (a[..., 0] if a.ndim == 4 else a for a in arrays)
    for stem, arr in zip(IDX_FILES.values(), squeezed, strict=True):
        if md5_hex(idx_bytes(arr)) != spec.content_md5[stem]:
            raise EdgecnnError(
                f"{path} is corrupt: its {stem} arrays do not match the published {spec.title} md5; "
                "delete it and fetch it again"
            )
    status = "md5 ok (published, arrays re-encoded as IDX)"
    if path.name in spec.copy_sha256 and sha256_file(path) == spec.copy_sha256[path.name]:
        status += f"; sha256 matches Keras' {path.name}"
    return FileCheck(str(path), path.stat().st_size, status, True)


def find_npz(spec: DatasetSpec, directory: Path) -> Callable[[], LoadedArrays] | None:
    npz = directory / f"{spec.name}.npz"
    if not npz.is_file():
        return None
    key = file_key([npz])
    return lambda: load_npz(spec, key)


def expected_npz_file(spec: DatasetSpec) -> str:
    return f"{spec.name}.npz (arrays {', '.join(NPZ_ARRAYS)})"


def encode_npz(spec: DatasetSpec, arrays: Mapping[str, np.ndarray]) -> dict[str, bytes]:
    buf = io.BytesIO()
    np.savez(buf, **{k: arrays[k].reshape(-1) if k.startswith("y") else arrays[k] for k in NPZ_ARRAYS})
    return {f"{spec.name}.npz": buf.getvalue()}


@functools.lru_cache(maxsize=4)
def load_npz(spec: DatasetSpec, key: FileKey) -> LoadedArrays:
    """The .npz of `key` for dataset `spec`, validated and checked; cached per process."""
    path = Path(key[0][0])
    manifest = read_manifest(path.parent)
    arrays = _read_npz(path)
    n = spec.num_classes
    x_train, y_train = _validated_split(path, "train", arrays["x_train"], arrays["y_train"], n)
    x_test, y_test = _validated_split(path, "test", arrays["x_test"], arrays["y_test"], n)
    expected = spec.input_shape
    if x_train.shape[1:] != expected or x_test.shape[1:] != expected:
        raise EdgecnnError(f"{path} holds {x_train.shape[1:]} images; {spec.name} images are {expected}")
    out = [x_train, y_train, x_test, y_test]
    size = path.stat().st_size
    if spec.content_md5 and (x_train.shape[0], x_test.shape[0]) == spec.official_counts:
        check = _check_published_content(spec, path, out)
    else:
        check = check_against_manifest(path, size, manifest, "") or FileCheck(
            str(path), size, UNPUBLISHED, False
        )
    return LoadedArrays(x_train, y_train, x_test, y_test, (check,), spec.normalization_of(x_train))
