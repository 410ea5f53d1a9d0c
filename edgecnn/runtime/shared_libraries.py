"""Which CUDA, cuDNN and TensorRT libraries an ONNX Runtime GPU provider needs, and whether they load.

The list is read from the provider library itself (its ELF DT_NEEDED entries), so it is right for
whatever onnxruntime-gpu build is installed (CUDA 12 or 13, TensorRT 10 or later) instead of a table
that goes stale. Each library is then looked for where ORT's own `preload_dlls` looks first (the
`nvidia-*` pip packages under site-packages), then through the system loader (LD_LIBRARY_PATH,
ldconfig). Loading them with RTLD_GLOBAL is exactly what `preload_dlls` does, so a later session in
the same process finds them too.
"""

from __future__ import annotations

import ctypes
import site
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from edgecnn.core.text import one_line

# Libraries every Linux process has; not worth reporting.
SYSTEM_LIBRARIES = ("libc.so", "libm.so", "libdl.so", "librt.so", "libpthread.so", "libstdc++.so",
                    "libgcc_s.so", "ld-linux")  # fmt: skip
# Load order: a library's dependencies first (cublas needs cublasLt, everything needs cudart).
LOAD_ORDER = ("libcuda.", "libcudart.", "libcublasLt.", "libcublas.", "libcurand.", "libcufft.", "libnvrtc.",
              "libcudnn.", "libnvinfer.", "libnvinfer_plugin.", "libnvonnxparser.")  # fmt: skip
COMPONENT_FOR_PREFIX = {
    "libcuda.": "NVIDIA driver", "libcudart.": "CUDA runtime", "libcublasLt.": "cuBLAS",
    "libcublas.": "cuBLAS", "libcurand.": "cuRAND", "libcufft.": "cuFFT", "libnvrtc.": "NVRTC",
    "libcudnn": "cuDNN", "libnvinfer": "TensorRT", "libnvonnxparser": "TensorRT",
}  # fmt: skip
_DT_NEEDED = 1
_SHT_DYNAMIC = 6


@dataclass(frozen=True)
class LibraryCheck:
    soname: str
    component: str
    needed_by: tuple[str, ...]  # provider libraries that link it
    found: bool
    path: str | None  # where it was loaded from (a pip package path, or the soname for the system loader)
    error: str | None  # the loader's reason when it was not found

    def to_dict(self) -> dict[str, object]:
        return {
            "soname": self.soname,
            "component": self.component,
            "needed_by": list(self.needed_by),
            "found": self.found,
            "path": self.path,
            "error": self.error,
        }


def component_of(soname: str) -> str:
    for prefix, component in COMPONENT_FOR_PREFIX.items():
        if soname.startswith(prefix):
            return component
    return "other"


def needed_libraries(path: Path) -> list[str]:
    """DT_NEEDED sonames of a 64-bit little-endian ELF file; [] for anything else (macOS, Windows)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(64)
            if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
                return []
            (shoff,) = struct.unpack_from("<Q", header, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", header, 0x3A)
            fh.seek(shoff)
            sections = [struct.unpack_from("<IIQQQQIIQQ", fh.read(shentsize)) for _ in range(shnum)]
            for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
                if kind != _SHT_DYNAMIC:
                    continue
                fh.seek(offset)
                dynamic = fh.read(size)
                strtab = sections[link]
                fh.seek(strtab[4])
                strings = fh.read(strtab[5])
                names = []
                for i in range(0, size, entsize or 16):
                    tag, value = struct.unpack_from("<qQ", dynamic, i)
                    if tag == _DT_NEEDED:
                        names.append(strings[value : strings.index(b"\0", value)].decode())
                return names
    except (OSError, struct.error, IndexError, ValueError):
        return []
    return []


def gpu_libraries_needed(provider_libraries: dict[str, Path]) -> dict[str, tuple[str, ...]]:
    """soname -> the providers that need it, without the C/C++ runtime, in load order."""
    needed: dict[str, list[str]] = {}
    for provider, library in provider_libraries.items():
        for soname in needed_libraries(library):
            if soname.startswith(SYSTEM_LIBRARIES) or soname.startswith("libonnxruntime"):
                continue
            needed.setdefault(soname, []).append(provider)

    def order(soname: str) -> int:
        return next((i for i, p in enumerate(LOAD_ORDER) if soname.startswith(p)), len(LOAD_ORDER))

    return {soname: tuple(needed[soname]) for soname in sorted(needed, key=order)}


def _site_roots() -> list[Path]:
    roots = [Path(p) for p in [*site.getsitepackages(), site.getusersitepackages(), *sys.path] if p]
    return list(dict.fromkeys(roots))


def pip_library_dirs() -> list[Path]:
    """Folders where `nvidia-*` wheels put their libraries: the ones ORT's `preload_dlls` loads from."""
    folders: list[Path] = []
    for root in _site_roots():
        folders += sorted(root.glob("nvidia/*/lib")) + sorted(root.glob("nvidia/*/lib64"))
    return folders


def off_path_dirs() -> list[Path]:
    """Folders of pip wheels ORT does *not* preload from (TensorRT's): found there is not enough."""
    return [d for root in _site_roots() for d in (root / "tensorrt_libs",) if d.is_dir()]


def loaded_path(soname: str) -> str | None:
    """The file this process mapped for `soname` (the system loader does not say where it found it)."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
        if Path(path).name.startswith(soname):
            return path
    return None


def load_library(soname: str, component: str, needed_by: tuple[str, ...]) -> LibraryCheck:
    """Load `soname` the way ORT would find it: pip `nvidia-*` folders first, then the system loader."""
    candidates = [str(d / soname) for d in pip_library_dirs() if (d / soname).is_file()] + [soname]
    error = None
    for candidate in candidates:
        try:
            ctypes.CDLL(candidate, mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            error = one_line(exc, 200)
            continue
        return LibraryCheck(soname, component, needed_by, True, loaded_path(soname) or candidate, None)
    stray = [d / soname for d in off_path_dirs() if (d / soname).is_file()]
    if stray:
        error = f"{stray[0]} exists but is not on the loader path; add {stray[0].parent} to LD_LIBRARY_PATH"
    return LibraryCheck(soname, component, needed_by, False, None, error)


def check_gpu_libraries(provider_libraries: dict[str, Path]) -> list[LibraryCheck]:
    return [
        load_library(soname, component_of(soname), providers)
        for soname, providers in gpu_libraries_needed(provider_libraries).items()
    ]
