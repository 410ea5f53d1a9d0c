"""Inputs for a model run that must not depend on the user's files: the real test images its metadata
names when they are on disk, random tensors of the right shape and type otherwise.

The one home of "real or random" feeds (bench's timed inputs, optimize's parity check)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import ModelMetadata
from edgecnn.runtime.preprocess import prepare_batch
from edgecnn.runtime.shapes import numpy_dtype, resolve_shape

INPUT_SOURCES = ("auto", "real", "random")  # auto: real where possible; real: required; random: always


class DatasetSamples:
    """Real test images per (dataset, shape), loaded once for all models of a run."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        self._cache: dict[tuple[str, tuple[int, ...]], Any] = {}

    def images(self, meta: ModelMetadata) -> tuple[np.ndarray | None, str]:
        """(uint8 images, why-not) for a model's metadata; images None when no real data is usable."""
        if not meta.dataset:
            return None, "the model's metadata names no dataset"
        key = (meta.dataset, tuple(meta.input_shape))
        if key not in self._cache:
            self._cache[key] = self._load(meta)
        got = self._cache[key]
        if isinstance(got, str):
            return None, f"dataset {meta.dataset!r} is not available: {got}"
        return got, ""

    def _load(self, meta: ModelMetadata) -> np.ndarray | str:
        """The test images, or why they cannot be had (a string, cached like the images)."""
        try:
            from edgecnn.data import load_dataset

            h, w, c = meta.input_shape
            # Never download here: a target device may be offline, and a download would be a
            # surprise side effect of a timing or checking command.
            ds = load_dataset(meta.dataset, self.data_dir, image_size=(h, w), channels=c, download=False)
            return ds.x_test
        except EdgecnnError as exc:
            return str(exc)
        except ImportError as exc:
            return f"the data module is unavailable ({exc})"


def concrete_shape(arg: Any, batch: int) -> tuple[int, ...]:
    """The shape of ORT input `arg` at `batch`; a one-line error when other dims are unknown."""
    shape = resolve_shape(arg.shape, batch)
    if shape is None:
        raise EdgecnnError(
            f"model input {arg.name!r} has shape {list(arg.shape)} with unknown dims besides the batch; "
            "bench needs fixed image dims"
        )
    return shape


def random_feeds(args: list[Any], batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Uniform [0, 1) floats, 0/1 booleans or small integers for every input, in its own type."""
    feeds = {}
    for arg in args:
        shape = concrete_shape(arg, batch)
        dtype = numpy_dtype(arg.type)
        if np.issubdtype(dtype, np.floating):
            feeds[arg.name] = rng.random(shape, dtype=np.float32).astype(dtype)
        elif dtype == np.bool_:
            feeds[arg.name] = rng.integers(0, 2, size=shape).astype(np.bool_)
        else:
            feeds[arg.name] = rng.integers(0, 10, size=shape).astype(dtype)
    return feeds


def fixed_batch(arg: Any) -> int | None:
    """The batch size a graph input is fixed to (its first dimension is a number), else None."""
    shape = getattr(arg, "shape", None) or []
    first = shape[0] if shape else None
    return first if isinstance(first, int) and first > 0 else None


def real_feed(arg: Any, meta: ModelMetadata, images: np.ndarray, batch: int) -> np.ndarray:
    """`batch` real images prepared for the graph input `arg` (batches larger than the set repeat it)."""
    idx = np.arange(batch) % len(images)
    x = prepare_batch(images[idx], meta)
    expected = concrete_shape(arg, batch)
    fixed = fixed_batch(arg)
    if fixed is not None and fixed != batch:
        raise EdgecnnError(
            f"the model input {arg.name!r} takes batches of exactly {fixed} (a fixed batch dimension); "
            f"run it with --batch {fixed}, or re-export it with a dynamic batch"
        )
    if tuple(x.shape) != expected:
        raise EdgecnnError(
            f"the model input {arg.name!r} wants {expected} but its metadata makes images "
            f"shaped {tuple(x.shape)}; the metadata does not match the graph (re-export)"
        )
    return np.ascontiguousarray(x.astype(numpy_dtype(arg.type), copy=False))


def make_feeds(
    session: Any,
    meta: ModelMetadata | None,
    batch: int,
    inputs: str,
    samples: DatasetSamples,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], str, str]:
    """(feeds, source, note): real preprocessed images where `inputs` and the metadata allow, random
    otherwise. source is "real:<dataset>" or "random"; note says why random when real was possible."""
    if inputs not in INPUT_SOURCES:
        raise EdgecnnError(f"--inputs must be one of {', '.join(INPUT_SOURCES)}, not {inputs!r}")
    args = list(session.get_inputs())
    note = ""
    if inputs != "random" and meta is not None and len(args) == 1:
        images, why = samples.images(meta)
        if images is not None and len(images):
            return {args[0].name: real_feed(args[0], meta, images, batch)}, f"real:{meta.dataset}", ""
        if samples.data_dir is not None and meta.dataset:
            # The user pointed at data: falling back to random images would hide that it is unusable.
            raise EdgecnnError(f"--data-dir {samples.data_dir}: {why}")
        note = why
    elif inputs != "random":
        note = (
            "the model has no edgecnn metadata"
            if meta is None
            else "the model has several inputs (real samples feed one image input)"
        )
    if inputs == "real":
        raise EdgecnnError(f"--inputs real: cannot make real samples ({note})")
    why_random = f"random inputs: {note}" if note and inputs == "auto" else ""
    return random_feeds(args, batch, rng), "random", why_random
