"""The kernels library, built once per CPU variant; the best variant this CPU runs is loaded.

``setup.py`` builds ``libSpikeLocKernels`` from the same Swift sources once per entry of
:data:`VARIANTS` (its own target CPU and Swift compilation condition) and installs the builds
next to the extension as ``libSpikeLocKernels.<variant>.so``. When ``spikeloc`` is imported,
:func:`load` picks the first variant (best first) whose CPU features the processor has, or
the one named by the environment variable ``SPIKELOC_KERNELS`` (``baseline``, ``avx2`` or
``avx512``; an error if the CPU lacks it or it was not built).

How the extension finds the kernels: ``_native.abi3.so`` is linked without a DT_NEEDED
entry for any kernels library; its ``spk_*`` symbols stay undefined until it is imported,
and are then resolved from the library that :func:`load` opened before with RTLD_GLOBAL.
So the extension stays one table of wrappers calling the header's functions directly (a
table of ``dlsym`` pointers would repeat every signature of ``spikeloc.h``), and a library
with a fixed DT_NEEDED name could not be chosen at run time. Each library exports only its
``spk_*`` symbols (linker version script ``tools/kernels.map``): the Swift runtime linked
statically into it stays private, so it can neither interpose on nor be interposed by another
Swift runtime in the process.

This module uses the standard library only: ``setup.py`` reads :data:`VARIANTS` from it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import asdict, dataclass, field

__all__ = ["Variant", "VARIANTS", "BuildInfo", "cpu_flags", "library_name", "load",
           "build_info"]

#: Environment variable that forces a variant.
FORCE_ENV = "SPIKELOC_KERNELS"


@dataclass(frozen=True)
class Variant:
    """One build of the kernels.

    ``target_cpu`` is swiftc's ``-target-cpu`` (None: the compiler's default),
    ``condition`` the Swift compilation condition the build defines (None: none), and
    ``flags`` the CPU features, as Linux names them in ``/proc/cpuinfo``, that code compiled
    for that target may use on its own (the target's system-only extensions, such as
    ``rdrand`` or ``fsgsbase``, are only reached through intrinsics the kernels do not use).
    """

    name: str
    target_cpu: str | None
    condition: str | None
    flags: tuple[str, ...]


# x86-64-v2 and v3 as LLVM defines them (clang -march=... -dM): SSE3 to SSE4.2, POPCNT,
# CMPXCHG16B, LAHF/SAHF; then AVX, AVX2, FMA, BMI1/2, LZCNT ("abm"), MOVBE, F16C, XSAVE.
_V3 = ("pni", "ssse3", "sse4_1", "sse4_2", "popcnt", "cx16", "lahf_lm",
       "avx", "avx2", "fma", "bmi1", "bmi2", "abm", "movbe", "f16c", "xsave")

#: The variants for this machine's architecture, best first.
VARIANTS: tuple[Variant, ...] = (
    (
        # Skylake-SP: x86-64-v4 (AVX-512 F/BW/CD/DQ/VL, which Ice Lake, Sapphire Rapids and
        # Zen 4 have too) plus PCLMUL (and system-only extensions); swiftc knows no
        # "x86-64-v4". 16-lane vectors under SPIKELOC_AVX512.
        Variant("avx512", "skylake-avx512", "SPIKELOC_AVX512",
                _V3 + ("pclmulqdq", "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")),
        # Haswell: x86-64-v3 plus PCLMUL (and system-only extensions)
        Variant("avx2", "haswell", None, _V3 + ("pclmulqdq",)),
        # any x86-64 CPU (SSE2); no FMA, so a * b + c stays unfused (SPIKELOC_BASELINE)
        Variant("baseline", "x86-64", "SPIKELOC_BASELINE", ()),
    )
    if (os.uname().machine if hasattr(os, "uname") else "").lower() in ("x86_64", "amd64")
    else (Variant("generic", None, None, ()),)
)


def library_name(variant: str) -> str:
    """File name of a variant's kernels library (``libSpikeLocKernels.<variant>.so``)."""
    suffix = ".dylib" if sys.platform == "darwin" else ".so"
    return f"libSpikeLocKernels.{variant}{suffix}"


