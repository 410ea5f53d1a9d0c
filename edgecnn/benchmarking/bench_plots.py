"""PNG plots for `bench` and `compare`: latency and throughput against batch size (matplotlib, Agg)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window, works headless on a device
    import matplotlib.pyplot as plt

    return plt


def _series_axes(title: str) -> tuple[Any, Any, Any]:
    plt = _pyplot()
    fig, (ax_lat, ax_thr) = plt.subplots(1, 2, figsize=(12, 4.8))
    fig.suptitle(title, fontsize=11)
    for ax in (ax_lat, ax_thr):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.grid(True, which="both", alpha=0.3)
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency per batch (ms), p50 with p90-p99 band")
    ax_thr.set_ylabel("throughput (images/s)")
    return fig, ax_lat, ax_thr


def _draw(ax_lat: Any, ax_thr: Any, label: str, results: list[dict[str, Any]], **style: Any) -> None:
    rows = sorted(results, key=lambda r: r["batch"])
    batches = [r["batch"] for r in rows]
    style = {"marker": "o", **style}
    (line,) = ax_lat.plot(batches, [r["p50_ms"] for r in rows], label=label, **style)
    style["color"] = line.get_color()
    if all(r.get("p90_ms") is not None and r.get("p99_ms") is not None for r in rows):
        low, high = [r["p90_ms"] for r in rows], [r["p99_ms"] for r in rows]
        ax_lat.fill_between(batches, low, high, color=style["color"], alpha=0.15)
    ax_thr.plot(batches, [r["throughput"] for r in rows], label=label, **style)


def _finish(ax_lat: Any, ax_thr: Any, batches: set[int]) -> None:
    ticks = sorted(batches)
    for ax in (ax_lat, ax_thr):
        ax.set_xticks(ticks, [str(b) for b in ticks])
        ax.xaxis.set_minor_locator(_pyplot().NullLocator())
    # After plotting: from zero, since a truncated axis would turn noise into a slope.
    ax_thr.set_ylim(0, ax_thr.get_ylim()[1] * 1.08)


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    plt = _pyplot()
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bench(document: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """One line per model: p50 latency (p90-p99 band) and throughput against batch size."""
    hw = document.get("environment", {}).get("hardware", {})
    cpu = hw.get("cpu", {}).get("model", "")
    providers = ", ".join(document.get("providers_ran", []))
    ort_version = document.get("onnxruntime", {}).get("version", "?")
    fig, ax_lat, ax_thr = _series_axes(f"edgecnn bench: {cpu} | {providers} | onnxruntime {ort_version}")
    for m in document["models"]:
        _draw(ax_lat, ax_thr, m["name"], m["results"])
    _finish(ax_lat, ax_thr, {r["batch"] for m in document["models"] for r in m["results"]})
    ax_lat.legend(fontsize=8)
    return _save(fig, path)


def plot_compare(document: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """One colour per run (device/host), one line style per model."""
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "P"]
    fig, ax_lat, ax_thr = _series_axes(
        "edgecnn compare: " + " vs ".join(r["label"] for r in document["runs"])
    )
    keys = list(dict.fromkeys(row["key"] for row in document["rows"]))
    colors = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    for ri, run in enumerate(document["runs"]):
        for ki, key in enumerate(keys):
            results = [
                {"batch": row["batch"], **row["runs"][ri]}
                for row in document["rows"]
                if row["key"] == key and row["runs"][ri] is not None
            ]
            if results:
                _draw(
                    ax_lat,
                    ax_thr,
                    f"{key} @ {run['label']}",
                    results,
                    linestyle=styles[ki % len(styles)],
                    marker=markers[ki % len(markers)],
                    color=colors[ri % len(colors)],
                )
    _finish(ax_lat, ax_thr, {row["batch"] for row in document["rows"]})
    ax_lat.legend(fontsize=7)
    return _save(fig, path)
