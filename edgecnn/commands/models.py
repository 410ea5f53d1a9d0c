"""`edgecnn models`: the registered architectures (or one spec file) with params, MACs and recipes."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from edgecnn.commands._common import console_for, emit_json, run_guarded, styled
from edgecnn.commands.options import JsonOption


def _summary(spec: Any) -> dict[str, Any]:
    from edgecnn.models import params_and_macs

    params, macs = params_and_macs(spec)
    r = spec.recipe
    return {
        "name": spec.name,
        "input_shape": list(spec.input_shape),
        "num_classes": spec.num_classes,
        "params": params,
        "macs": macs,
        "dataset": spec.default_dataset,
        "recipe": {
            "optimizer": r.optimizer,
            "learning_rate": r.learning_rate,
            "epochs": r.epochs,
            "batch_size": r.batch_size,
            "lr_schedule": r.lr_schedule,
        },
        "published_accuracy": r.published_accuracy,
        "published_note": r.published_note,
        "source": spec.source,
    }


def _recipe_text(r: dict[str, Any]) -> str:
    sched = "" if r["lr_schedule"] == "constant" else f" ({r['lr_schedule']})"
    return f"{r['optimizer']} {r['learning_rate']:g} {r['epochs']}ep b{r['batch_size']}{sched}"


def _short_count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def _list_all(as_json: bool) -> None:
    from edgecnn.models import list_model_specs

    console = console_for(as_json)
    rows = [_summary(s) for s in list_model_specs()]
    if as_json:
        emit_json({"models": rows})
        return
    table = Table(title="edgecnn models", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col, justify in (
        ("name", "left"),
        ("input", "left"),
        ("params", "right"),
        ("MACs/img", "right"),
        ("recipe", "left"),
        ("published", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        pub = "-" if row["published_accuracy"] is None else f"{row['published_accuracy']:.2%}"
        recipe = _recipe_text({**row["recipe"], "lr_schedule": "constant"})  # the schedule goes below
        table.add_row(
            row["name"],
            "x".join(map(str, row["input_shape"])),
            f"{row['params']:,}",
            _short_count(row["macs"]),
            recipe,
            pub,
        )
    console.print(table)
    for row in rows:  # sources are long; a table column would squeeze everything else
        sched = "" if row["recipe"]["lr_schedule"] == "constant" else f"; {row['recipe']['lr_schedule']} LR"
        console.print(
            styled(row["name"], "bold", f" ({row['dataset']}{sched}): {row['source']}"), soft_wrap=True
        )


def _show_one(name_or_path: str, as_json: bool) -> None:
    from edgecnn.models import get_model_spec, layer_table

    console = console_for(as_json)
    spec = get_model_spec(name_or_path)
    summary = _summary(spec)
    layers = [
        {
            "name": i.name,
            "type": i.kind,
            "output_shape": list(i.output_shape),
            "params": i.params,
            "macs": i.macs,
        }
        for i in layer_table(spec)
    ]
    if as_json:
        emit_json({**summary, "spec": spec.to_dict(), "layers": layers})
        return
    table = Table(title=f"{spec.name}: {summary['params']:,} parameters, {summary['macs']:,} MACs per image")
    for col, justify in (
        ("layer", "left"),
        ("type", "left"),
        ("output", "left"),
        ("params", "right"),
        ("MACs", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in layers:
        table.add_row(
            row["name"],
            row["type"],
            "x".join(map(str, row["output_shape"])),
            f"{row['params']:,}",
            f"{row['macs']:,}",
        )
    console.print(table)
    console.print(f"recipe: {_recipe_text(summary['recipe'])}; default dataset {summary['dataset']}")
    if summary["published_note"]:
        console.print(f"published: {summary['published_note']}")


NameArgument = Annotated[
    str | None,
    typer.Argument(help="Show one model's layers: a registered name or a .toml/.json spec file."),
]


def models_cmd(name: NameArgument = None, as_json: JsonOption = False) -> None:
    """List the registered CNNs: input shape, parameters, MACs per image, recipe, published accuracy."""
    run_guarded(lambda: _list_all(as_json) if name is None else _show_one(name, as_json))


def register(app: typer.Typer) -> None:
    app.command("models")(models_cmd)
