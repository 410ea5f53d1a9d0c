"""NVIDIA Jetson, recognised without nvidia-smi (Jetson has none): L4T release from /etc/nv_tegra_release,
the board from /proc/device-tree/model, the SoC from /sys/module/tegra_fuse/parameters/tegra_chip_id,
and whether `tegrastats` is installed. Every path is read under `root`, so tests use a fake tree.

`ort_wheel_hint` names the ONNX Runtime build to install there: NVIDIA's aarch64 onnxruntime-gpu
wheels for the JetPack release (PyPI's `onnxruntime` for aarch64 is CPU-only, and PyPI has no
onnxruntime-gpu for aarch64). Install edgecnn beside it without letting pip replace it:
`pip install --no-deps edgecnn` + `pip install -r requirements-jetson.txt` (docs/tensorrt.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path("/")
TEGRA_RELEASE = Path("etc/nv_tegra_release")
MODEL = Path("proc/device-tree/model")
CHIP_ID = Path("sys/module/tegra_fuse/parameters/tegra_chip_id")
TEGRASTATS = (Path("usr/bin/tegrastats"), Path("usr/sbin/tegrastats"))
# tegra_chip_id -> SoC (the kernel's tegra_fuse numbering).
CHIPS = {"33": "T210 (Nano/TX1)", "24": "T186 (TX2)", "25": "T194 (Xavier)", "35": "T234 (Orin)",
         "38": "T264 (Thor)"}  # fmt: skip
# L4T major.minor -> JetPack (NVIDIA's JetPack archive lists the L4T release of each JetPack).
JETPACK = {"32.7": "4.6", "35.1": "5.0.2", "35.2": "5.1", "35.3": "5.1.1", "35.4": "5.1.2",
           "35.5": "5.1.3", "35.6": "5.1.4", "36.2": "6.0 DP", "36.3": "6.0", "36.4": "6.1/6.2",
           "38.2": "7.0"}  # fmt: skip
ZOO = (
    "NVIDIA's Jetson Zoo onnxruntime-gpu wheel for JetPack {jp} (https://elinux.org/Jetson_Zoo#ONNX_Runtime)"
)
AI_LAB = "onnxruntime-gpu from NVIDIA's Jetson AI Lab index: pip install onnxruntime-gpu --index-url {url}"


@dataclass(frozen=True)
class JetsonInfo:
    l4t: str | None  # "35.4.1"
    jetpack: str | None  # "5.1.2"
    model: str | None  # "NVIDIA Jetson AGX Orin Developer Kit"
    soc: str | None
    tegrastats: bool

    def to_dict(self) -> dict[str, Any]:
        return {"l4t": self.l4t, "jetpack": self.jetpack, "model": self.model, "soc": self.soc,
                "tegrastats": self.tegrastats, "ort_wheel": ort_wheel_hint(self)}  # fmt: skip


def _read(root: Path, rel: Path) -> str | None:
    try:
        return (root / rel).read_text(encoding="utf-8", errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def parse_l4t(text: str) -> str | None:
    """'# R35 (release), REVISION: 4.1, ...' -> '35.4.1'."""
    match = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def is_jetson(root: Path = ROOT) -> bool:
    model = _read(root, MODEL) or ""
    return (root / TEGRA_RELEASE).is_file() or "jetson" in model.lower() or (root / CHIP_ID).is_file()


def jetson_info(root: Path = ROOT) -> JetsonInfo | None:
    """What this Jetson is, or None when `root` is not one."""
    if not is_jetson(root):
        return None
    l4t = parse_l4t(_read(root, TEGRA_RELEASE) or "")
    jetpack = JETPACK.get(".".join(l4t.split(".")[:2])) if l4t else None
    return JetsonInfo(
        l4t=l4t,
        jetpack=jetpack,
        model=_read(root, MODEL),
        soc=CHIPS.get(_read(root, CHIP_ID) or ""),
        tegrastats=any((root / p).is_file() for p in TEGRASTATS),
    )


def ort_wheel_hint(info: JetsonInfo) -> str:
    """Which onnxruntime-gpu to install on this Jetson (never PyPI's aarch64 `onnxruntime`: CPU only)."""
    major = int(info.l4t.split(".")[0]) if info.l4t else None
    if major is None or info.jetpack is None:
        return (
            f"unknown L4T release {info.l4t or '(no /etc/nv_tegra_release)'}: install NVIDIA's "
            "onnxruntime-gpu wheel for your JetPack (Jetson Zoo or the Jetson AI Lab index), "
            "not PyPI's onnxruntime"
        )
    if major >= 38:
        return AI_LAB.format(url="https://pypi.jetson-ai-lab.io/jp7/cu130")
    if major == 36:
        return AI_LAB.format(url="https://pypi.jetson-ai-lab.io/jp6/cu126")
    return ZOO.format(jp=info.jetpack)
