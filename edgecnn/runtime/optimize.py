"""`edgecnn optimize`: the model as ONNX Runtime will run it on THIS CPU, saved, plus one layout fusion
ORT does not make itself.

ORT optimizes every graph when a session opens (fusions, QDQ -> QLinear ops, NCHWc float convs, NHWC
int8 convs) and can save the result (`SessionOptions.optimized_model_filepath`, its documented
"offline" mode). edgecnn then fuses what ORT leaves between the float first block and the first int8
convolution, ReorderOutput -> QuantizeLinear -> Transpose(NCHW->NHWC), into
ReorderOutput(channels_last=1) -> QuantizeLinear: one pass over the tensor instead of two, and no
single-threaded uint8 Transpose (ORT already does this fusion when nothing sits between the two).

Such a graph is tied to the CPU features and ORT release it was made with, so it records them
(`edgecnn.target`) and the runtime refuses it anywhere else; the portable model stays the artefact to
ship, this one is made on the target device, like a TensorRT engine. Outputs are checked against the
portable model before anything is written.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import load_onnx, read_metadata
from edgecnn.core.outputs import atomic_path, atomic_write_json, refuse_overwrite
from edgecnn.core.scratch import scratch_dir
from edgecnn.core.text import one_line
from edgecnn.runtime.feeds import DatasetSamples, make_feeds
from edgecnn.runtime.inference import compare_probabilities, predict_probabilities
from edgecnn.runtime.ort_errors import external_data_files
from edgecnn.runtime.session_config import SessionConfig
from edgecnn.runtime.sessions import check_model_file, open_session
from edgecnn.runtime.target import TARGET_KEY, check_target, current_cpu_target

SCHEMA = "edgecnn.optimize"
PARITY_MAX_ABS = 1e-5  # the rewrites are exact and ORT runs the same kernels: any real change is a bug
NHWC_PERM = [0, 2, 3, 1]
PARITY_BATCH = 64  # batch 64 and the final partial batch: both code paths are compared


@dataclass(frozen=True)
class OptimizeConfig:
    model: Path
    output: Path | None = None  # default: <stem>.cpu.onnx beside the model
    force: bool = False
    check_images: int = 256  # real test images when the metadata names a dataset on disk, else random
    data_dir: Path | None = None
    seed: int = 0
    # The sessions that check the optimized graph against the portable one (ORT on this CPU only).
    session: SessionConfig = field(default_factory=SessionConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", Path(self.model))
        if self.session.runtime not in (None, "ort") or self.session.device != "cpu":
            raise EdgecnnError(
                "optimize saves the graph ONNX Runtime runs on this CPU: it takes --device cpu, ort"
            )
        if self.output is not None:
            object.__setattr__(self, "output", Path(self.output))
        if isinstance(self.check_images, bool) or not 1 <= self.check_images <= 10_000:
            raise EdgecnnError(f"--check-images must be between 1 and 10000, got {self.check_images}")

    @property
    def output_path(self) -> Path:
        if self.output is not None:
            return self.output
        return self.model.with_name(self.model.name.removesuffix(".onnx") + ".cpu.onnx")

    @property
    def report_path(self) -> Path:
        return self.output_path.with_name(self.output_path.name.removesuffix(".onnx") + ".json")


@dataclass(frozen=True)
class OptimizeResult:
    config: OptimizeConfig
    source: Path
    output: Path
    report: Path
    target: dict[str, Any]
    rewrites: dict[str, int]
    source_ops: dict[str, int]  # op types of the ONNX file
    optimized_ops: dict[str, int]  # op types of the graph ORT will run
    parity: dict[str, Any]
    environment: dict[str, Any] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        from edgecnn.core.outputs import to_jsonable

        return {"kind": SCHEMA, **to_jsonable(self)}


def _consumers(graph: Any) -> dict[str, list[Any]]:
    uses: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            uses.setdefault(name, []).append(node)
    return uses


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def fuse_reorder_quantize_transpose(model: Any) -> int:
    """ReorderOutput -> QuantizeLinear (per-tensor) -> Transpose(0,2,3,1) becomes
    ReorderOutput(channels_last=1) -> QuantizeLinear, in place. Returns how many were fused.

    Exact: a per-tensor QuantizeLinear maps each element alone, so it commutes with any permutation."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    uses = _consumers(graph)
    inits = {t.name: t for t in graph.initializer}
    fused = 0
    for reorder in list(graph.node):
        if reorder.op_type != "ReorderOutput" or _attr(reorder, "channels_last", 0):
            continue
        after = uses.get(reorder.output[0], [])
        if len(after) != 1 or after[0].op_type != "QuantizeLinear" or reorder.output[0] in outputs:
            continue
        quant = after[0]
        scale = inits.get(quant.input[1])
        if scale is None or len(scale.dims) != 0:
            continue  # per-channel scales follow the channel axis, which the fusion moves
        after = uses.get(quant.output[0], [])
        if len(after) != 1 or after[0].op_type != "Transpose" or quant.output[0] in outputs:
            continue
        transpose = after[0]
        if list(_attr(transpose, "perm", [])) != NHWC_PERM:
            continue
        for a in reorder.attribute:
            if a.name == "channels_last":
                a.i = 1
                break
        else:
            from onnx import helper

            reorder.attribute.append(helper.make_attribute("channels_last", 1))
        for node in uses.get(transpose.output[0], []):
            for i, name in enumerate(node.input):
                if name == transpose.output[0]:
                    node.input[i] = quant.output[0]
        if transpose.output[0] in outputs:
            for o in graph.output:
                if o.name == transpose.output[0]:
                    o.name = quant.output[0]
        graph.node.remove(transpose)
        # The two tensors changed layout: their recorded shapes are stale.
        stale = {reorder.output[0], quant.output[0]}
        keep = [vi for vi in graph.value_info if vi.name not in stale]
        del graph.value_info[:]
        graph.value_info.extend(keep)
        uses = _consumers(graph)
        fused += 1
    return fused


