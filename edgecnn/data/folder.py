"""Image-folder datasets (`folder:PATH`): one sub-folder of images per class, optionally split into
train/ and test/; otherwise a fixed share of each class is held out for testing.

`list_folder` settles the classes and the train/test split from file names alone (no pixels decoded),
`scan_images` checks every file's header before any training starts, and `load_folder` decodes the
images into arrays (export, eval, `data info`). Training on a folder streams the same file lists from
disk instead (`edgecnn.training.streaming`). Images are decoded by `edgecnn.data.images`, exactly as
`edgecnn predict` decodes them.

Decisions (documented in the README):
- files whose suffix is not an image kind (README.txt, .DS_Store, labels.csv) are skipped with a note;
  a file with an image suffix that does not decode is refused, naming the file.
- grey and colour images mixed in one folder are converted to the model's channel count (or to RGB
  when no model decides), with a note saying "mixed RGB/gray".
- the hold-out split is a function of the file names (sha1), not of a seed or of the listing order:
  the same files are held out on every machine and run, so `export` and `eval` score the images
  training held out. `FolderSplit.fingerprint` identifies the test files in the records.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import show_path
from edgecnn.data.dataset import Dataset
from edgecnn.data.images import IMAGE_KINDS, is_image_file, load_image, probe_image
from edgecnn.data.normalization import UNIT_SCALE_NORMALIZATION

FOLDER_PREFIX = "folder:"
# A folder dataset without train/ and test/ sub-folders keeps this share of each class for testing.
FOLDER_TEST_FRACTION = 0.2
# (image file, class index)
LabelledFiles = list[tuple[Path, int]]


@dataclass(frozen=True)
class FolderSplit:
    """The classes of an image folder and which files train and which test; no pixels read yet."""

    root: Path
    class_labels: tuple[str, ...]
    train: LabelledFiles
    test: LabelledFiles
    how: str  # "train/ and test/ sub-folders" or "20% of each class held out ..."
    skipped: tuple[Path, ...]  # files left out because their suffix is not an image kind

    def fingerprint(self) -> str:
        """Identifies the held-out files (class and path relative to the root), whatever machine."""
        digest = hashlib.sha256()
        for path, label in self.test:
            line = f"{self.class_labels[label]}\t{path.relative_to(self.root).as_posix()}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))  # non-UTF-8 names hash by their bytes
        return digest.hexdigest()[:16]

    def notes(self) -> list[str]:
        if not self.skipped:
            return []
        names = ", ".join(p.name for p in self.skipped[:3])
        return [f"skipped {len(self.skipped)} non-image file(s) ({names})"]

    def to_dict(self) -> dict[str, Any]:
        """What the records (train.json, eval/export documents) say about the split."""
        return {
            "method": self.how,
            "train_files": len(self.train),
            "test_files": len(self.test),
            "test_fingerprint": self.fingerprint(),
            "skipped_non_images": len(self.skipped),
        }


def _list_class_dirs(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def _collect(
    root: Path, labels: tuple[str, ...], skipped: list[Path], allow_empty: bool = False
) -> LabelledFiles:
    items: LabelledFiles = []
    for idx, label in enumerate(labels):
        directory = root / label
        listed = directory.iterdir() if directory.is_dir() else iter(())
        entries = sorted(p for p in listed if not p.name.startswith("."))
        broken = [p for p in entries if p.is_symlink() and not p.exists()]
        if broken:
            # Ignoring it would train or evaluate on fewer images than the folder shows, silently.
            raise EdgecnnError(
                f"class folder {show_path(directory)} holds {len(broken)} broken symbolic link(s) "
                f"({', '.join(show_path(p.name) for p in broken[:3])}): their targets are missing; "
                "fix or remove them"
            )
        files = [p for p in entries if is_image_file(p)]
        skipped += [p for p in entries if p.is_file() and not is_image_file(p)]
        if not files and not allow_empty:
            raise EdgecnnError(
                f"class folder {directory} holds no images ({IMAGE_KINDS}); remove it or add images"
            )
        items += [(p, idx) for p in files]
    return items


def _split_items(items: LabelledFiles, fraction: float) -> tuple[LabelledFiles, LabelledFiles]:
    """Per-class hold-out by file-name hash: the same files land in test on every machine and run.
    A class of two or more images always keeps at least one for testing (when holding out at all)."""
    train: LabelledFiles = []
    test: LabelledFiles = []
    by_class: dict[int, list[Path]] = {}
    for p, label in items:
        by_class.setdefault(label, []).append(p)
    for label, paths in sorted(by_class.items()):
        paths = sorted(
            paths, key=lambda p: hashlib.sha1(os.fsencode(p.name), usedforsecurity=False).hexdigest()
        )
        n_test = max(1, int(round(len(paths) * fraction))) if len(paths) > 1 and fraction > 0 else 0
        test += [(p, label) for p in sorted(paths[:n_test])]
        train += [(p, label) for p in sorted(paths[n_test:])]
    return train, test


def list_folder(root: Path, test_fraction: float = FOLDER_TEST_FRACTION) -> FolderSplit:
    """The classes and the train/test files of the image folder at `root` (one line if unusable)."""
    if not root.is_dir():
        raise EdgecnnError(
            f"image folder {root} does not exist "
            f"(folder:PATH needs one sub-folder of images per class: {IMAGE_KINDS})"
        )
    skipped: list[Path] = []
    split_dirs = (root / "train", root / "test")
    has_split_dirs = all(d.is_dir() for d in split_dirs)
    labels = tuple(d.name for d in _list_class_dirs(split_dirs[0] if has_split_dirs else root))
    if len(labels) < 2:
        found = f"found only {labels[0]!r}" if labels else "found none"
        raise EdgecnnError(
            f"{root} needs at least two class sub-folders of images ({found}); a classifier needs two classes"
        )
    if not has_split_dirs:
        train, test = _split_items(_collect(root, labels, skipped), test_fraction)
        how = f"{test_fraction:.0%} of each class held out for testing (by file-name hash)"
        return FolderSplit(root, labels, train, test, how, tuple(skipped))
    unknown = sorted({d.name for d in _list_class_dirs(split_dirs[1])} - set(labels))
    if unknown:
        raise EdgecnnError(f"{split_dirs[1]} has classes that {split_dirs[0]} lacks: {', '.join(unknown)}")
    train = _collect(split_dirs[0], labels, skipped)
    test = _collect(split_dirs[1], labels, skipped, allow_empty=True)
    return FolderSplit(root, labels, train, test, "train/ and test/ sub-folders", tuple(skipped))


def require_test_images(split: FolderSplit) -> None:
    """Refuse a split whose test set is empty: a score on zero images is no score."""
    if split.test:
        return
    if split.how.startswith("train/"):
        raise EdgecnnError(
            f"{split.root / 'test'} holds no images; put some test images in its class folders"
        )
    most = max(np.bincount([label for _, label in split.train], minlength=len(split.class_labels)))
    raise EdgecnnError(
        f"{split.root}: the test split holds no images (at most {most} image(s) per class, nothing to hold "
        "out); each class needs at least 2 images: one to train on, one to test"
    )


@dataclass(frozen=True)
class ImageScan:
    """What the file headers say: how many grey and colour images, and their sizes (H, W)."""

    gray: int
    colour: int
    sizes: frozenset[tuple[int, int]]

    @property
    def mixed(self) -> bool:
        return self.gray > 0 and self.colour > 0

    def channels_for(self, channels: int | None) -> tuple[int, list[str]]:
        """The channel count the images are loaded at, and a note when grey and colour were mixed."""
        wanted = channels if channels is not None else (1 if self.colour == 0 else 3)
        if not self.mixed:
            return wanted, []
        target = f"the model's {wanted} channel(s)" if channels is not None else "RGB (no model to decide)"
        counts = f"{self.colour} colour, {self.gray} gray"
        return wanted, [f"mixed RGB/gray images ({counts}): all converted to {target}"]


def scan_images(paths: Sequence[Path]) -> ImageScan:
    """Read every file's header (not its pixels): an unreadable image is refused here, before training."""
    gray = colour = 0
    sizes: set[tuple[int, int]] = set()
    for path in paths:
        h, w, is_gray = probe_image(path)
        if h == 0 or w == 0:
            raise EdgecnnError(f"image {path} is empty (0 pixels)")
        sizes.add((h, w))
        gray, colour = (gray + 1, colour) if is_gray else (gray, colour + 1)
    return ImageScan(gray, colour, frozenset(sizes))


