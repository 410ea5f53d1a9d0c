"""`edgecnn bench --threads 1,2,...`: the same benchmark at several intra-op thread counts, and which
count is fastest for each model and batch size.

The answer differs by batch size: on small CNNs ONNX Runtime's thread pool costs more per node at
batch 1 than a second core gains, and the opposite at batch 64. Each thread count runs in its own
child process because ORT's shared thread pool (which interleaved timing relies on) is sized once per
process. Thread counts are therefore timed one after the other, not interleaved: their ratios carry
any change in the machine's load between them, which the result says.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgecnn.benchmarking.run import BenchConfig
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.outputs import atomic_dir, dumps_json, refuse_overwrite, to_jsonable
from edgecnn.core.text import one_line

SCHEMA = "edgecnn.bench-threads"
MAX_THREADS = 1024
_PATH_FIELDS = ("trt_engine_cache", "data_dir", "output_dir")


def parse_thread_counts(text: str) -> tuple[int, ...]:
    """ "1,2,4" -> (1, 2, 4); 0 means ONNX Runtime's default. One-line errors for anything else."""
    counts = []
    for part in str(text).split(","):
        part = part.strip()
        if not part.isdigit() or int(part) > MAX_THREADS:
            raise EdgecnnError(
                f"--threads takes counts from 0 to {MAX_THREADS} separated by commas, got {text!r}"
            )
        counts.append(int(part))
    if len(set(counts)) != len(counts):
        raise EdgecnnError(f"--threads repeats a count: {text}")
    return tuple(counts)


def config_to_json(config: BenchConfig) -> str:
    return dumps_json(to_jsonable(config))


def config_from_json(text: str) -> BenchConfig:
    raw = json.loads(text)
    known = {f.name for f in dataclasses.fields(BenchConfig)}
    kwargs = {k: v for k, v in raw.items() if k in known}
    kwargs["models"] = tuple(Path(m) for m in kwargs["models"])
    kwargs["batch_sizes"] = tuple(kwargs["batch_sizes"])
    for key in _PATH_FIELDS:
        if kwargs.get(key) is not None:
            kwargs[key] = Path(kwargs[key])
    return BenchConfig(**kwargs)


@dataclass(frozen=True)
class ThreadSweepResult:
    thread_counts: tuple[int, ...]
    runs: tuple[dict[str, Any], ...]  # one bench document per thread count, in order
    fastest: tuple[dict[str, Any], ...]  # per model and batch: p50 at every count and the fastest
    output_dir: Path | None

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


def _run_child(config: BenchConfig) -> dict[str, Any]:
    """One thread count in a fresh process (its own ORT thread pool); its document, or its error line."""
    proc = subprocess.run(
        [sys.executable, "-m", "edgecnn.benchmarking.sweep", "--child"],
        input=config_to_json(config),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
        why = (
            lines[-1][len("error: ") :] if lines else (proc.stderr.strip().splitlines() or ["no output"])[-1]
        )
        raise EdgecnnError(f"bench with --threads {config.intra_op_threads} failed: {why}")
    return json.loads(proc.stdout)


def bench_thread_sweep(
    config: BenchConfig, thread_counts: tuple[int, ...], on_start: Any = lambda _threads: None
) -> ThreadSweepResult:
    """`config` run once per thread count (its intra_op_threads is replaced by each count)."""
    if len(thread_counts) < 2:
        raise EdgecnnError("a thread sweep needs at least two counts (e.g. --threads 1,2)")
    out = Path(config.output_dir) if config.output_dir is not None else None
    if out is not None:
        refuse_overwrite(out, config.force)  # before minutes of timing, not after
    runs = []
    if out is None:
        for t in thread_counts:
            on_start(t)
            runs.append(_run_child(replace(config, intra_op_threads=t, progress=False)))
        return ThreadSweepResult(
            thread_counts, tuple(runs), fastest_by_model_and_batch(thread_counts, tuple(runs)), None
        )
    with atomic_dir(out, force=config.force) as tmp:
        for t in thread_counts:
            on_start(t)
            child_cfg = replace(
                config, intra_op_threads=t, progress=False, output_dir=tmp / f"threads-{t}", force=False
            )
            doc = _run_child(child_cfg)
            # The child wrote into the temporary directory; point its file list at the final place.
            doc["files"] = {
                k: str(out / f"threads-{t}" / Path(v).name) for k, v in (doc.get("files") or {}).items()
            }
            runs.append(doc)
        result = ThreadSweepResult(
            thread_counts, tuple(runs), fastest_by_model_and_batch(thread_counts, tuple(runs)), out
        )
        (tmp / "threads.json").write_text(dumps_json(result.to_document()), encoding="utf-8")
    return result


def _child() -> int:
    """Hidden entry point: a BenchConfig as JSON on stdin, the bench document as JSON on stdout."""
    from edgecnn.benchmarking.run import bench
    from edgecnn.runtime import sessions as runtime

    runtime.allow_shared_thread_pool()  # this process runs one bench, like the CLI
    try:
        config = config_from_json(sys.stdin.read())
        sys.stdout.write(dumps_json(bench(config).to_document()))
    except EdgecnnError as exc:
        print(f"error: {one_line(exc, 2000)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    raise SystemExit(_child())
