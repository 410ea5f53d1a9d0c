"""Whether plots can be drawn: matplotlib is the optional `edgecnn[plot]` extra (with `train` and `dev`),
so a device that only runs models does not carry the plotting stack (~78 MB installed: matplotlib,
fontTools, kiwisolver, contourpy...). Runtime commands skip their PNG with this one note instead."""

from __future__ import annotations

NO_MATPLOTLIB = "no plot: matplotlib is not installed (it is the optional extra: pip install 'edgecnn[plot]')"


def plotting_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