class FolderImages:
    """Image files as a read-on-demand uint8 (N, H, W, C) array: indexing decodes only what it picks
    (an int, a slice or an index array), so plots of a large folder's test set need not load it all."""

    def __init__(self, files: Sequence[Path], size: tuple[int, int], channels: int) -> None:
        self.files = list(files)
        self.size = size
        self.channels = channels

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), self.size[0], self.size[1], self.channels)

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return load_image(self.files[int(index)], self.size, self.channels)
        picked = range(len(self.files))[index] if isinstance(index, slice) else np.asarray(index).tolist()
        out = np.empty((len(picked), *self.shape[1:]), np.uint8)
        for row, i in enumerate(picked):
            out[row] = load_image(self.files[i], self.size, self.channels)
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)


def _load_image_set(
    items: LabelledFiles, size: tuple[int, int], channels: int
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(FolderImages([p for p, _ in items], size, channels))
    y = np.array([label for _, label in items], dtype=np.int64)
    return x, y


def folder_geometry(
    split: FolderSplit, image_size: tuple[int, int] | None, channels: int | None
) -> tuple[tuple[int, int], int, list[str]]:
    """((H, W), channels, notes) every image of the split is loaded at, checked from the headers."""
    scan = scan_images([p for p, _ in split.train + split.test])
    wanted, notes = scan.channels_for(channels)
    if image_size is None:
        if len(scan.sizes) > 1:
            listing = ", ".join(f"{h}x{w}" for h, w in sorted(scan.sizes)[:4])
            raise EdgecnnError(
                f"images have different sizes ({listing}, HxW); pass the model's image size to resize them"
            )
        image_size = next(iter(scan.sizes))
    return image_size, wanted, notes


def load_folder(
    root: Path, image_size: tuple[int, int] | None, channels: int | None, test_fraction: float
) -> Dataset:
    """The image folder at `root` as a Dataset (images at `image_size`/`channels` when given)."""
    split = list_folder(root, test_fraction)
    size, wanted, notes = folder_geometry(split, image_size, channels)
    x_train, y_train = _load_image_set(split.train, size, wanted)
    x_test, y_test = _load_image_set(split.test, size, wanted)
    notes = split.notes() + notes
    return Dataset(
        name=f"{FOLDER_PREFIX}{root}",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_labels=split.class_labels,
        normalization=UNIT_SCALE_NORMALIZATION,
        source=f"{root} ({split.how}{''.join('; ' + n for n in notes)})",
        origin="folder",
        split={**split.to_dict(), "notes": notes},
    )
