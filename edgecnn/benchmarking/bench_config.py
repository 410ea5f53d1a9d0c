"""What `edgecnn bench` is asked to do: the validated BenchConfig, the parsers of its comma lists, and
its JSON form (how a thread sweep hands a config to each child process)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.benchmarking.op_profile import DEFAULT_PROFILE_RUNS, MAX_PROFILE_RUNS
from edgecnn.benchmarking.timing import DEFAULT_ITERATIONS, MAX_ITERATIONS
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import show_path
from edgecnn.core.outputs import dumps_json, to_jsonable
from edgecnn.runtime.feeds import INPUT_SOURCES
from edgecnn.runtime.session_config import SessionConfig

if typing.TYPE_CHECKING:
    from edgecnn.runtime.device_record import DevicePick

DEFAULT_ROUNDS = 10
MAX_ROUNDS = 10_000
MAX_THREADS = 1024
# Larger batches than this are a typo: one batch of 28x28 floats would already be 200 MB.
MAX_BATCH = 1 << 16
MAX_SEED = 2**32 - 1  # what numpy's generators accept
BLOCK_WARMUP = 1  # untimed calls at the start of each interleaved block (after switching models)
# ORT runs a graph id uncaptured first (allocations), captures on a later run, then replays: this many
# warmup runs per batch size keep the capture out of the timed samples.
CUDA_GRAPH_MIN_WARMUP = 2


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """Parse "1,8,64" into (1, 8, 64); anything else is a one-line error."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise EdgecnnError(
            f"--batch must be a comma-separated list of positive integers, like 1,8,64; got {text!r}"
        )
    sizes = []
    for p in parts:
        if not re.fullmatch(r"[+-]?\d+", p):
            raise EdgecnnError(
                f"--batch must be a comma-separated list of positive integers; {p!r} is not one"
            )
        if not 0 < int(p) <= MAX_BATCH:
            raise EdgecnnError(
                f"--batch sizes must be positive integers up to {MAX_BATCH}; {p[:30]} is not one"
            )
        sizes.append(int(p))
    return tuple(sizes)


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


