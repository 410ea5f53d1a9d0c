"""`make bench-peers`, stage 3: merge the per-thread timings and check `edgecnn tune`'s pick against
every candidate measured in the same rounds: the fastest accurate (file, runtime), each runtime's
best, and ORT FP32; then the markdown table (JSON rows too).

Benchmark code, not part of the edgecnn package.
"""

from __future__ import annotations

import statistics
from typing import Any

from edgecnn.core.accuracy_bound import DEFAULT_MAX_ACCURACY_DROP_PP

# edgecnn's one INT8 bound: candidates within it of ORT FP32 (measured on the device) are the bar.
ACCURACY_BOUND_PP = DEFAULT_MAX_ACCURACY_DROP_PP
TARGET = 1.05  # the pick within 5% of the fastest
FP32_LABEL = "model.onnx"  # the bundle's FP32 in ONNX Runtime: the reference the pick never loses to
RUNTIMES = ("ort", "openvino", "litert")


def per_round_ratio(ms: list[float], ref_rounds: list[list[float]]) -> list[float]:
    """Per round: this candidate's median over the fastest of the reference candidates in that round."""
    return [m / min(r[i] for r in ref_rounds) for i, m in enumerate(ms)]


def _median_range(ratios: list[float]) -> tuple[float, list[float]]:
    return statistics.median(ratios), [min(ratios), max(ratios)]


def check_cell(stats: dict[str, Any], candidates: list[dict[str, Any]], pick: str) -> dict[str, Any]:
    """The pick against the fastest accurate candidate of each round, each runtime's best, ORT FP32.

    `stats`: label -> {"median_ms", "round_medians_ms"}; `candidates`: label, runtime, accuracy (here).
    Best rounds = the pick's quickest round over the quickest round of any accurate candidate: robust to
    a VM that flips between a fast and a slow mode, which per-round ratios are not."""
    by_label = {c["label"]: c for c in candidates}
    fp32_acc = by_label[FP32_LABEL]["accuracy"]
    ok = [t for t in stats if by_label[t]["accuracy"] >= fp32_acc - ACCURACY_BOUND_PP / 100 - 1e-12]
    rounds = {t: stats[t]["round_medians_ms"] for t in stats}
    fastest = min(ok, key=lambda t: stats[t]["median_ms"])
    vs_fastest, vs_fastest_range = _median_range(per_round_ratio(rounds[pick], [rounds[t] for t in ok]))
    vs_fp32, vs_fp32_range = _median_range(per_round_ratio(rounds[pick], [rounds[FP32_LABEL]]))
    best_rounds = min(rounds[pick]) / min(min(rounds[t]) for t in ok)
    best_by_runtime = {}
    for rt in RUNTIMES:
        mine = [t for t in ok if by_label[t]["runtime"] == rt]
        if mine:
            best = min(mine, key=lambda t: stats[t]["median_ms"])
            ratio = statistics.median(per_round_ratio(rounds[best], [rounds[t] for t in ok]))
            best_by_runtime[rt] = {"label": best, "median_ms": stats[best]["median_ms"], "vs_fastest": ratio}
    return {
        "pick": pick,
        "pick_accurate": pick in ok,
        "fastest": fastest,
        "pick_vs_fastest": vs_fastest,
        "pick_vs_fastest_range": vs_fastest_range,
        "pick_vs_fastest_best_rounds": best_rounds,
        "pick_vs_ort_fp32": vs_fp32,
        "pick_vs_ort_fp32_range": vs_fp32_range,
        "best_by_runtime": best_by_runtime,
        "ort_best_vs_fastest": best_by_runtime.get("ort", {}).get("vs_fastest"),
        "meets_target": pick in ok and vs_fastest <= TARGET and vs_fp32 <= 1.0,
        "meets_target_best_rounds": pick in ok and best_rounds <= TARGET and vs_fp32 <= 1.0,
    }


