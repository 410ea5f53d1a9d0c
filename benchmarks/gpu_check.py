"""`make gpu-check`: prove the CUDA and TensorRT paths on a real GPU, end to end, in one command.

On a machine with nothing but a fresh clone and an NVIDIA GPU it trains a tiny model, exports it
(FP32, FP16, INT8 and, when the export offers it, TensorRT INT8), then runs `doctor`, `bench` on
CUDA (with and without CUDA graphs, batch 1/8/64) and TensorRT (fp16, int8, a second run on the
engine cache), and `eval` on CUDA against CPU. It asserts that 100% of nodes ran on the requested
provider (bench JSON's `placement`), that CUDA and CPU agree, and that no "Falling back" text
appears anywhere. One table at the end; exit 1 on any failed assertion.

Without a GPU it stops at once: exit 1 and one line, "no CUDA device found (...)"
(`--preflight` does only that check, so `make gpu-check` refuses before installing anything).
Everything is done through the `edgecnn` CLI in subprocesses, like a user would.

`--bundle DIR` skips training and export and checks an exported bundle instead (with DIR-trt beside it,
when there, as the `--target tensorrt` export): for a GPU machine without TensorFlow, where only the
runtime side is installed. `--log PATH` always writes every command's output there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_PY = ROOT / ".venv" / "bin" / "python"
BUDGET_S = 8 * 60
FALLBACK_TEXT = ("Falling back", "fell back", "EP Error")
PARITY_ACCURACY_DELTA = 0.002  # CUDA vs CPU top-1 accuracy on the same images
BATCHES = "1,8,64"
PROVIDER = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float


def no_gpu_reason(root: Path = Path("/")) -> str | None:
    """Why there is no usable CUDA device, or None when nvidia-smi lists at least one GPU or this is a
    Jetson (which has no nvidia-smi: edgecnn.core.jetson reads /etc/nv_tegra_release and the device tree)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        sys.path.insert(0, str(ROOT))
        from edgecnn.core.jetson import jetson_info  # stdlib only: runs before anything is installed

        if jetson_info(root) is not None:
            return None
        return "nvidia-smi is not installed and this is not a Jetson"
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nvidia-smi failed: {exc}"
    if out.returncode != 0 or "GPU " not in out.stdout:
        return " ".join((out.stderr or out.stdout or "nvidia-smi lists no GPU").split())[:160]
    return None


