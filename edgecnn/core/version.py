"""edgecnn's version: one home, read by the CLI, result documents and the package root."""

__version__ = "0.1.0"
