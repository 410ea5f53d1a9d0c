"""Rich progress bars on stderr for the `ProgressEvent`s core code reports (`edgecnn.core.progress`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from edgecnn.core.progress import Progress as ProgressCallback
from edgecnn.core.progress import ProgressEvent


@contextlib.contextmanager
def rich_progress(console: Console | None = None) -> Iterator[ProgressCallback]:
    """A callback that draws one transient bar per task; bars vanish when the work is done.

    The display starts with the first event, so a command refused before its work begins prints only
    its one error line (rich writes a blank line when a live display stops)."""
    bars = Progress(
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[metrics]}", markup=False),
        console=console or Console(stderr=True, highlight=False, markup=False),
        transient=True,
    )
    tasks: dict[str, TaskID] = {}
    stack = contextlib.ExitStack()

    def on_event(event: ProgressEvent) -> None:
        if not tasks and not bars.live.is_started:
            stack.enter_context(bars)
        metrics = " ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
        if event.task not in tasks:
            tasks[event.task] = bars.add_task(event.description, total=event.total, metrics=metrics)
        task = tasks[event.task]
        bars.update(task, completed=event.completed, total=event.total, description=event.description)
        if metrics:
            bars.update(task, metrics=metrics)
        if event.finished:
            bars.remove_task(task)
            del tasks[event.task]

    with stack:
        yield on_event
