"""Named pause points for fault tests: a test sets EDGECNN_TEST_PAUSE_AT=<point> and kills the process
while it sleeps there, so "killed during a checkpoint write" is a reproducible state, not a race.

Unset (always, outside tests) a pause point costs one environment lookup."""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_ENV = "EDGECNN_TEST_PAUSE_AT"
SIGNAL_ENV = "EDGECNN_TEST_PAUSE_SIGNAL"  # a file the paused process writes its pid into
PAUSE_SECONDS = 120.0

CHECKPOINT_WRITE = "checkpoint-write"  # the epoch checkpoint is written under its temporary name
OUTPUT_WRITE = "output-write"  # a result directory is complete under its temporary name


def pause_point(name: str) -> None:
    if os.environ.get(PAUSE_ENV) != name:
        return
    signal_file = os.environ.get(SIGNAL_ENV)
    if signal_file:
        Path(signal_file).write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(PAUSE_SECONDS)
