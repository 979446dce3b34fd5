"""Symbols of JIT-compiled kernels for Linux ``perf``.

``perf`` cannot name samples in machine code that no file on disk holds (a
JIT's); it looks them up in ``/tmp/perf-<pid>.map``, one line ``START SIZE
name`` (hexadecimal) per function. With the environment variable
``POLYOP_PERF_MAP=1``, every kernel polyop compiles adds its functions there
(the kernel, the bodies of its parallel loops, its Python entry), so that
``perf record`` and ``perf report`` name them. Each ``CompiledFunction``
keeps the same table as ``.functions``, for tools that read samples
themselves (``benchmarks/profile_kernel.py``).

Example::

    >>> import polyop
    >>> mm = polyop.ops.matmul(64, 64, 64, threads=1)
    >>> [name for _, _, name in mm.function.kernel.native.functions]
    ['polyop_matmul', 'polyop_matmul__py']
"""

from __future__ import annotations

import bisect
import os
import threading

import llvmlite.binding as llvm

__all__ = ["enabled", "register"]

_lock = threading.Lock()


def enabled() -> bool:
    """Whether ``POLYOP_PERF_MAP`` asks for the perf map (set, and not ``0``)."""
    return os.environ.get("POLYOP_PERF_MAP", "0") not in ("", "0")


def _regions() -> list[tuple[int, int]]:
    """The process's executable mappings, ``(start, end)``, sorted."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            span, perms = line.split()[:2]
            if "x" in perms:
                lo, hi = span.split("-")
                out.append((int(lo, 16), int(hi, 16)))
    return sorted(out)


def _table(engine: llvm.ExecutionEngine, names: list[str]) -> list[tuple[int, int, str]]:
    """``(start, size, name)`` of the defined functions ``names``: each runs to
    the next function's start, or to the end of its executable mapping."""
    starts = sorted((engine.get_function_address(n), n) for n in names)
    starts = [(a, n) for a, n in starts if a]
    regions = _regions()
    lows = [lo for lo, _ in regions]
    out = []
    for k, (addr, name) in enumerate(starts):
        r = bisect.bisect_right(lows, addr) - 1
        end = regions[r][1] if r >= 0 and regions[r][1] > addr else addr + 1
        if k + 1 < len(starts):
            end = min(end, starts[k + 1][0])
        out.append((addr, end - addr, name))
    return out


def register(engine: llvm.ExecutionEngine, modules: list[llvm.ModuleRef]) -> list:
    """Record the functions defined in ``modules`` (finalised in ``engine``)
    and, if ``enabled()``, append them to ``/tmp/perf-<pid>.map``."""
    names = [f.name for m in modules for f in m.functions if not f.is_declaration]
    table = _table(engine, names)
    if enabled():
        with _lock, open(f"/tmp/perf-{os.getpid()}.map", "a") as f:
            f.writelines(f"{a:x} {s:x} {n}\n" for a, s, n in table)
    return table

