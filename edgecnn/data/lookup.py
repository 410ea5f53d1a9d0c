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
from dataclasses import replace
from pathlib import Path

from edgecnn.core.errors import EdgecnnError
from edgecnn.data.dataset import Dataset, DatasetSpec, LoadedArrays
from edgecnn.data.dataset_registry import parse_name
from edgecnn.data.download import download_to
from edgecnn.data.folder import FOLDER_TEST_FRACTION
from edgecnn.data.formats import FORMATS, Loader
from edgecnn.data.images import convert_images
from edgecnn.data.normalization import channel_stats

# A folder that holds a dataset, and how to load it (loading is deferred: finding is cheap).
Found = tuple[Path, Loader]


def cache_root() -> Path:
    env = os.environ.get("EDGECNN_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgecnn" / "datasets"


def dataset_cache_dir(name: str) -> Path:
    return cache_root() / name


def candidate_dirs(base: Path, spec: DatasetSpec) -> list[Path]:
    """A base folder may hold the files directly or in a sub-folder named after the dataset."""
    return [base] + [base / s for s in spec.subdirs]


def expected_files_hint(spec: DatasetSpec) -> str:
    return FORMATS[spec.formats[0]].expected_files(spec)


def try_dir(spec: DatasetSpec, directory: Path) -> Found | None:
    """If `directory` holds the dataset (in any of its formats), a loader for it; None when it holds
    none of its files. A folder holding only some of the files is an error, not a miss: the user meant it.
    """
    if not directory.is_dir():
        return None
    for fmt in spec.formats:
        loader = FORMATS[fmt].find(spec, directory)
        if loader is not None:
            return directory, loader
    return None


def search(spec: DatasetSpec, base: Path) -> Found | None:
    """The first of `base` and its dataset-named sub-folders that holds the dataset."""
    for directory in candidate_dirs(base, spec):
        hit = try_dir(spec, directory)
        if hit:
            return hit
    return None


def _not_found_message(spec: DatasetSpec, looked: list[str], download_note: str) -> str:
    name = spec.name
    dest = dataset_cache_dir(name)
    where = f"; looked in {', '.join(looked)}" if looked else ""
    return (
        f"{name} data not found{where}{download_note}: put {expected_files_hint(spec)} in a folder and "
        f"point EDGECNN_DATA_DIR or --data-dir at it, or put them in {dest}, "
        f"or run {spec.fetch_hint} to download them there"
    )


def _load_from_data_dir(spec: DatasetSpec, data_dir: Path) -> tuple[LoadedArrays, str, str]:
    # The user said where the data is: look only there, never silently elsewhere.
    base = Path(data_dir).expanduser()
    if not base.is_dir():
        raise EdgecnnError(
            f"data folder {base} does not exist: put {expected_files_hint(spec)} there, "
            f"or drop --data-dir to use EDGECNN_DATA_DIR, the cache or {spec.fetch_hint}"
        )
    hit = search(spec, base)
    if hit is None:
        sub = f" (or in {base / spec.subdirs[0]})" if spec.subdirs else ""
        raise EdgecnnError(
            f"no {spec.name} files in {base}: put {expected_files_hint(spec)} there{sub}, or drop "
            f"--data-dir to use EDGECNN_DATA_DIR, the cache ({dataset_cache_dir(spec.name)}) or "
            f"{spec.fetch_hint}"
        )
    return hit[1](), str(hit[0]), "data_dir"


def _load_builtin(spec: DatasetSpec, data_dir: Path | None, download: bool) -> tuple[LoadedArrays, str, str]:
    """(arrays+checks, source, origin) following the documented lookup order."""
    if data_dir is not None:
        return _load_from_data_dir(spec, data_dir)
    looked: list[str] = []
    env = os.environ.get("EDGECNN_DATA_DIR")
    if env:
        base = Path(env).expanduser()
        looked.append(f"{base} (EDGECNN_DATA_DIR)")
        hit = search(spec, base)
        if hit:
            return hit[1](), str(hit[0]), "env"
    cache = dataset_cache_dir(spec.name)
    looked.append(f"{cache} (cache)")
    hit = try_dir(spec, cache)
    if hit:
        return hit[1](), str(hit[0]), "cache"
    if not download:
        raise EdgecnnError(_not_found_message(spec, looked, " (download disabled)"))
    try:
        download_to(spec, cache)
    except EdgecnnError as exc:
        raise EdgecnnError(_not_found_message(spec, looked, f"; download failed ({exc})")) from None
    hit = try_dir(spec, cache)
    if hit is None:  # pragma: no cover - download_to writes exactly what try_dir reads
        raise EdgecnnError(_not_found_message(spec, looked, "; download wrote nothing usable"))
    return hit[1](), f"{hit[0]} (downloaded with Keras)", "download"


def _resized(ds: Dataset, image_size: tuple[int, int] | None, channels: int | None) -> Dataset:
    """`ds` with its images at `image_size`/`channels`; `ds` itself when they already are."""
    new_train = convert_images(ds.x_train, image_size, channels)
    if new_train is ds.x_train:
        return ds
    normalization = ds.normalization
    spec = parse_name(ds.name).spec
    if new_train.shape[-1] != ds.x_train.shape[-1] and spec is not None and spec.normalization is None:
        # Measured per-channel statistics follow the channel change (grey repeated, or colour to luma).
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
    ref = parse_name(name)
    if ref.source is not None:
        if not 0.0 <= test_fraction < 1.0:
            raise EdgecnnError(f"test fraction must be in [0, 1), not {test_fraction}")
        assert ref.path is not None
        return ref.source.load(ref.path, image_size, channels, test_fraction)
    assert ref.spec is not None
    arrays, source, origin = _load_builtin(ref.spec, data_dir, download)
    ds = Dataset(
        name=ref.spec.name,
        x_train=arrays.x_train,
        y_train=arrays.y_train,
        x_test=arrays.x_test,
        y_test=arrays.y_test,
        class_labels=ref.spec.class_labels,
        normalization=arrays.normalization,
        source=source,
        origin=origin,
        files=arrays.checks,
    )
    if image_size is not None or channels is not None:
        ds = _resized(ds, image_size, channels)
    return ds
