"""Process memory for bench: RSS now, and the peak RSS since the last reset. Linux lets us reset the
high-water mark (so each batch gets its own peak); elsewhere the peak is the whole process's so far.
Best effort: a number that cannot be read is None, never a failure."""

from __future__ import annotations


def rss_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - memory numbers are best effort, never a failure
        return None


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the OS cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except Exception:  # noqa: BLE001
        return None


def memory_method(interleaved_models: bool) -> str:
    """How bench.json's memory numbers were measured, in words (it depends on the OS and the mode)."""
    if not reset_peak_rss():
        return "peak RSS of the whole process so far (this OS cannot reset the high-water mark)"
    if interleaved_models:
        return (
            "peak RSS per batch: Linux VmHWM, reset before each model's warmup at that batch (over the "
            "interleaved rounds when --warmup is 0), with every model's session open; delta = above the "
            "RSS before that model's session was created"
        )
    return (
        "peak RSS per batch: Linux VmHWM, reset before each batch; delta = above the RSS before the "
        "model's session was created"
    )
