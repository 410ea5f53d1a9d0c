"""How long-running work reports progress without knowing how it is shown.

Core code (train, export, bench, eval) takes an optional `Progress` callback and reports
`ProgressEvent`s through a `Tracker`; the CLI (`edgecnn.commands.progress_bars`) turns them into rich bars
on stderr, notebooks or tests pass their own callable or nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ProgressEvent:
    task: str  # one bar per task, e.g. "export", "bench", "eval", "epoch 2/5"
    completed: int
    total: int | None
    description: str = ""
    finished: bool = False
    metrics: Mapping[str, float] = field(default_factory=dict)


class Progress(Protocol):
    def __call__(self, event: ProgressEvent) -> None: ...


class Tracker:
    """Counts the steps of one task and reports each one; a no-op when `progress` is None.

    Use as a context manager: entering reports 0 of total, leaving reports the task finished."""

    def __init__(
        self, progress: Progress | None, task: str, total: int | None, description: str = ""
    ) -> None:
        self._progress, self.task, self.total = progress, task, total
        self.completed, self.description = 0, description or task

    def _emit(self, finished: bool = False, metrics: Mapping[str, float] | None = None) -> None:
        if self._progress is not None:
            event = ProgressEvent(
                self.task, self.completed, self.total, self.description, finished, dict(metrics or {})
            )
            self._progress(event)

    def describe(self, description: str) -> None:
        """Name the step now running, without counting one done."""
        self.description = description
        self._emit()

    def advance(
        self, steps: int = 1, description: str | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        self.completed += steps
        if description is not None:
            self.description = description
        self._emit(metrics=metrics)

    def update(self, completed: int, metrics: Mapping[str, float] | None = None) -> None:
        self.completed = completed
        self._emit(metrics=metrics)

    def finish(self) -> None:
        if self.total is not None:
            self.completed = self.total
        self._emit(finished=True)

    def __enter__(self) -> Tracker:
        self._emit()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.finish()
