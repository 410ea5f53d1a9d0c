"""The dataset table (issue 18): a new dataset is one `DatasetSpec` entry, a new file format one
`FileFormat` entry; lookup, the model spec check and the commands' help texts pick them up with no
other edit. Real MNIST images, written to tmp in the formats under test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgecnn.core.errors import EdgecnnError
from edgecnn.data import (
    DATASETS,
    FORMATS,
    SOURCES,
    Dataset,
    DatasetSpec,
    FileFormat,
    load_dataset,
    names_help,
    parse_name,
    register_dataset,
    unregister_dataset,
)
from edgecnn.data.dataset import LoadedArrays, file_key, readonly
from edgecnn.models.spec_file import spec_from_dict

ROOT = Path(__file__).resolve().parents[1]
LETTERS = tuple("abcdefghij")  # a labelling of its own: the table's labels, not MNIST's digits
NEW = "digits_small"


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path) -> Dataset:
    return load_dataset("mnist", mnist_dir, download=False)


def _new_spec(**changes) -> DatasetSpec:
    fields = dict(
        name=NEW,
        title="Digits-small",
        class_labels=LETTERS,
        input_shape=(28, 28, 1),
        formats=("npz",),
        aliases=("digits-tiny",),
        urls=("file://tests",),
    )
    return DatasetSpec(**{**fields, **changes})


def _write_npz(path: Path, mnist: Dataset, n_train: int = 600, n_test: int = 100) -> None:
    np.savez(
        path,
        x_train=mnist.x_train[:n_train, ..., 0],
        y_train=mnist.y_train[:n_train],
        x_test=mnist.x_test[:n_test, ..., 0],
        y_test=mnist.y_test[:n_test],
    )


@pytest.fixture
def new_dataset(mnist: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`digits_small` registered for the test (removed after), its .npz holding real MNIST images."""
    monkeypatch.delenv("EDGECNN_DATA_DIR", raising=False)
    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "files"
    folder.mkdir()
    _write_npz(folder / f"{NEW}.npz", mnist)
    register_dataset(_new_spec())
    try:
        yield folder
    finally:
        unregister_dataset(NEW)


SPEC_FILE = {"input_shape": [28, 28, 1], "layers": [{"type": "flatten"}], "dataset": NEW}


def test_a_new_dataset_is_one_table_entry(new_dataset: Path, mnist: Dataset) -> None:
    ds = load_dataset("Digits-Tiny", new_dataset, download=False)  # alias, any case, '-' for '_'
    assert ds.name == NEW and ds.class_labels == LETTERS and ds.input_shape == (28, 28, 1)
    assert np.array_equal(ds.x_test, mnist.x_test[:100]) and len(ds.y_train) == 600
    # No fixed convention in its entry: the per-channel statistics are measured on its training images.
    mean = float(np.asarray(mnist.x_train[:600], dtype=np.float64).mean() / 255.0)
    assert ds.normalization.mean[0] == pytest.approx(mean, abs=1e-4) and ds.normalization.std[0] > 0.1
    assert not ds.checksums_verified  # no published checksums in its entry
    # The model spec check and the help texts read the same table.
    assert spec_from_dict(SPEC_FILE).default_dataset == NEW
    assert NEW in names_help() and names_help().endswith("or folder:PATH")
    assert parse_name(NEW).spec is DATASETS[NEW]
    # Where it is not, it is looked for in the documented places and the message names its files.
    empty = new_dataset / "empty"
    empty.mkdir()
    with pytest.raises(EdgecnnError, match=f"no {NEW} files in {empty}: put {NEW}.npz"):
        load_dataset(NEW, empty)


def test_unregistered_names_are_refused_everywhere(tmp_path: Path) -> None:
    assert NEW not in DATASETS
    with pytest.raises(EdgecnnError, match=f"unknown dataset '{NEW}'; choose one of mnist, "):
        load_dataset(NEW, tmp_path)
    with pytest.raises(
        EdgecnnError, match="'dataset' must be one of mnist, fashion_mnist, cifar10 or folder:PATH"
    ):
        spec_from_dict(SPEC_FILE)
    with pytest.raises(EdgecnnError, match="taken"):
        register_dataset(_new_spec(name="mnist2", aliases=("fashion",)))
    with pytest.raises(EdgecnnError, match="unknown file format"):
        register_dataset(_new_spec(formats=("tfrecord",)))
    assert NEW not in DATASETS and "mnist2" not in DATASETS