@dataclass(frozen=True)
class BenchConfig:
    models: tuple[Path, ...]
    batch_sizes: tuple[int, ...] = (1,)
    warmup: int = 10
    iterations: int | None = None  # exactly one of iterations / duration_s; neither = DEFAULT_ITERATIONS
    duration_s: float | None = None
    # Runtime, device, precision and provider options of every session (its `threads` stays 0: each
    # run's count comes from thread_counts, see session_config()).
    session: SessionConfig = field(default_factory=SessionConfig)
    # Thread counts (0 = the runtime's default). One runs in this process; several run one child
    # process per count (ORT's shared pool is sized once per process) and report the fastest.
    thread_counts: tuple[int, ...] = (0,)
    # Per model (same order as `models`), the runtime that runs it: "ort", "openvino", "openvino:bf16",
    # "litert"; "" or an empty tuple: the session's runtime (or the file's own). So one interleaved
    # run can time the same .onnx in ORT and in OpenVINO side by side (what `tune` compares).
    model_runtimes: tuple[str, ...] = ()
    io_binding: bool = True
    inputs: str = "auto"  # auto: real samples when the metadata names a dataset that is on disk
    data_dir: Path | None = None
    output_dir: Path | None = None  # None: no files (the CLI always passes one)
    force: bool = False
    seed: int = 0
    interleave: bool = True  # rounds of every model in rotating order; False: one model after the other
    rounds: int | None = None  # interleaved rounds per batch; None = min(DEFAULT_ROUNDS, iterations)
    # After the timing, a separate profiled session per model and batch: ORT's per-node kernel times.
    op_profile: bool = False
    op_profile_runs: int = DEFAULT_PROFILE_RUNS
    # On a GPU device, accept nodes (beyond CPU shape ops) that ONNX Runtime placed on the CPU.
    allow_cpu_nodes: bool = False
    # What `with_device_picks` replaced: one line per bundle directory given as a model.
    device_picks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.models:
            raise EdgecnnError("give at least one .onnx model to benchmark")
        object.__setattr__(self, "models", tuple(Path(m) for m in self.models))
        self._check_batch_sizes()
        if self.warmup < 0:
            raise EdgecnnError("--warmup must be >= 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise EdgecnnError(f"--seed must be an integer from 0 to {MAX_SEED}, got {self.seed!r}"[:200])
        self._settle_iterations_and_rounds()
        if isinstance(self.op_profile_runs, bool) or not 0 < self.op_profile_runs <= MAX_PROFILE_RUNS:
            raise EdgecnnError(
                f"--profile-runs must be between 1 and {MAX_PROFILE_RUNS}, got {self.op_profile_runs}"
            )
        if self.inputs not in INPUT_SOURCES:
            raise EdgecnnError(f"--inputs must be one of {', '.join(INPUT_SOURCES)}, not {self.inputs!r}")
        if self.session.threads:
            raise EdgecnnError(
                "bench takes its thread counts as thread_counts (--threads 1,2), not session.threads"
            )
        if self.session.cuda_graphs and not self.io_binding:
            raise EdgecnnError("--cuda-graphs needs --io-binding (graphs replay on fixed device buffers)")
        self._check_cuda_graphs()
        self._check_thread_counts()
        self._check_runtimes()
        for threads in self.thread_counts:
            base = self.session_config(threads)  # validates device and provider options
            for i in range(len(self.models)):
                self._checked_model_session(i, base)  # and each model's runtime against them

    def _checked_model_session(self, index: int, base: SessionConfig) -> None:
        """model_session, its refusal naming the model when the model's own runtime entry caused it."""
        entry = self.model_runtimes[index] if self.model_runtimes else ""
        try:
            self.model_session(index, base)
        except EdgecnnError as exc:
            if not entry:
                raise
            where = f"{show_path(self.models[index])}@{entry}"
            raise EdgecnnError(f"{where}: {exc}") from None

    def _check_runtimes(self) -> None:
        object.__setattr__(self, "model_runtimes", tuple(self.model_runtimes))
        if self.model_runtimes and len(self.model_runtimes) != len(self.models):
            raise EdgecnnError(
                f"give one runtime per model: {len(self.model_runtimes)} runtimes for "
                f"{len(self.models)} models"
            )
        for entry in self.model_runtimes:
            if not isinstance(entry, str):
                raise EdgecnnError(
                    f"model_runtimes entries are strings like 'openvino:bf16', not {entry!r}"[:200]
                )
        if self.op_profile and any(
            self.model_session(i, self.session).runtime != "ort" for i in range(len(self.models))
        ):
            raise EdgecnnError("--op-profile reads ONNX Runtime's profiler: it needs every model run by ort")
        if not self.io_binding and any(
            self.model_session(i, self.session).runtime not in ("ort", None) for i in range(len(self.models))
        ):
            # OpenVINO and LiteRT are timed through their bound runner: --no-io-binding would not apply.
            raise EdgecnnError("--no-io-binding is ONNX Runtime's: it needs every model run by ort")

    def _check_batch_sizes(self) -> None:
        if not self.batch_sizes:
            raise EdgecnnError("give at least one batch size")
        for b in self.batch_sizes:
            if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 0 < b <= MAX_BATCH:
                raise EdgecnnError(
                    f"batch sizes must be positive integers up to {MAX_BATCH}, got {b!r}"[:200]
                )
        if len(set(self.batch_sizes)) != len(self.batch_sizes):
            raise EdgecnnError(f"batch sizes repeat: {','.join(map(str, self.batch_sizes))}")

    def _settle_iterations_and_rounds(self) -> None:
        if self.iterations is not None and self.duration_s is not None:
            raise EdgecnnError("give --iterations or --duration, not both")
        if self.iterations is not None and not 0 < self.iterations <= MAX_ITERATIONS:
            raise EdgecnnError(f"--iterations must be between 1 and {MAX_ITERATIONS}, got {self.iterations}")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise EdgecnnError(f"--duration must be a positive number of seconds, got {self.duration_s}")
        if self.iterations is None and self.duration_s is None:
            object.__setattr__(self, "iterations", DEFAULT_ITERATIONS)
        if self.rounds is not None:
            if isinstance(self.rounds, bool) or not 0 < self.rounds <= MAX_ROUNDS:
                raise EdgecnnError(f"--rounds must be between 1 and {MAX_ROUNDS}, got {self.rounds}")
            if not self.interleave:
                raise EdgecnnError("--rounds only applies to interleaved timing; drop it or --no-interleave")
            if self.iterations is not None and self.rounds > self.iterations:
                raise EdgecnnError(
                    f"--rounds {self.rounds} exceeds --iterations {self.iterations}: every round needs "
                    "at least one timed run of each model"
                )
        elif self.interleave:
            rounds = DEFAULT_ROUNDS if self.iterations is None else min(DEFAULT_ROUNDS, self.iterations)
            object.__setattr__(self, "rounds", rounds)

    def _check_cuda_graphs(self) -> None:
        if not self.session.cuda_graphs:
            return
        if self.warmup < CUDA_GRAPH_MIN_WARMUP:
            raise EdgecnnError(
                f"--cuda-graphs needs --warmup >= {CUDA_GRAPH_MIN_WARMUP}: ONNX Runtime captures the graph "
                "on a run after the first, and that capture must not land in the timed samples"
            )
        if self.session.device in ("tensorrt", "auto") and len(self.batch_sizes) > 1:
            # The CUDA EP keeps one graph per gpu_graph_id; the TensorRT EP keeps one per session and
            # ignores the id, so batch 8 would replay batch 1's graph (or run uncaptured) as "batch 8".
            raise EdgecnnError(
                f"--cuda-graphs on {self.session.device} takes one batch size per run (TensorRT keeps one "
                "CUDA graph per session and ignores graph ids); got --batch "
                f"{','.join(map(str, self.batch_sizes))}: "
                "run bench once per batch size, or use --device cuda"
            )

    def _check_thread_counts(self) -> None:
        object.__setattr__(self, "thread_counts", tuple(self.thread_counts))
        if not self.thread_counts:
            raise EdgecnnError("give at least one intra-op thread count")
        for t in self.thread_counts:
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= MAX_THREADS:
                raise EdgecnnError(f"--threads takes counts from 0 to {MAX_THREADS}, got {t!r}")
        if len(set(self.thread_counts)) != len(self.thread_counts):
            raise EdgecnnError(f"--threads repeats a count: {','.join(map(str, self.thread_counts))}")

    @property
    def is_thread_sweep(self) -> bool:
        return len(self.thread_counts) > 1

    def wants_shared_thread_pool(self) -> bool:
        """Interleaved CPU sessions should share one ORT thread pool so an idle session's spinning
        workers cannot steal a core from the one being timed. Not when the user set spinning (a
        per-session option), nor on GPUs. Whether this process can still create such a pool is the
        runtime's to say (thread_pool.can_share_thread_pool)."""
        s = self.session
        return (
            self.interleave
            and len(self.models) > 1
            and s.device == "cpu"
            and s.allow_spinning is None
            and s.runtime in (None, "ort")
        )

    def session_config(self, threads: int, shared_thread_pool: bool = False) -> SessionConfig:
        """The session of a run at `threads` (and in ORT's shared pool when asked)."""
        trt = self.session.device in ("tensorrt", "auto")
        return replace(
            self.session,
            threads=threads,
            shared_thread_pool=shared_thread_pool,
            trt_profile_batches=self.batch_sizes if trt else (),
        )

    def model_session(self, index: int, base: SessionConfig) -> SessionConfig:
        """The session that runs model `index`: `base` with that model's runtime (model_runtimes) and the
        runtime its file needs settled (.tflite -> litert). A bundle directory stays as given (it becomes
        its device pick's file before anything opens, see with_device_picks)."""
        from edgecnn.runtime.backends.registry import runtime_for_file

        path = Path(self.models[index])
        entry = self.model_runtimes[index] if self.model_runtimes else ""
        runtime, _, precision = entry.partition(":")
        # The run's --precision stays with the models of its runtime; an entry's own wins.
        same = not runtime or runtime == base.runtime
        precision = precision or (base.precision if same else None)
        if path.is_dir():
            return replace(base, runtime=runtime, precision=precision) if entry else base
        runtime = runtime_for_file(path, runtime or base.runtime)
        if runtime == base.runtime and not entry:
            return base
        # ORT's process-wide pool is for the ORT sessions of the run; other runtimes keep their own.
        pool = base.shared_thread_pool and runtime == "ort"
        return replace(base, runtime=runtime, precision=precision, shared_thread_pool=pool)

    def to_json(self) -> str:
        return dumps_json(to_jsonable(self))

    @classmethod
    def from_json(cls, text: str) -> BenchConfig:
        """The inverse of `to_json`, driven by the field types (Paths and tuples come back as such)."""
        raw = json.loads(text)
        hints = typing.get_type_hints(cls)
        kwargs = {
            f.name: _from_jsonable(hints[f.name], raw[f.name])
            for f in dataclasses.fields(cls)
            if f.name in raw
        }
        return cls(**kwargs)


def with_device_picks(config: BenchConfig) -> BenchConfig:
    """Bundle directories among the models become the file `edgecnn tune` picked on this device, run in
    the pick's runtime and precision (model_runtimes); with ORT's default threads (0) the pick's thread
    count is used too. Every --batch size takes the pick tuned nearest to it; where those differ (file,
    runtime, precision, or threads when none were given) one run cannot time them, and that is refused.
    Said in `device_picks` (printed and saved with the results)."""
    from edgecnn.runtime.device_record import refuse_session_override

    if not any(Path(m).is_dir() for m in config.models):
        return config
    if config.session.device != "cpu":
        raise EdgecnnError("a bundle's device pick is for the CPU; pass its .onnx files for other devices")
    keep_threads = config.thread_counts != (0,)
    models, notes = [], list(config.device_picks)
    runtimes = list(config.model_runtimes) or [""] * len(config.models)
    pick_threads: dict[int, Path] = {}
    for i, m in enumerate(config.models):
        if not Path(m).is_dir():
            models.append(Path(m))
            continue
        refuse_session_override(Path(m), runtimes[i] or config.session.runtime, config.session.precision)
        pick = _one_pick(Path(m), config.batch_sizes, keep_threads)
        models.append(pick.path)
        runtimes[i] = pick.runtime_entry
        notes.append(pick.note(",".join(map(str, config.batch_sizes)), keep_threads))
        pick_threads.setdefault(pick.threads, Path(m))
    threads = config.thread_counts
    if not keep_threads:
        if len(pick_threads) > 1:
            said = ", ".join(f"{show_path(b)}: {t}" for t, b in pick_threads.items())
            raise EdgecnnError(
                f"the bundles' device picks run at different thread counts ({said}) and one run times "
                "every model at one count: give --threads"
            )
        threads = tuple(pick_threads)
    return dataclasses.replace(
        config, models=tuple(models), model_runtimes=tuple(runtimes), thread_counts=threads,
        device_picks=tuple(notes),
    )  # fmt: skip


def _one_pick(bundle: Path, batch_sizes: tuple[int, ...], keep_threads: bool) -> DevicePick:
    """The bundle's pick for every batch size, which must be one (file, runtime, precision, and threads
    unless --threads was given): a bench run times each model one way at every batch."""
    from edgecnn.runtime.backends.registry import BACKENDS
    from edgecnn.runtime.device_record import DEVICE_JSON, pick_for

    picks = {batch: pick_for(bundle, batch) for batch in batch_sizes}

    def what(p: DevicePick) -> tuple[object, ...]:
        return (p.path, p.runtime, p.precision, None if keep_threads else p.threads)

    if len({what(p) for p in picks.values()}) == 1:
        return picks[batch_sizes[0]]
    said = "; ".join(
        f"batch {b}: {p.path.name} in {BACKENDS[p.runtime].title}"
        + (f" {p.precision}" if p.precision else "")
        + ("" if keep_threads else f" with {p.threads} thread(s)")
        for b, p in picks.items()
    )
    raise EdgecnnError(
        f"{show_path(bundle)}: {DEVICE_JSON} picks differ across --batch {','.join(map(str, batch_sizes))} "
        f"({said}) and one bench run times each model one way at every batch: bench one batch size per "
        "run, or name the files with their runtimes (FILE@RUNTIME[:PRECISION])"
    )


def _from_jsonable(hint: Any, value: Any) -> Any:
    """A JSON value back in the type a dataclass field declares: Path, tuple[...], X | None."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Path:
        return Path(value)
    if origin in (typing.Union, types.UnionType):
        return _from_jsonable(next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        return tuple(_from_jsonable(args[0], v) for v in value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint)
        fields = {f.name for f in dataclasses.fields(hint)}
        return hint(**{k: _from_jsonable(hints[k], v) for k, v in value.items() if k in fields})
    if origin is dict or hint is dict:
        return dict(value)
    return value
