"""The child process of a thread sweep: a BenchConfig (one thread count) as JSON on stdin, its bench
document as JSON on stdout, or `error: <one line>` on stderr and exit code 1.

Run as `python -m edgecnn.benchmarking.child` by sweep.py; like the CLI, this process runs one bench,
so ONNX Runtime's process-wide thread pool is its to size."""

from __future__ import annotations

import sys

from edgecnn.benchmarking.config import BenchConfig
from edgecnn.benchmarking.run import bench_in_process
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.outputs import dumps_json
from edgecnn.core.text import one_line
from edgecnn.runtime.thread_pool import allow_shared_thread_pool


def main() -> int:
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
