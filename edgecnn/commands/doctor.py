"""`edgecnn doctor`: which devices ONNX Runtime can really use here, and what to install for the rest
(the checks live in edgecnn.runtime.doctor; this module only renders them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgecnn.commands._common import console_for, emit_json, run_guarded
from edgecnn.commands.options import ForceOption, JsonOption, output_option

DoctorOutputOption = output_option("none: the report is only printed")


def _status(ok: bool | None) -> str:
    return {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[ok]


def render(report: Any, console: Console) -> None:
    build = report.onnxruntime
    cuda = f", built for CUDA {build.cuda_version}" if build.cuda_version else ""
    console.print(f"[bold]onnxruntime[/] {build.package} {build.version} ({build.device}{cuda})")
    table = Table(title="execution providers", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("provider", no_wrap=True)
    for column in ("device", "in build", "initialises", "why not"):
        table.add_column(column, overflow="fold")
    for check in report.providers:
        status = (_status(check.available), _status(check.initialises))
        table.add_row(check.provider, check.device, *status, check.reason or "")
    console.print(table)
    if report.libraries:
        libs = Table(title="GPU libraries the providers link", box=box.SIMPLE_HEAD, pad_edge=False)
        libs.add_column("library", no_wrap=True)
        for column in ("component", "found", "where / why not"):
            libs.add_column(column, overflow="fold")
        for lib in report.libraries:
            libs.add_row(lib.soname, lib.component, _status(lib.found), lib.path or lib.error or "")
        console.print(libs)
    for gpu in report.gpus:
        console.print(
            f"[bold]GPU[/] {gpu.name}: compute capability {gpu.compute_capability or '?'}, "
            f"driver {gpu.driver or '?'}, {gpu.memory or '?'}"
        )
    if not report.gpus:
        console.print("[bold]GPU[/] none found (no nvidia-smi or it lists no GPU)")
    if report.jetson:
        console.print(f"[bold]Jetson[/] {report.jetson}")
    cpu = report.cpu
    flags = " ".join(cpu.get("flags") or []) or "-"
    console.print(f"[bold]CPU[/] {cpu.get('model')} ({cpu.get('arch')}): {flags}")
    render_runtimes(report, console)
    int8 = report.int8
    cpu_table = Table(title="CPU and INT8", box=box.SIMPLE_HEAD, pad_edge=False, show_header=False)
    cpu_table.add_column("what", no_wrap=True)
    cpu_table.add_column("value", overflow="fold")
    cpu_table.add_row("ISA class", int8.get("isa_class") or "-")
    if int8.get("recipe"):
        how = (
            "export's default INT8"
            if int8["variant"] == "int8"
            else f"export --int8-recipes {int8['recipe']}"
        )
        cpu_table.add_row("INT8 recipe", f"{int8['recipe']} ({int8['types']}): {int8['file']}, {how}")
    cpu_table.add_row("why", int8.get("why") or "-")
    console.print(cpu_table)
    ready = ", ".join(device for device, ok in report.devices_ready.items() if ok)
    console.print(f"[bold]ready[/] --device {ready}")
    for hint in report.hints:
        console.print(f"[yellow]hint:[/] {hint}", soft_wrap=True)


def render_runtimes(report: Any, console: Console) -> None:
    table = Table(title="runtimes (--runtime)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("runtime", no_wrap=True)
    for column in ("files", "installed", "version", "devices it sees / what to install"):
        table.add_column(column, overflow="fold")
    for r in report.runtimes:
        seen = ", ".join(r.devices) if r.installed else escape(r.missing or "")
        version = (r.version or "-").split("-")[0]  # OpenVINO's build suffix is in --json
        table.add_row(r.runtime, " ".join(r.file_suffixes), _status(r.installed), version, seen)
    console.print(table)


def doctor_command(
    as_json: JsonOption = False,
    output: DoctorOutputOption = None,  # type: ignore[valid-type]
    force: ForceOption = False,
) -> None:
    """Check what this device can run: runtimes (ONNX Runtime, OpenVINO, LiteRT), ORT providers that
    really start, CUDA/cuDNN/TensorRT libraries, GPU, CPU instruction sets, and what to install."""

    def body() -> None:
        from edgecnn.core.outputs import atomic_write_json, refuse_overwrite
        from edgecnn.runtime.doctor import doctor

        if output is not None:
            refuse_overwrite(Path(output), force)
        report = doctor()
        render(report, console_for(as_json))
        document = report.to_dict()
        if output is not None:
            atomic_write_json(output, document)
            console_for(as_json).print(f"saved {output}")
        if as_json:
            emit_json(document)

    run_guarded(body)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor_command)