def _ort_optimized(source: Path, saved: Path) -> None:
    """Let ORT optimize `source` for this CPU (all levels, CPU provider) and save the result.

    Weights the source keeps in external data files go to one file beside `saved` (ORT would otherwise
    point the saved graph at the source's file names in the scratch dir, where they do not exist)."""
    extra = {"session.optimized_model_external_initializers_file_name": saved.name + ".data"}
    try:
        open_session(
            source,
            SessionConfig(
                threads=1,
                graph_optimization="all",
                optimized_model_path=saved,
                extra_session_options=extra if external_data_files(source) else {},
            ),
        )
    except EdgecnnError as exc:
        open_session(source, SessionConfig(threads=1))  # the model itself loads: blame the save
        raise EdgecnnError(
            f"ONNX Runtime could not save its optimized graph into the temporary directory {saved.parent} "
            f"(full or not writable? set TMPDIR to a folder with free space): {str(exc).split(': ', 1)[-1]}"
        ) from None


def load_saved_graph(saved: Path, scratch: Path) -> Any:
    """The graph ORT saved into the scratch dir; a failed or short write there is the scratch dir's
    fault (full or unwritable TMPDIR), never the user's model's."""
    import onnx

    blame = (
        f"ONNX Runtime could not write its optimized graph into the temporary directory {scratch} "
        "(full or not writable?); set TMPDIR to a folder with free space"
    )
    if not saved.is_file() or saved.stat().st_size == 0:
        raise EdgecnnError(blame)
    try:
        return onnx.load(str(saved))
    except Exception as exc:  # noqa: BLE001 - DecodeError/ValidationError/OSError for a cut file
        raise EdgecnnError(f"{blame}: {one_line(exc, 200)}") from None


def _require_one_numeric_input(session: Any, model: Path) -> None:
    """The parity check feeds one image tensor; say so instead of failing inside ORT."""
    args = session.get_inputs()
    if len(args) != 1:
        names = ", ".join(repr(a.name) for a in args)
        raise EdgecnnError(
            f"{model} has {len(args)} inputs ({names}); optimize checks models with one image input"
        )
    if not any(t in args[0].type for t in ("float", "double", "int", "uint")):
        raise EdgecnnError(
            f"{model}'s input {args[0].name!r} is {args[0].type}; optimize needs a numeric image input"
        )