def summarize(manifest: dict[str, Any], parts: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """(one row per model/threads/batch/candidate, one checked cell per model/threads/batch)."""
    rows, cells = [], []
    for part in parts:
        t = part["threads"]
        for name, by_batch in part["results"].items():
            entry = manifest["models"][name]
            by_label = {c["label"]: c for c in entry["candidates"]}
            for batch, stats in by_batch.items():
                pick = entry["picks"][str(t)][str(batch)]
                cell = check_cell(stats, entry["candidates"], pick)
                cells.append({"model": name, "threads": t, "batch": int(batch), **cell})
                for label, s in stats.items():
                    c = by_label[label]
                    rows.append(
                        {
                            "model": name,
                            "threads": t,
                            "batch": int(batch),
                            "label": label,
                            "runtime": c["runtime"],
                            "precision": c["precision"],
                            "accuracy": c["accuracy"],
                            "median_ms": s["median_ms"],
                            "round_medians_ms": s["round_medians_ms"],
                            "is_pick": label == pick,
                            "is_fastest": label == cell["fastest"],
                        }
                    )
    return rows, cells


def cells_markdown(cells: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        f"## The device pick against every candidate (target: pick / fastest <= {TARGET:.2f}, "
        "pick / ORT FP32 <= 1.00)",
        "",
        "pick = what `edgecnn tune` recorded for this thread count and batch. fastest = the quickest "
        f"(file, runtime) within {ACCURACY_BOUND_PP} pp of ORT FP32 in the same interleaved rounds. Ratios = "
        "median of per-round ratios [range across rounds]; best rounds = quickest round over quickest "
        "round. ORT best / fastest = how far ONNX Runtime alone stays behind.",
        "",
        "| model | threads | batch | pick | fastest | pick / fastest | best rounds | pick / ORT FP32 "
        "| ORT best / fastest | best ms: ORT / OpenVINO / LiteRT | target |",
        "| --- | ---: | ---: | --- | --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for c in cells:
        lo, hi = c["pick_vs_fastest_range"]
        f_lo, f_hi = c["pick_vs_ort_fp32_range"]
        best = " / ".join(
            f"{c['best_by_runtime'][rt]['median_ms']:.4g}" if rt in c["best_by_runtime"] else "-"
            for rt in RUNTIMES
        )
        ort = c["ort_best_vs_fastest"]
        verdict = (
            "met"
            if c["meets_target"]
            else ("met (best rounds)" if c["meets_target_best_rounds"] else "missed")
        )
        lines.append(
            f"| {c['model']} | {c['threads']} | {c['batch']} | {c['pick']} | {c['fastest']} | "
            f"{c['pick_vs_fastest']:.2f} [{lo:.2f}-{hi:.2f}] | {c['pick_vs_fastest_best_rounds']:.2f} | "
            f"{c['pick_vs_ort_fp32']:.2f} [{f_lo:.2f}-{f_hi:.2f}] | {'-' if ort is None else f'{ort:.2f}'} | "
            f"{best} | {verdict} |"
        )
    return lines


def markdown(rows: list[dict], cells: list[dict], env: dict, args: Any, models: dict | None = None) -> str:
    cpu = env["hardware"]["cpu"]
    v = env["versions"]
    runtimes = ", ".join(f"{n} {ver}" for n, ver in env.get("runtimes", {}).items())
    met = sum(c["meets_target"] for c in cells)
    met_best = sum(c["meets_target_best_rounds"] for c in cells)
    lines = [
        "# `edgecnn tune` across runtimes: the pick against every candidate, same rounds",
        "",
        f"Machine: {cpu['model']} ({cpu['arch']}, {cpu['usable_cores']} usable cores; instruction sets: "
        f"{', '.join(cpu['flags'])}; ISA class {env.get('isa_class', '?')}). Runtimes: {runtimes}; "
        f"tensorflow {v.get('tensorflow')} (export only).",
        "",
        f"{args.rounds} interleaved rounds of ~{args.round_seconds}s per candidate (order rotated each "
        "round), one process per thread count. Accuracy measured by tune on this CPU on the model's test "
        "images (MNIST nets: the export's evaluation images; MobileNet: 2000 MNIST digits at 96x96 RGB).",
        "",
        f"**Target met in {met} of {len(cells)} cells** by the per-round median, {met_best} of {len(cells)} "
        "by best rounds.",
        *cells_markdown(cells),
        *(finalists_markdown(models) if models else []),
        "",
        "## Every candidate",
        "",
        "| model | threads | batch | file @ runtime | median ms | accuracy here | |",
        "| --- | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for r in rows:
        mark = " ".join(m for m, on in (("pick", r["is_pick"]), ("fastest", r["is_fastest"])) if on)
        lines.append(
            f"| {r['model']} | {r['threads']} | {r['batch']} | {r['label']} | {r['median_ms']:.4f} | "
            f"{r['accuracy'] * 100:.2f}% | {mark} |"
        )
    return "\n".join(lines) + "\n"


def finalists_markdown(models: dict[str, Any]) -> list[str]:
    """How tune decided each cell: its finalists (within 15% of its first-pass best), the paired rounds
    they were re-timed in, the winner and the others' median per-round ratio to it."""
    lines = [
        "",
        "## How tune decided each cell (its second pass)",
        "",
        "| model | threads | batch | finalists | rounds | tune's winner "
        "| others / winner (median of per-round ratios) |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name, entry in models.items():
        for cell in entry.get("finalists", []):
            others = "; ".join(
                f"{label} {ratio:.3f}"
                for label, ratio in cell["ratio_to_winner"].items()
                if label != cell["winner"]
            )
            lines.append(
                f"| {name} | {cell['threads']} | {cell['batch']} | {len(cell['finalists'])} | "
                f"{cell['rounds'] or '-'} | {cell['winner']} | {others or '- (alone within the margin)'} |"
            )
    return lines
