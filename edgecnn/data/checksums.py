"""Is this the file it claims to be: published checksums, the cache manifest, and the checks per file.

A file whose checksum is published (or recorded in the manifest when edgecnn fetched it) must match,
or loading stops with a one-line `EdgecnnError`; a file with nothing to check against is loaded but
reported as unverified.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.files import sha256_file
from edgecnn.core.outputs import atomic_write_bytes, atomic_write_json
from edgecnn.data.dataset import FileCheck

MANIFEST_NAME = "checksums.json"

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
UNOFFICIAL = "not the official file (other image count); none published"
UNPUBLISHED = "no published checksum for this file"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def read_manifest(directory: Path) -> dict[str, str]:
    """file name -> sha256 recorded when edgecnn fetched the files into `directory` (empty if none)."""
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


def install_files(dest: Path, files: dict[str, bytes]) -> list[Path]:
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


def check_against_manifest(path: Path, size: int, manifest: dict[str, str], hint: str) -> FileCheck | None:
    """The manifest check of `path`, or None when the manifest does not list it.

    `hint` ends the corruption message, as each format always phrased it."""
    if path.name not in manifest:
        return None
    if sha256_file(path) != manifest[path.name]:
        raise EdgecnnError(
            f"{path} is corrupt: its sha256 differs from the one recorded when it was fetched{hint}"
        )
    return FileCheck(str(path), size, "sha256 ok (cache manifest)", True)


def check_idx_file(
    name: str, path: Path, raw_size: int, content: bytes, official: bool, manifest: dict[str, str]
) -> FileCheck:
    """Check one MNIST-family file: published md5s first, then the manifest."""
    stem = path.name.removesuffix(".gz").replace(".idx", "-idx")
    if name == "mnist" and stem in MNIST_CONTENT_MD5 and official:
        digest = md5_hex(content)
        if digest != MNIST_CONTENT_MD5[stem]:
            raise EdgecnnError(
                f"{path} is corrupt: md5 of its content is {digest}, the published MNIST value is "
                f"{MNIST_CONTENT_MD5[stem]}; delete it and fetch it again"
            )
        status = "md5 ok (published, uncompressed content)"
        if path.name in MNIST_GZ_SHA256 and sha256_file(path) == MNIST_GZ_SHA256[path.name]:
            status += "; sha256 of the .gz matches the shared copy"
        return FileCheck(str(path), raw_size, status, True)
    if name != "mnist" and stem in MNIST_CONTENT_MD5 and official:
        refuse_other_dataset(name, path, md5_hex(content), MNIST_CONTENT_MD5[stem], "mnist")
    if name == "fashion_mnist" and path.name in FASHION_GZ_MD5 and official:
        if md5_hex(path.read_bytes()) == FASHION_GZ_MD5[path.name]:
            return FileCheck(str(path), raw_size, "md5 ok (published .gz)", True)
        # A re-compressed copy has other .gz bytes but the same content; structure was checked.
        return FileCheck(
            str(path), raw_size, "differs from the published .gz md5 (re-compressed copy?)", False
        )
    hint = f" ({MANIFEST_NAME}); delete it and fetch it again"
    by_manifest = check_against_manifest(path, raw_size, manifest, hint)
    if by_manifest is not None:
        return by_manifest
    return FileCheck(str(path), raw_size, UNPUBLISHED if official else UNOFFICIAL, False)


def refuse_other_dataset(name: str, path: Path, digest: str, other_digest: str, other: str) -> None:
    """Fashion-MNIST uses MNIST's file names: a folder of MNIST files must not pass as Fashion-MNIST
    (digits labelled as clothes would train and score as if nothing were wrong)."""
    if digest == other_digest:
        raise EdgecnnError(
            f"{path} is {other}'s file (its content md5 is {other}'s published one), not {name}'s; "
            f"point --data-dir or EDGECNN_DATA_DIR at the {name} files"
        )


def check_cifar_batch(path: Path, official: bool, manifest: dict[str, str]) -> FileCheck:
    """Check one CIFAR-10 python batch: published md5 first, then the manifest."""
    size = path.stat().st_size
    if path.name in CIFAR10_MD5 and official:
        digest = md5_hex(path.read_bytes())
        if digest != CIFAR10_MD5[path.name]:
            raise EdgecnnError(
                f"{path} is corrupt: its md5 is {digest}, the published value is {CIFAR10_MD5[path.name]}; "
                "delete it and fetch it again"
            )
        return FileCheck(str(path), size, "md5 ok (published)", True)
    by_manifest = check_against_manifest(path, size, manifest, "; delete it and fetch it again")
    if by_manifest is not None:
        return by_manifest
    return FileCheck(str(path), size, UNPUBLISHED if official else UNOFFICIAL, False)
