"""`edgecnn compare`: merge bench results from several devices or runs into one table and one plot.

Models are matched across runs by their bench `key` ("<model_name>:<variant>" for edgecnn exports, the
file stem otherwise), so the same bundle benched on three boxes lines up row by row.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgecnn.benchmarking.results import load_document
from edgecnn.benchmarking.speedup import ratio
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.outputs import atomic_dir, dumps_json, refuse_overwrite, to_jsonable

SCHEMA = "edgecnn.compare"
SCHEMA_VERSION = 1
METRICS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "min_ms", "throughput")
CARRIED = (
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "min_ms",
    "max_ms",
    "throughput",
    "gflops",
    "provider",
)


@dataclass(frozen=True)
class CompareConfig:
    results: tuple[Path, ...]
    labels: tuple[str, ...] = ()  # one per result; empty = "<host> <provider>"
    metric: str = "p50_ms"  # what the speedup column compares
    output_dir: Path | None = None
    force: bool = False

    def __post_init__(self) -> None:
        if not self.results:
            raise EdgecnnError("give at least one bench result (bench.json or its directory)")
        object.__setattr__(self, "results", tuple(Path(p) for p in self.results))
        if self.labels and len(self.labels) != len(self.results):
            raise EdgecnnError(
                f"got {len(self.labels)} labels for {len(self.results)} results; give one per result"
            )
        if any(not str(label).strip() for label in self.labels):
            raise EdgecnnError("labels must not be empty")
        if len(set(self.labels)) != len(self.labels):
            raise EdgecnnError("labels must be distinct")
        if self.metric not in METRICS:
            raise EdgecnnError(f"--metric must be one of {', '.join(METRICS)}, not {self.metric!r}")


@dataclass(frozen=True)
class CompareResult:
    config: CompareConfig
    document: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def _short_provider(name: str) -> str:
    return {
        "CPUExecutionProvider": "CPU",
        "CUDAExecutionProvider": "CUDA",
        "TensorrtExecutionProvider": "TensorRT",
    }.get(name, name.replace("ExecutionProvider", ""))


def _run_info(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    hw = doc.get("environment", {}).get("hardware", {})
    providers = doc.get("providers_ran") or []
    return {
        "path": str(path),
        "host": hw.get("hostname"),
        "cpu": hw.get("cpu", {}).get("model"),
        "cpu_flags": hw.get("cpu", {}).get("flags", []),
        "gpus": [g.get("name") for g in hw.get("gpus", []) if isinstance(g, dict)],
        "providers": providers,
        "onnxruntime": doc.get("onnxruntime", {}).get("version"),
        "created_at": doc.get("created_at"),
        "device": doc.get("config", {}).get("device"),
    }


def _labels(infos: list[dict[str, Any]], given: tuple[str, ...]) -> list[str]:
    if given:
        return list(given)
    base = [
        f"{i['host'] or '?'} {'+'.join(_short_provider(p) for p in i['providers']) or '?'}" for i in infos
    ]
    labels = []
    for i, (label, info) in enumerate(zip(base, infos, strict=True)):
        if base.count(label) > 1:
            label = f"{label} ({Path(info['path']).parent.name or Path(info['path']).stem})"
        if label in labels:
            label = f"{label} #{i + 1}"
        labels.append(label)
    return labels


def _speedup(metric: str, first: float | None, value: float | None) -> float | None:
    if first is None or value is None:
        return None
    # > 1 always means "faster than the first run", whichever way the metric points.
    return ratio(value, first) if metric == "throughput" else ratio(first, value)


def _resolve(path: Path) -> Path:
    return path / "bench.json" if path.is_dir() else path


def compare(config: CompareConfig) -> CompareResult:
    from edgecnn.core import environment as sysinfo

    if config.output_dir is not None:
        refuse_overwrite(Path(config.output_dir), config.force, inputs=config.results, kind="compare")
    docs = [load_document(p) for p in config.results]
    infos = [_run_info(_resolve(p), d) for p, d in zip(config.results, docs, strict=True)]
    labels = _labels(infos, config.labels)
    for info, label in zip(infos, labels, strict=True):
        info["label"] = label

    # (key, batch) -> per run entry; keys repeated within one result (two copies of one model) get "#n".
    table: dict[tuple[str, int], list[dict[str, Any] | None]] = {}
    for ri, doc in enumerate(docs):
        seen: dict[str, int] = {}
        for m in doc["models"]:
            key = str(m["key"])
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                key = f"{key}#{seen[key]}"
            for r in m["results"]:
                row = table.setdefault((key, int(r["batch"])), [None] * len(docs))
                row[ri] = {k: r.get(k) for k in CARRIED} | {"model": m.get("name")}
    rows = []
    for (key, batch), entries in table.items():
        first = entries[0][config.metric] if entries[0] else None
        for e in entries:
            if e is not None:
                e["speedup"] = _speedup(config.metric, first, e.get(config.metric))
        rows.append({"key": key, "batch": batch, "runs": entries})
    order = {k: i for i, k in enumerate(dict.fromkeys(key for key, _ in table))}
    rows.sort(key=lambda r: (order[r["key"]], r["batch"]))

    document = {
        "kind": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": to_jsonable(config),
        "metric": config.metric,
        "runs": infos,
        "rows": rows,
        "environment": sysinfo.environment_info(),
        "files": {},
    }
    result = CompareResult(config=config, document=document)
    if config.output_dir is not None:
        result = _write_outputs(result, Path(config.output_dir))
    return result


def to_csv(document: dict[str, Any]) -> str:
    buf = io.StringIO()
    fields = ["key", "batch", "run", "label", "model", *CARRIED, "speedup"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in document["rows"]:
        for ri, entry in enumerate(row["runs"]):
            if entry is None:
                continue
            out = {
                "key": row["key"],
                "batch": row["batch"],
                "run": ri,
                "label": document["runs"][ri]["label"],
            }
            out.update({k: entry.get(k) for k in ("model", *CARRIED, "speedup")})
            writer.writerow({k: "" if v is None else v for k, v in out.items()})
    return buf.getvalue()


def _write_outputs(result: CompareResult, out: Path) -> CompareResult:
    from edgecnn.benchmarking.bench_plots import plot_compare
    from edgecnn.core.plotting import NO_MATPLOTLIB, plotting_available

    plot = plotting_available()
    files = {"json": out / "compare.json", "csv": out / "compare.csv"}
    files |= {"plot": out / "compare.png"} if plot else {}
    document = dict(result.document, files={k: str(v) for k, v in files.items()})
    if not plot:
        document["notes"] = [*document.get("notes", []), NO_MATPLOTLIB]
    with atomic_dir(out, force=result.config.force, kind="compare") as tmp:
        (tmp / "compare.json").write_text(dumps_json(document), encoding="utf-8")
        (tmp / "compare.csv").write_text(to_csv(document), encoding="utf-8")
        if plot:
            plot_compare(document, tmp / "compare.png")
    return replace(result, document=document, files=files)
