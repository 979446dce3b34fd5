"""Shared pieces of the PolyBench registry: the ``Bench`` record and init helpers.

Init helpers build arrays the way PolyBench's ``init_array`` functions do: the
integer part of each formula is evaluated on integer index grids, then cast to
float64 and divided, so every element is the same IEEE double the C code
produces (C's ``%`` truncates toward zero; where a formula could see a negative
left operand the calling module spells out the C semantics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import polyop


@dataclass(frozen=True)
class Bench:
    """One PolyBench/C 4.2.1 kernel ported to polyop's kernel language.

    ``sizes`` maps ``"MINI"``, ``"SMALL"``, ``"MEDIUM"``, ``"LARGE"`` to the size
    parameters of the kernel (exact PolyBench 4.2.1 dataset values); ``init``
    returns every kernel argument by name (fresh float64 C-contiguous arrays,
    Python floats for scalars, ints for sizes); ``outputs`` names every array
    the kernel writes, the arrays PolyBench dumps first; ``flops`` is an
    approximate count of floating-point operations (leading terms).
    """

    name: str
    kernel: polyop.Kernel
    sizes: dict[str, dict[str, int]]
    init: Callable[[dict[str, int]], dict[str, object]]
    outputs: tuple[str, ...]
    flops: Callable[[dict[str, int]], float] | None = None

    def check(self, compiled: Callable, size: str) -> None:
        """Run ``compiled`` (the kernel built by polyop) and the kernel under
        CPython on the ``size`` dataset's inputs; assert every output matches."""
        args = self.init(self.sizes[size])
        ref = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
        self.kernel.py_func(**ref)
        compiled(**args)
        for o in self.outputs:
            np.testing.assert_allclose(args[o], ref[o], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{self.name} ({size}): output {o!r}")


def grid(*dims: int) -> tuple[np.ndarray, ...]:
    """Open int64 index grids, ``i, j = grid(n, m)`` broadcast to ``(n, m)``."""
    return tuple(np.ogrid[tuple(slice(0, d) for d in dims)])


def f64(a) -> np.ndarray:
    """A C-contiguous float64 copy of ``a``."""
    return np.array(a, dtype=np.float64, order="C", copy=True)


def zeros(*shape: int) -> np.ndarray:
    """Arrays PolyBench leaves uninitialised (the kernel writes them first)."""
    return np.zeros(shape, dtype=np.float64)


def sizes(names: str, mini, small, medium, large) -> dict[str, dict[str, int]]:
    """``sizes("ni nj nk", (20, 25, 30), ...)`` -> the four dataset dicts."""
    keys = names.split()
    out = {}
    for label, vals in zip(("MINI", "SMALL", "MEDIUM", "LARGE"),
                           (mini, small, medium, large), strict=True):
        vals = vals if isinstance(vals, tuple) else (vals,)
        out[label] = dict(zip(keys, vals, strict=True))
    return out
