"""ONNX Runtime's C++ log, routed instead of muted: while a session starts or runs for the first time,
the log (which ORT writes to file descriptor 2, with colour codes) goes into a buffer; its error and
warning lines become the reason in edgecnn's one-line error, and nothing of it reaches stdout.

Why not simply mute it: a provider library that fails to load does not raise (ORT logs the reason and
carries on with the CPU), so the log is the only place that says *why* CUDA or TensorRT did not start.
Why not leave it on: it is multi-line, coloured, and would land in the middle of tables and progress.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from edgecnn.runtime.ort_library import import_ort

# ORT's default logger: errors only while capturing would lose the "Require cuDNN 9.* and CUDA 13.*"
# warning that names what is missing, so warnings are kept too.
CAPTURE_SEVERITY = 2
QUIET_SEVERITY = 4  # what import_ort() leaves it at outside a capture
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOG_LINE = re.compile(r"\[(?P<severity>[VIWEF]):onnxruntime:[^\]]*\]\s*(?P<message>.*)")
_LIBRARY_FAILURE = re.compile(
    r"Failed to load library \S*?(?P<lib>[^/\s]+\.(?:so|dll)\S*) with error: (?P<why>.+)"
)
_REQUIREMENT = re.compile(r"Require (?P<what>[^.]*(?:\.\*[^.]*)*)\.")
_SOURCE_LOCATION = re.compile(r"/\S+\.(?:cc|cpp|h):\d+\s+(?:[\w:<>,&*~\s]+\([^)]*\)\s*)?")
_ORT_STATUS = re.compile(r"\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")


@dataclass
class OrtLog:
    """The lines ORT logged during a capture: (severity letter, message without colour or source)."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def messages(self, severities: str = "EF") -> list[str]:
        return [message for severity, message in self.lines if severity in severities]

    def reason(self) -> str | None:
        """What the log says went wrong, in the words a user can act on; None when it logged no error."""
        errors = self.messages("EF")
        warnings = self.messages("W")
        if not errors and not warnings:
            return None
        parts: list[str] = []
        for message in errors + warnings:
            failure = _LIBRARY_FAILURE.search(message)
            if failure:
                parts.append(f"{failure['lib']} cannot be loaded: {failure['why'].strip()}")
        requirement = next((m for m in map(_REQUIREMENT.search, warnings) if m), None)
        if requirement:
            parts.append(f"it needs {requirement['what'].strip()}")
        if not parts and errors:
            parts.append(clean_ort_message(errors[0]))
        return "; ".join(dict.fromkeys(parts)) or None


def clean_ort_message(message: str) -> str:
    """ORT's message without C++ source locations, signatures and status prefixes, on one line. Not
    cut: the reason sits at the end of ORT's long messages."""
    text = _SOURCE_LOCATION.sub("", _ANSI.sub("", message))
    text = _ORT_STATUS.sub("", text)
    status = text.find("Status Message:")  # run-time failures: "... node. Name:'x' Status Message: why"
    if status >= 0:
        text = text[status + len("Status Message:") :]
    return " ".join(text.split())


def parse_log(text: str) -> tuple[OrtLog, str]:
    """Split captured fd-2 text into ORT log lines and everything else (printed by someone else)."""
    log = OrtLog()
    other: list[str] = []
    for raw in _ANSI.sub("", text).splitlines():
        match = _LOG_LINE.search(raw)
        if match:
            log.lines.append((match["severity"], clean_ort_message(match["message"])))
        elif raw.strip():
            other.append(raw)
    return log, "\n".join(other)


@contextlib.contextmanager
def captured_ort_log() -> Iterator[OrtLog]:
    """Route fd 2 into a buffer while ONNX Runtime starts a session or runs it once; yields the OrtLog,
    filled when the block ends (also when it raises). Text that is not ORT's log goes back to stderr."""
    ort = import_ort()
    log = OrtLog()
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (embedded interpreters): nothing to route
        yield log
        return
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)
        ort.set_default_logger_severity(CAPTURE_SEVERITY)
        try:
            yield log
        finally:
            ort.set_default_logger_severity(QUIET_SEVERITY)
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            buffer.seek(0)
            parsed, other = parse_log(buffer.read().decode("utf-8", errors="replace"))
            log.lines.extend(parsed.lines)
            if other:
                print(other, file=sys.stderr)
