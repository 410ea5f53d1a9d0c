"""What to install when a provider cannot run: concrete commands per machine kind (x86 Linux with an
NVIDIA GPU, Jetson/aarch64, CPU-only boxes), derived from facts `edgecnn.runtime.doctor` gathered."""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgecnn.runtime.shared_libraries import LibraryCheck

JETSON_WHEELS = "https://elinux.org/Jetson_Zoo#ONNX_Runtime (or https://pypi.jetson-ai-lab.io)"
CUDA_REQUIREMENTS = "https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html#requirements"
# pip packages that ship each library; for CUDA >= 13 NVIDIA dropped the "-cuNN" suffix (except cuDNN).
PIP_BASE_FOR_PREFIX = {
    "libcublasLt.": "nvidia-cublas", "libcublas.": "nvidia-cublas", "libcudart.": "nvidia-cuda-runtime",
    "libcurand.": "nvidia-curand", "libcufft.": "nvidia-cufft", "libnvrtc.": "nvidia-cuda-nvrtc",
}  # fmt: skip


@dataclass(frozen=True)
class HintFacts:
    arch: str  # platform.machine(), lower case
    system: str  # Linux | Windows | Darwin
    package: str  # the onnxruntime distribution installed
    ort_version: str
    cuda_version: str | None
    gpu_found: bool
    jetson: bool
    providers_ready: tuple[str, ...]
    providers_available: tuple[str, ...]
    missing_libraries: tuple[str, ...]
    library_errors: tuple[str, ...] = ()
    jetson_wheel: str | None = None  # core.jetson.ort_wheel_hint for this L4T release

    @property
    def cuda_major(self) -> int | None:
        major = (self.cuda_version or "").split(".")[0]
        return int(major) if major.isdigit() else None


def missing_summary(libraries: tuple[LibraryCheck, ...], provider: str) -> str | None:
    """ "libcublasLt.so.13, libcudnn.so.9 not found" for the libraries `provider` links."""
    missing = [lib.soname for lib in libraries if provider in lib.needed_by and not lib.found]
    return f"{', '.join(missing)} not found" if missing else None


def shorten_ort_error(message: str) -> str:
    """ORT's messages start with a C++ source location and signature; keep what the user can act on."""
    text = re.sub(r"/\S+\.(?:cc|cpp|h):\d+\s+(?:[\w:<>,&*\s]+\([^)]*\)\s*)?", "", message)
    text = re.sub(r"\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*", "", text)
    return " ".join(text.split())[:240]


def pip_package(soname: str, cuda_major: int | None) -> str | None:
    """The pip requirement that ships `soname`, pinned to its major version; None for the driver."""
    match = re.search(r"\.so\.(\d+)", soname)
    major = match.group(1) if match else None
    pin = f"=={major}.*" if major else ""
    cu = f"-cu{cuda_major}" if cuda_major else "-cu12"
    if soname.startswith("libcudnn"):
        return f"nvidia-cudnn{cu}{pin}"
    if soname.startswith(("libnvinfer", "libnvonnxparser")):
        return f"tensorrt{cu}{pin}"
    for prefix, base in PIP_BASE_FOR_PREFIX.items():
        if soname.startswith(prefix):
            return f"{base}{pin}" if cuda_major and cuda_major >= 13 else f"{base}{cu}"
    return None


def _gpu_linux_hints(facts: HintFacts) -> list[str]:
    hints = []
    if "libcuda.so.1" in facts.missing_libraries:
        hints.append(
            "libcuda.so.1 is missing: install the NVIDIA driver (it comes with the driver, not from pip)"
        )
    packages = dict.fromkeys(
        p for p in (pip_package(s, facts.cuda_major) for s in facts.missing_libraries) if p is not None
    )
    if packages:
        cuda = f"CUDA {facts.cuda_version}" if facts.cuda_version else "CUDA"
        hints.append(
            f"{facts.package} {facts.ort_version} is built for {cuda}: pip install "
            + " ".join(f"'{p}'" for p in packages)
            + f" (or install the CUDA toolkit, cuDNN 9 and TensorRT system-wide; see {CUDA_REQUIREMENTS})"
        )
    hints += [e for e in facts.library_errors if "LD_LIBRARY_PATH" in e]
    if (
        "TensorrtExecutionProvider" not in facts.providers_ready
        and "CUDAExecutionProvider" in facts.providers_ready
    ):
        hints.append(
            "CUDA works but TensorRT does not: --device cuda runs; --device tensorrt needs TensorRT 10"
        )
    if not packages and not hints and len(facts.providers_ready) < 3:
        hints.append(
            "the libraries load but a GPU provider still fails: check that the driver supports "
            f"CUDA {facts.cuda_version or '?'} (nvidia-smi, top right) and the reason above"
        )
    return hints


def install_hints(facts: HintFacts) -> list[str]:
    """Concrete next steps, most important first; [] when every provider of the build runs."""
    if facts.jetson or (facts.arch in ("aarch64", "arm64") and facts.gpu_found):
        if "CUDAExecutionProvider" in facts.providers_ready:
            return []
        wheel = facts.jetson_wheel or f"NVIDIA's onnxruntime-gpu wheel for your JetPack from {JETSON_WHEELS}"
        return [
            f"Jetson/aarch64: PyPI has no aarch64 onnxruntime-gpu; install {wheel}, after "
            "`pip uninstall onnxruntime`; then `pip install --no-deps edgecnn` and "
            "`pip install -r requirements-jetson.txt` so pip never puts the CPU wheel back",
            "CUDA, cuDNN and TensorRT come with JetPack (sudo apt install nvidia-jetpack), not from pip",
        ]
    if not facts.gpu_found:
        hints = [
            "no NVIDIA GPU found: --device cpu is what runs here; plain `pip install onnxruntime` is enough"
        ]
        if facts.package == "onnxruntime-gpu":
            hints.append(
                "the installed onnxruntime-gpu runs on CPU too; its CUDA/TensorRT providers are listed "
                "but cannot start without a GPU"
            )
        return hints
    if "CUDAExecutionProvider" not in facts.providers_available:
        swap = f"pip uninstall {facts.package} && pip install 'onnxruntime-gpu[cuda,cudnn]'"
        return [f"{facts.package} has no CUDA provider: {swap}"]
    if facts.system != "Linux":
        return [f"install CUDA and cuDNN for {facts.package} {facts.ort_version}: {CUDA_REQUIREMENTS}"]
    return _gpu_linux_hints(facts)
