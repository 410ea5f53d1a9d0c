"""The `edgecnn` command line. Each command lives in edgecnn/commands/ and only parses options."""

from __future__ import annotations

import importlib

import typer

from edgecnn.core.version import __version__

COMMAND_MODULES = (
    "models", "data", "train", "export", "optimize", "tune", "bench", "predict", "evaluate", "compare",
    "doctor",
)  # fmt: skip

app = typer.Typer(
    name="edgecnn",
    help="Train small CNNs in Keras, export them to quantized ONNX, and measure them on the target.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"edgecnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """edgecnn: train -> export --quantize -> bench, with measured numbers."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"edgecnn.commands.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Run one command; exits 0, 1 (error), 2 (usage error) or 130 (Ctrl-C or SIGTERM), errors as one line."""
    from edgecnn.commands.usage import run_cli
    from edgecnn.core.input_files import install_literal_streams
    from edgecnn.core.interrupt import install_handlers
    from edgecnn.runtime.thread_pool import allow_shared_thread_pool

    install_handlers()  # SIGTERM ends a command like Ctrl-C: one line, exit 130
    install_literal_streams()  # a non-UTF-8 file name prints as \xNN, never a UnicodeEncodeError
    allow_shared_thread_pool()  # one command per process: `bench` may own ORT's shared pool
    raise SystemExit(run_cli(typer.main.get_command(app), argv))


if __name__ == "__main__":
    main()
