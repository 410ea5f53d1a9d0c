"""A loaded dataset summarized without its arrays (what `edgecnn data info` shows and saves)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgecnn.data.dataset import Dataset, FileCheck
from edgecnn.data.split import class_counts


@dataclass(frozen=True)
class DatasetInfo:
    """A summary of a loaded dataset for `edgecnn data info` (no arrays)."""

    name: str
    source: str
    origin: str
    input_shape: tuple[int, int, int]
    train_count: int
    test_count: int
    class_labels: tuple[str, ...]
    train_class_counts: list[int]
    test_class_counts: list[int]
    normalization: dict[str, Any]
    checksums_verified: bool
    files: tuple[FileCheck, ...] = field(default_factory=tuple)


def describe(ds: Dataset) -> DatasetInfo:
    return DatasetInfo(
        name=ds.name,
        source=ds.source,
        origin=ds.origin,
        input_shape=ds.input_shape,
        train_count=int(ds.x_train.shape[0]),
        test_count=int(ds.x_test.shape[0]),
        class_labels=ds.class_labels,
        train_class_counts=class_counts(ds.y_train, ds.num_classes),
        test_class_counts=class_counts(ds.y_test, ds.num_classes),
        normalization=ds.normalization.to_dict(),
        checksums_verified=ds.checksums_verified,
        files=ds.files,
    )
