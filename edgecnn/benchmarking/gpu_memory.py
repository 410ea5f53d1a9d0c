"""Device memory of this process on a GPU run, for bench.json: the peak of the samples taken after each
timed batch, with the method named (host RSS does not see CUDA allocations; on a Jetson the GPU shares
the host's memory, and CUDA's allocations go through NvMap rather than the process's RSS).

Methods, first that answers wins:
- NVML (`pynvml`, if installed): `nvmlDeviceGetComputeRunningProcesses` -> this pid's usedGpuMemory;
- `nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits` (MiB per pid);
- Jetson (no nvidia-smi, unified memory): this pid's NvMap total from
  /sys/kernel/debug/nvmap/iovmm/clients (root only), else VmRSS from /proc/self/status with a note
  that NvMap allocations may not show there.
Both NVML and nvidia-smi count the CUDA context (a few hundred MiB) with the session's buffers.
ORT's arena only grows during a run, so the last sample is close to the session's peak."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.core.jetson import is_jetson

NVML = "nvml nvmlDeviceGetComputeRunningProcesses (usedGpuMemory of this pid)"
NVIDIA_SMI = "nvidia-smi --query-compute-apps=pid,used_memory (MiB of this pid)"
NVMAP = "jetson nvmap iovmm clients (this pid's NvMap allocations, unified memory)"
VMRSS = "jetson /proc/self/status VmRSS (unified memory; NvMap allocations may not show here)"
NVMAP_CLIENTS = Path("sys/kernel/debug/nvmap/iovmm/clients")
_SIZE = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_compute_apps(text: str, pid: int) -> int | None:
    """Bytes used by `pid` in `nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,
    nounits` output (MiB), summed over GPUs; None when the pid is not listed."""
    total, seen = 0, False
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0] == str(pid) and parts[1].isdigit():
            total, seen = total + int(parts[1]) * 1024**2, True
    return total if seen else None


def parse_nvmap_clients(text: str, pid: int) -> int | None:
    """Bytes of `pid` in NvMap's iovmm clients table ("CLIENT PROCESS PID SIZE", e.g. "user python3
    4242 123456K"); None when the pid is not listed."""
    total, seen = 0, False
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == str(pid):
            match = re.fullmatch(r"(\d+)([KMG]?)", parts[3])
            if match:
                total, seen = total + int(match.group(1)) * _SIZE[match.group(2)], True
    return total if seen else None


def parse_vmrss(text: str) -> int | None:
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def _nvml(pid: int) -> int | None:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            used = [
                p.usedGpuMemory
                for i in range(pynvml.nvmlDeviceGetCount())
                for p in pynvml.nvmlDeviceGetComputeRunningProcesses(pynvml.nvmlDeviceGetHandleByIndex(i))
                if p.pid == pid and p.usedGpuMemory is not None
            ]
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - NVML raises NVMLError_* for a missing driver, permissions...
        return None
    return sum(used) if used else None


def _nvidia_smi(pid: int) -> int | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    query = [exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_compute_apps(out, pid)


def _jetson(pid: int, root: Path) -> tuple[int | None, str]:
    try:
        return parse_nvmap_clients((root / NVMAP_CLIENTS).read_text(), pid), NVMAP
    except OSError:
        pass
    try:
        return parse_vmrss((root / f"proc/{pid}/status").read_text()), VMRSS
    except OSError:
        return None, VMRSS


def sample_device_memory(pid: int | None = None, root: Path = Path("/")) -> tuple[int | None, str | None]:
    """(bytes, method) for `pid` (default: this process) now; (None, None) when no method answers."""
    pid = os.getpid() if pid is None else pid
    for method, probe in ((NVML, _nvml), (NVIDIA_SMI, _nvidia_smi)):
        used = probe(pid)
        if used is not None:
            return used, method
    if is_jetson(root):
        return _jetson(pid, root)
    return None, None


@dataclass
class DeviceMemory:
    """Samples of one session's device memory: `sample()` after each timed batch, `to_dict()` the peak."""

    device: str
    samples: list[int] = field(default_factory=list)
    method: str | None = None

    def sample(self) -> None:
        if self.device == "cpu":
            return
        used, method = sample_device_memory()
        if used is not None:
            self.samples.append(used)
            self.method = method

    def to_dict(self) -> dict[str, Any]:
        if self.device == "cpu":
            return {"peak_bytes": None, "method": None, "reason": "CPU run: no device memory"}
        if not self.samples:
            reason = "no method answered (no pynvml, no nvidia-smi entry for this pid, not a Jetson)"
            return {"peak_bytes": None, "method": None, "reason": reason}
        return {"peak_bytes": max(self.samples), "method": self.method, "reason": None}
