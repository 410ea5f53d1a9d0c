"""ONNX Runtime's process-wide thread pool: whether this process may create it, and at which sizes.

Why share: with a pool per session, an idle session's workers keep spinning after its last run and
take a core from the session that runs next. Timing two models side by side then shows
multi-millisecond tails (measured here: batch-64 p90 5.1 ms vs 1.2 ms) that neither model has on its
own. One shared pool has no idle spinners. But once created it cannot be resized, and every later
session of the process must use it: so only a process that is one CLI command (cli.main) may create it.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.ort_library import import_ort
from edgecnn.runtime.session_config import SessionConfig


@dataclass
class SharedPoolState:
    """This process's pool: whether it may create one, and the sizes it was created with (None: not yet)."""

    may_share: bool = False
    sizes: tuple[int, int] | None = None


# The process's one pool state: ORT's pool is process-wide, so this record is too.
POOL = SharedPoolState()


def allow_shared_thread_pool() -> None:
    """Called by the CLI entry point: this process runs one command, so ORT's process-wide pool is ours."""
    POOL.may_share = True


def can_share_thread_pool(threads: int, inter_op_threads: int) -> bool:
    """Whether sessions of this process can use one shared pool of these sizes."""
    return POOL.may_share and POOL.sizes in (None, (threads, inter_op_threads))


def pool_exists() -> bool:
    """Once the shared pool exists, ORT refuses per-session pools: every later session joins it."""
    return POOL.sizes is not None


def check_fits_shared_pool(config: SessionConfig) -> None:
    sizes = (config.threads, config.inter_op_threads)
    if POOL.sizes is not None and sizes != POOL.sizes:
        raise EdgecnnError(
            f"this process already runs ONNX Runtime's shared thread pool with {POOL.sizes[0]} "
            f"intra-op / {POOL.sizes[1]} inter-op threads; it cannot be resized"
        )
    if config.allow_spinning is not None:
        raise EdgecnnError(
            "spinning can only be set per session; a shared thread pool keeps ONNX Runtime's default"
        )


def ensure_shared_thread_pool(config: SessionConfig) -> None:
    """Create the process's pool at the config's sizes, or check that the existing one fits it."""
    check_fits_shared_pool(config)
    if POOL.sizes is not None:
        return
    sizes = (config.threads, config.inter_op_threads)
    import_ort()
    from onnxruntime.capi import _pybind_state

    try:
        _pybind_state.set_global_thread_pool_sizes(*sizes)
    except Exception as exc:  # noqa: BLE001 - pools already created elsewhere in this process
        raise EdgecnnError(f"cannot set up ONNX Runtime's shared thread pool: {exc}") from None
    POOL.sizes = sizes
