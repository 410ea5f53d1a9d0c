"""Datasets by name: where the files are looked for, and `load_dataset`, the one entry point.

Where the files come from, in order: the `data_dir` argument, `$EDGECNN_DATA_DIR`, the user cache
(`$EDGECNN_CACHE_DIR/<name>` or `~/.cache/edgecnn/datasets/<name>`), then the Keras download (which is
written into the cache). An explicit `data_dir` is the only place looked at: a user who names a folder
gets an error about that folder, not data from somewhere else. `$EDGECNN_DATA_DIR` may hold other
datasets, so a miss there falls through to the cache.

Every file is validated (IDX magic numbers, dimensions, declared vs actual sizes, label ranges,
counts) and checked against the published checksums where they are known, so a truncated or
corrupt file is a one-line `EdgecnnError`, never garbage training.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from edgecnn.core.errors import EdgecnnError
from edgecnn.data.cifar import CIFAR_BATCHES, CIFAR_SUBDIR, CIFAR_TEST_BATCH, find_cifar_files, load_cifar
from edgecnn.data.dataset import BUILTIN_LABELS, BUILTIN_NAMES, FOLDER_PREFIX, Dataset, FileKey, LoadedArrays
from edgecnn.data.download import download_to
from edgecnn.data.folder import FOLDER_TEST_FRACTION, load_folder
from edgecnn.data.idx import IDX_FILES, find_idx_files, load_idx
from edgecnn.data.images import convert_images
from edgecnn.data.keras_npz import load_npz
from edgecnn.data.normalization import channel_stats

# A folder that holds a dataset, and how to load it (loading is deferred: finding is cheap).
Found = tuple[Path, Callable[[], LoadedArrays]]


def cache_root() -> Path:
    env = os.environ.get("EDGECNN_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgecnn" / "datasets"


def dataset_cache_dir(name: str) -> Path:
    return cache_root() / name


def candidate_dirs(base: Path, name: str) -> list[Path]:
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


def fetch_hint(name: str) -> str:
    # `make data` fetches MNIST only; the other datasets are one explicit command away.
    return "`make data` (edgecnn data fetch mnist)" if name == "mnist" else f"`edgecnn data fetch {name}`"


def _file_key(paths: Iterable[Path]) -> FileKey:
    key = []
    for p in paths:
        st = p.stat()
        key.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
    return tuple(key)


def try_dir(name: str, directory: Path) -> Found | None:
    """If `directory` holds the dataset, a loader for it; None when it holds none of its files.

    A folder holding only some of the files is an error, not a miss: the user meant it.
    """
    if not directory.is_dir():
        return None
    if name == "cifar10":
        found = find_cifar_files(directory)
        if found:
            missing = [n for n in (*CIFAR_BATCHES, CIFAR_TEST_BATCH) if n not in found]
            if missing:
                raise EdgecnnError(
                    f"{directory} holds only some CIFAR-10 batches: {', '.join(missing)} missing"
                )
            paths = [found[n] for n in (*CIFAR_BATCHES, CIFAR_TEST_BATCH)]
            return directory, lambda: load_cifar(_file_key(paths))
    else:
        found_idx = find_idx_files(directory)
        if found_idx:
            missing = [f"{IDX_FILES[r]}[.gz]" for r in IDX_FILES if r not in found_idx]
            if missing:
                raise EdgecnnError(f"{directory} holds only some {name} files: {', '.join(missing)} missing")
            paths = [found_idx[r] for r in IDX_FILES]
            return directory, lambda: load_idx(name, _file_key(paths))
    npz = directory / f"{name}.npz"
    if npz.is_file():
        return directory, lambda: load_npz(name, _file_key([npz]))
    return None


def search(name: str, base: Path) -> Found | None:
    """The first of `base` and its dataset-named sub-folders that holds the dataset."""
    for directory in candidate_dirs(base, name):
        hit = try_dir(name, directory)
        if hit:
            return hit
    return None


def _not_found_message(name: str, looked: list[str], download_note: str) -> str:
    dest = dataset_cache_dir(name)
    where = f"; looked in {', '.join(looked)}" if looked else ""
    return (
        f"{name} data not found{where}{download_note}: put {expected_files_hint(name)} in a folder and "
        f"point EDGECNN_DATA_DIR or --data-dir at it, or put them in {dest}, "
        f"or run {fetch_hint(name)} to download them there"
    )


def _load_from_data_dir(name: str, data_dir: Path) -> tuple[LoadedArrays, str, str]:
    # The user said where the data is: look only there, never silently elsewhere.
    base = Path(data_dir).expanduser()
    if not base.is_dir():
        raise EdgecnnError(
            f"data folder {base} does not exist: put {expected_files_hint(name)} there, "
            f"or drop --data-dir to use EDGECNN_DATA_DIR, the cache or {fetch_hint(name)}"
        )
    hit = search(name, base)
    if hit is None:
        raise EdgecnnError(
            f"no {name} files in {base}: put {expected_files_hint(name)} there "
            f"(or in {base / candidate_dirs(base, name)[1].name}), or drop --data-dir to use "
            f"EDGECNN_DATA_DIR, the cache ({dataset_cache_dir(name)}) or {fetch_hint(name)}"
        )
    return hit[1](), str(hit[0]), "data_dir"


def _load_builtin(name: str, data_dir: Path | None, download: bool) -> tuple[LoadedArrays, str, str]:
    """(arrays+checks, source, origin) following the documented lookup order."""
    if data_dir is not None:
        return _load_from_data_dir(name, data_dir)
    looked: list[str] = []
    env = os.environ.get("EDGECNN_DATA_DIR")
    if env:
        base = Path(env).expanduser()
        looked.append(f"{base} (EDGECNN_DATA_DIR)")
        hit = search(name, base)
        if hit:
            return hit[1](), str(hit[0]), "env"
    cache = dataset_cache_dir(name)
    looked.append(f"{cache} (cache)")
    hit = try_dir(name, cache)
    if hit:
        return hit[1](), str(hit[0]), "cache"
    if not download:
        raise EdgecnnError(_not_found_message(name, looked, " (download disabled)"))
    try:
        download_to(name, cache)
    except EdgecnnError as exc:
        raise EdgecnnError(_not_found_message(name, looked, f"; download failed ({exc})")) from None
    hit = try_dir(name, cache)
    if hit is None:  # pragma: no cover - download_to writes exactly what try_dir reads
        raise EdgecnnError(_not_found_message(name, looked, "; download wrote nothing usable"))
    return hit[1](), f"{hit[0]} (downloaded with Keras)", "download"


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


def _resized(ds: Dataset, image_size: tuple[int, int] | None, channels: int | None) -> Dataset:
    """`ds` with its images at `image_size`/`channels`; `ds` itself when they already are."""
    new_train = convert_images(ds.x_train, image_size, channels)
    if new_train is ds.x_train:
        return ds
    normalization = ds.normalization
    if new_train.shape[-1] != ds.x_train.shape[-1] and ds.name == "cifar10":
        # Per-channel statistics follow the channel change (grey repeated, or colour to luma).
        normalization = channel_stats(new_train)
    return replace(
        ds,
        x_train=new_train,
        x_test=convert_images(ds.x_test, image_size, channels),
        normalization=normalization,
    )


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
        return load_folder(folder, image_size, channels, test_fraction)
    arrays, source, origin = _load_builtin(kind, data_dir, download)
    ds = Dataset(
        name=kind,
        x_train=arrays.x_train,
        y_train=arrays.y_train,
        x_test=arrays.x_test,
        y_test=arrays.y_test,
        class_labels=BUILTIN_LABELS[kind],
        normalization=arrays.normalization,
        source=source,
        origin=origin,
        files=arrays.checks,
    )
    if image_size is not None or channels is not None:
        ds = _resized(ds, image_size, channels)
    return ds
