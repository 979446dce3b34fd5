"""The 30 PolyBench/C 4.2.1 kernels ported to polyop's kernel language.

Each kernel is a faithful port of the ``#pragma scop`` part of PolyBench's
``kernel_*`` function (same loop structure, triangular bounds, scalar
temporaries and in-place updates), grouped by PolyBench category in the
modules ``datamining``, ``blas``, ``kernels``, ``solvers``, ``medley`` and
``stencils``. DATA_TYPE is double (``f64``) throughout. Where the kernel
language forces a change the module says so at the spot: loops that count
down (ludcmp, deriche, nussinov, adi) run upwards over ``ii`` with the
original iterator substituted (``i = n - 1 - ii``), durbin's local array
``z`` is an argument, and deriche's chained assignments are split.

``BENCHES`` maps each PolyBench name (``"gemm"``, ``"floyd-warshall"``, ...) to
its ``Bench`` record, in PolyBench's order::

    from tests.polybench import BENCHES
    b = BENCHES["gemm"]
    args = b.init(b.sizes["SMALL"])     # all arguments, by name
    b.kernel.py_func(**args)            # the CPython reference
    args["C"]                           # b.outputs == ("C",)
"""

from . import blas, datamining, kernels, medley, solvers, stencils
from ._bench import Bench

BENCHES: dict[str, Bench] = {
    b.name: b
    for module in (datamining, blas, kernels, solvers, medley, stencils)
    for b in module.BENCHES
}

__all__ = ["BENCHES", "Bench"]