class Runner:
    """Runs CLI steps, keeps every output for the fallback-text scan, and records checks."""

    def __init__(self, python: Path, work: Path) -> None:
        self.python = python
        self.work = work
        self.checks: list[Check] = []
        self.transcript: list[str] = []
        self.started = time.monotonic()

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path}
        proc = subprocess.run(
            [str(self.python), "-m", "edgecnn.cli", *args],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.transcript.append(f"$ edgecnn {' '.join(args)}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def json_cli(self, *args: str, timeout: float = 300) -> tuple[dict[str, Any] | None, str]:
        proc = self.cli(*args, "--json", timeout=timeout)
        if proc.returncode != 0:
            return None, (proc.stderr.strip().splitlines() or ["failed"])[-1]
        try:
            return json.loads(proc.stdout), ""
        except ValueError:
            return None, "stdout is not one JSON document (something printed into it)"

    def record(self, name: str, ok: bool, detail: str, since: float) -> bool:
        self.checks.append(Check(name, ok, detail, time.monotonic() - since))
        return ok


def placements(document: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """(label, placement) for every model/batch of a bench document; None where placement is absent."""
    found = []
    for model in document.get("models", []):
        label = str(model.get("name") or Path(str(model.get("model", "?"))).name)
        results = model.get("results") or model.get("batches") or [model]
        for result in results:
            batch = result.get("batch", result.get("batch_size", "?"))
            found.append((f"{label} b{batch}", result.get("placement", model.get("placement"))))
    return found


def check_placement(run: Runner, name: str, document: dict[str, Any] | None, device: str, t0: float) -> bool:
    """100% of nodes on the requested provider, for every model and batch of the bench document."""
    if document is None:
        return run.record(name, False, "no bench document", t0)
    rows = placements(document)
    if not rows:
        return run.record(name, False, "bench JSON has no models", t0)
    wanted = PROVIDER[device]
    for label, placement in rows:
        if not placement:
            return run.record(name, False, f"{label}: bench JSON has no 'placement' field", t0)
        total = placement.get("nodes_total", 0)
        on_wanted = placement.get("by_provider", {}).get(wanted, 0)
        if total == 0 or on_wanted != total:
            return run.record(name, False, f"{label}: {placement.get('summary', placement)}", t0)
    return run.record(name, True, f"{len(rows)} model/batch runs: 100% on {wanted}", t0)


def bench(run: Runner, name: str, models: list[Path], device: str, *extra: str) -> dict[str, Any] | None:
    t0 = time.monotonic()
    out = run.work / name.replace(" ", "-")
    args = ["bench", *map(str, models), "--device", device, "--batch", BATCHES, "-n", "50", *extra]
    document, error = run.json_cli(*args, "-o", str(out), "--force")
    run.record(name, document is not None, error or "ran", t0)
    check_placement(run, f"{name}: placement", document, device, t0)
    return document


def check_engine_cache(run: Runner, document: dict[str, Any] | None) -> bool:
    """The second TensorRT run loads every engine from --trt-engine-cache instead of building it."""
    t0 = time.monotonic()
    engines = [m.get("trt_engine") or {} for m in (document or {}).get("models", [])]
    ok = bool(engines) and all(e.get("engine") == "loaded from cache" for e in engines)
    detail = "; ".join(f"{e.get('engine', 'no trt_engine field')}" for e in engines) or "no bench document"
    return run.record("tensorrt engine cache reused", ok, detail, t0)


def option_exists(run: Runner, command: str, option: str) -> bool:
    return option in run.cli(command, "--help").stdout


def prebuilt(bundle: Path) -> dict[str, Path]:
    """The variants of an already exported bundle (and its `--target tensorrt` twin, DIR-trt)."""
    variants = {
        "fp32": bundle / "model.onnx",
        "fp16": bundle / "model.fp16.onnx",
        "int8": bundle / "model.int8.onnx",
    }
    trt = next(iter(sorted(bundle.with_name(bundle.name + "-trt").glob("*int8*.onnx"))), None)
    if trt is not None:
        variants["trt-int8"] = trt
    return {k: v for k, v in variants.items() if v.exists()}


def prepare(run: Runner, bundle: Path | None = None) -> dict[str, Path]:
    """Train a tiny model and export every variant; returns variant -> .onnx path."""
    if bundle is not None:
        return prebuilt(bundle)
    t0 = time.monotonic()
    train_dir = run.work / "run"
    proc = run.cli(
        "train", "--model", "keras-convnet", "--epochs", "1", "--limit", "3000", "-o", str(train_dir)
    )
    if not run.record("train (tiny)", proc.returncode == 0, proc.stderr.strip()[-200:] or "ok", t0):
        return {}
    t0 = time.monotonic()
    bundle = run.work / "bundle"
    proc = run.cli("export", str(train_dir / "model.keras"), "--quantize", "all", "-o", str(bundle))
    if not run.record("export fp32/fp16/int8", proc.returncode == 0, proc.stderr.strip()[-200:] or "ok", t0):
        return {}
    variants = {
        "fp32": bundle / "model.onnx",
        "fp16": bundle / "model.fp16.onnx",
        "int8": bundle / "model.int8.onnx",
    }
    if option_exists(run, "export", "--target"):
        t0 = time.monotonic()
        trt_dir = run.work / "bundle-trt"
        args = ["export", str(train_dir / "model.keras"), "--quantize", "int8", "--target", "tensorrt"]
        proc = run.cli(*args, "-o", str(trt_dir))
        if run.record(
            "export int8 --target tensorrt", proc.returncode == 0, proc.stderr.strip()[-200:] or "ok", t0
        ):
            variants["trt-int8"] = next(
                iter(sorted(trt_dir.glob("*int8*.onnx"))), trt_dir / "model.int8.onnx"
            )
    else:
        run.checks.append(Check("export --target tensorrt", True, "skipped: export has no --target yet", 0.0))
    return {k: v for k, v in variants.items() if v.exists()}


def accuracy_parity(run: Runner, model: Path) -> None:
    t0 = time.monotonic()
    results = {}
    for device in ("cpu", "cuda"):
        args = [
            "eval",
            str(model),
            "--device",
            device,
            "--limit",
            "2000",
            "-o",
            str(run.work / f"eval-{device}"),
        ]
        document, error = run.json_cli(*args, "--force")
        if document is None:
            run.record(f"eval --device {device}", False, error, t0)
            return
        results[device] = float(document["accuracy"])
    delta = abs(results["cuda"] - results["cpu"])
    detail = f"cpu {results['cpu']:.4f}, cuda {results['cuda']:.4f} (|delta| {delta:.4f})"
    run.record("eval cuda vs cpu accuracy", delta <= PARITY_ACCURACY_DELTA, detail, t0)


def run_all(run: Runner, bundle: Path | None = None) -> None:
    t0 = time.monotonic()
    document, error = run.json_cli("doctor")
    ready = (document or {}).get("devices_ready", {})
    run.record("doctor", bool(ready.get("cuda")), error or f"devices ready: {ready}", t0)
    variants = prepare(run, bundle)
    if not variants:
        return
    float_models = [variants[k] for k in ("fp32", "fp16") if k in variants]
    bench(run, "bench cuda", float_models, "cuda")
    bench(run, "bench cuda graphs", float_models, "cuda", "--cuda-graphs")
    cache = run.work / "trt-cache"
    if "fp32" in variants:
        bench(
            run,
            "bench tensorrt fp16",
            [variants["fp32"]],
            "tensorrt",
            "--precision",
            "fp16",
            "--trt-engine-cache",
            str(cache),
        )
        cached = bench(
            run,
            "bench tensorrt fp16 (cached)",
            [variants["fp32"]],
            "tensorrt",
            "--precision",
            "fp16",
            "--trt-engine-cache",
            str(cache),
        )
        check_engine_cache(run, cached)
    int8 = variants.get("trt-int8", variants.get("int8"))
    if int8 is not None:
        bench(
            run,
            "bench tensorrt int8",
            [int8],
            "tensorrt",
            "--precision",
            "int8",
            "--trt-engine-cache",
            str(cache),
        )
    if "fp32" in variants:
        accuracy_parity(run, variants["fp32"])
    t0 = time.monotonic()
    text = "\n".join(run.transcript)
    hits = [marker for marker in FALLBACK_TEXT if marker in text]
    run.record("no fallback text in any output", not hits, f"found {hits}" if hits else "none", t0)


def print_table(run: Runner) -> None:
    width = max(len(c.name) for c in run.checks)
    print(f"{'check':<{width}}  result  {'s':>6}  detail")
    for c in run.checks:
        print(f"{c.name:<{width}}  {'ok' if c.ok else 'FAIL':<6}  {c.seconds:6.1f}  {c.detail}")
    total = time.monotonic() - run.started
    failed = sum(not c.ok for c in run.checks)
    passed = len(run.checks) - failed
    print(f"{passed} of {len(run.checks)} checks passed in {total:.0f} s (budget {BUDGET_S} s)")


def main(argv: list[str]) -> int:
    reason = no_gpu_reason()
    if reason is not None:
        print(f"no CUDA device found ({reason})", file=sys.stderr)
        return 1
    if "--preflight" in argv:  # `make gpu-check` asks before installing anything
        return 0
    python = Path(os.environ.get("EDGECNN_PYTHON", VENV_PY if VENV_PY.exists() else sys.executable))
    bundle = Path(argv[argv.index("--bundle") + 1]).resolve() if "--bundle" in argv else None
    if (
        bundle is None
        and subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True).returncode
    ):
        # The device gets the runtime side only (`make gpu-check`): the bundle is exported elsewhere.
        print("no TensorFlow here: export on a workstation (make gpu-bundle) and pass --bundle DIR "
              "(make gpu-check BUNDLE=DIR)", file=sys.stderr)  # fmt: skip
        return 2
    log_path = Path(argv[argv.index("--log") + 1]) if "--log" in argv else ROOT / "gpu-check.log"
    with tempfile.TemporaryDirectory(prefix="edgecnn-gpu-check-") as work:
        run = Runner(python, Path(work))
        try:
            run_all(run, bundle)
        except subprocess.TimeoutExpired as exc:
            run.checks.append(
                Check("time limit", False, f"{' '.join(map(str, exc.cmd))[:80]} timed out", 0.0)
            )
        if time.monotonic() - run.started > BUDGET_S:
            run.checks.append(Check("finished within budget", False, f"over {BUDGET_S} s", 0.0))
        print_table(run)
        failed = any(not c.ok for c in run.checks)
        if failed or "--log" in argv:
            log_path.write_text("\n".join(run.transcript), encoding="utf-8")
            print(f"full output of every command: {log_path}")
        if failed:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
