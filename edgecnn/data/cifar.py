"""CIFAR-10's python-version batch files: find them, unpickle them safely, validate them."""

from __future__ import annotations

import functools
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.data.checksums import check_cifar_batch, read_manifest
from edgecnn.data.dataset import DatasetSpec, FileKey, LoadedArrays, file_key, readonly

CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
CIFAR_TEST_BATCH = "test_batch"
CIFAR_SUBDIR = "cifar-10-batches-py"
CIFAR_BATCH_COUNT = 10000


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickle only what a CIFAR-10 batch holds (dicts, lists, bytes and numpy arrays)."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        # Protocol-2 pickles written by Python 3 carry array bytes as _codecs.encode(str, "latin1").
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle_batch(path: Path) -> dict[bytes, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EdgecnnError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        obj = RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except EOFError:
        raise EdgecnnError(
            f"{path} is truncated (the pickle ends early); delete it and fetch it again"
        ) from None
    except Exception as exc:  # noqa: BLE001 - pickle raises many types for garbage input
        raise EdgecnnError(
            f"{path} is not a CIFAR-10 python batch ({type(exc).__name__}: {exc}); "
            "delete it and fetch it again"
        ) from None
    if not isinstance(obj, dict):
        raise EdgecnnError(
            f"{path} is not a CIFAR-10 python batch (holds a {type(obj).__name__}, not a dict)"
        )
    return {k.encode() if isinstance(k, str) else k: v for k, v in obj.items()}


def parse_cifar_batch(path: Path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (uint8 NHWC images, int64 labels), validated."""
    batch = _unpickle_batch(path)
    if b"data" not in batch or not ({b"labels", b"fine_labels"} & batch.keys()):
        raise EdgecnnError(f"{path} is not a CIFAR-10 python batch (no 'data'/'labels' entries)")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise EdgecnnError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {shape}")
    labels = np.asarray(batch.get(b"labels", batch.get(b"fine_labels")), dtype=np.int64)
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise EdgecnnError(f"{path} holds {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > num_classes - 1):
        raise EdgecnnError(f"{path} holds labels outside 0..{num_classes - 1} (corrupt file?)")
    # The python version stores each image as 1024 red, then green, then blue bytes, row-major.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def find_cifar_files(directory: Path) -> dict[str, Path] | None:
    """batch name -> path for the batches present in `directory`; None when none is there."""
    found = {n: directory / n for n in (*CIFAR_BATCHES, CIFAR_TEST_BATCH) if (directory / n).is_file()}
    return found or None


def find_cifar(spec: DatasetSpec, directory: Path) -> Callable[[], LoadedArrays] | None:
    """A loader for the batches in `directory`; None when none is there, an error when only some are."""
    found = find_cifar_files(directory)
    if not found:
        return None
    missing = [n for n in (*CIFAR_BATCHES, CIFAR_TEST_BATCH) if n not in found]
    if missing:
        raise EdgecnnError(f"{directory} holds only some {spec.title} batches: {', '.join(missing)} missing")
    key = file_key(found[n] for n in (*CIFAR_BATCHES, CIFAR_TEST_BATCH))
    return lambda: load_cifar(spec, key)


def expected_cifar_files(spec: DatasetSpec) -> str:
    batches = ", ".join(CIFAR_BATCHES)
    return f"{batches} and {CIFAR_TEST_BATCH} (the {spec.title} python version, folder {CIFAR_SUBDIR})"


@functools.lru_cache(maxsize=2)
def load_cifar(spec: DatasetSpec, key: FileKey) -> LoadedArrays:
    """The five training batches and the test batch of `key`, parsed and checked; cached per process."""
    paths = [Path(k[0]) for k in key]
    manifest = read_manifest(paths[0].parent)
    xs, ys, checks = [], [], []
    for path in paths:
        x, y = parse_cifar_batch(path, spec.num_classes)
        checks.append(check_cifar_batch(spec, path, x.shape[0] == CIFAR_BATCH_COUNT, manifest))
        xs.append(x)
        ys.append(y)
    x_train = np.ascontiguousarray(np.concatenate(xs[:-1]))
    y_train = np.concatenate(ys[:-1])
    x_test = np.ascontiguousarray(xs[-1])
    return LoadedArrays(
        readonly(x_train),
        readonly(y_train),
        readonly(x_test),
        readonly(ys[-1]),
        tuple(checks),
        spec.normalization_of(x_train),
    )
