"""Which machine a device-specific graph was made for, and the check that it runs only there.

A graph saved after ONNX Runtime's layout optimizations (`edgecnn optimize`) holds NCHWc blocks sized
for one instruction set and contrib ops of one ORT release; ORT itself warns that such a model "should
only be used in the same environment". Run elsewhere it may fail to load or, worse, compute with the
wrong block size. So the file records its target in `metadata_props`, and the runtime refuses it on
any other target, with the way back (the portable model) in the message.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.ort_library import import_ort

TARGET_KEY = "edgecnn.ort_target"
TARGET_PROVIDER = "CPUExecutionProvider"


def current_cpu_target() -> dict[str, Any]:
    """This process's target: ORT version, CPU architecture and the instruction-set flags that pick
    MLAS kernels (NCHWc block size, int8 dot products, AMX)."""
    from edgecnn.core.environment import cpu_info

    return {
        "provider": TARGET_PROVIDER,
        "onnxruntime": import_ort().__version__,
        "machine": platform.machine(),
        "isa": list(cpu_info()["flags"]),
    }


def read_target(props: Mapping[str, str]) -> dict[str, Any] | None:
    raw = props.get(TARGET_KEY)
    if raw is None:
        return None
    try:
        target = json.loads(raw)
        if not isinstance(target, dict):
            raise ValueError("not an object")
    except ValueError:
        raise EdgecnnError(f"the model's {TARGET_KEY} metadata is malformed; optimize it again") from None
    return target


def target_mismatch(target: Mapping[str, Any], here: Mapping[str, Any]) -> str | None:
    """What differs between the model's target and this machine, or None."""
    diffs = []
    for key, what in (("onnxruntime", "onnxruntime"), ("machine", "CPU architecture")):
        if target.get(key) != here.get(key):
            diffs.append(f"{what} {target.get(key)} there, {here.get(key)} here")
    theirs, ours = set(target.get("isa") or ()), set(here.get("isa") or ())
    if theirs != ours:
        only_there = ", ".join(sorted(theirs - ours)) or "-"
        only_here = ", ".join(sorted(ours - theirs)) or "-"
        diffs.append(f"CPU features only there: {only_there}; only here: {only_here}")
    return "; ".join(diffs) or None


def file_props(path: Any) -> dict[str, str]:
    """A model file's metadata_props, read with onnx (no session): the target is checked before ORT
    parses the graph, because a graph made for another ORT (contrib ops such as com.microsoft.nchwc's
    that this build lacks) fails inside ORT with its raw "not a registered function/op" line first.
    An unreadable file gives {}: ORT's own load error then explains it."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - onnx raises many types for garbage input
        return {}
    return {p.key: p.value for p in model.metadata_props}


def check_target(path: Any, props: Mapping[str, str], device: str) -> None:
    """Refuse a device-specific graph on another device or machine; portable models pass."""
    target = read_target(props)
    if target is None:
        return
    if device != "cpu":
        raise EdgecnnError(
            f"{path} is an ONNX Runtime graph optimized for one CPU (edgecnn optimize); it cannot run on "
            f"device {device!r}: use the portable model it was made from"
        )
    why = target_mismatch(target, current_cpu_target())
    if why:
        raise EdgecnnError(
            f"{path} was optimized for another machine ({why}); run `edgecnn optimize` on this one from "
            "the portable model"
        )
