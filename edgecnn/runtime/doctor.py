"""`edgecnn doctor`: what this device can really run with ONNX Runtime, and what to install if not.

"Registered" is not "works": onnxruntime-gpu lists the CUDA and TensorRT providers on any machine,
then quietly runs on CPU when their libraries or the GPU are missing. So each GPU provider is
started for real on a one-node model with ORT's fallback off, and counted as initialised only when
the node ran on it (per-node placement, `edgecnn.runtime.placement`). No TensorFlow anywhere.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgecnn.core.environment import cpu_info, environment_info
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.jetson import jetson_info, ort_wheel_hint
from edgecnn.core.text import one_line
from edgecnn.runtime.doctor_hints import HintFacts, install_hints, missing_summary, shorten_ort_error
from edgecnn.runtime.placement import PlacementConfig, measure_placement
from edgecnn.runtime.providers import DEVICE_FOR_PROVIDER
from edgecnn.runtime.shared_libraries import LibraryCheck, check_gpu_libraries

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
PROVIDER_LIBRARY = {
    "CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
    "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so",
}


@dataclass(frozen=True)
class DoctorConfig:
    # Start each GPU provider for real (loads CUDA libraries; TensorRT builds a tiny engine).
    probe_providers: bool = True
    nvidia_smi_timeout_s: float = 10.0
    root: Path = Path("/")  # where /etc, /proc and /sys are read (Jetson detection; tests use a fake tree)

    def __post_init__(self) -> None:
        if self.nvidia_smi_timeout_s <= 0:
            raise EdgecnnError("the nvidia-smi timeout must be > 0 seconds")


@dataclass(frozen=True)
class OrtBuild:
    package: str  # onnxruntime | onnxruntime-gpu | ...
    version: str
    device: str  # ORT's own get_device(): "CPU" or "GPU"
    cuda_version: str | None  # the CUDA major.minor the GPU build was compiled against
    build_info: str
    providers_available: tuple[str, ...]


@dataclass(frozen=True)
class ProviderCheck:
    provider: str
    device: str
    available: bool  # compiled into this onnxruntime build
    initialises: bool | None  # None: not probed
    reason: str | None  # why not, in one line
    placement: str | None  # the probe's placement summary

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "device": self.device,
            "available": self.available,
            "initialises": self.initialises,
            "reason": self.reason,
            "placement": self.placement,
        }


@dataclass(frozen=True)
class RuntimeCheck:
    """One runtime of runtime.backends: installed or not (with the extra that installs it)."""

    runtime: str
    title: str
    installed: bool
    version: str | None
    devices: tuple[str, ...]
    file_suffixes: tuple[str, ...]
    missing: str | None  # the one line naming the extra to install, or why it does not start

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "title": self.title,
            "installed": self.installed,
            "version": self.version,
            "devices": list(self.devices),
            "files": list(self.file_suffixes),
            "missing": self.missing,
        }


def runtime_checks(ort_devices: tuple[str, ...] | None = None) -> tuple[RuntimeCheck, ...]:
    """Every runtime edgecnn can run models with: version and devices it sees, or what to install.
    `ort_devices`: the --device values ONNX Runtime really started here (providers it merely lists
    may not)."""
    from edgecnn.runtime.backends.registry import BACKENDS

    checks = []
    for name, backend in BACKENDS.items():
        why = backend.missing()
        version, devices = None, ()
        if why is None:
            try:
                version, devices = backend.version(), tuple(backend.devices())
                if name == "ort" and ort_devices is not None:
                    devices = ort_devices
            except Exception as exc:  # noqa: BLE001 - a runtime that imports but does not start
                why = f"{backend.title} is installed but does not start: {one_line(exc, 200)}"
        checks.append(
            RuntimeCheck(name, backend.title, why is None, version, devices, backend.file_suffixes, why)
        )
    return tuple(checks)


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str | None
    driver: str | None
    memory: str | None


@dataclass(frozen=True)
class DoctorReport:
    onnxruntime: OrtBuild
    providers: tuple[ProviderCheck, ...]
    libraries: tuple[LibraryCheck, ...]
    gpus: tuple[GpuInfo, ...]
    jetson: str | None  # the L4T/JetPack release line on a Jetson, else None
    cpu: dict[str, Any]
    hints: tuple[str, ...]
    environment: dict[str, Any] = field(default_factory=dict)
    runtimes: tuple[RuntimeCheck, ...] = ()
    int8: dict[str, Any] = field(default_factory=dict)  # int8_fit(): ISA class and the recipe it suits

    @property
    def devices_ready(self) -> dict[str, bool]:
        """Which `--device` values will really run here."""
        ready = {"cpu": "CPUExecutionProvider" in self.onnxruntime.providers_available}
        for check in self.providers:
            if check.provider in GPU_PROVIDERS:
                ready[check.device] = bool(check.initialises)
        return ready

    def to_dict(self) -> dict[str, Any]:
        build = self.onnxruntime
        return {
            "onnxruntime": {
                "package": build.package,
                "version": build.version,
                "device": build.device,
                "cuda_version": build.cuda_version,
                "build_info": build.build_info,
                "providers_available": list(build.providers_available),
            },
            "devices_ready": self.devices_ready,
            "runtimes": [r.to_dict() for r in self.runtimes],
            "providers": [p.to_dict() for p in self.providers],
            "libraries": [lib.to_dict() for lib in self.libraries],
            "gpus": [vars(g) for g in self.gpus],
            "jetson": self.jetson,
            "cpu": {
                "model": self.cpu.get("model"),
                "arch": self.cpu.get("arch"),
                "flags": self.cpu.get("flags"),
                "isa_class": self.int8.get("isa_class"),
            },
            "int8": self.int8,
            "hints": list(self.hints),
            "environment": self.environment,
        }


def ort_build() -> OrtBuild:
    import onnxruntime as ort

    try:
        from onnxruntime.capi import build_and_package_info as info

        package, cuda = str(info.package_name), getattr(info, "cuda_version", None) or None
    except ImportError:  # very old wheels
        package, cuda = "onnxruntime", None
    get_build_info = getattr(ort, "get_build_info", lambda: "")
    return OrtBuild(
        package=package,
        version=ort.__version__,
        device=ort.get_device(),
        cuda_version=cuda,
        build_info=str(get_build_info()),
        providers_available=tuple(ort.get_available_providers()),
    )


def nvidia_gpus(timeout_s: float) -> tuple[GpuInfo, ...]:
    """GPUs as nvidia-smi reports them (name, compute capability, driver); () without nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ()
    query = "--query-gpu=name,compute_cap,driver_version,memory.total"
    try:
        out = subprocess.run(
            [exe, query, "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            gpus.append(GpuInfo(parts[0], parts[1] or None, parts[2] or None, parts[3] or None))
    return tuple(gpus)


def jetson_release(root: Path = Path("/")) -> str | None:
    """The L4T/JetPack release, board and SoC on an NVIDIA Jetson (no nvidia-smi there), None elsewhere."""
    info = jetson_info(root)
    if info is None:
        return None
    parts = [f"L4T {info.l4t or 'unknown'} (JetPack {info.jetpack or 'unknown'})", info.model, info.soc,
             "tegrastats" if info.tegrastats else "no tegrastats"]  # fmt: skip
    return ", ".join(p for p in parts if p)


def tiny_model() -> bytes:
    """A one-node (Relu) float model every provider can run; TensorRT builds its engine in a second."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "doctor", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgecnn")
    model.ir_version = 8  # old enough for every ORT edgecnn supports
    return model.SerializeToString()


def probe_provider(provider: str, libraries: tuple[LibraryCheck, ...]) -> ProviderCheck:
    """Start `provider` alone on the tiny model, fallback off, and see whether its node ran there."""
    device = DEVICE_FOR_PROVIDER.get(provider, provider)
    missing = missing_summary(libraries, provider)
    try:
        placement = measure_placement(PlacementConfig(model=tiny_model(), providers=(provider,)))
    except EdgecnnError as exc:
        # Missing libraries are the cause worth naming; ORT's own message is the fallback.
        return ProviderCheck(provider, device, True, False, missing or shorten_ort_error(str(exc)), None)
    if placement.by_provider.get(provider, 0) == placement.nodes_total:
        return ProviderCheck(provider, device, True, True, None, placement.summary())
    # ORT does not raise when a provider library fails to load: it logs and runs on CPU.
    reason = missing or "ONNX Runtime started without error but ran no node on it"
    return ProviderCheck(provider, device, True, False, reason, placement.summary())


def quiet_onnxruntime_log() -> None:
    """Failed provider loads are reported in the table, one line each, not as ORT's C++ log lines."""
    import onnxruntime as ort

    ort.set_default_logger_severity(4)


def provider_libraries() -> dict[str, Path]:
    import onnxruntime as ort

    capi = Path(ort.__file__).parent / "capi"
    return {p: capi / name for p, name in PROVIDER_LIBRARY.items() if (capi / name).is_file()}


def int8_fit(cpu: dict[str, Any]) -> dict[str, Any]:
    """This CPU's ISA class (core.isa) and the INT8 recipe export builds for it (`--int8-recipes`), so a
    user sees before exporting which file will suit the board; `edgecnn tune` measures the final word."""
    from edgecnn.core.isa import isa_class
    from edgecnn.exporting.quantization.recipes import recipe_for

    flags, arch = cpu.get("flags") or (), str(cpu.get("arch") or platform.machine())
    try:
        cls = isa_class(flags, arch)
    except EdgecnnError as exc:
        return {"isa_class": None, "recipe": None, "variant": None, "file": None, "why": str(exc)}
    recipe = recipe_for(flags, arch)
    return {
        "isa_class": cls,
        "recipe": recipe.name,
        "variant": recipe.variant,
        "file": f"model.{recipe.variant}.onnx",
        "types": recipe.to_dict()["types"],
        "why": recipe.why,
    }


def doctor(config: DoctorConfig = DoctorConfig()) -> DoctorReport:
    """Inspect this device. Never raises for a missing GPU or library: that is what it reports."""
    build = ort_build()
    quiet_onnxruntime_log()
    libraries = tuple(check_gpu_libraries(provider_libraries())) if build.device == "GPU" else ()
    checks = [ProviderCheck("CPUExecutionProvider", "cpu", True, True, None, None)]
    for provider in GPU_PROVIDERS:
        if provider not in build.providers_available:
            checks.append(ProviderCheck(provider, DEVICE_FOR_PROVIDER[provider], False, False,
                                        f"not in this {build.package} build", None))  # fmt: skip
        elif config.probe_providers:
            checks.append(probe_provider(provider, libraries))
        else:
            checks.append(
                ProviderCheck(provider, DEVICE_FOR_PROVIDER[provider], True, None, "not probed", None)
            )
    gpus = nvidia_gpus(config.nvidia_smi_timeout_s)
    jetson = jetson_release(config.root)
    jetson_facts = jetson_info(config.root)
    facts = HintFacts(
        arch=platform.machine().lower(),
        system=platform.system(),
        package=build.package,
        ort_version=build.version,
        cuda_version=build.cuda_version,
        gpu_found=bool(gpus) or Path("/dev/nvidia0").exists(),
        jetson=jetson is not None,
        providers_ready=tuple(c.provider for c in checks if c.initialises),
        providers_available=build.providers_available,
        missing_libraries=tuple(lib.soname for lib in libraries if not lib.found),
        library_errors=tuple(lib.error for lib in libraries if not lib.found and lib.error),
        jetson_wheel=ort_wheel_hint(jetson_facts) if jetson_facts else None,
    )
    report = DoctorReport(
        onnxruntime=build,
        providers=tuple(checks),
        libraries=libraries,
        gpus=gpus,
        jetson=jetson,
        cpu=cpu_info(),
        hints=tuple(install_hints(facts)),
        environment=environment_info(),
        int8=int8_fit(cpu_info()),
    )
    ready = tuple(device for device, ok in report.devices_ready.items() if ok)
    return replace(report, runtimes=runtime_checks(ready))
