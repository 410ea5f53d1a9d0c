"""The instruction-set class of a CPU (AVX2-only, AVX-512, VNNI, AMX, ARM dot product...): the unit
INT8 recipes are chosen for (exporting.quantization.recipes) and device picks are recorded with. Pure
function of the flags `core.environment.cpu_info()` reports, so it is testable for any CPU on any machine."""

from __future__ import annotations

from collections.abc import Iterable

from edgecnn.core.errors import EdgecnnError

# Most capable first within each architecture.
ISA_CLASSES = ("amx", "avx512-vnni", "avx-vnni", "avx512", "avx2", "x86", "arm-i8mm", "arm-dotprod", "arm")
X86_MACHINES = ("x86_64", "amd64", "i386", "i686", "x86")
ARM_MACHINES = ("aarch64", "arm64", "armv8l", "armv7l")


def isa_class(flags: Iterable[str], machine: str) -> str:
    """The instruction-set class of a CPU from its /proc/cpuinfo (or py-cpuinfo) flags and machine."""
    f = {x.lower() for x in flags}
    arch = machine.lower()
    if arch in ARM_MACHINES or f & {"asimd", "neon", "asimddp", "i8mm"}:
        if "i8mm" in f:
            return "arm-i8mm"
        return "arm-dotprod" if "asimddp" in f else "arm"
    if arch and arch not in X86_MACHINES:
        raise EdgecnnError(f"no INT8 recipe for CPU architecture {machine!r} (x86_64 and arm64 only)")
    if {"amx_int8", "amx_tile"} <= f:
        return "amx"
    if f & {"avx512_vnni", "avx512vnni"} and "avx512f" in f:
        return "avx512-vnni"
    if "avx_vnni" in f:
        return "avx-vnni"
    if {"avx512f", "avx512bw"} <= f:
        return "avx512"
    return "avx2" if "avx2" in f else "x86"


def this_isa_class() -> str:
    """This machine's class, from the flags every result JSON already records."""
    from edgecnn.core.environment import cpu_info

    info = cpu_info()
    return isa_class(info["flags"], info["arch"])
