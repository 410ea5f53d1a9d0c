"""ONNX Runtime's load errors as one line that keeps the reason and says what to do.

ORT's messages start with a status banner, the model path and a C++ source location with a full
function signature; cutting such a line at a fixed length drops exactly the reason. Here the noise is
removed first, and the two failures users meet most (a model newer than this ORT, an opset it does
not know) get the fix spelled out."""

from __future__ import annotations

import re

from edgecnn.core.text import one_line

_BANNER = re.compile(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")
_LOAD_PREFIX = re.compile(r"^Load model from .*? failed:\s*")
_SOURCE_LOCATION = re.compile(r"(?:/[^\s:]+|\b[a-z_]+\.(?:cc|h|cpp)):\d+\s+")
_IR_TOO_NEW = re.compile(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)")
_OPSET_TOO_NEW = re.compile(r"Opset (\d+) is under development.*?till opset (\d+)", re.DOTALL)
REASON_LIMIT = 500


def _drop_signature(text: str) -> str:
    """`void onnxruntime::f(const std::map<...>&, int) Reason` -> `Reason` (balanced parentheses)."""
    if "onnxruntime::" not in text.split("(", 1)[0]:
        return text
    depth, seen_open = 0, False
    for i, ch in enumerate(text):
        if ch == "(":
            depth, seen_open = depth + 1, True
        elif ch == ")":
            depth -= 1
            if seen_open and depth == 0:
                rest = text[i + 1 :].lstrip()
                return rest.removeprefix("const").lstrip() or text
    return text


def ort_reason(exc: BaseException) -> str:
    """The reason part of an ORT error, on one line, without banner, path or C++ location."""
    text = " ".join(str(exc).split())
    text = _LOAD_PREFIX.sub("", _BANNER.sub("", text))
    text = _SOURCE_LOCATION.sub(" ", text, count=1).strip()
    return _drop_signature(text)


def ort_load_error_line(path: object, exc: BaseException) -> str:
    reason = ort_reason(exc)
    ir = _IR_TOO_NEW.search(reason)
    if ir:
        return (
            f"{path} has ONNX IR version {ir.group(1)} but this onnxruntime reads up to {ir.group(2)}: "
            "it was exported by a newer onnx; re-export it with a lower --opset/ir_version "
            "or upgrade onnxruntime"
        )
    opset = _OPSET_TOO_NEW.search(reason)
    if opset:
        return (
            f"{path} uses opset {opset.group(1)} but this onnxruntime supports ai.onnx up to opset "
            f"{opset.group(2)}; re-export it with a lower --opset or upgrade onnxruntime"
        )
    if "External initializer" in reason or "external" in reason.lower():
        files = ", ".join(external_data_files(path)) or "its external data file"
        reason += f" ({files} beside the model: truncated, replaced or missing?)"
    return f"ONNX Runtime cannot load {path}: {one_line(reason, REASON_LIMIT)}"


def external_data_files(path: object) -> list[str]:
    """The external data files an .onnx names (its weights kept outside the protobuf)."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - only a hint for a message; the load error itself is reported
        return []
    names = {
        entry.value
        for tensor in model.graph.initializer
        for entry in tensor.external_data
        if entry.key == "location"
    }
    return sorted(names)