def _parity(config: OptimizeConfig, candidate: Path) -> dict[str, Any]:
    """The portable and the optimized graph on the same images: real test images where the metadata
    names a dataset on disk, random ones otherwise (they still prove both compute the same function)."""
    portable, _ = open_session(config.model, config.session)
    _require_one_numeric_input(portable, config.model)
    optimized, _ = open_session(candidate, config.session)
    feeds, source, _ = make_feeds(
        portable,
        read_metadata(config.model),
        config.check_images,
        "auto",
        DatasetSamples(config.data_dir),
        np.random.default_rng(config.seed),
    )
    x = next(iter(feeds.values()))
    # Compared as probabilities (softmax for a logits model), the scale the export's parity gate uses.
    reference = predict_probabilities(portable, x, PARITY_BATCH)
    other = predict_probabilities(optimized, x, PARITY_BATCH)
    if reference.shape != other.shape:
        raise EdgecnnError(
            f"the optimized graph returns shape {other.shape}, the portable one {reference.shape}"
        )
    agreement = compare_probabilities(reference, other)
    return {
        "inputs": source,
        "images": agreement.n,
        "max_abs_diff": agreement.max_abs_diff,
        "top1_agreement": agreement.top1_agreement,
    }


def optimize(config: OptimizeConfig) -> OptimizeResult:
    import onnx

    from edgecnn.core import environment as sysinfo

    source = check_model_file(config.model)
    output = config.output_path
    # Its default outputs sit beside the portable model in its bundle (recorded in the bundle's marker).
    refuse_overwrite(output, config.force, inputs=(source,), kind="optimize", beside_ok=True)
    refuse_overwrite(
        config.report_path, config.force, what="report", inputs=(source,), kind="optimize", beside_ok=True
    )
    src_model = load_onnx(source)
    props = {p.key: p.value for p in src_model.metadata_props}
    check_target(source, props, "cpu")  # another machine's graph: its own line, the way back in it
    if TARGET_KEY in props:
        raise EdgecnnError(f"{source} is already optimized for a CPU; optimize the portable model instead")
    target = current_cpu_target()
    with scratch_dir("optimize") as tmp:
        saved = tmp / "ort.onnx"
        _ort_optimized(source, saved)
        model = load_saved_graph(saved, tmp)
        rewrites = {"reorder_quantize_transpose_to_channels_last": fuse_reorder_quantize_transpose(model)}
        keep = [p for p in model.metadata_props if p.key != TARGET_KEY]
        del model.metadata_props[:]
        model.metadata_props.extend(keep)
        model.metadata_props.add(key=TARGET_KEY, value=json.dumps(target, sort_keys=True))
        candidate = tmp / "candidate.onnx"
        onnx.save(model, str(candidate))
        parity = _parity(config, candidate)
        if parity["max_abs_diff"] > PARITY_MAX_ABS or parity["top1_agreement"] < 1.0:
            raise EdgecnnError(
                f"the optimized graph does not compute what {source.name} does (max |diff| "
                f"{parity['max_abs_diff']:.3g}, top-1 agreement {parity['top1_agreement']:.2%}); "
                "nothing written"
            )
        with atomic_path(output, force=config.force) as tmp_out:
            tmp_out.write_bytes(candidate.read_bytes())
    result = OptimizeResult(
        config=config,
        source=source,
        output=output,
        report=config.report_path,
        target=target,
        rewrites=rewrites,
        source_ops=dict(Counter(n.op_type for n in src_model.graph.node)),
        optimized_ops=dict(Counter(n.op_type for n in model.graph.node)),
        parity=parity,
        environment=sysinfo.environment_info(),
    )
    atomic_write_json(config.report_path, result.to_document(), force=config.force)
    from edgecnn.core.ownership import add_to_marker

    for path in (output, config.report_path):  # a bundle stays replaceable by `export --force`
        add_to_marker(path)
    return result
