"""`edgecnn bench --threads 1,2,...`: the same benchmark at several intra-op thread counts, and which
count is fastest for each model and batch size.

The answer differs by batch size: on small CNNs ONNX Runtime's thread pool costs more per node at
batch 1 than a second core gains, and the opposite at batch 64. Each thread count runs in its own
child process (edgecnn.benchmarking.child) because ORT's shared thread pool (which interleaved timing
relies on) is sized once per process. Thread counts are therefore timed one after the other, not
interleaved: their ratios carry any change in the machine's load between them, which the result says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgecnn.benchmarking.bench_config import BenchConfig
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.outputs import atomic_dir, dumps_json, refuse_overwrite
from edgecnn.core.progress import Progress, ProgressEvent

SCHEMA = "edgecnn.bench-threads"
PROGRESS_TASK = "bench threads"  # one event per thread count, as its child process starts
CHILD_MODULE = "edgecnn.benchmarking.child"


@dataclass(frozen=True)
class ThreadSweepResult:
    thread_counts: tuple[int, ...]
    runs: tuple[dict[str, Any], ...]  # one bench document per thread count, in order
    fastest: tuple[dict[str, Any], ...]  # per model and batch: p50 at every count and the fastest
    output_dir: Path | None

    def to_dict(self) -> dict[str, Any]:
        """The same document the command saves as JSON, in plain JSON types (the public API's name)."""
        from edgecnn.core.outputs import to_jsonable

        return to_jsonable(self.to_document())

    def to_document(self) -> dict[str, Any]:
        return {
            "kind": SCHEMA,
            "thread_counts": list(self.thread_counts),
            "fastest": list(self.fastest),
            "notes": [
                "each thread count ran in its own process, one after the other: ratios between thread "
                "counts include any change in this machine's load between those runs"
            ],
            "runs": list(self.runs),
            "files": {"json": str(self.output_dir / "threads.json")} if self.output_dir else {},
        }


def fastest_by_model_and_batch(
    thread_counts: tuple[int, ...], runs: tuple[dict[str, Any], ...]
) -> tuple[dict[str, Any], ...]:
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for threads, doc in zip(thread_counts, runs, strict=True):
        for m in doc["models"]:
            for r in m["results"]:
                row = rows.setdefault(
                    (m["name"], r["batch"]), {"model": m["name"], "batch": r["batch"], "p50_ms": {}}
                )
                row["p50_ms"][str(threads)] = r["p50_ms"]
    out = []
    for row in rows.values():
        best = min(row["p50_ms"], key=row["p50_ms"].__getitem__)
        slowest = max(row["p50_ms"].values())
        out.append({**row, "fastest_threads": int(best), "speedup_vs_slowest": slowest / row["p50_ms"][best]})
    return tuple(out)


def run_in_child(config: BenchConfig) -> dict[str, Any]:
    """One thread count in a fresh process (its own ORT thread pool); its document, or its error line."""
    proc = subprocess.run(
        [sys.executable, "-m", CHILD_MODULE],
        input=config.to_json(),
        capture_output=True,
        text=True,
        env={**os.environ, "EDGECNN_SWEEP_PARENT": str(os.getpid())},  # child.die_with_parent
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
        why = (
            lines[-1][len("error: ") :] if lines else (proc.stderr.strip().splitlines() or ["no output"])[-1]
        )
        raise EdgecnnError(f"bench with --threads {config.thread_counts[0]} failed: {why}")
    return json.loads(proc.stdout)


def _announce(progress: Progress | None, index: int, config: BenchConfig) -> None:
    if progress is not None:
        threads = config.thread_counts[index]
        event = ProgressEvent(PROGRESS_TASK, index, len(config.thread_counts), f"--threads {threads}")
        progress(event)


def bench_thread_sweep(config: BenchConfig, *, progress: Progress | None = None) -> ThreadSweepResult:
    """`config` run once per thread count, each in its own child process."""
    counts = config.thread_counts
    if len(counts) < 2:
        raise EdgecnnError("a thread sweep needs at least two counts (e.g. --threads 1,2)")
    out = Path(config.output_dir) if config.output_dir is not None else None
    if out is None:
        runs = []
        for i, t in enumerate(counts):
            _announce(progress, i, config)
            runs.append(run_in_child(replace(config, thread_counts=(t,))))
        return ThreadSweepResult(counts, tuple(runs), fastest_by_model_and_batch(counts, tuple(runs)), None)
    refuse_overwrite(
        out, config.force, inputs=config.models, kind="bench"
    )  # before minutes of timing, not after
    with atomic_dir(out, force=config.force, kind="bench") as tmp:
        runs = []
        for i, t in enumerate(counts):
            _announce(progress, i, config)
            child = replace(config, thread_counts=(t,), output_dir=tmp / f"threads-{t}", force=False)
            doc = run_in_child(child)
            # The child wrote into the temporary directory; point its file list at the final place.
            doc["files"] = {
                k: str(out / f"threads-{t}" / Path(v).name) for k, v in (doc.get("files") or {}).items()
            }
            runs.append(doc)
        result = ThreadSweepResult(counts, tuple(runs), fastest_by_model_and_batch(counts, tuple(runs)), out)
        (tmp / "threads.json").write_text(dumps_json(result.to_document()), encoding="utf-8")
    return result
