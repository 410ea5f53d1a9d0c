"""`edgecnn doctor` on this machine (the real onnxruntime-gpu wheel, whose CUDA/TensorRT providers are
registered but cannot start without CUDA libraries), its JSON, its install hints, its run without
TensorFlow, and `make gpu-check` stopping at once where there is no GPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest
from test_no_tensorflow import run_without_tf

from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.doctor import DoctorConfig, doctor, provider_libraries
from edgecnn.runtime.doctor_hints import HintFacts, install_hints, pip_package, shorten_ort_error
from edgecnn.runtime.shared_libraries import needed_libraries

ROOT = Path(__file__).resolve().parents[1]
CUDA = "CUDAExecutionProvider"


@pytest.fixture(scope="module")
def report():
    return doctor()


def test_doctor_reports_what_really_starts(report) -> None:
    assert report.onnxruntime.version == ort.__version__
    assert report.devices_ready["cpu"] is True
    checks = {c.provider: c for c in report.providers}
    assert checks["CPUExecutionProvider"].initialises is True
    if CUDA not in ort.get_available_providers():
        assert checks[CUDA].available is False and checks[CUDA].initialises is False
        return
    cuda = checks[CUDA]
    assert cuda.available is True
    if cuda.initialises:
        assert cuda.placement.startswith("1 of 1 nodes on CUDAExecutionProvider")
        return
    # Registered but not initialising: the reason is one line that names what is missing.
    assert report.devices_ready["cuda"] is False
    assert cuda.reason and "\n" not in cuda.reason
    missing = [lib.soname for lib in report.libraries if not lib.found and CUDA in lib.needed_by]
    if missing:
        assert missing[0] in cuda.reason and cuda.reason.endswith("not found")
    assert report.hints, "a machine that cannot run CUDA gets something to do about it"


def test_libraries_come_from_the_provider_library_itself() -> None:
    libraries = provider_libraries()
    if CUDA not in libraries:
        pytest.skip("no CUDA provider library in this onnxruntime build")
    needed = needed_libraries(libraries[CUDA])
    assert any(name.startswith("libcudart.so.") for name in needed)
    assert any(name.startswith("libcublas") for name in needed)
    assert needed_libraries(Path(__file__)) == []  # not an ELF file


def test_doctor_json_schema(tmp_path: Path) -> None:
    out = tmp_path / "doctor.json"
    proc, log = run_without_tf(["doctor", "--json", "-o", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in log if line.startswith("attempt")] == [], "doctor tried to import TensorFlow"
    doc = json.loads(proc.stdout)
    assert set(doc) >= {
        "onnxruntime",
        "devices_ready",
        "providers",
        "libraries",
        "gpus",
        "cpu",
        "hints",
        "environment",
    }
    assert set(doc["onnxruntime"]) >= {
        "package",
        "version",
        "device",
        "cuda_version",
        "build_info",
        "providers_available",
    }
    assert doc["devices_ready"]["cpu"] is True
    for check in doc["providers"]:
        assert set(check) == {"provider", "device", "available", "initialises", "reason", "placement"}
    for lib in doc["libraries"]:
        assert set(lib) == {"soname", "component", "needed_by", "found", "path", "error"}
    assert set(doc["environment"]) == {"hardware", "versions"}
    assert isinstance(doc["cpu"]["flags"], list)
    assert json.loads(out.read_text()) == doc
    assert "Falling back" not in proc.stdout + proc.stderr and "EP Error" not in proc.stdout + proc.stderr
    again, _ = run_without_tf(["doctor", "-o", str(out)], tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_doctor_human_output_names_the_devices_that_run(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "edgecnn.cli", "doctor"]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "execution providers" in proc.stdout and "ready --device cpu" in proc.stdout
    assert proc.stderr == ""  # ORT's C++ provider-load errors are reported in the table, not logged


def facts(**overrides) -> HintFacts:
    base = dict(
        arch="x86_64", system="Linux", package="onnxruntime-gpu", ort_version="1.31.1", cuda_version="13.0",
        gpu_found=True, jetson=False, providers_ready=("CPUExecutionProvider",),
        providers_available=("TensorrtExecutionProvider", CUDA, "CPUExecutionProvider"), missing_libraries=(),
    )  # fmt: skip
    return HintFacts(**{**base, **overrides})


def test_hints_for_a_gpu_box_missing_cuda_libraries() -> None:
    hints = install_hints(facts(missing_libraries=("libcublasLt.so.13", "libcublas.so.13", "libcudnn.so.9")))
    assert len(hints) == 1
    assert "pip install 'nvidia-cublas==13.*' 'nvidia-cudnn-cu13==9.*'" in hints[0]
    driver = install_hints(facts(missing_libraries=("libcuda.so.1",)))
    assert "NVIDIA driver" in driver[0]


def test_hints_for_cpu_only_and_jetson_boxes() -> None:
    cpu = install_hints(facts(gpu_found=False))
    assert "pip install onnxruntime" in cpu[0] and "onnxruntime-gpu" in cpu[1]
    jetson = install_hints(facts(arch="aarch64", jetson=True, package="onnxruntime"))
    assert "PyPI has no aarch64 onnxruntime-gpu" in jetson[0] and "JetPack" in jetson[1]
    assert (
        install_hints(facts(providers_ready=("TensorrtExecutionProvider", CUDA, "CPUExecutionProvider")))
        == []
    )


def test_pip_packages_follow_the_cuda_major() -> None:
    assert pip_package("libcudart.so.12", 12) == "nvidia-cuda-runtime-cu12"
    assert pip_package("libcufft.so.12", 13) == "nvidia-cufft==12.*"
    assert pip_package("libnvinfer.so.10", 13) == "tensorrt-cu13==10.*"
    assert pip_package("libcuda.so.1", 13) is None


def test_ort_error_is_shortened_to_what_a_user_can_act_on() -> None:
    raw = (
        "/onnxruntime_src/onnxruntime/python/onnxruntime_pybind_state.cc:729 void onnxruntime::python::"
        "RegisterTensorRTPluginsAsCustomOps(PySessionOptions&, const onnxruntime::ProviderOptions&) Please "
        "install TensorRT libraries as mentioned in the GPU requirements page"
    )
    assert (
        shorten_ort_error(raw)
        == "Please install TensorRT libraries as mentioned in the GPU requirements page"
    )


def test_config_is_validated() -> None:
    with pytest.raises(EdgecnnError):
        DoctorConfig(nvidia_smi_timeout_s=0)
    assert all(c.initialises is None for c in doctor(DoctorConfig(probe_providers=False)).providers[1:]
               if c.available)  # fmt: skip


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine may have a GPU")
def test_gpu_check_stops_at_once_without_a_gpu() -> None:
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "no CUDA device found (nvidia-smi is not installed and this is not a Jetson)"
    ]
    if shutil.which("make") is None:
        return
    made = subprocess.run(["make", "-s", "gpu-check"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    # make adds its own "make: *** ... Error 1" line; the script's line comes first, nothing installed.
    assert made.returncode != 0 and made.stderr.splitlines()[0].startswith("no CUDA device found (")
    assert made.stdout == ""


def test_doctor_names_the_isa_class_and_the_int8_recipe_that_suits_it(report, tmp_path: Path) -> None:
    from edgecnn.core.isa import this_isa_class
    from edgecnn.runtime.doctor import int8_fit

    assert report.int8["isa_class"] == this_isa_class()
    doc = report.to_dict()
    assert doc["cpu"]["isa_class"] == this_isa_class() and doc["int8"] == report.int8
    # A Cortex-A76 board (asimddp, no i8mm) gets the S8S8 arm recipe; an AVX2-only x86 the reduced range.
    arm = int8_fit({"arch": "aarch64", "flags": ["asimd", "asimddp", "fp", "crc32"]})
    assert (
        arm["isa_class"] == "arm-dotprod" and arm["recipe"] == "arm" and arm["file"] == "model.int8-arm.onnx"
    )
    assert arm["types"] == "S8S8"
    assert int8_fit({"arch": "x86_64", "flags": ["avx2", "fma"]})["recipe"] == "avx2"
    riscv = int8_fit({"arch": "riscv64", "flags": []})
    assert riscv["isa_class"] is None and "riscv64" in riscv["why"]  # reported, never raised
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "edgecnn.cli", "doctor"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "ISA class" in proc.stdout and this_isa_class() in proc.stdout
    assert f"INT8 recipe   {report.int8['recipe']} ({report.int8['types']})" in proc.stdout
