"""The run directory's life: refuse what must be refused before any work, read an interrupted run's
checkpoint state for --resume, clear an old run for --force, and leave only model.keras + train.json
(and the plots) once training finished. Every file is written atomically."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.faults import CHECKPOINT_WRITE, pause_point
from edgecnn.core.outputs import atomic_path, atomic_write_json
from edgecnn.core.ownership import claim_output
from edgecnn.core.scratch import TMP_PREFIX, sweep_stale
from edgecnn.training.record import TRAIN_JSON
from edgecnn.training.resolved import RESUME_KEYS, RESUME_OPTIONS, ResolvedConfig
from edgecnn.training.train_config import CHECKPOINT_PATTERN, STATE_FILE, TrainConfig


@dataclass(frozen=True)
class ResumeState:
    """An interrupted run, as its checkpoint-state.json describes it."""

    epoch: int  # epochs finished
    checkpoint: Path
    history: dict[str, list[float]]
    epoch_seconds: list[float]


@dataclass
class RunState:
    """What the epoch checkpoints update while `fit` runs (mutable on purpose: Keras callbacks fill it)."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    checkpoint: Path | None = None
    epoch: int = 0

    @classmethod
    def start(cls, resume: ResumeState | None) -> RunState:
        """A fresh run, or one continuing where `resume` stopped (copies, so the resume state stays)."""
        if resume is None:
            return cls()
        return cls(
            history={k: list(v) for k, v in resume.history.items()},
            epoch_seconds=list(resume.epoch_seconds),
            checkpoint=resume.checkpoint,
            epoch=resume.epoch,
        )


