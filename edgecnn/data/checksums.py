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
from edgecnn.data.dataset import DatasetSpec, FileCheck

MANIFEST_NAME = "checksums.json"

# The published checksums themselves are table data: `DatasetSpec.content_md5/file_md5/copy_sha256`.
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
    spec: DatasetSpec, path: Path, raw_size: int, content: bytes, official: bool, manifest: dict[str, str]
) -> FileCheck:
    """Check one IDX file: published content md5s first, then published file md5s, then the manifest."""
    stem = path.name.removesuffix(".gz").replace(".idx", "-idx")
    if stem in spec.content_md5 and official:
        digest = md5_hex(content)
        if digest != spec.content_md5[stem]:
            raise EdgecnnError(
                f"{path} is corrupt: md5 of its content is {digest}, the published {spec.title} value is "
                f"{spec.content_md5[stem]}; delete it and fetch it again"
            )
        status = "md5 ok (published, uncompressed content)"
        if path.name in spec.copy_sha256 and sha256_file(path) == spec.copy_sha256[path.name]:
            status += "; sha256 of the .gz matches the shared copy"
        return FileCheck(str(path), raw_size, status, True)
    for other, md5s in spec.foreign_content_md5.items():
        if stem in md5s and official:
            refuse_other_dataset(spec.name, path, md5_hex(content), md5s[stem], other)
    if path.name in spec.file_md5 and official:
        if md5_hex(path.read_bytes()) == spec.file_md5[path.name]:
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


def check_cifar_batch(spec: DatasetSpec, path: Path, official: bool, manifest: dict[str, str]) -> FileCheck:
    """Check one CIFAR python batch: published md5 first, then the manifest."""
    size = path.stat().st_size
    if path.name in spec.file_md5 and official:
        digest = md5_hex(path.read_bytes())
        if digest != spec.file_md5[path.name]:
            raise EdgecnnError(
                f"{path} is corrupt: its md5 is {digest}, the published value is {spec.file_md5[path.name]}; "
                "delete it and fetch it again"
            )
        return FileCheck(str(path), size, "md5 ok (published)", True)
    by_manifest = check_against_manifest(path, size, manifest, "; delete it and fetch it again")
    if by_manifest is not None:
        return by_manifest
    return FileCheck(str(path), size, UNPUBLISHED if official else UNOFFICIAL, False)
