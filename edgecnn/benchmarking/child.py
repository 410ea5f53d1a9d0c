"""The child process of a thread sweep: a BenchConfig (one thread count) as JSON on stdin, its bench
document as JSON on stdout, or `error: <one line>` on stderr and exit code 1.

Run as `python -m edgecnn.benchmarking.child` by sweep.py; like the CLI, this process runs one bench,
so ONNX Runtime's process-wide thread pool is its to size."""

from __future__ import annotations

import os
import signal
import sys

from edgecnn.benchmarking.bench_config import BenchConfig
from edgecnn.benchmarking.bench_run import bench_in_process
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.outputs import dumps_json
from edgecnn.core.text import one_line
from edgecnn.runtime.thread_pool import allow_shared_thread_pool

PARENT_ENV = "EDGECNN_SWEEP_PARENT"


def die_with_parent() -> None:
    """End this child when the sweep's parent dies (SIGTERM, SIGKILL, crash): a benchmark nobody waits
    for would keep loading the machine and skew every other measurement on it."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    expected = os.environ.get(PARENT_ENV)
    if expected and os.getppid() != int(expected):  # the parent died before prctl took effect
        raise SystemExit(1)


def main() -> int:
    die_with_parent()
    allow_shared_thread_pool()
    try:
        config = BenchConfig.from_json(sys.stdin.read())
        sys.stdout.write(dumps_json(bench_in_process(config).to_document()))
    except EdgecnnError as exc:
        print(f"error: {one_line(exc, 2000)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
