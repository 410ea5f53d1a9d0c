"""onnxslim's constant folding and dead-node removal on a converted graph: optional, never fatal."""

from __future__ import annotations

from typing import Any

from edgecnn.core.quiet import quiet_libraries
from edgecnn.core.text import one_line


def simplify(model: Any) -> tuple[Any, str | None]:
    """onnxslim's constant folding / dead-node removal; (model, None) or (unchanged, why it failed)."""
    try:
        import onnxslim
    except ImportError:
        return model, "onnxslim is not installed; graph not simplified"
    try:
        with quiet_libraries():
            slimmed = onnxslim.slim(model)
    except Exception as exc:  # noqa: BLE001 - simplification is optional; the parity gate still runs
        return model, f"onnxslim failed ({one_line(exc, 120)}); graph not simplified"
    if slimmed is None:
        return model, "onnxslim returned nothing; graph not simplified"
    return slimmed, None
