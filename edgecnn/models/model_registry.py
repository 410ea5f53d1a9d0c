"""The model registry: architectures by name (like timm's `_registry`), or a user's spec file by path.

The built-in architectures register themselves in `edgecnn.models.zoo`; the package `__init__` imports
the zoo, and Python always runs it before any `edgecnn.models.*` module, so the registry is never seen
empty (and the registry need not import the zoo, which would be a cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgecnn.core.errors import EdgecnnError
from edgecnn.models.spec import ModelSpec
from edgecnn.models.spec_file import SPEC_SUFFIXES, load_spec_file

SpecFactory = Callable[[], ModelSpec]

_REGISTRY: dict[str, SpecFactory] = {}


def register_model(name: str) -> Callable[[SpecFactory], SpecFactory]:
    """Decorator: register a zero-argument function returning the ModelSpec called `name`."""

    def wrap(fn: SpecFactory) -> SpecFactory:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = fn
        return fn

    return wrap


def model_names() -> list[str]:
    return list(_REGISTRY)


def list_model_specs() -> list[ModelSpec]:
    return [fn() for fn in _REGISTRY.values()]


def get_model_spec(name_or_path: str | Path) -> ModelSpec:
    """A registered model by name, or a user's architecture from a .toml/.json spec file."""
    text = str(name_or_path)
    if text in _REGISTRY:
        return _REGISTRY[text]()
    path = Path(text).expanduser()
    if path.suffix.lower() in SPEC_SUFFIXES or path.exists():
        return load_spec_file(path)
    raise EdgecnnError(
        f"unknown model {text!r}; known models: {', '.join(_REGISTRY)} (or give a .toml/.json spec file)"
    )