def check_writable(path: Path) -> None:
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise EdgecnnError(f"cannot use {path} as a run directory: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise EdgecnnError(f"cannot write the run directory {path}: {probe} is not writable")


# `train --force` over a finished run moves it here and deletes it only once the new run finished, so
# a Ctrl-C, crash or kill before the new run's first checkpoint never loses the old model.
PREVIOUS_RUN = ".edgecnn-previous-run"


def restore_previous_run(run_dir: Path) -> bool:
    """Put back the finished run an interrupted `--force` moved aside, when the new run checkpointed
    nothing (its partial files are dropped); True if something was restored."""
    backup = run_dir / PREVIOUS_RUN
    if not backup.is_dir() or (run_dir / STATE_FILE).exists():
        return False
    for child in run_dir.iterdir():
        if child.name != PREVIOUS_RUN:
            _remove(child)
    for child in backup.iterdir():
        os.replace(child, run_dir / child.name)
    backup.rmdir()
    return True


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def precheck_run_dir(run_dir: Path, config: TrainConfig) -> None:
    """Refuse what must be refused before any data is loaded."""
    check_writable(run_dir)
    claim_output(run_dir)  # a second train into the same run directory fails now, not after an hour
    if run_dir.is_dir():
        sweep_stale(run_dir)  # a checkpoint write killed midway leaves a temp file of a dead process
        restore_previous_run(run_dir)
    state_path = run_dir / STATE_FILE
    if config.resume:
        if (run_dir / TRAIN_JSON).exists():
            raise EdgecnnError(f"run {run_dir} already finished (train.json exists); nothing to resume")
        if not state_path.exists():
            raise EdgecnnError(
                f"nothing to resume in {run_dir}: no {STATE_FILE} (no epoch finished there yet)"
            )
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        if not config.force:
            hint = " or --resume to continue it" if state_path.exists() else ""
            raise EdgecnnError(f"run directory {run_dir} already exists; pass --force to replace it{hint}")
        if not ((run_dir / TRAIN_JSON).exists() or state_path.exists()):
            # --force must never wipe a directory that edgecnn did not create (think `--output .`).
            raise EdgecnnError(
                f"refusing to replace {run_dir}: it is not an edgecnn run directory (no {TRAIN_JSON}); "
                "choose another --output"
            )


def read_resume_state(run_dir: Path, resolved: ResolvedConfig) -> ResumeState:
    """The interrupted run's checkpoint, after checking that it was trained with the same config."""
    state_path = run_dir / STATE_FILE
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        saved = state["config"]
        epoch = int(state["epoch"])
        ckpt = run_dir / state["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EdgecnnError(f"{state_path} is unreadable ({exc}); start again with --force") from None
    if not ckpt.exists():
        raise EdgecnnError(f"checkpoint {ckpt} named by {STATE_FILE} is missing; start again with --force")
    now = dataclasses.asdict(resolved)
    for key in RESUME_KEYS:
        if saved.get(key) != now[key]:
            shown = "the architecture" if key == "model_spec" else f"{saved.get(key)!r} -> {now[key]!r}"
            option = RESUME_OPTIONS.get(key, key.replace("_", " "))
            raise EdgecnnError(
                f"cannot resume {run_dir}: {option} differs from the interrupted run "
                f"({shown}); rerun with the same options or use --force to start over"
            )
    return ResumeState(
        epoch=epoch,
        checkpoint=ckpt,
        history=state.get("history", {}),
        epoch_seconds=state.get("epoch_seconds", []),
    )


def prepare_run_dir(run_dir: Path, *, clear: bool) -> None:
    """Create the run directory; `clear` (--force) empties the old run first. Called once the new run is
    about to start (data and model are ready), so a failed start leaves the old run intact."""
    if clear and run_dir.exists():
        backup = run_dir / PREVIOUS_RUN
        keep = (run_dir / TRAIN_JSON).exists() and not backup.exists()
        if keep:
            backup.mkdir()
        for child in run_dir.iterdir():
            if child.name == PREVIOUS_RUN:
                continue
            if keep:
                os.replace(child, backup / child.name)
            else:
                _remove(child)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgecnnError(f"cannot create the run directory {run_dir}: {exc.strerror or exc}") from None


def discard_unstarted_run(run_dir: Path, created: bool) -> None:
    """A run that failed before its first checkpoint (a truncated image in epoch 1, a full disk at the
    first checkpoint): the run it replaced goes back in place, and a run directory this run created is
    removed when nothing but temporaries is in it, so a failure never leaves an empty run folder."""
    with contextlib.suppress(OSError):
        restore_previous_run(run_dir)
        sweep_stale(run_dir)
        if created and run_dir.is_dir():
            leftovers = [p for p in run_dir.iterdir() if not p.name.startswith(TMP_PREFIX)]
            if not leftovers:
                shutil.rmtree(run_dir, ignore_errors=True)


def save_keras_atomically(model: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)


def write_checkpoint(
    model: Any, run_dir: Path, resolved: ResolvedConfig, state: RunState, epoch: int
) -> None:
    """Persist model + optimizer after `epoch` (1-based), point checkpoint-state.json at it and drop the
    previous epoch's checkpoint; `state` counts the epoch only once all of that is on disk."""
    ckpt = run_dir / CHECKPOINT_PATTERN.format(epoch=epoch)
    with atomic_path(ckpt) as tmp:
        model.save(tmp)
        pause_point(CHECKPOINT_WRITE)
    atomic_write_json(
        run_dir / STATE_FILE,
        {
            "epoch": epoch,
            "checkpoint": ckpt.name,
            "config": dataclasses.asdict(resolved),
            "history": state.history,
            "epoch_seconds": state.epoch_seconds,
        },
    )
    previous = state.checkpoint
    if previous is not None and Path(previous) != ckpt:
        with contextlib.suppress(FileNotFoundError):
            Path(previous).unlink()
    state.checkpoint = ckpt
    state.epoch = epoch


def finish_run_dir(model: Any, model_path: Path, run_dir: Path, document: dict[str, Any]) -> None:
    """Write model.keras and train.json, then remove what only an unfinished run needs."""
    save_keras_atomically(model, model_path)
    atomic_write_json(run_dir / TRAIN_JSON, document)
    # Finished: the checkpoint has served its purpose (model.keras holds the same weights), and the run
    # this one replaced (--force) is no longer needed.
    for leftover in [run_dir / STATE_FILE, *run_dir.glob(CHECKPOINT_PATTERN.format(epoch="*"))]:
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    shutil.rmtree(run_dir / PREVIOUS_RUN, ignore_errors=True)
