# ruff: noqa: E501 - the catalogue reads best one case per line
"""The bad-input catalogue of issue 14: inputs that once gave a traceback, a hang, a silent wrong result
or an unclear line, each run through the real CLI in a subprocess (TensorFlow blocked for the runtime
commands, so an attempt to import it is caught too).

`python tests/reliability_cases.py` prints the catalogue counts (clean one-line errors, tracebacks,
silent successes, unclear lines, damaged files); tests/test_reliability.py asserts every case is clean.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_no_tensorflow import WRAPPER  # noqa: E402
from test_predict import centroid_model  # noqa: E402

TIMEOUT_S = 60


@dataclass(frozen=True)
class Case:
    """One bad input: the CLI arguments ({ws} = the workspace), the exit code a clean refusal has, a
    word the one line must contain (so the message says what is wrong), and the paths the command may
    create (everything else in the workspace must stay byte-identical)."""

    name: str
    item: int  # the numbered item
    args: tuple[str, ...]
    code: int = 1
    says: str = ""
    may_write: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    block_tf: bool = True
    file_size_limit: int | None = None  # RLIMIT_FSIZE in bytes: writes beyond it fail like a full disk
    fast: bool = False  # in the default test run (one or two per item); the rest run with -m slow


def _model(
    nodes: list, inputs: list, outputs: list, inits: list, *, opset: int = 17, ir: int = 8
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir
    return model


def _nan_model(path: Path) -> None:
    """A classifier whose every output is NaN (0 * inf): what a broken export looks like."""
    from edgecnn.core.metadata import ModelMetadata, write_metadata

    nodes = [
        helper.make_node("Reshape", ["input", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["mm"]),
        helper.make_node("Mul", ["mm", "inf"], ["probabilities"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(np.zeros((784, 10), np.float32), "w"),
        numpy_helper.from_array(np.array([np.inf], np.float32), "inf"),
    ]
    m = _model(
        nodes,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 28, 28, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    write_metadata(
        m, ModelMetadata(input_shape=(28, 28, 1), class_labels=tuple("0123456789"), dataset="mnist")
    )
    onnx.save(m, str(path))


def _without_dataset(src: Path, dst: Path) -> None:
    """The same classifier, its metadata naming no dataset (so eval takes any --data)."""
    import dataclasses

    from edgecnn.core.metadata import read_metadata, write_metadata

    m = onnx.load(str(src))
    keep = [p for p in m.metadata_props if not p.key.endswith("dataset")]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    write_metadata(m, dataclasses.replace(read_metadata(src), dataset=None))
    onnx.save(m, str(dst))


def _two_input_model(path: Path) -> None:
    m = _model(
        [helper.make_node("Add", ["a", "b"], ["probabilities"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 10]) for n in ("a", "b")],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        [],
    )
    onnx.save(m, str(path))


def _string_input_model(path: Path) -> None:
    m = _model(
        [helper.make_node("Identity", ["input"], ["probabilities"])],
        [helper.make_tensor_value_info("input", TensorProto.STRING, ["batch", 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.STRING, ["batch", 1])],
        [],
    )
    onnx.save(m, str(path))


def _retagged(src: Path, dst: Path, *, ir: int | None = None, opset: int | None = None) -> None:
    m = onnx.load(str(src))
    if ir is not None:
        m.ir_version = ir
    if opset is not None:
        m.opset_import[0].version = opset
    onnx.save(m, str(dst))


def _external(src: Path, dst_dir: Path, *, truncate: bool) -> Path:
    dst_dir.mkdir()
    m = onnx.load(str(src))
    dst = dst_dir / "model.onnx"
    onnx.save(m, str(dst), save_as_external_data=True, location="weights.bin", size_threshold=1024)
    if truncate:
        data = (dst_dir / "weights.bin").read_bytes()
        (dst_dir / "weights.bin").write_bytes(data[: len(data) // 3])
    return dst


def _bomb_png(path: Path) -> None:
    """A 20000x20000 PNG header with almost no data: Pillow refuses it as a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = (20000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    idat = zlib.compress(b"\0" * 20001 * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _with_props(src: Path, dst: Path, **props: str) -> None:
    """A copy of `src` whose edgecnn metadata keys are set to the raw values given (tampered metadata)."""
    m = onnx.load(str(src))
    for key, value in props.items():
        key = f"edgecnn.{key}"
        kept = [p for p in m.metadata_props if p.key != key]
        del m.metadata_props[:]
        m.metadata_props.extend(kept)
        m.metadata_props.add(key=key, value=value)
    onnx.save(m, str(dst))


def _negated_probabilities(src: Path, dst: Path) -> None:
    """A model whose metadata says "probabilities" but whose graph negates its softmax."""
    m = onnx.load(str(src))
    out = m.graph.output[0].name
    for node in m.graph.node:
        node.output[:] = [o if o != out else "softmax_out" for o in node.output]
    m.graph.node.append(helper.make_node("Neg", ["softmax_out"], [out]))
    onnx.save(m, str(dst))
    _with_props(dst, dst, output="probabilities")


def _fixed_batch(src: Path, dst: Path, batch: int) -> None:
    m = onnx.load(str(src))
    for value in [*m.graph.input, *m.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = batch
    onnx.save(m, str(dst))


def _tuned_bundle(ws: Path, name: str, model: Path, **pick: object) -> None:
    """A bundle with a device.json made on this machine, one pick tampered with `pick`."""
    from edgecnn.runtime.target import current_cpu_target

    bundle = ws / name
    bundle.mkdir()
    (bundle / "model.onnx").write_bytes(model.read_bytes())
    picks = {"1": {"variant": "fp32", "file": "model.onnx", "threads": 1, "p50_ms": 0.1, "fp32_p50_ms": 0.1}}
    key = str(pick.pop("key", "1"))
    picks = {key: {**picks["1"], **pick}}
    record = {
        "kind": "edgecnn.device_pick",
        "schema_version": 1,
        "target": current_cpu_target(),
        "picks": picks,
    }
    (bundle / "device.json").write_text(json.dumps(record))
    (bundle / ".edgecnn-output").write_text(
        json.dumps({"kind": "export", "entries": ["model.onnx", "device.json"]})
    )


def _fake_keras(path: Path) -> None:
    """A zip that passes export's file check (config.json inside): enough to reach the output check."""
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("model.weights.h5", b"")


def _data_faults(ws: Path, digit: np.ndarray) -> None:
    """Image folders with one bad entry each, and .npy files that lie about what they hold."""
    from PIL import Image

    for name, classes in (("dangling", "01"), ("truncated", "0123456789")):
        for cls in classes:
            (ws / name / cls).mkdir(parents=True)
            for i in range(6):
                Image.fromarray(digit).save(ws / name / cls / f"{i}.png")
    (ws / "dangling" / "1" / "gone.png").symlink_to(ws / "no-such-file.png")
    data = (ws / "truncated" / "1" / "5.png").read_bytes()
    (ws / "truncated" / "1" / "5.png").write_bytes(data[: len(data) // 2])
    np.savez(ws / "archive.npz", x=digit)
    (ws / "archive.npz").rename(ws / "renamed.npy")
    with open(ws / "huge_header.npy", "wb") as fh:
        from numpy.lib import format as npy_format

        npy_format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (100000, 100000)}
        )
        fh.write(b"\0" * 64)
    (ws / "garbage.onnx").write_bytes(hashlib.sha256(b"x").digest() * 20)


def build_round3(ws: Path, model: Path) -> None:
    """The files of issue 21's classes: outputs that are inputs, other commands' outputs, markup and
    non-UTF-8 names, FIFOs, tampered device.json and metadata, and lying data."""
    from PIL import Image

    digit = np.asarray(Image.open(ROOT / "samples" / "digit_7_idx0.png"))
    os.mkfifo(ws / "pipe.onnx")
    os.mkfifo(ws / "pipe.json")
    (ws / "user.onnx").write_text("my notes, not a model\n")
    for victim in ("victim_bench", "victim_eval", "victim_doctor"):  # the cases that once destroyed a model
        (ws / f"{victim}.onnx").write_bytes(model.read_bytes())
    _fake_keras(ws / "run" / "model.keras")
    _tuned_bundle(ws, "tuned_ok", model)
    _tuned_bundle(ws, "tuned_threads", model, threads=100000)
    _tuned_bundle(ws, "tuned_escape", model, file="../centroid.onnx")
    _tuned_bundle(ws, "tuned_file_int", model, file=123)
    _tuned_bundle(ws, "tuned_threads_text", model, threads="two")
    _tuned_bundle(ws, "tuned_key", model, key="abc")
    _tuned_bundle(ws, "tuned_runtime", model, runtime="tensorflow")
    _tuned_bundle(ws, "tuned_precision", model, runtime="openvino", precision="fp64")
    _tuned_bundle(ws, "tuned_precision_ort", model, precision="bf16")
    _tuned_bundle(ws, "tuned_suffix", model, runtime="litert")
    _with_props(
        model,
        ws / "rgb_norm.onnx",
        normalization=json.dumps({"scale": 1 / 255, "mean": [0, 0, 0], "std": [1, 1, 1]}),
    )
    _with_props(model, ws / "same_labels.onnx", class_labels=json.dumps(["0"] * 10))
    _negated_probabilities(model, ws / "negated.onnx")
    _fixed_batch(model, ws / "fixed1.onnx", 1)
    (ws / os.fsdecode(b"m\xff\xfe.onnx")).write_bytes(model.read_bytes())
    (ws / "odd_names").mkdir()
    Image.fromarray(digit).save(ws / "odd_names" / os.fsdecode(b"digit_7_\xff.png"))
    _data_faults(ws, digit)


def _real_bench_variants(model: Path, ws: Path) -> None:
    """A real bench.json, and two broken copies: one with no models, one whose times are 0 ms."""
    out = ws / "bench_ok"
    args = ["bench", str(model), "-n", "3", "--warmup", "1", "-o", str(out)]
    subprocess.run([sys.executable, "-m", "edgecnn.cli", *args], cwd=ROOT, check=True, capture_output=True)
    doc = json.loads((out / "bench.json").read_text())
    (ws / "no_models.json").write_text(json.dumps({**doc, "models": []}))
    for m in doc["models"]:
        for r in m["results"]:
            r.update({k: 0.0 for k in r if k.endswith("_ms")})
    (ws / "zero_ms.json").write_text(json.dumps(doc))


def build_workspace(ws: Path, mnist_dir: Path) -> None:
    """Every file the cases need, made from real MNIST or real ONNX graphs (nothing downloaded)."""
    from PIL import Image

    ws.mkdir(parents=True, exist_ok=True)
    model = centroid_model(ws / "centroid.onnx", mnist_dir)
    _nan_model(ws / "nan.onnx")
    _without_dataset(model, ws / "nodata.onnx")
    _two_input_model(ws / "two_inputs.onnx")
    _string_input_model(ws / "string_input.onnx")
    _retagged(model, ws / "ir14.onnx", ir=14)
    _retagged(model, ws / "opset99.onnx", opset=99)
    _external(model, ws / "ext_ok", truncate=False)
    _external(model, ws / "ext_cut", truncate=True)
    os.mkfifo(ws / "pipe.png")
    digit = np.asarray(Image.open(ROOT / "samples" / "digit_7_idx0.png"))
    np.save(ws / "complex.npy", digit.astype(np.complex64) + 1j)
    np.save(ws / "stack3.npy", np.stack([digit] * 3))
    nan = digit.astype(np.float32)
    nan[3, 3] = np.nan
    Image.fromarray(nan, mode="F").save(ws / "nan.tiff")
    _bomb_png(ws / "bomb.png")
    (ws / "user_dir").mkdir()
    (ws / "user_dir" / "thesis.txt").write_text("four years of work\n")
    # MNIST's files under Fashion-MNIST's (identical) names: a data dir that lies about its dataset.
    (ws / "fake_fashion").mkdir()
    for f in mnist_dir.glob("*-ubyte.gz"):
        (ws / "fake_fashion" / f.name).symlink_to(f)
    (ws / "corrupt_data").mkdir()
    for f in mnist_dir.glob("*-ubyte.gz"):
        (ws / "corrupt_data" / f.name).write_bytes(gzip.compress(b"not an idx file"))
    (ws / "empty_data").mkdir()
    for cls in "0123456789":  # one image per class: nothing left for validation or testing
        (ws / "one_per_class" / cls).mkdir(parents=True)
        Image.fromarray(digit).save(ws / "one_per_class" / cls / "x.png")
    for cls in "0123456789":  # a 10-class folder dataset whose test split holds no images
        (ws / "empty_test" / "test" / cls).mkdir(parents=True)
        (ws / "empty_test" / "train" / cls).mkdir(parents=True)
        Image.fromarray(digit).save(ws / "empty_test" / "train" / cls / "x.png")
    _real_bench_variants(model, ws)
    (ws / "not_a_dir").write_text("a file\n")
    build_round3(ws, model)


def cases() -> list[Case]:
    ws = "{ws}"
    m = f"{ws}/centroid.onnx"
    long_name = "x" * 300
    return [
        Case("bench --force over a user directory", 1, ("bench", m, "-n", "3", "-o", f"{ws}/user_dir", "--force"), says="not an edgecnn output", fast=True),
        Case("eval --force over a user directory", 1, ("eval", m, "--data-dir", "MNIST", "--limit", "50", "-o", f"{ws}/user_dir", "--force"), says="not an edgecnn output"),
        Case("compare --force over a user directory", 1, ("compare", f"{ws}/bench_ok", "-o", f"{ws}/user_dir", "--force")),
        Case("MNIST files as fashion_mnist", 4, ("data", "info", "fashion_mnist", "--data-dir", f"{ws}/fake_fashion"), says="mnist", fast=True),
        Case("predict a NaN model", 5, ("predict", f"{ws}/nan.onnx", "samples", "-o", f"{ws}/out5.json"), says="NaN", fast=True),
        Case("eval a NaN model", 5, ("eval", f"{ws}/nan.onnx", "--data-dir", "MNIST", "--limit", "50", "-o", f"{ws}/out5e"), says="NaN"),
        Case("optimize a NaN model", 5, ("optimize", f"{ws}/nan.onnx", "--data-dir", "MNIST", "-o", f"{ws}/out5.cpu.onnx"), says="NaN"),
        Case("complex .npy image", 6, ("predict", m, f"{ws}/complex.npy", "-o", f"{ws}/out6a.json"), says="complex", fast=True),
        Case("stacked (3,28,28) .npy", 6, ("predict", m, f"{ws}/stack3.npy", "-o", f"{ws}/out6b.json"), says="ambiguous"),
        Case("NaN pixels in a TIFF", 6, ("predict", m, f"{ws}/nan.tiff", "-o", f"{ws}/out6c.json"), says="NaN"),
        Case("optimize --data-dir with corrupt data", 7, ("optimize", m, "--data-dir", f"{ws}/corrupt_data", "-o", f"{ws}/out7.cpu.onnx")),
        Case("compare a result with no models", 7, ("compare", f"{ws}/no_models.json", "-o", f"{ws}/out7c"), says="no models", fast=True),
        Case("compare a result with 0 ms", 7, ("compare", f"{ws}/zero_ms.json", "-o", f"{ws}/out7d"), says="p50_ms 0.0"),
        Case("predict -o out/dir/", 7, ("predict", m, "samples", "-o", f"{ws}/newdir/"), says=".json", fast=True),
        Case("predict a FIFO", 11, ("predict", m, f"{ws}/pipe.png", "-o", f"{ws}/out11.json"), says="regular file", fast=True),
        Case("-o under /proc", 12, ("bench", m, "-n", "3", "-o", "/proc/edgecnn-x")),
        Case("300-character output name", 12, ("bench", m, "-n", "3", "-o", f"{ws}/{long_name}"), says="too long"),
        Case("20000x20000 PNG", 12, ("predict", m, f"{ws}/bomb.png", "-o", f"{ws}/out12.json"), says="pixels", fast=True),
        Case("zero-image test set", 12, ("eval", f"{ws}/nodata.onnx", "--data", f"folder:{ws}/empty_test", "-o", f"{ws}/out12e"), says="no test images"),
        Case("optimize a two-input model", 12, ("optimize", f"{ws}/two_inputs.onnx", "-o", f"{ws}/out12a.onnx"), says="input", fast=True),
        Case("optimize a string-input model", 12, ("optimize", f"{ws}/string_input.onnx", "-o", f"{ws}/out12b.onnx"), says="input"),
        Case("full TMPDIR: optimize must not blame the model", 12, ("optimize", m, "--data-dir", "MNIST", "-o", f"{ws}/out12t.onnx"), says="temporary", file_size_limit=20_000),
        Case("disk full while writing the result", 12, ("bench", m, "-n", "3", "-o", f"{ws}/deep/er/out12f"), says="out12f", file_size_limit=12_000),
        Case("IR version too new", 13, ("predict", f"{ws}/ir14.onnx", "samples", "-o", f"{ws}/out13a.json"), says="newer", fast=True),
        Case("opset 99", 13, ("predict", f"{ws}/opset99.onnx", "samples", "-o", f"{ws}/out13b.json"), says="opset"),
        Case("truncated external data", 13, ("predict", f"{ws}/ext_cut/model.onnx", "samples", "-o", f"{ws}/out13c.json"), says="weights.bin"),
        Case("eval with the dataset missing (no TensorFlow)", 15, ("eval", m, "--data", "mnist", "-o", f"{ws}/out15"), says="edgecnn data fetch", env={"EDGECNN_DATA_DIR": "{ws}/empty_data", "EDGECNN_CACHE_DIR": "{ws}/empty_data", "HOME": "{ws}/../home"}, fast=True),
        Case("--labels with empty names", 6, ("export", m, "--labels", ",,,,,,,,,", "-o", f"{ws}/out6l"), says="empty", block_tf=False),
        Case("--labels with a repeated name", 6, ("export", m, "--labels", "0,1,2,3,4,5,6,7,8,8", "-o", f"{ws}/out6d"), says="repeats", block_tf=False),
        Case("train cifar10 on a 28x28 model: shape checked before any download", 14, ("train", "--model", "keras-convnet", "--dataset", "cifar10", "-o", f"{ws}/out14c"), says="32x32x3", env={"EDGECNN_CACHE_DIR": "{ws}/empty_data", "HOME": "{ws}/../home"}, block_tf=False),
        Case("train on a one-image-per-class folder", 12, ("train", "--model", "mnist-fast", "--dataset", f"folder:{ws}/one_per_class", "--epochs", "1", "--no-plots", "-o", f"{ws}/out12o"), says="image", block_tf=False),
        Case("eval --download (would need TensorFlow)", 15, ("eval", m, "--download", "-o", f"{ws}/out15d"), says="edgecnn data fetch"),
        Case("missing argument", 16, ("predict",), code=2, says="missing", fast=True),
        Case("--epochs 1.5", 16, ("train", "--epochs", "1.5"), code=2, says="epochs", block_tf=False),
        Case("unknown command", 16, ("frobnicate",), code=2, says="frobnicate"),
        Case("unknown option", 16, ("bench", m, "--iterationz", "3"), code=2, says="iterationz"),
        *round3_cases(),
    ]  # fmt: skip


def round3_cases() -> list[Case]:
    """Issue 21's classes (item 21): one or two inputs per class, not the probe's exact inputs."""
    ws = "{ws}"
    m = f"{ws}/centroid.onnx"
    odd = os.fsdecode(b"m\xff\xfe.onnx")
    return [
        # an output may never be, contain or sit inside an input, --force or not
        Case("bench -o the model --force", 21, ("bench", f"{ws}/victim_bench.onnx", "-n", "3", "-o", f"{ws}/victim_bench.onnx", "--force"), says="input", fast=True),
        Case("eval -o the model --force", 21, ("eval", f"{ws}/victim_eval.onnx", "--data-dir", "MNIST", "--limit", "20", "-o", f"{ws}/victim_eval.onnx", "--force"), says="input"),
        Case("compare -o its input --force", 21, ("compare", f"{ws}/bench_ok", "-o", f"{ws}/bench_ok", "--force"), says="input"),
        Case("export -o the folder holding the model --force", 21, ("export", f"{ws}/run/model.keras", "-o", f"{ws}/run", "--force"), says="input", block_tf=False),
        Case("bench -o inside a tuned bundle it reads", 21, ("bench", f"{ws}/tuned_ok", "-n", "3", "-o", f"{ws}/tuned_ok/res"), says="inside"),
        # --force replaces only the same command's output
        Case("doctor -o a model --force", 21, ("doctor", "-o", f"{ws}/victim_doctor.onnx", "--force"), says="not an edgecnn result"),
        Case("optimize --force over a user's file", 21, ("optimize", m, "--data-dir", "MNIST", "-o", f"{ws}/user.onnx", "--force"), says="not an edgecnn result", fast=True),
        Case("bench --force over a tuned bundle", 21, ("bench", m, "-n", "3", "-o", f"{ws}/tuned_ok", "--force"), says="edgecnn export"),
        # every file argument a regular file, checked before it is opened
        Case("eval a FIFO as the model", 21, ("eval", f"{ws}/pipe.onnx", "--data-dir", "MNIST", "-o", f"{ws}/o21a"), says="FIFO", fast=True),
        Case("optimize a FIFO", 21, ("optimize", f"{ws}/pipe.onnx", "-o", f"{ws}/o21b.onnx"), says="FIFO"),
        Case("compare a FIFO", 21, ("compare", f"{ws}/pipe.json", "-o", f"{ws}/o21c"), says="FIFO"),
        Case("export a FIFO", 21, ("export", f"{ws}/pipe.onnx", "-o", f"{ws}/o21d"), says="FIFO", block_tf=False),
        # device.json read through a schema that names the file and the key
        Case("device.json threads 100000", 21, ("predict", f"{ws}/tuned_threads", "samples", "-o", f"{ws}/o21e.json"), says="threads", fast=True),
        Case("device.json file outside the bundle", 21, ("bench", f"{ws}/tuned_escape", "-n", "3", "-o", f"{ws}/o21f"), says="device.json"),
        Case("device.json file: 123", 21, ("eval", f"{ws}/tuned_file_int", "--data-dir", "MNIST", "-o", f"{ws}/o21g"), says="file"),
        Case("device.json threads: two", 21, ("predict", f"{ws}/tuned_threads_text", "samples", "-o", f"{ws}/o21h.json"), says="threads"),
        Case("device.json batch key abc", 21, ("predict", f"{ws}/tuned_key", "samples", "-o", f"{ws}/o21i.json"), says="abc"),
        Case("device.json runtime: tensorflow", 21, ("predict", f"{ws}/tuned_runtime", "samples", "-o", f"{ws}/o21y.json"), says="device.json: picks['1'].runtime", fast=True),
        Case("device.json precision: fp64", 21, ("bench", f"{ws}/tuned_precision", "-n", "3", "-o", f"{ws}/o21z"), says="device.json: picks['1'].precision"),
        Case("device.json precision bf16 for ONNX Runtime", 21, ("eval", f"{ws}/tuned_precision_ort", "--data-dir", "MNIST", "-o", f"{ws}/o21za"), says="device.json: picks['1'].precision"),
        Case("device.json pick a .onnx for LiteRT", 21, ("predict", f"{ws}/tuned_suffix", "samples", "-o", f"{ws}/o21zb.json"), says="device.json: picks['1'].file"),
        # values read from model metadata validated, the key named
        Case("3-channel mean/std on a grey model", 21, ("predict", f"{ws}/rgb_norm.onnx", "samples", "-o", f"{ws}/o21j.json"), says="normalization", fast=True),
        Case("every label '0'", 21, ("predict", f"{ws}/same_labels.onnx", "samples", "-o", f"{ws}/o21k.json"), says="class_labels"),
        # probably-wrong results refused
        Case("probabilities that are not a distribution", 21, ("eval", f"{ws}/negated.onnx", "--data-dir", "MNIST", "--limit", "20", "-o", f"{ws}/o21l"), says="distribution", fast=True),
        Case("a dangling symlink in a class folder", 21, ("data", "info", f"folder:{ws}/dangling"), says="broken symbolic link"),
        Case("export --labels ''", 21, ("export", f"{ws}/run/model.keras", "--labels", "", "-o", f"{ws}/o21m"), says="empty", block_tf=False),
        # no "unexpected X": each is named
        Case("optimize a garbage file", 21, ("optimize", f"{ws}/garbage.onnx", "-o", f"{ws}/o21n.onnx"), says="ONNX model", fast=True),
        Case("bench --batch 99999999999999999999", 21, ("bench", m, "--batch", "99999999999999999999", "-o", f"{ws}/o21o"), says="batch"),
        Case("bench --seed -1", 21, ("bench", m, "--seed", "-1", "-o", f"{ws}/o21p"), says="seed"),
        Case(".npz renamed .npy", 21, ("predict", m, f"{ws}/renamed.npy", "-o", f"{ws}/o21q.json"), says="npz"),
        Case(".npy header claiming 100000x100000", 21, ("predict", m, f"{ws}/huge_header.npy", "-o", f"{ws}/o21r.json"), says="claims", fast=True),
        Case("bench a fixed-batch-1 model at batch 4", 21, ("bench", f"{ws}/fixed1.onnx", "--batch", "4", "-n", "3", "-o", f"{ws}/o21s"), says="fixed"),
        Case("tune a path that does not exist", 21, ("tune", f"{ws}/no-such-bundle"), says="does not exist"),
        # valid inputs that must work, their paths printed literally
        Case("a model at a non-UTF-8 path", 21, ("predict", f"{ws}/{odd}", "samples", "-o", f"{ws}/o21t.json"), code=0, says="saved", fast=True),
        Case("an image with a non-UTF-8 name", 21, ("predict", m, f"{ws}/odd_names", "-o", f"{ws}/o21u.json"), code=0, says="\\xff"),
        Case("eval a fixed-batch-1 model", 21, ("eval", f"{ws}/fixed1.onnx", "--data-dir", "MNIST", "--limit", "20", "-o", f"{ws}/o21v"), code=0, says="accuracy"),
        Case("markup in the output path", 21, ("bench", m, "-n", "3", "--warmup", "1", "-o", f"{ws}/o21[/x]"), code=0, says="o21[/x]", may_write=("o21[",), fast=True),
        Case("[red] in the output path", 21, ("bench", m, "-n", "3", "--warmup", "1", "-o", f"{ws}/o21[red]w"), code=0, says="o21[red]w"),
        # a failed run leaves no run folder behind
        Case("train on a folder with a truncated PNG", 21, ("train", "--model", "mnist-fast", "--dataset", f"folder:{ws}/truncated", "--epochs", "1", "--no-plots", "-o", f"{ws}/o21x"), says="5.png", block_tf=False),
    ]  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: int
    stderr: str
    changed: tuple[str, ...]  # workspace entries created, changed or removed outside may_write
    tf_attempts: tuple[str, ...]
    stdout: str = ""

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    @property
    def verdict(self) -> str:
        if self.code == -9:
            return "hang"
        if "Traceback" in self.stderr:
            return "traceback"
        if self.case.code == 0:  # a valid input: it must work and print what it names literally
            if self.code != 0:
                return "refused a valid input"
            if self.changed or self.tf_attempts:
                return "damaged files" if self.changed else "imported TensorFlow"
            return "clean" if self.case.says in self.stdout + self.stderr else "unclear"
        if self.code == 0:
            return "silent success"
        if self.changed:
            return "damaged files"
        if self.tf_attempts:
            return "imported TensorFlow"
        one = len(self.lines) == 1 and self.lines[0].startswith("error:")
        clear = one and "unexpected" not in self.lines[0] and self.case.says.lower() in self.lines[0].lower()
        if not clear or self.code != self.case.code:
            return "unclear"
        return "clean"


def snapshot(ws: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in sorted(ws.rglob("*")):
        rel = str(p.relative_to(ws))
        if p.is_symlink() or p.is_fifo():
            out[rel] = "special"
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def run_case(case: Case, ws: Path, mnist_dir: Path, log_dir: Path) -> Outcome:
    fill = {"{ws}": str(ws)}

    def sub(text: str) -> str:
        for k, v in fill.items():
            text = text.replace(k, v)
        return text.replace("MNIST", str(mnist_dir)) if text == "MNIST" else text

    args = [sub(a) for a in case.args]
    log = log_dir / f"{abs(hash(case.name))}.log"
    log.write_text("")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EDGECNN_BLOCK_LOG": str(log),
        "NO_COLOR": "1",
        "COLUMNS": "300",
    }
    env.update({k: sub(v) for k, v in case.env.items()})
    cmd = (
        [sys.executable, "-c", WRAPPER, *args]
        if case.block_tf
        else [sys.executable, "-m", "edgecnn.cli", *args]
    )
    before = snapshot(ws)
    limit = case.file_size_limit

    def set_limits() -> None:
        if limit is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            errors="surrogateescape",
            timeout=TIMEOUT_S,
            preexec_fn=set_limits,
        )
        code, stderr, stdout = proc.returncode, proc.stderr, proc.stdout
    except subprocess.TimeoutExpired as exc:
        code, stderr, stdout = -9, str(exc.stderr or ""), ""
    after = snapshot(ws)
    # A refused command writes nothing at all; a silent success may write its own -o output.
    outputs = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-o"] if code == 0 else []
    allowed = tuple(p.removeprefix(str(ws) + "/") for p in [*map(sub, case.may_write), *outputs])
    changed = tuple(
        k
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k) and not any(k == a or k.startswith(a + "/") for a in allowed)
    )
    attempts = tuple(line for line in log.read_text().splitlines() if line.startswith("attempt"))
    return Outcome(case, code, stderr, changed, attempts, stdout)


def main() -> None:
    import tempfile
    from collections import Counter

    mnist_dir = Path(os.environ.get("EDGECNN_DATA_DIR", ROOT.parent / "shared" / "data" / "mnist"))
    with tempfile.TemporaryDirectory() as tmp:
        ws, logs = Path(tmp) / "ws", Path(tmp) / "logs"
        logs.mkdir()
        build_workspace(ws, mnist_dir)
        outcomes = [run_case(c, ws, mnist_dir, logs) for c in cases()]
    for o in outcomes:
        first = o.lines[-1] if o.lines else ""
        print(f"{o.verdict:16} item {o.case.item:2} rc={o.code:<3} {o.case.name}: {first[:400]}")
        if o.changed:
            print(f"{'':16} touched: {', '.join(o.changed)}")
    counts = Counter(o.verdict for o in outcomes)
    print(f"inputs tried {len(outcomes)}; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
