"""What bench tells the user beside the numbers: per-model CPU caveats (FP16 on CPU, INT8 without
VNNI, dynamic quantization), noisy timings, and INT8 models slower than their FP32 peers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgecnn.benchmarking.speedup import median_round_ratio, ratio
from edgecnn.benchmarking.timing import LatencyStats
from edgecnn.core.metadata import ModelMetadata

CPU_PROVIDER = "CPUExecutionProvider"
OP_PROFILE_ON_GPU = (
    "--op-profile on {provider}: ORT's profiler times each node's kernel launch on the host, not the "
    "GPU work (kernels run asynchronously), so per-node times here are launch costs; use Nsight Systems "
    "for GPU kernel times"
)
VNNI_FLAGS = ("avx512_vnni", "avx512vnni", "avx_vnni", "asimddp", "i8mm")
PER_SESSION_POOLS = (
    "each model has its own ONNX Runtime thread pool here (spinning was set, a GPU device, or a "
    "pool of other sizes already exists in this process): an idle session's spinning workers can "
    "add multi-millisecond tails right after a switch between models"
)
SEQUENTIAL_MODELS = (
    "models were timed one after the other (--no-interleave): their ratios include any change "
    "in this machine's load between them"
)


def cpu_notes(meta: ModelMetadata | None, provider: str, input_type: str, env: dict[str, Any]) -> list[str]:
    notes = []
    if provider != "CPUExecutionProvider":
        return notes
    variant = meta.variant if meta else None
    if variant == "fp16" or input_type == "tensor(float16)":
        notes.append(
            "FP16 is a GPU variant: ONNX Runtime's CPU provider has FP16 kernels for few ops and inserts "
            "casts around the rest, so expect it no faster (often slower) than FP32 here"
        )
    if variant in ("int8", "int8-trt", "dynamic"):
        flags = set(env.get("hardware", {}).get("cpu", {}).get("flags", []))
        if not flags & set(VNNI_FLAGS):
            notes.append("this CPU has no VNNI/dot-product instructions: INT8 kernels run without them")
    if variant == "dynamic":
        notes.append(
            "dynamic quantization re-quantizes activations on every call; ONNX Runtime's dynamic Conv is "
            "often slower than FP32 on CPU"
        )
    return notes


def noisy_timing_note(batch: int, stats: LatencyStats) -> str | None:
    """A note when the spread says something else disturbed the timing."""
    if stats.mean_ms > 0 and (stats.std_ms / stats.mean_ms > 0.5 or stats.p99_ms > 5 * stats.p50_ms):
        return (
            f"batch {batch}: noisy timings (std {stats.std_ms / stats.mean_ms:.0%} of the mean, p99 "
            f"{stats.p99_ms / stats.p50_ms:.1f}x p50): something else is using this machine or it "
            "throttles; p50 is the robust number, rerun with more --iterations to confirm"
        )
    return None


def int8_vs_fp32_notes(models: Sequence[Mapping[str, Any]]) -> list[str]:
    """A note per batch size where a model whose metadata says int8 is slower (p50) than one that
    says fp32 in the same run: quantization that costs time is something to fix, not to ship."""
    notes = []
    int8 = [m for m in models if m.get("variant") == "int8"]
    fp32 = [m for m in models if m.get("variant") == "fp32"]
    for q in int8:
        for f in fp32:
            f_rows = {r["batch"]: r for r in f["results"]}
            for r in q["results"]:
                fr = f_rows.get(r["batch"])
                if fr is None:
                    continue
                # int8 latency / fp32 latency: > 1 means INT8 is slower.
                slower = ratio(float(r["p50_ms"]), float(fr["p50_ms"]))
                if slower is None or slower <= 1.0:
                    continue
                per_round = median_round_ratio(r.get("round_p50_ms") or [], fr.get("round_p50_ms") or [])
                rounds = f", {per_round:.2f}x as the median of per-round ratios" if per_round else ""
                # "On this CPU" only where the CPU ran it; on a GPU the cause is the provider's kernels.
                where = "on this CPU" if r.get("provider") == CPU_PROVIDER else f"on {r.get('provider')}"
                notes.append(
                    f"batch {r['batch']}: INT8 {q['name']} is slower than FP32 {f['name']} in this run "
                    f"(p50 {r['p50_ms']:.3f} vs {fr['p50_ms']:.3f} ms, {slower:.2f}x{rounds}); {where} "
                    "the quantized graph costs time (check its QDQ placement, or ship FP32)"
                )
    return notes


def gpu_notes(op_profile: bool, provider: str) -> list[str]:
    """What `--op-profile` measures on a GPU provider."""
    if provider == CPU_PROVIDER or not op_profile:
        return []
    return [OP_PROFILE_ON_GPU.format(provider=provider)]