def cpu_flags() -> frozenset[str] | None:
    """The CPU features the operating system reports and supports (Linux: the ``flags`` of
    ``/proc/cpuinfo``, which the kernel clears for state it does not save, such as AVX-512
    under an OS without it); None where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    return None


@dataclass(frozen=True)
class BuildInfo:
    """What :func:`spikeloc.build_info` reports: the kernels loaded and why.

    ``variant``: the variant loaded; ``library``: its file; ``available``: the variants
    installed, best first; ``supported``: those this CPU runs; ``forced``: the value of
    ``SPIKELOC_KERNELS`` if set; ``cpu_flags``: the features that decided (present, among
    those the variants need; None if the CPU's features could not be read, and then only an
    explicitly forced variant other than ``baseline`` is used); ``missing``: per variant the
    features this CPU lacks; ``target_cpus``: swiftc's ``-target-cpu`` of each variant;
    ``abi_version``: the C ABI version (spikeloc.h); ``threads``: worker threads for
    ``threads=0``.
    """

    variant: str
    library: str
    available: tuple[str, ...]
    supported: tuple[str, ...]
    forced: str | None
    cpu_flags: tuple[str, ...] | None
    missing: dict = field(default_factory=dict)
    target_cpus: dict = field(default_factory=dict)
    abi_version: int = 0
    threads: int = 0

    def as_dict(self) -> dict:
        """The fields as a JSON-ready dict (run folders record it)."""
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in asdict(self).items()}

    def __str__(self) -> str:
        why = (f"forced by {FORCE_ENV}={self.forced}" if self.forced
               else "the best variant this CPU supports")
        lines = [f"kernels: {self.variant} ({why}), target CPU "
                 f"{self.target_cpus.get(self.variant) or 'default'}",
                 f"library: {self.library}",
                 f"available: {', '.join(self.available)}; "
                 f"supported by this CPU: {', '.join(self.supported)}"]
        for name in self.available:
            lacking = self.missing.get(name)
            if lacking:
                lines.append(f"  {name} needs {', '.join(lacking)} (missing)")
        lines.append(f"ABI version {self.abi_version}, {self.threads} worker threads for "
                     "threads=0")
        return "\n".join(lines)


_loaded: tuple[Variant, str, ctypes.CDLL] | None = None


def _installed(directory: str) -> list[Variant]:
    return [v for v in VARIANTS if os.path.exists(os.path.join(directory, library_name(v.name)))]


def _missing(variant: Variant, flags: frozenset[str] | None) -> tuple[str, ...]:
    """The features `variant` needs that the CPU lacks (all of them if unknown)."""
    return tuple(f for f in variant.flags if flags is None or f not in flags)


def _choose(installed: list[Variant], flags: frozenset[str] | None,
            forced: str | None) -> Variant:
    names = ", ".join(v.name for v in installed) or "none"
    if forced:
        known = {v.name: v for v in VARIANTS}
        if forced not in known:
            raise ImportError(f"{FORCE_ENV}={forced!r} names no kernel variant; the variants "
                              f"are {', '.join(known)}")
        variant = known[forced]
        if variant not in installed:
            raise ImportError(f"{FORCE_ENV}={forced}, but this installation has the kernels "
                              f"for {names} only (SPIKELOC_VARIANTS chose what was built)")
        lacking = _missing(variant, flags) if flags is not None else ()
        if lacking:
            raise ImportError(f"{FORCE_ENV}={forced}, but this CPU lacks {', '.join(lacking)}")
        return variant
    for variant in installed:
        if not _missing(variant, flags):
            return variant
    raise ImportError(f"none of the installed kernel variants ({names}) runs on this CPU "
                      f"(missing features: {', '.join(_missing(installed[-1], flags))})")


def load() -> ctypes.CDLL | None:
    """Loads the chosen kernels library (once per process) so that the extension can be
    imported; None if no variant is installed next to this file (a checkout not built yet:
    importing the extension then fails with its own message). Raises ImportError for a
    ``SPIKELOC_KERNELS`` that cannot be honoured and for a library that reports another
    variant than its file name says."""
    global _loaded
    if _loaded is not None:
        return _loaded[2]
    directory = os.path.dirname(os.path.abspath(__file__))
    installed = _installed(directory)
    if not installed:
        return None
    variant = _choose(installed, cpu_flags(), os.environ.get(FORCE_ENV, "").strip() or None)
    path = os.path.join(directory, library_name(variant.name))
    library = ctypes.CDLL(path, mode=os.RTLD_GLOBAL | os.RTLD_NOW)
    library.spk_kernel_variant.restype = ctypes.c_char_p
    reported = library.spk_kernel_variant().decode()
    if reported != variant.name:
        raise ImportError(f"{path} holds the {reported} kernels, not {variant.name}: rebuild "
                          "the package")
    _loaded = (variant, path, library)
    return library


def build_info(abi_version: int, threads: int) -> BuildInfo:
    """The :class:`BuildInfo` of the loaded kernels (``abi_version`` and ``threads`` come
    from the extension)."""
    if _loaded is None:
        raise ImportError("the kernels library is not loaded")
    variant, path, _ = _loaded
    flags = cpu_flags()
    installed = _installed(os.path.dirname(path))
    relevant = sorted({f for v in VARIANTS for f in v.flags})
    return BuildInfo(
        variant=variant.name,
        library=path,
        available=tuple(v.name for v in installed),
        supported=tuple(v.name for v in installed if not _missing(v, flags)),
        forced=os.environ.get(FORCE_ENV, "").strip() or None,
        cpu_flags=None if flags is None else tuple(f for f in relevant if f in flags),
        missing={v.name: _missing(v, flags) for v in installed},
        target_cpus={v.name: v.target_cpu for v in VARIANTS},
        abi_version=abi_version,
        threads=threads,
    )
