"""The MNIST family's IDX files (MNIST, Fashion-MNIST): find, read, validate and write them."""

from __future__ import annotations

import functools
import gzip
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.outputs import atomic_write_bytes
from edgecnn.data.checksums import check_idx_file, read_manifest
from edgecnn.data.dataset import DatasetSpec, FileCheck, FileKey, LoadedArrays, file_key, readonly

# The four MNIST-family files; `role` -> standard file name (without .gz).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Some distributions (e.g. Kaggle, the original uncompressed copies) use a dot before "idx".
IDX_ALT_NAMES = {stem: stem.replace("-idx", ".idx") for stem in IDX_FILES.values()}
# IDX role -> the array name a download hands over (keras' load_data order).
IDX_ARRAYS = {
    "train_images": "x_train", "train_labels": "y_train", "test_images": "x_test", "test_labels": "y_test",
}  # fmt: skip


def read_maybe_gzipped(path: Path) -> bytes:
    """The file's bytes, decompressed when it ends in .gz; damage is a one-line error."""
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


def idx_bytes(array: np.ndarray) -> bytes:
    """A uint8 array encoded as an IDX file (header + raw bytes)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz), atomically."""
    data = idx_bytes(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    return atomic_write_bytes(path, data)


def find_idx_files(directory: Path) -> dict[str, Path] | None:
    """role -> path for the files present in `directory`; None when none of them is there."""
    found: dict[str, Path] = {}
    for role, stem in IDX_FILES.items():
        for cand in (stem + ".gz", stem, IDX_ALT_NAMES[stem] + ".gz", IDX_ALT_NAMES[stem]):
            if (directory / cand).is_file():
                found[role] = directory / cand
                break
    return found or None


def _check_idx_arrays(spec: DatasetSpec, role: str, path: Path, arr: np.ndarray) -> None:
    h, w = spec.input_shape[:2]
    if role.endswith("images") and arr.shape[1:] != (h, w):
        raise EdgecnnError(
            f"{path} holds {arr.shape[1]}x{arr.shape[2]} images; {spec.name} images are {h}x{w}"
        )
    top = spec.num_classes - 1
    if role.endswith("labels") and arr.size and int(arr.max()) > top:
        raise EdgecnnError(
            f"{path} holds label {int(arr.max())}; {spec.name} labels are 0..{top} (corrupt file?)"
        )


def find_idx(spec: DatasetSpec, directory: Path) -> Callable[[], LoadedArrays] | None:
    """A loader for the IDX files in `directory`; None when none is there, an error when only some are."""
    found = find_idx_files(directory)
    if not found:
        return None
    missing = [f"{IDX_FILES[r]}[.gz]" for r in IDX_FILES if r not in found]
    if missing:
        raise EdgecnnError(f"{directory} holds only some {spec.name} files: {', '.join(missing)} missing")
    key = file_key(found[r] for r in IDX_FILES)
    return lambda: load_idx(spec, key)


def expected_idx_files(spec: DatasetSpec) -> str:
    names = ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
    return f"{names} (gzipped or not)"


def encode_idx(spec: DatasetSpec, arrays: Mapping[str, np.ndarray]) -> dict[str, bytes]:
    """The four standard files of downloaded arrays."""
    return {stem: idx_bytes(arrays[IDX_ARRAYS[role]]) for role, stem in IDX_FILES.items()}


@functools.lru_cache(maxsize=8)
def load_idx(spec: DatasetSpec, key: FileKey) -> LoadedArrays:
    """The four files of `key` (in IDX_FILES order), parsed, validated and checked; cached per process."""
    paths = {role: Path(k[0]) for role, k in zip(IDX_FILES, key, strict=True)}
    manifest = read_manifest(paths["train_images"].parent)
    arrays: dict[str, np.ndarray] = {}
    checks: list[FileCheck] = []
    for role, path in paths.items():
        content = read_maybe_gzipped(path)
        arr = parse_idx(content, path, ndim=3 if role.endswith("images") else 1)
        counts = dict(zip(("train", "test"), spec.official_counts or (), strict=False))
        official = arr.shape[0] == counts.get(role.split("_")[0])
        _check_idx_arrays(spec, role, path, arr)
        checks.append(check_idx_file(spec, path, path.stat().st_size, content, official, manifest))
        arrays[role] = arr
    for split in ("train", "test"):
        n_img, n_lab = arrays[f"{split}_images"].shape[0], arrays[f"{split}_labels"].shape[0]
        if n_img != n_lab:
            raise EdgecnnError(
                f"{paths[f'{split}_images']} holds {n_img} images but {paths[f'{split}_labels']} "
                f"holds {n_lab} labels"
            )
    return LoadedArrays(
        readonly(arrays["train_images"][..., None]),
        readonly(arrays["train_labels"].astype(np.int64)),
        readonly(arrays["test_images"][..., None]),
        readonly(arrays["test_labels"].astype(np.int64)),
        tuple(checks),
        spec.normalization_of(arrays["train_images"][..., None]),
    )