def test_help_texts_are_built_from_the_table(new_dataset: Path) -> None:
    """A fresh process that registers the entry before the CLI is imported: train, export and eval
    offer it in their --dataset/--data help with no edit to the commands."""
    script = (
        "import sys\n"
        "from edgecnn.data import DatasetSpec, register_dataset\n"
        f"register_dataset(DatasetSpec(name={NEW!r}, title='d', class_labels={LETTERS!r}, "
        "input_shape=(28, 28, 1), formats=('npz',)))\n"
        "from typer.testing import CliRunner\n"
        "from edgecnn.cli import app\n"
        "for cmd in ('train', 'export', 'eval'):\n"
        "    out = CliRunner().invoke(app, [cmd, '--help'], terminal_width=240).output\n"
        f"    print(cmd, {NEW!r} in out, 'folder:PATH' in out)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "240", "TERM": "dumb"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["train True True", "export True True", "eval True True"]


def _npy_find(spec: DatasetSpec, directory: Path):
    paths = [directory / f"{spec.name}_{k}.npy" for k in ("x_train", "y_train", "x_test", "y_test")]
    if not any(p.is_file() for p in paths):
        return None
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise EdgecnnError(f"{directory} holds only some {spec.name} files: {', '.join(missing)} missing")
    key = file_key(paths)

    def load() -> LoadedArrays:
        x_train, y_train, x_test, y_test = (np.load(k[0], allow_pickle=False) for k in key)
        x_train, x_test = x_train[..., None], x_test[..., None]
        return LoadedArrays(
            readonly(x_train), readonly(y_train), readonly(x_test), readonly(y_test), (),
            spec.normalization_of(x_train),
        )  # fmt: skip

    return load


def test_a_new_file_format_is_one_formats_entry(mnist: Dataset, tmp_path: Path) -> None:
    """A reader and one FileFormat entry; the dataset entry then names the format."""
    FORMATS["npy4"] = FileFormat("npy4", _npy_find, lambda s: f"{s.name}_x_train.npy and three more .npy")
    register_dataset(_new_spec(formats=("npy4",)))
    try:
        with pytest.raises(EdgecnnError, match=f"put {NEW}_x_train.npy and three more"):
            load_dataset(NEW, tmp_path, download=False)
        np.save(tmp_path / f"{NEW}_x_train.npy", mnist.x_train[:300, ..., 0])
        with pytest.raises(EdgecnnError, match=f"only some {NEW} files: {NEW}_y_train.npy"):
            load_dataset(NEW, tmp_path, download=False)
        np.save(tmp_path / f"{NEW}_y_train.npy", mnist.y_train[:300])
        np.save(tmp_path / f"{NEW}_x_test.npy", mnist.x_test[:50, ..., 0])
        np.save(tmp_path / f"{NEW}_y_test.npy", mnist.y_test[:50])
        ds = load_dataset(NEW, tmp_path, download=False)
        assert ds.class_labels == LETTERS and ds.x_train.shape == (300, 28, 28, 1)
        assert np.array_equal(ds.y_test, mnist.y_test[:50])
    finally:
        unregister_dataset(NEW)
        del FORMATS["npy4"]


def test_prefixes_are_parsed_in_one_place(tmp_path: Path) -> None:
    ref = parse_name(f"folder:{tmp_path}")
    assert ref.kind == "folder" and ref.path == tmp_path and ref.text == f"folder:{tmp_path}"
    assert ref.any_image_size and ref.spec is None and ref.source is SOURCES["folder"]
    assert parse_name(f"folder:{tmp_path}/../{tmp_path.name}").same_as(ref)
    assert not parse_name("mnist").any_image_size and parse_name("FASHION").name == "fashion_mnist"
    with pytest.raises(EdgecnnError, match="folder: needs a path, e.g. folder:./my_images"):
        parse_name("folder:")
